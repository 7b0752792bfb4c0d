"""Rate limits of the HTTP service (docs/verifier.md, "Rate limits"): token buckets per API key and
per client address, on by default, configured by `verifier init`, answered with 429 and
Retry-After, then recovering; on top of the per-account delay and lockout."""

from __future__ import annotations

import time

import httpx
import pytest

from _fleet import figure, scrape
from _support import run_cli
from _vsupport import CHEAP_INIT, VerifierServer, cheap_policy, free_port
from sealcodes.verifier import Policy, Verifier, open_store
from sealcodes.verifier.ratelimit import TokenBuckets, client_key


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_token_bucket():
    clock = Clock()
    buckets = TokenBuckets(rate=2, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token every half second
    assert buckets.take("b") == 0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 60
    assert [buckets.take("a") for _ in range(4)][:3] == [0, 0, 0]  # refilled up to the burst, no more
    assert TokenBuckets(rate=0, burst=1).take("a") == 0  # 0: off


def test_buckets_stay_bounded_under_many_addresses():
    buckets = TokenBuckets(rate=1, burst=1, max_buckets=100, clock=Clock())
    for n in range(10_000):
        buckets.take(f"10.0.{n // 256}.{n % 256}")
    assert len(buckets) == 100


def test_defaults_are_on():
    policy = Policy()
    assert (policy.key_rate, policy.key_burst, policy.address_rate, policy.address_burst) == (50, 100, 10, 20)
    assert (policy.key_in_flight, policy.address_in_flight, policy.attempt_wait_s) == (8, 2, 5.0)


def _flood(client, path, n, **options):
    return [getattr(client, "post" if path != "/v1/accounts/status" else "get")(path, **options) for _ in range(n)]


def test_http_429_then_recovery(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(key_rate=1, key_burst=3, address_rate=1, address_burst=8))
    _, first = verifier.create_api_key("one", "verify")
    _, second = verifier.create_api_key("two", "verify")
    metrics_port = free_port()  # scraped on an address of its own: /metrics on --listen is limited too
    server = VerifierServer(url, args=("--metrics-listen", f"127.0.0.1:{metrics_port}")).start()
    try:
        body = {"account": "alice", "code": "not a code"}
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {first}"}) as one:
            answers = [one.post("/v1/verify", json=body) for _ in range(4)]
            assert [a.status_code for a in answers] == [200, 200, 200, 429]  # the key's burst is 3
            limited = answers[-1]
            assert limited.json()["error"] == "rate_limited" and limited.headers["retry-after"] == "1"
            # another key from the same address still goes on: the address bucket (8) is not empty
            with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {second}"}) as two:
                assert [two.post("/v1/verify", json=body).status_code for _ in range(3)] == [200] * 3
                # the second key's burst (3) is spent too; with it 8 requests came from this address:
                # the address bucket is empty now, for every key
                assert two.post("/v1/verify", json=body).status_code == 429
                # bad keys and no keys count against the address too (before the key is looked up)
                no_key = httpx.post(server.base + "/v1/verify", json=body)
                assert no_key.status_code == 429 and no_key.json()["error"] == "rate_limited"
            time.sleep(1.1)  # a token a second for the key and for the address (slow enough that
            # a loaded machine does not refill a bucket between the requests above)
            assert one.post("/v1/verify", json=body).status_code == 200
        assert httpx.get(server.base + "/v1/health").status_code == 200  # never limited
        figures = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        server.stop()
        store.close()
    # /metrics counted each 429 by the bucket that refused it: each key's once, the address's once
    assert figure(figures, "sealcodes_verifier_rate_limited_total", limit="key") == 2
    assert figure(figures, "sealcodes_verifier_rate_limited_total", limit="address") == 1
    assert figure(figures, "sealcodes_verifier_responses_total", route="verify", status="429") == 3


def test_init_configures_the_limits(tmp_path):
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "v.db")}
    done = run_cli("verifier", "init", *CHEAP_INIT, env=env)
    assert done.returncode == 0 and "rate limits off per key, off per address" in done.stdout
    done = run_cli("verifier", "init", "--key-rate", "7/9", "--address-rate", "3", env=env)
    assert "rate limits 7/s (burst 9) per key, 3/s (burst 6) per address" in done.stdout
    bad = run_cli("verifier", "init", "--key-rate", "fast", env=env)
    assert bad.returncode == 2 and "RATE/BURST" in bad.stderr


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(tmp_path):
    """A client cannot escape its address's bucket by sending X-Forwarded-For; behind a proxy named
    with --forwarded-allow-ips, the address the proxy forwards counts."""
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(address_rate=0.01, address_burst=2))
    _, key = verifier.create_api_key("one", "verify")
    store.close()
    body = {"account": "alice", "code": "not a code"}

    def statuses(server, forwarded_for):
        return [httpx.post(server.base + "/v1/verify", json=body, headers={
            "Authorization": f"Bearer {key}", "X-Forwarded-For": address}).status_code for address in forwarded_for]

    direct = VerifierServer(url).start()
    try:
        assert statuses(direct, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) == [200, 200, 429]  # all from 127.0.0.1
    finally:
        direct.stop()
    proxied = VerifierServer(url, args=("--forwarded-allow-ips", "127.0.0.1")).start()
    try:
        assert statuses(proxied, ["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2"]) == [200, 200, 429, 200]
        # the review: one bucket per IPv6 address gave a host with a /64 2^64 buckets; now per /64
        assert statuses(proxied, ["2001:db8:1:2::1", "2001:db8:1:2:aaaa::2", "2001:db8:1:2::3",
                                  "2001:db8:1:3::1"]) == [200, 200, 429, 200]
    finally:
        proxied.stop()


@pytest.mark.parametrize("host, key", [
    ("10.0.0.1", "10.0.0.1"),
    ("::ffff:10.0.0.1", "10.0.0.1"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::1", "::/64"),
    ("unknown", "unknown"),
    (None, "unknown"),
])
def test_an_ipv6_client_counts_by_its_64(host, key):
    assert client_key(host) == key


@pytest.mark.parametrize("allowed", ["*", "127.0.0.1, *"])
def test_every_address_trusted_as_proxy_is_refused(tmp_path, allowed):
    """The review: with --forwarded-allow-ips '*' every request named its own address."""
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "v.db")}
    assert run_cli("verifier", "init", *CHEAP_INIT, env=env).returncode == 0
    refused = run_cli("verifier", "serve", "--listen", "127.0.0.1:1", "--forwarded-allow-ips", allowed, env=env)
    assert refused.returncode == 1 and "--forwarded-allow-ips '*' would let every client name its own address" \
        in refused.stderr
