"""Serving the HTTP API with one process or several (`sealcodes verifier serve --workers N`).

One process (`run_server`): uvicorn on a socket bound beforehand. Several (`Supervisor`): the
supervising process binds the socket, then starts N workers (spawned: fresh interpreters) that
share it; the kernel hands each new connection to one of them. Each worker builds its own app from
the configuration the supervisor passes: `target(config)` returns the ASGI app, a reload
function and what counts closed connections. They share nothing but the database (and, for
/metrics, a directory of figures: metrics.py), exactly as servers on several hosts do.

Signals (the supervisor passes them on to its workers; one process handles them itself):

    SIGTERM, SIGINT  stop accepting, let the requests in flight finish (at most `grace_s`), exit 0
    SIGHUP           reload: every process re-reads its configuration (the policy and rate limits
                     from the database, the pepper files); a reload that fails keeps the running one

Connections (`guarded_protocol`): a connection must send a whole request head within
`request_timeout_s` of opening, and again of each answer (a keep-alive connection that stalls mid
head is closed as well); a request being answered is left alone (its body has a deadline of its
own: service.py). One client address (an IPv6 /64) holds at most `connections_per_address` open
connections in each process; more are closed at once. Proxies of --forwarded-allow-ips stand for
many clients and are not capped. uvicorn alone arms no timer before a first answer, and its
`limit_concurrency` counts connections: without these, silent sockets would hold every place.

A worker that dies is replaced (after a pause that grows while workers die young); a worker whose
supervisor is gone stops by itself. Under systemd (Type=notify), READY=1 is sent once every worker
answers, and STOPPING=1 when a stop begins.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("sealcodes.verifier.server")

#: how long requests in flight may take to finish after SIGTERM
GRACE_S = 25.0
#: a worker that ran this long before it died is replaced at once; younger ones after a pause
STEADY_S = 10.0
MAX_RESTART_PAUSE_S = 30.0
#: exit status of a worker that could not build its app (configuration, database)
STARTUP_FAILED = 3
#: seconds a connection has to send a request's head, from its opening or from its previous answer
REQUEST_TIMEOUT_S = 10.0
#: open connections one client address may hold in one process
CONNECTIONS_PER_ADDRESS = 64
#: connections (and requests) one process serves at once; past it uvicorn answers 503
LIMIT_CONCURRENCY = 4096
#: HTTP parsers uvicorn offers ("auto": httptools when installed, else h11)
HTTP_PARSERS = ("auto", "httptools", "h11")

#: why the server closed a connection before answering (the label of /metrics' connections_closed)
CLOSED_IDLE = "idle"                # not a byte of a request within the deadline
CLOSED_SLOW_HEAD = "slow_head"      # a request head begun, not finished within the deadline
CLOSED_ADDRESS_CAP = "address_cap"  # its address held connections_per_address already


@dataclass(frozen=True)
class ServerOptions:
    """How uvicorn serves (the same in every process)."""

    host: str
    port: int
    certfile: str | None = None
    keyfile: str | None = None
    forwarded_allow_ips: str | None = None
    grace_s: float = GRACE_S
    backlog: int = 2048
    limit_concurrency: int = LIMIT_CONCURRENCY
    request_timeout_s: float = REQUEST_TIMEOUT_S
    connections_per_address: int = CONNECTIONS_PER_ADDRESS
    http: str = "auto"


class ConnectionGuard:
    """The open connections of one process by client address (counted by `guarded_protocol`), and
    what the closed ones are counted with. One event loop (the server's) uses it."""

    def __init__(self, per_address: int, trusted_proxies: str | None = None,
                 on_closed: Callable[[str], None] | None = None):
        self.per_address = per_address
        self.on_closed = on_closed
        self._open: dict[str, int] = {}
        self._trusted = _address_matcher(trusted_proxies)

    def admit(self, host: str | None) -> str | None:
        """The key `host` is counted under, or None when its address holds its share already
        (the connection is then closed, and counted as such)."""
        from .ratelimit import client_key

        key = client_key(host)
        count = self._open.get(key, 0)
        if count >= self.per_address and not self._trusted(host):
            self.closed(CLOSED_ADDRESS_CAP)
            # once a minute at most (service.quiet_repeats): a flood is one line, a legitimate
            # client that needs more connections shows up
            log.warning("a client address opened more than %d connections: the extra ones are closed "
                        "(serve --connections-per-address)", self.per_address)
            return None
        self._open[key] = count + 1
        return key

    def release(self, key: str) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    def closed(self, reason: str) -> None:
        if self.on_closed is not None:
            self.on_closed(reason)

    def __len__(self) -> int:
        """How many addresses hold a connection now."""
        return len(self._open)


def _address_matcher(addresses: str | None) -> Callable[[str | None], bool]:
    """Whether a peer is one of `addresses` (comma-separated addresses or networks, as given to
    --forwarded-allow-ips)."""
    networks, names = [], set()
    for part in (addresses or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            names.add(part)

    def trusted(host: str | None) -> bool:
        if not host:
            return False
        if host in names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in networks)
    return trusted


def guarded_protocol(base: type, guard: ConnectionGuard, request_timeout_s: float) -> type:
    """uvicorn's HTTP protocol class `base` (httptools or h11), with the per-address cap of `guard`
    and a deadline for each request head (the module's docstring)."""

    class GuardedHTTPProtocol(base):
        _guard_key: str | None = None
        _deadline = None
        _heard = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._guard_key = guard.admit(self.client[0] if self.client else None)
            if self._guard_key is None:
                transport.abort()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            self._heard = True
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's head has its own deadline

        def connection_lost(self, exc) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            if self._guard_key is not None:
                guard.release(self._guard_key)
                self._guard_key = None
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._heard = False
            self._deadline = self.loop.call_later(request_timeout_s, self._expired)

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered (or waits behind one): answering re-arms
            guard.closed(CLOSED_SLOW_HEAD if self._heard else CLOSED_IDLE)
            self.transport.close()

    GuardedHTTPProtocol.__name__ = GuardedHTTPProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedHTTPProtocol


def http_protocol(name: str) -> type:
    """uvicorn's HTTP protocol class for a parser name of HTTP_PARSERS."""
    if name == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol
        return H11Protocol
    if name == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        return HttpToolsProtocol
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    return AutoHTTPProtocol


def raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's soft limit of open descriptors towards `wanted` (never above the
    hard limit; children inherit it); returns the soft limit in force."""
    import resource  # POSIX only: imported where it is used

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft if soft != resource.RLIM_INFINITY else wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket, bound before any worker starts (a port in use fails here, once).

    Made as TCP by name (IPPROTO_TCP, not 0): asyncio turns Nagle's algorithm off (TCP_NODELAY)
    only on connections whose socket says so. With Nagle on, an answer written in two parts (head,
    then body) waited for the client's delayed ACK: 40 ms per request on a kept-alive connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def notify(state: str) -> None:
    """Tell systemd (Type=notify) about the service's state; nothing without $NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode("ascii"), address)


def run_server(app, sock: socket.socket, options: ServerOptions, reload: Callable[[], None] | None = None,
               on_ready: Callable[[], None] | None = None, parent_pid: int | None = None,
               on_closed: Callable[[str], None] | None = None) -> None:
    """Serve `app` on `sock` in this process until SIGTERM or SIGINT; returns once the requests in
    flight are answered. SIGHUP calls `reload` (in a thread of its own); `on_closed(reason)` hears
    of each connection the server closes unanswered (CLOSED_*)."""
    import uvicorn

    guard = ConnectionGuard(options.connections_per_address, options.forwarded_allow_ips, on_closed)
    config = uvicorn.Config(
        # asyncio's loop, not uvloop even when installed: its accept() failures (descriptors
        # exhausted) are logged, once a minute (service.RepeatFilter), where libuv drops them unseen
        app, loop="asyncio", log_config=None, log_level=None, access_log=False, lifespan="off", server_header=False,
        limit_concurrency=options.limit_concurrency, timeout_keep_alive=5, backlog=options.backlog,
        timeout_graceful_shutdown=options.grace_s, proxy_headers=bool(options.forwarded_allow_ips),
        forwarded_allow_ips=options.forwarded_allow_ips or "", ws="none",
        http=guarded_protocol(http_protocol(options.http), guard, options.request_timeout_s),
        **({"ssl_certfile": options.certfile, "ssl_keyfile": options.keyfile} if options.certfile else {}))
    _graceful_server_class()(config, reload, on_ready, parent_pid).run(sockets=[sock])


def _graceful_server_class():
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, but a stop by signal ends the process normally (exit 0) instead of
        raising the signal again once the requests are answered, and SIGHUP reloads."""

        def __init__(self, config, reload, on_ready, parent_pid):
            super().__init__(config)
            self._reload, self._on_ready, self._parent_pid = reload, on_ready, parent_pid
            self._reloading = threading.Lock()

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handlers = {signal.SIGINT: self.handle_exit, signal.SIGTERM: self.handle_exit,
                        signal.SIGHUP: self._handle_reload}
            original = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

        def _handle_reload(self, sig, frame) -> None:
            if self._reload is not None:
                threading.Thread(target=self._reload_once, name="reload", daemon=True).start()

        def _reload_once(self) -> None:
            with self._reloading:  # one reload at a time; a second SIGHUP waits for the first
                self._reload()

        async def on_tick(self, counter: int) -> bool:
            if self._on_ready is not None and self.started:
                on_ready, self._on_ready = self._on_ready, None
                on_ready()
            if self._parent_pid is not None and counter % 10 == 0 and os.getppid() != self._parent_pid:
                log.warning("the supervising process is gone: stopping")
                self.should_exit = True
            return await super().on_tick(counter)

    return GracefulServer


def _worker_main(target, config, sock: socket.socket, options: ServerOptions, ready, parent_pid: int) -> None:
    """A worker process: build the app from `config`, then serve until told to stop."""
    try:
        app, reload, on_closed = target(config)
    except Exception as exc:  # the target has logged why, or says it here
        log.error("worker could not start: %s", exc)
        ready.close()
        raise SystemExit(STARTUP_FAILED) from None

    def tell_ready():
        with contextlib.suppress(OSError):
            ready.send(os.getpid())
            ready.close()

    run_server(app, sock, options, reload, tell_ready, parent_pid, on_closed)


class _Worker:
    def __init__(self, process, ready):
        self.process, self.ready, self.started = process, ready, time.monotonic()
        self.answering = False


class Supervisor:
    """Starts `workers` processes serving `target(config)` (which returns the app, its reload
    function and a counter of closed connections: see run_server) on `sock`, keeps that many running,
    passes SIGHUP on, and stops them all gracefully on SIGTERM/SIGINT (`run` returns 0)."""

    def __init__(self, target, config, workers: int, sock: socket.socket, options: ServerOptions,
                 metrics_dir: str | None = None):
        self.target, self.config, self.count, self.sock, self.options = target, config, workers, sock, options
        self.metrics_dir = metrics_dir
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._stopping = False
        self._reload_asked = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._deaths_young = 0

    def _start_one(self) -> _Worker:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_worker_main, name="sealcodes-verifier-worker", args=(
            self.target, self.config, self.sock, self.options, send, os.getpid()))
        process.start()
        send.close()
        return _Worker(process, receive)

    def _signal(self, sig, frame) -> None:
        if sig == signal.SIGHUP:
            self._reload_asked = True
        else:
            self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def run(self, timeout: float = 120.0) -> int:
        """Serve until a stop; 0 after a graceful stop, 1 when the workers could not start."""
        previous = {sig: signal.signal(sig, self._signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self._workers = [self._start_one() for _ in range(self.count)]
            if not self._wait_ready(timeout):  # a stop while workers were starting is a stop like any other
                return 0 if self._stopping else 1
            notify("READY=1")
            log.info("%d workers answering", len(self._workers))
            self._watch()
            return 0
        finally:
            notify("STOPPING=1")
            # new connections are refused from now on, as by one process that stops (the workers
            # close their copies as they stop accepting)
            self.sock.close()
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _wait_ready(self, timeout: float) -> bool:
        """True once every worker answers; False when one could not start, or a stop came first."""
        deadline = time.monotonic() + timeout
        waiting = {w.ready: w for w in self._workers}
        while waiting and not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("the workers did not start in %.0f s", timeout)
                return False
            for ready in multiprocessing.connection.wait(list(waiting), timeout=min(left, 1.0)):
                worker = waiting.pop(ready)
                try:
                    ready.recv()
                    worker.answering = True
                except (EOFError, OSError):
                    log.error("a worker could not start (exit status %s)", _status(worker.process))
                    return False
        return not self._stopping

    def _watch(self) -> None:
        restart_at: list[float] = []
        while not self._stopping:
            sentinels = [w.process.sentinel for w in self._workers]
            multiprocessing.connection.wait(sentinels + [self._wake_r], timeout=1.0)
            with contextlib.suppress(OSError):
                os.read(self._wake_r, 512)
            if self._stopping:
                return
            if self._reload_asked:
                self._reload_asked = False
                log.info("reloading the configuration of %d workers", len(self._workers))
                for worker in self._workers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.process.pid, signal.SIGHUP)
            for worker in list(self._workers):
                if worker.process.is_alive():
                    continue
                worker.process.join()
                self._gone(worker)
                self._workers.remove(worker)
                young = time.monotonic() - worker.started < STEADY_S
                self._deaths_young = self._deaths_young + 1 if young else 0
                pause = min(MAX_RESTART_PAUSE_S, 2.0 ** self._deaths_young - 1) if young else 0.0
                log.warning("worker %d ended (exit status %s); another starts in %.0f s", worker.process.pid,
                            _status(worker.process), pause)
                restart_at.append(time.monotonic() + pause)
            now = time.monotonic()
            for when in sorted(restart_at):
                if when <= now:
                    restart_at.remove(when)
                    self._workers.append(self._start_one())

    def _gone(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError):
            worker.ready.close()
        if self.metrics_dir and worker.process.pid is not None:
            from .metrics import process_gone

            with contextlib.suppress(OSError):
                process_gone(self.metrics_dir, worker.process.pid)

    def _stop_all(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.grace_s + 5.0
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                log.error("worker %d did not stop in time: killed", worker.process.pid)
                worker.process.kill()
                worker.process.join()
            self._gone(worker)


def _status(process) -> str:
    code = process.exitcode
    if code is None:
        return "unknown"
    return f"signal {-code}" if code < 0 else str(code)
