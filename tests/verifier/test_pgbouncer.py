"""The verifier behind PgBouncer in transaction-pooling mode (Debian's 1.18): a real pgbouncer
process in front of the test cluster, two server connections per database for any number of
clients, so consecutive transactions of one client land on different server connections.

What that breaks, and how the verifier copes (docs/verifier.md, "PgBouncer"):
- prepared statements live on one server connection: psycopg prepares a statement run five
  times, so the URL carries `prepared_statements=off` (tested both ways below);
- session state (SET, LISTEN, session advisory locks, temporary tables) would not follow a client:
  the verifier uses none; its only lock outside rows, the migration lock, is transaction-scoped
  (pg_advisory_xact_lock), and each read-check-write is one transaction (SELECT ... FOR UPDATE).
"""

from __future__ import annotations

import json
import subprocess
import threading

import httpx
import psycopg
import pytest

from _support import console_script, run_cli
from _vsupport import CHEAP_INIT, VerifierServer, code_set, random_record_line, record_for
from sealcodes.verifier import StoreError, open_store


def _other_client_holds_a_server_connection(bouncer, url):
    """A second client in an open transaction: it holds one of the two server connections."""
    database = url.split("/")[-1].split("?")[0]
    holder = psycopg.connect(bouncer.url(database, prepared_statements=True))
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    return holder


@pytest.mark.parametrize("prepared", [False, True])
def test_prepared_statements_must_be_off_behind_a_transaction_pooler(pgbouncer, prepared):
    """One client runs a statement often (psycopg prepares it on server connection 1); another
    client then holds connection 1, so the first one's next transaction runs on connection 2."""
    url = pgbouncer.fresh_url(prepared_statements=prepared)
    store = open_store(url, pool_size=1)
    try:
        store.migrate()
        for _ in range(10):
            assert store.get_setting("schema_version")
        holder = _other_client_holds_a_server_connection(pgbouncer, url)
        try:
            if prepared:
                with pytest.raises(StoreError, match="prepared statement .* does not exist"):
                    store.get_setting("schema_version")
            else:
                for _ in range(10):
                    assert store.get_setting("schema_version")
        finally:
            holder.close()
    finally:
        store.close()


def test_concurrent_inits_through_pgbouncer(pgbouncer):
    """The migration lock is transaction-scoped, so it holds through the pooler: two `init` at once
    on a new database both succeed (the second, once it has the lock, sees the tables the first
    committed: it reads the catalog, not the backend's cache), and the schema is current."""
    from sealcodes.verifier.store import SCHEMA_VERSION

    url = pgbouncer.fresh_url()
    argv = [console_script("sealcodes"), "verifier", "--db", url, "init", *CHEAP_INIT]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    store = open_store(url)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        store.require_current_schema()
    finally:
        store.close()


def test_serve_behind_pgbouncer_end_to_end(pgbouncer, tmp_path):
    """Two `verifier serve` (10 database connections each) share two server connections through
    PgBouncer: HTTP imports, exactly once for 100 concurrent attempts with one code, every other
    code once, status and audit; a bulk import (COPY) through it too."""
    url = pgbouncer.fresh_url()
    env = {"SEALCODES_VERIFIER_DB": url}
    assert run_cli("verifier", "init", *CHEAP_INIT, "--delay-base", "0", "--max-failures", "100",
                   env=env).returncode == 0
    keys = {scope: run_cli("verifier", "api-key", "create", scope, "--scope", scope, env=env).stdout.strip()
            for scope in ("verify", "import", "admin")}
    bulk = tmp_path / "fleet.jsonl"
    bulk.write_text("".join(random_record_line(f"user{i}@corp") + "\n" for i in range(300)))
    imported = run_cli("verifier", "import", "--bulk", "--batch-size", "64", str(bulk), env=env)
    assert imported.returncode == 0 and "300 records: 300 imported" in imported.stdout, imported.stderr
    codes = code_set(count=5)
    servers = [VerifierServer(url).start(), VerifierServer(url).start()]
    try:
        headers = {scope: {"Authorization": f"Bearer {key}"} for scope, key in keys.items()}
        created = httpx.post(servers[0].base + "/v1/records", json=record_for(codes).to_dict(),
                             headers=headers["import"])
        assert created.status_code == 201, created.text
        barrier = threading.Barrier(100)
        results = []

        def attempt(i):
            base = servers[i % 2].base
            with httpx.Client(base_url=base, headers=headers["verify"], timeout=60) as client:
                barrier.wait()
                answer = client.post("/v1/verify", json={"account": "alice", "code": codes.codes[0]})
                results.append(answer.json()["result"] if answer.status_code == 200 else answer.status_code)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 100 and results.count("accepted") == 1 and set(results) <= {"accepted", "rejected"}
        for i, code in enumerate(codes.codes[1:]):
            answer = httpx.post(servers[i % 2].base + "/v1/verify", json={"account": "alice", "code": code},
                                headers=headers["verify"]).json()
            assert answer["result"] == "accepted"
        status = httpx.get(servers[1].base + "/v1/accounts/status", params={"account": "alice"},
                           headers=headers["admin"]).json()
        assert status["remaining"] == 0
        audit = httpx.get(servers[0].base + "/v1/audit", params={"account": "alice", "limit": 1000},
                          headers=headers["admin"]).json()["events"]
        assert [e["event"] for e in audit].count("success") == 5 and len(audit) == 1 + 5 + 99
    finally:
        logs = [server.stop() for server in servers]
    for log in logs:
        assert "Traceback" not in log and "prepared statement" not in log, log
    assert json.loads(run_cli("verifier", "status", "user7@corp", "--json", env=env).stdout)["remaining"] == 10
