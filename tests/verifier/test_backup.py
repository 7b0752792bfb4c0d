"""Backup and restore of a verifier database, as docs/verifier.md ("Backup and restore") tells an
operator to do them, as round trips: SQLite with the sqlite3 shell's `.backup` taken while
`verifier serve` runs, PostgreSQL with pg_dump / pg_restore. After a restore the verifier works
with the same pepper file, a code spent before the backup stays spent, and, as the docs warn, a
code spent after the backup is accepted again (until its set is revoked or rotated)."""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import psycopg

from _support import run_cli
from _vsupport import CHEAP_INIT, VerifierServer, code_set, record_for


def _setup(url, tmp_path):
    """An initialised database with a pepper and alice's set of 4 codes; the CLI's env."""
    pepper = tmp_path / "pepper"
    assert run_cli("verifier", "--db", url, "init", *CHEAP_INIT, "--delay-base", "0",
                   "--create-pepper", str(pepper)).returncode == 0
    env = {"SEALCODES_VERIFIER_DB": url, "SEALCODES_VERIFIER_PEPPER_FILE": str(pepper)}
    codes = code_set(count=4)
    assert run_cli("verifier", "import", "-", input=record_for(codes).to_json(), env=env).returncode == 0
    return env, codes.codes


def _verify(env, code):
    return run_cli("verifier", "verify", "alice", input=code + "\n", env=env).returncode


def _after_restore(env, codes):
    """codes[0] was spent before the backup, codes[1] after it, codes[2] and [3] never."""
    assert _verify(env, codes[0]) == 1  # spent before the backup: stays spent
    assert _verify(env, codes[1]) == 0  # spent after the backup: accepted again (the docs' warning)
    assert _verify(env, codes[2]) == 0
    # the remedy the docs give: revoke the sets used since the backup
    assert run_cli("verifier", "revoke", "alice", "--yes", env=env).returncode == 0
    assert _verify(env, codes[3]) == 1
    no_pepper = run_cli("verifier", "verify", "alice", input=codes[3] + "\n",
                        env={"SEALCODES_VERIFIER_DB": env["SEALCODES_VERIFIER_DB"]})
    assert no_pepper.returncode == 1 and "pepper" in no_pepper.stderr


def test_sqlite_backup_while_serving_and_restore(tmp_path):
    path = tmp_path / "verifier.db"
    url = "sqlite:///" + str(path)
    env, codes = _setup(url, tmp_path)
    key = run_cli("verifier", "api-key", "create", "pam", env=env).stdout.strip()
    server = VerifierServer(url, env={"SEALCODES_VERIFIER_PEPPER_FILE": env["SEALCODES_VERIFIER_PEPPER_FILE"]})
    server.start()
    try:
        headers = {"Authorization": f"Bearer {key}"}

        def verify(code):
            return httpx.post(server.base + "/v1/verify", json={"account": "alice", "code": code},
                              headers=headers).json()["result"]

        assert verify(codes[0]) == "accepted"
        backup = tmp_path / "backup.db"
        subprocess.run(["sqlite3", str(path), f".backup '{backup}'"], check=True, timeout=60)
        assert verify(codes[1]) == "accepted"
    finally:
        assert "Traceback" not in server.stop()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.unlink(str(path) + suffix)
    shutil.copy(backup, path)
    _after_restore(env, codes)


def test_postgresql_pg_dump_and_pg_restore(postgres, tmp_path):
    with psycopg.connect(postgres.url(), autocommit=True) as connection:
        connection.execute("CREATE DATABASE backup_source")
        connection.execute("CREATE DATABASE backup_restored")
    url = postgres.url().replace("/postgres?", "/backup_source?")
    env, codes = _setup(url, tmp_path)
    assert _verify(env, codes[0]) == 0
    dump = tmp_path / "verifier.dump"
    tools = {"host": postgres.base, "user": "postgres"}
    subprocess.run([os.path.join(postgres.bin, "pg_dump"), "-h", tools["host"], "-U", tools["user"], "-Fc",
                    "-f", str(dump), "backup_source"], check=True, timeout=60)
    assert _verify(env, codes[1]) == 0
    subprocess.run([os.path.join(postgres.bin, "pg_restore"), "-h", tools["host"], "-U", tools["user"],
                    "--exit-on-error", "-d", "backup_restored", str(dump)], check=True, timeout=60)
    restored = {**env, "SEALCODES_VERIFIER_DB": postgres.url().replace("/postgres?", "/backup_restored?")}
    status = run_cli("verifier", "status", "alice", env=restored)
    assert status.returncode == 0 and "3 of 4 codes left" in status.stdout
    _after_restore(restored, codes)
    assert _verify(env, codes[2]) == 0  # the source database went on by itself
