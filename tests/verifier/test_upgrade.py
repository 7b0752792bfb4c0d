"""Upgrading a verifier whose servers are still running (docs/verifier.md, "Upgrading").

The review found: after `verifier init` migrated the database to schema 3, a server of the previous
release (schema 2) that was still running applied its flat model to every key, so a verify-only key
made after the migration (the key of the PAM hosts) could POST /v1/records through it and replace
anyone's set. Migration 3 renames the key digest column, so such a server fails closed: its key
lookup errors and it answers 503 to every request.

The previous release is the real one: its `host/sealcodes` is taken from git (commit a328a79) and
run beside this one, against a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from _support import run_cli
from _vsupport import CHEAP_INIT, VerifierServer, code_set, free_port, record_for, store_url

#: the last release before verifier schema 3
PREVIOUS_RELEASE = "a328a79"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory) -> str:
    """The previous release's `host` directory, extracted from git (no worktree is made)."""
    target = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_RELEASE, "host/sealcodes"],
                             capture_output=True, timeout=120)
    assert archive.returncode == 0, ("this test needs the repository's history (commit "
                                     f"{PREVIOUS_RELEASE}): {archive.stderr.decode(errors='replace')}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return str(target / "host")


def _old(host: str, *args, input=None):
    """The previous release's CLI (python -m sealcodes with its tree first on the path)."""
    env = dict(os.environ, PYTHONPATH=host)
    return subprocess.run([sys.executable, "-m", "sealcodes", *args], input=input, capture_output=True, text=True,
                          env=env, timeout=120)


class OldServer:
    """`verifier serve` of the previous release, on 127.0.0.1 and a free port."""

    def __init__(self, host: str, db_url: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sealcodes", "verifier", "--db", db_url, "serve", "--listen",
             f"127.0.0.1:{self.port}", "--log-level", "warning"],
            env=dict(os.environ, PYTHONPATH=host), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read().decode(errors="replace")
            try:
                if httpx.get(self.base + "/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the previous release's server did not answer in time")

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err.decode(errors="replace")


@pytest.fixture(params=["sqlite", "postgresql"])
def old_db(request, tmp_path, previous_release):
    """A database made by the previous release: schema 2, alice's set, one (flat) API key."""
    url = store_url(request, tmp_path)
    done = _old(previous_release, "verifier", "--db", url, "init")
    assert done.returncode == 0 and "schema 2" in done.stdout, done.stderr
    alice = code_set(count=3)
    first = record_for(alice)  # record v1: what the previous release reads
    assert _old(previous_release, "verifier", "--db", url, "import", "-", input=first.to_json()).returncode == 0
    old_key = _old(previous_release, "verifier", "--db", url, "api-key", "create", "web").stdout.strip()
    assert old_key.startswith("sck_")
    return url, alice, old_key


def test_a_previous_release_server_fails_closed_after_the_migration(old_db, previous_release):
    url, alice, old_key = old_db
    known = code_set(epoch=1, count=3, response=bytes(32))  # codes the attacker knows
    mallory = record_for(known)
    server = OldServer(previous_release, url)
    try:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            wrong = {"account": "nobody", "code": code_set(label="x", count=1).codes[0]}
            old = {"Authorization": f"Bearer {old_key}"}
            for _ in range(12):  # enough for psycopg to prepare the key lookup on PostgreSQL
                assert client.post("/v1/verify", json=wrong, headers=old).status_code == 200
            env = {"SEALCODES_VERIFIER_DB": url}
            migrated = run_cli("verifier", "init", *CHEAP_INIT, env=env)
            assert migrated.returncode == 0 and "migrated from schema 2" in migrated.stdout, migrated.stderr
            pam_key = run_cli("verifier", "api-key", "create", "pam-hosts", "--scope", "verify",
                              env=env).stdout.strip()
            for token in (pam_key, old_key):
                answer = client.post("/v1/records", content=mallory.to_json().encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                assert answer.status_code == 503, answer.text
                assert client.post("/v1/verify", json={"account": "alice", "code": known.codes[0]},
                                   headers={"Authorization": f"Bearer {token}"}).status_code == 503
    finally:
        server.stop()
    status = run_cli("verifier", "status", "alice", "--json", env={"SEALCODES_VERIFIER_DB": url})
    assert '"epoch": 0' in status.stdout and '"epoch": 1' not in status.stdout
    # this release serves the migrated database: the PAM key verifies, and only verifies
    new = VerifierServer(url).start()
    try:
        with httpx.Client(base_url=new.base, headers={"Authorization": f"Bearer {pam_key}"}, timeout=30) as client:
            assert client.post("/v1/records", json=mallory.to_dict()).status_code == 403
            assert client.post("/v1/verify", json={"account": "alice", "code": alice.codes[0]}).json()["result"] \
                == "accepted"
    finally:
        assert "Traceback" not in new.stop()
