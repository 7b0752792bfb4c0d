"""Idle and slow connections cannot starve the server (docs/verifier.md, "Connections";
docs/security.md item 35), against a real `verifier serve` with each of uvicorn's HTTP parsers.

uvicorn arms no timer before a connection's first answer, and counts connections against its
concurrency limit: without a deadline and a per-address cap, a thousand silent sockets would make
every real request a 503. Now one address holds at most --connections-per-address connections
(more are closed at once), a connection that sends no whole request head within --request-timeout
of opening (or of its previous answer) is closed, a body that does not come within it is answered
408, and /metrics counts every such close by reason."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time

import httpx
import pytest

from _fleet import figure, scrape, wait_for
from _vsupport import VerifierServer, alice_database, free_port
from sealcodes.verifier.workers import CONNECTIONS_PER_ADDRESS, ConnectionGuard, bind

PARSERS = ["httptools", "h11"]


def _serve(url, parser, *args):
    metrics_port = free_port()
    server = VerifierServer(url, args=("--http", parser, "--metrics-listen", f"127.0.0.1:{metrics_port}",
                                       *args)).start()
    return server, f"http://127.0.0.1:{metrics_port}/metrics"


def _closed(sock: socket.socket, wait: float = 0.0) -> bool:
    """Whether the server closed `sock`: EOF (or a reset) within `wait` seconds, after any answer."""
    sock.settimeout(wait if wait > 0 else 0.001)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (TimeoutError, BlockingIOError):
        return False


def _answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """Read one HTTP/1.1 answer: (status, headers, body)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of an answer"
        body += chunk
    return int(lines[0].split()[1]), headers, body


HEALTH = b"GET /v1/health HTTP/1.1\r\nHost: verifier\r\n\r\n"


@pytest.mark.parametrize("parser", PARSERS)
def test_one_address_holds_at_most_its_share_of_connections(parser, tmp_path):
    """The default cap plus 50 silent sockets from 127.0.0.1: the 50 extra are closed at once, the
    first ones stay (until their deadline); another address is answered at once all the same."""
    url, _, _ = alice_database(tmp_path)
    server, metrics_url = _serve(url, parser)
    held = []
    try:
        for _ in range(CONNECTIONS_PER_ADDRESS + 50):
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        refused = wait_for(lambda: sum(_closed(sock) for sock in held) >= 50 or None, timeout=5, step=0.05)
        start = time.monotonic()
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=5) as client:
            other = client.get(server.base + "/v1/health")
        other_took = time.monotonic() - start
        # one more from the capped address is closed too, as it opens
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        extra_closed = _closed(extra, wait=3)
        extra.close()
        still_open = sum(not _closed(sock) for sock in held)
        figures = scrape(metrics_url)
    finally:
        for sock in held:
            sock.close()
        log = server.stop()
    assert refused, "the connections over the cap were not closed"
    assert still_open == CONNECTIONS_PER_ADDRESS
    assert other.status_code == 200 and other.json() == {"status": "ok"}
    assert other_took < 5  # answered while 127.0.0.1 held its share (no 503 from uvicorn's limit)
    assert extra_closed
    assert figure(figures, "sealcodes_verifier_connections_closed_total", reason="address_cap") == 51
    assert log.count("opened more than 64 connections") == 1, log  # once, not once per connection
    assert "Traceback" not in log


@pytest.mark.parametrize("parser", PARSERS)
def test_silent_slow_and_stalled_connections_are_closed_at_the_deadline(parser, tmp_path):
    """With --request-timeout 1: silent sockets, a header trickler, a keep-alive connection that
    stalls in its second request's head and a body that never ends are closed (the body answered
    408 JSON first); a keep-alive client that asks every half second, and a request answered
    after the deadline because the database held it, are not affected."""
    url, key, codes = alice_database(tmp_path)
    database = url.removeprefix("sqlite:///")
    server, metrics_url = _serve(url, parser, "--request-timeout", "1")
    address = ("127.0.0.1", server.port)
    try:
        silent = [socket.create_connection(address, timeout=5) for _ in range(5)]
        trickler = socket.create_connection(address, timeout=5)
        trickler.sendall(b"GET /v1/health HTTP/1.1\r\nHost: verifier\r\nX-Slow: ")
        stalled = socket.create_connection(address, timeout=5)
        stalled.sendall(HEALTH)
        first_status = _answer(stalled)[0]
        stalled.sendall(b"GET /v1/health HTTP/1.1\r\nHo")  # the second request's head, never finished
        slow_body = socket.create_connection(address, timeout=5)
        slow_body.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: verifier\r\nContent-Type: application/json\r\n"
                          b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 60\r\n\r\n{\"acc")
        early = [_closed(sock) for sock in silent + [trickler, stalled]]

        # a request the database holds for longer than the deadline: being answered, left alone
        held_answer = []
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        waiting = threading.Thread(target=lambda: held_answer.append(httpx.post(
            server.base + "/v1/verify", json={"account": "alice", "code": codes.codes[0]},
            headers={"Authorization": f"Bearer {key}"}, timeout=30)))
        waiting.start()

        keep_alive = socket.create_connection(address, timeout=5)
        statuses = []
        for _ in range(6):  # 3 s on one connection: three times the deadline
            keep_alive.sendall(HEALTH)
            statuses.append(_answer(keep_alive)[0])
            try:
                trickler.sendall(b"a")
            except OSError:
                pass
            time.sleep(0.5)
        lock.execute("COMMIT")
        lock.close()
        waiting.join(30)
        late = [_closed(sock, wait=2) for sock in silent + [trickler, stalled]]
        body_status, body_headers, body = _answer(slow_body)
        body_closed = _closed(slow_body, wait=2)
        keep_alive.sendall(HEALTH)
        still = _answer(keep_alive)[0]
        figures = scrape(metrics_url)
        for sock in silent + [trickler, stalled, slow_body, keep_alive]:
            sock.close()
    finally:
        log = server.stop()
    assert first_status == 200
    assert not any(early), "a connection was closed before its deadline"
    assert all(late), f"still open after the deadline: {late}"
    assert body_status == 408 and json.loads(body) == {"error": "timeout",
                                                       "message": "the request body did not arrive in time"}
    assert body_headers.get("connection") == "close" and body_closed
    assert statuses == [200] * 6 and still == 200
    assert [a.status_code for a in held_answer] == [200] and held_answer[0].json()["result"] == "accepted"
    assert figure(figures, "sealcodes_verifier_connections_closed_total", reason="idle") == 5
    assert figure(figures, "sealcodes_verifier_connections_closed_total", reason="slow_head") == 2
    assert figure(figures, "sealcodes_verifier_connections_closed_total", reason="slow_body") == 1
    assert figure(figures, "sealcodes_verifier_responses_total", route="verify", status="408") == 1
    assert "Traceback" not in log


def test_a_trusted_proxy_is_not_capped(tmp_path):
    """An address of --forwarded-allow-ips stands for many clients: it may hold more connections
    than the cap; any other address may not."""
    url, _, _ = alice_database(tmp_path)
    server, metrics_url = _serve(url, "auto", "--forwarded-allow-ips", "127.0.0.1",
                                 "--connections-per-address", "2")
    proxy, client = [], []
    try:
        for _ in range(5):
            proxy.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            client.append(socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                                   source_address=("127.0.0.2", 0)))
        closed = wait_for(lambda: sum(_closed(sock) for sock in client) >= 3 or None, timeout=5, step=0.05)
        time.sleep(0.3)
        proxy_closed = [_closed(sock) for sock in proxy]
        client_open = sum(not _closed(sock) for sock in client)
        figures = scrape(metrics_url)
    finally:
        for sock in proxy + client:
            sock.close()
        server.stop()
    assert closed and client_open == 2
    assert not any(proxy_closed)
    assert figure(figures, "sealcodes_verifier_connections_closed_total", reason="address_cap") == 3


def test_connection_guard_counts_by_client_key():
    """The cap counts an IPv6 client by its /64 (as the rate limits do), an IPv4-mapped address as
    its IPv4 address, frees a place when a connection ends, and exempts trusted proxies (addresses
    or networks)."""
    reasons = []
    guard = ConnectionGuard(2, "10.0.0.1, fd00:1::/64", reasons.append)
    first = guard.admit("2001:db8::1")
    assert first == "2001:db8::/64" and guard.admit("2001:db8::ffff:1") == first
    assert guard.admit("2001:db8::2") is None and reasons == ["address_cap"]
    assert guard.admit("2001:db8:0:1::1") is not None  # another /64
    guard.release(first)
    assert guard.admit("2001:db8::3") == first
    assert guard.admit("::ffff:192.0.2.7") == "192.0.2.7" and guard.admit("192.0.2.7") == "192.0.2.7"
    assert guard.admit("192.0.2.7") is None
    assert all(guard.admit("10.0.0.1") for _ in range(10))
    assert all(guard.admit("fd00:1::5") for _ in range(10))
    assert all(guard.admit("::ffff:10.0.0.1") for _ in range(3))
    assert reasons == ["address_cap"] * 2
    addresses = len(guard)
    for _ in range(2):
        guard.release("192.0.2.7")
    assert len(guard) == addresses - 1  # nothing kept for an address without connections


def _nodelay_of_accepted(sock: socket.socket) -> int:
    """TCP_NODELAY of a connection accepted by asyncio's server on `sock`, as uvicorn serves it."""
    async def accept_one() -> int:
        seen = []

        async def handler(reader, writer):
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handler, sock=sock)
        reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        await reader.read()  # until the server closes
        writer.close()
        server.close()
        await server.wait_closed()
        return seen[0]

    return asyncio.run(accept_one())


def test_served_connections_send_at_once():
    """Every connection of `serve`'s socket has Nagle's algorithm off (TCP_NODELAY), in the process
    that bound it and in a worker it was handed to: with it on, an answer written in two parts
    (head, body) waited for the client's delayed ACK, 40 ms per request on a kept-alive connection."""
    from multiprocessing.reduction import ForkingPickler

    sock = bind("127.0.0.1", 0)
    handed = ForkingPickler.loads(ForkingPickler.dumps(sock))  # as a spawned worker receives it
    sock.close()
    assert handed.proto == socket.IPPROTO_TCP
    assert _nodelay_of_accepted(handed) != 0
