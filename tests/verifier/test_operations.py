"""Running the verifier as a service (docs/verifier.md, "Operations"): /metrics summed over the
worker processes and scraped with curl, its scope, --metrics-listen, /v1/health and /v1/ready,
JSON log lines that never hold a secret, SIGHUP reloading the configuration, readiness told to
systemd, and the systemd unit checked by systemd-analyze."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from _fleet import accounts_with_codes, figure, scrape, wait_for
from _support import console_script, run_cli
from _vsupport import (PostgresServer, VerifierServer, cheap_policy, code_set, free_port,
                       process_tree_cpu_seconds, record_for)
from sealcodes.verifier import Verifier, open_store
from sealcodes.verifier.record import HashParams

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNIT = ROOT / "host" / "sealcodes" / "verifier" / "systemd" / "sealcodes-verifier.service"


def test_metrics_add_up_across_workers(tmp_path):
    """Two workers write their own figures; a scrape (curl, a key of scope metrics) sums them,
    and they move with every answer. The same figures come without a key from --metrics-listen.
    The server runs on at most two CPUs, so the hash slots (and the queue) do not depend on the
    machine's size."""
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    slow = HashParams.argon2id(19456, 16, 1)
    verifier = Verifier.initialise(store, cheap_policy(max_failures=3, delay_base_s=0, memory_kib=slow.memory_kib,
                                                       iterations=slow.iterations))
    keys = {scope: verifier.create_api_key(scope, scope)[1] for scope in ("verify", "import", "metrics")}
    codes = accounts_with_codes(verifier, "m", 4, 5, params=slow)  # the policy's one shape
    cpus = set(sorted(os.sched_getaffinity(0))[:2])
    slots = len(cpus)  # one pool for both workers: one slot per CPU
    queued = accounts_with_codes(verifier, "q", slots + 4, 1, params=slow)
    store.close()
    port = free_port()
    server = VerifierServer(url, workers=2, args=("--metrics-listen", f"127.0.0.1:{port}"), cpus=cpus).start()
    metrics_url = server.base + "/metrics"
    try:
        # the second worker may still be starting when the first answers
        before = wait_for(lambda: (lambda f: f if figure(f, "sealcodes_verifier_processes") == 2 else None)(
            scrape(metrics_url, keys["metrics"])), timeout=15)
        assert before, "two workers never answered"
        assert figure(before, "sealcodes_verifier_verifies_total", result="accepted") == 0
        assert figure(before, "sealcodes_verifier_hash_cpu_seconds_total") == 0
        cpu_before = process_tree_cpu_seconds(server.process.pid)
        verify = {"Authorization": f"Bearer {keys['verify']}"}
        for account, own in codes.items():  # a new connection each: the workers share them
            for code in own[:3]:
                assert httpx.post(server.base + "/v1/verify", json={"account": account, "code": code},
                                  headers=verify).json()["result"] == "accepted"
        wrong = code_set(label="wrong").codes
        results = [httpx.post(server.base + "/v1/verify", json={"account": "m-0", "code": code},
                              headers=verify).json()["result"] for code in wrong[:3]]
        assert results == ["rejected", "rejected", "locked"]
        assert httpx.post(server.base + "/v1/verify", json={"account": "m-1", "code": "nope"},
                          headers=verify).json()["result"] == "mistyped"
        record = record_for(code_set(label="fresh", count=2), account="fresh", params=slow).to_dict()
        assert httpx.post(server.base + "/v1/records", json=record,
                          headers={"Authorization": f"Bearer {keys['import']}"}).status_code == 201
        # four attempts more than the hash slots, of about 0.4 s each: a queue
        threads = [threading.Thread(target=httpx.post, args=(server.base + "/v1/verify",), kwargs={
            "json": {"account": account, "code": own[0]}, "headers": verify, "timeout": 60})
            for account, own in queued.items()]
        for thread in threads:
            thread.start()
        busy = wait_for(lambda: (lambda f: f if figure(f, "sealcodes_verifier_hash_queue_depth")
                                 + figure(f, "sealcodes_verifier_hashes_running") == len(queued) else None)(
            scrape(metrics_url, keys["metrics"])), timeout=5, step=0.02)
        for thread in threads:
            thread.join()
        after = scrape(metrics_url, keys["metrics"])
        server_cpu = process_tree_cpu_seconds(server.process.pid) - cpu_before
        unkeyed = scrape(f"http://127.0.0.1:{port}/metrics")
        refused = httpx.get(metrics_url, headers=verify)
        anonymous = httpx.get(metrics_url)
        scraper = {"Authorization": f"Bearer {keys['metrics']}"}  # a scraper's key does nothing else
        out_of_scope = [httpx.post(server.base + "/v1/verify", json={"account": "m-2", "code": codes["m-2"][4]},
                                   headers=scraper).status_code,
                        httpx.get(server.base + "/v1/audit", headers=scraper).status_code,
                        httpx.post(server.base + "/v1/records", json=record, headers=scraper).status_code]
    finally:
        log = server.stop()
    assert busy, f"the hash queue never showed the {len(queued)} attempts"
    assert figure(busy, "sealcodes_verifier_hashes_running") <= slots
    assert figure(busy, "sealcodes_verifier_hash_queue_depth") >= 4
    assert figure(after, "sealcodes_verifier_verifies_total", result="accepted") == 12 + len(queued)
    assert figure(after, "sealcodes_verifier_verifies_total", result="rejected") == 2
    assert figure(after, "sealcodes_verifier_verifies_total", result="locked") == 1
    assert figure(after, "sealcodes_verifier_verifies_total", result="mistyped") == 1
    assert figure(after, "sealcodes_verifier_lockouts_total") == 1
    assert figure(after, "sealcodes_verifier_imports_total", outcome="imported") == 1
    assert figure(after, "sealcodes_verifier_request_duration_seconds_count", route="verify") == 16 + len(queued)
    assert figure(after, "sealcodes_verifier_responses_total", route="verify", status="200") == 16 + len(queued)
    assert figure(after, "sealcodes_verifier_hash_queue_depth") == 0
    assert figure(after, "sealcodes_verifier_processes") == 2
    # the hashing's CPU time, summed over both workers: most of what they spent (0.4 s a hash), not more
    hashed = figure(after, "sealcodes_verifier_hash_cpu_seconds_total")
    assert 0.5 * server_cpu < hashed <= server_cpu + 0.05, (hashed, server_cpu)
    assert figure(unkeyed, "sealcodes_verifier_verifies_total", result="accepted") == 12 + len(queued)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert anonymous.status_code == 401
    assert out_of_scope == [403, 403, 403]
    assert "Traceback" not in log


def test_default_workers_and_hash_slots_follow_the_cpu_affinity(tmp_path):
    """Without --workers, `serve` starts one process per CPU it may run on (its affinity, as a
    container's cpuset or taskset gives it), not one per CPU of the machine; the hash slots (one
    per CPU, one pool for every process) follow."""
    mine = sorted(os.sched_getaffinity(0))
    probe = subprocess.run(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{mine[0]}}}); "
         "from sealcodes.verifier.core import usable_cpus, hash_slots_per_process as slots; "
         "print(usable_cpus(), slots(1), slots(2))"], capture_output=True, text=True, timeout=60)
    assert probe.stdout.split() == ["1", "2", "1"], probe.stderr  # slots of each process, without a pool
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    Verifier.initialise(store, cheap_policy())
    store.close()
    started = {}
    for cpus in [{mine[0]}] + ([set(mine[:2])] if len(mine) >= 2 else []):
        server = VerifierServer(url, workers=None, cpus=cpus).start()
        started[len(cpus)] = server.stop()
    assert "(1 process; hash slots: 1, System V semaphore " in started[1], started[1]
    if 2 in started:  # a machine of one CPU has nothing more to show
        assert "(2 processes; hash slots: 2, System V semaphore " in started[2], started[2]


def test_health_and_ready(tmp_path):
    database = tmp_path / "v.db"
    url = "sqlite:///" + str(database)
    store = open_store(url)
    Verifier.initialise(store, cheap_policy())
    store.close()
    server = VerifierServer(url).start()
    try:
        assert httpx.get(server.base + "/v1/ready").json() == {"status": "ready"}
        with sqlite3.connect(database) as connection:  # as if an older release's database came back
            connection.execute("UPDATE settings SET value = '2' WHERE name = 'schema_version'")
        ready = httpx.get(server.base + "/v1/ready")
        assert ready.status_code == 503 and ready.json() == {
            "error": "not_ready",
            "message": "the verifier database's schema is not this release's: run `sealcodes verifier init`"}
        assert httpx.get(server.base + "/v1/health").json() == {"status": "ok"}  # alive all the same
    finally:
        server.stop()


def test_ready_follows_postgresql_and_never_names_it():
    """/v1/ready needs no key, so it says only "unreachable" while PostgreSQL is down: not the
    driver's error, which names the server's host and port. It answers 200 again once the
    database is back, without a restart."""
    postgres = PostgresServer().start()
    try:
        url = postgres.fresh_url()
        store = open_store(url)
        Verifier.initialise(store, cheap_policy())
        store.close()
        server = VerifierServer(url).start()
        try:
            before = httpx.get(server.base + "/v1/ready", timeout=30)
            postgres.pause()
            down = httpx.get(server.base + "/v1/ready", timeout=30)
            postgres.resume()
            back = wait_for(lambda: httpx.get(server.base + "/v1/ready", timeout=30).status_code == 200, timeout=20)
        finally:
            log = server.stop()
    finally:
        postgres.stop()
    assert before.status_code == 200 and before.json() == {"status": "ready"}
    assert down.status_code == 503 and down.headers["content-type"] == "application/json"
    assert down.json() == {"error": "not_ready", "message": "the verifier database is unreachable"}
    assert postgres.base not in down.text and "5432" not in down.text and "socket" not in down.text
    assert back, "/v1/ready did not answer 200 after PostgreSQL came back"
    assert "not ready" in log  # the detail is for the operator's log
    assert "Traceback" not in log


def test_json_logs_hold_no_secret(tmp_path):
    """Every line is a JSON object; no code, API key, digest or pepper appears in any of them,
    whatever the requests carried (a served import, codes right, wrong, spent and mistyped,
    bad keys, a lockout, a body refused with a code in it, a reload)."""
    url = "sqlite:///" + str(tmp_path / "v.db")
    pepper_file = tmp_path / "pepper"
    pepper = os.urandom(32)
    pepper_file.write_text(pepper.hex())
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(max_failures=3, delay_base_s=0), pepper=pepper)
    keys = {scope: verifier.create_api_key(scope, scope)[1] for scope in ("verify", "import", "metrics")}
    store.close()
    codes = code_set(label="github.com/alice", count=4)
    other = code_set(label="github.com/other", count=4, response=os.urandom(32))
    record = record_for(codes, account="alice")
    server = VerifierServer(url, env={"SEALCODES_VERIFIER_PEPPER_FILE": str(pepper_file)},
                            args=("--log-format", "json", "--log-level", "info"), workers=2).start()
    try:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            bearer = lambda scope: {"Authorization": f"Bearer {keys[scope]}"}  # noqa: E731
            assert client.post("/v1/records", json=record.to_dict(), headers=bearer("import")).status_code == 201
            for code in (codes.codes[0], codes.codes[0], other.codes[0], codes.codes[1].lower(), "ABCD-EFGH"):
                client.post("/v1/verify", json={"account": "alice", "code": code}, headers=bearer("verify"))
            for code in other.codes[1:]:  # to the lockout
                client.post("/v1/verify", json={"account": "alice", "code": code}, headers=bearer("verify"))
            client.post("/v1/verify", json={"account": "alice", "code": codes.codes[2], "x": 1},
                        headers=bearer("verify"))
            client.post("/v1/verify", json={"account": "alice", "code": codes.codes[3]},
                        headers={"Authorization": f"Bearer {keys['verify'][:-4]}AAAA"})
            client.post("/v1/records", json=record.to_dict(), headers=bearer("verify"))
            client.get("/metrics", headers=bearer("metrics"))
        server.process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
    finally:
        log = server.stop()
    lines = [line for line in log.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "pid", "message"} <= set(e) for e in entries)
    messages = " ".join(e["message"] for e in entries)
    assert "code-used" in messages and "account-locked" in messages and "configuration reloaded" in messages
    secrets = set(keys.values()) | {pepper.hex(), pepper.hex().upper(), base64.b64encode(pepper).decode()}
    for code in list(codes.codes) + list(other.codes):
        secrets |= {code, code.lower(), code.replace("-", ""), code.replace("-", "").lower()}
    for digest in record.digests:
        secrets |= {digest.hex(), base64.b64encode(digest).decode(), base64.urlsafe_b64encode(digest).decode()}
    for secret in secrets:
        assert secret not in log, "a secret reached the log"


def test_sighup_reloads_the_policy_and_a_failed_reload_keeps_serving(tmp_path):
    """SIGHUP: every worker re-reads the policy (here: a rate limit turned on) and the pepper files;
    a reload that fails (a pepper file gone) keeps the configuration in use. The supervisor tells
    systemd READY=1, then STOPPING=1."""
    url = "sqlite:///" + str(tmp_path / "v.db")
    env = {"SEALCODES_VERIFIER_DB": url, "SEALCODES_VERIFIER_PEPPER_FILE": str(tmp_path / "pepper")}
    assert run_cli("verifier", "init", "--argon2", "64/1/1", "--key-rate", "0", "--address-rate", "0",
                   "--create-pepper", str(tmp_path / "pepper"), env={"SEALCODES_VERIFIER_DB": url}).returncode == 0
    key = run_cli("verifier", "api-key", "create", "k", env=env).stdout.strip()
    metrics_key = run_cli("verifier", "api-key", "create", "m", "--scope", "metrics", env=env).stdout.strip()
    notify_path = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(30)
    server = VerifierServer(url, workers=2, env={**env, "NOTIFY_SOCKET": notify_path})
    try:
        server.start()
        assert notify.recv(100) == b"READY=1"
        headers = {"Authorization": f"Bearer {key}"}
        body = {"account": "alice", "code": "not a code"}
        with httpx.Client(base_url=server.base, headers=headers) as client:  # one connection: one worker
            assert {client.post("/v1/verify", json=body).status_code for _ in range(5)} == {200}
        assert run_cli("verifier", "init", "--key-rate", "1/2", env=env).returncode == 0
        server.process.send_signal(signal.SIGHUP)
        reloaded = wait_for(lambda: figure(scrape(server.base + "/metrics", metrics_key),
                                           "sealcodes_verifier_reloads_total", outcome="ok") == 2, 10)
        with httpx.Client(base_url=server.base, headers=headers) as client:
            assert [client.post("/v1/verify", json=body).status_code for _ in range(3)] == [200, 200, 429]
        os.rename(tmp_path / "pepper", tmp_path / "pepper.moved")
        server.process.send_signal(signal.SIGHUP)
        failed = wait_for(lambda: figure(scrape(server.base + "/metrics", metrics_key),
                                         "sealcodes_verifier_reloads_total", outcome="failed") == 2, 10)
        time.sleep(1.1)
        with httpx.Client(base_url=server.base, headers=headers) as client:
            assert client.post("/v1/verify", json=body).status_code == 200
        process = server.process
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert notify.recv(100) == b"STOPPING=1"
    finally:
        log = server.stop()
        notify.close()
    assert reloaded and failed
    assert log.count("reload failed, the configuration in use stays: cannot read the pepper file") == 2, log


def _unit_for_this_machine(tmp_path) -> pathlib.Path:
    """The shipped unit with ExecStart and friends pointing at this environment's console script
    (systemd-analyze checks that the programs exist)."""
    text = UNIT.read_text().replace("/usr/local/bin/sealcodes", console_script("sealcodes"))
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze (Debian package systemd)")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    unit = UNIT.read_text()
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=sealcodes-verifier",
                    "NoNewPrivileges=yes", "ExecReload=/bin/kill -HUP $MAINPID", "Type=notify", "KillMode=mixed"):
        assert setting in unit.splitlines(), setting
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(_unit_for_this_machine(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    # the unit's command line is one `serve` accepts
    serve = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = serve.split("=", 1)[1].split()[1:]
    assert argv[:2] == ["verifier", "serve"]
    done = run_cli(*argv[:2], "--help")
    assert done.returncode == 0 and all(option.split("=")[0] in done.stdout
                                        for option in argv[2:] if option.startswith("--"))
