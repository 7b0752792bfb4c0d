"""docs/security.md item 7/9 for keyrings and sheets: a session (enroll, keyring create, generate --keyring, sheet
as text and PDF, recover --keyring-file; keyring remove, which re-seeds) under strace writes only the
profile and the emulator's flash, and neither holds a code, the PIN, a member's answer, a share or a
set seed (S, and S' after a removal)."""

from __future__ import annotations

import json
import os
import subprocess

from sealcodes import keyring as kr
from sealcodes.records import Enrollment
from _support import console_script, profile_and_emulator_only

PIN = "kr-s3cret-PIN-42"
LABEL = "mail.example/dave"


class _Traced:
    """The installed `sealcodes` under strace, one log per run; what each run opened for writing."""

    def __init__(self, tmp_path):
        self.trace_dir = tmp_path / "traces"
        self.trace_dir.mkdir()
        self.cwd = tmp_path / "tmp"
        self.cwd.mkdir()
        self.env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(self.cwd))

    def __call__(self, name, *args, stdin=f"{PIN}\n{PIN}\n"):
        result = subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=open,openat,creat", "-o", str(self.trace_dir / f"{name}.log"),
             console_script("sealcodes"), *args], input=stdin.encode(), capture_output=True, env=self.env,
            timeout=180, cwd=self.cwd)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def check_writes(self, isolated_dirs):
        """Only the profile's and the emulator's directories were written; returns both."""
        dirs = profile_and_emulator_only(self.trace_dir, isolated_dirs)
        assert os.listdir(self.cwd) == []
        return dirs


def _keyring_secrets(document: str, emulator: str) -> set:
    """The members' answers, their shares and the seed of a keyring of applet slots, computed here
    from the emulated token, as bytes and as hex."""
    from sealboard.emulator import EmulatedToken
    from sealcodes.backends.applet import AppletBackend
    from sealcodes.backends.base import Interaction

    class _Pin(Interaction):
        def request_pin(self, purpose, new=False):
            return PIN

    keyring = kr.from_json(document)
    with EmulatedToken(emulator) as token, token.connect() as conn:
        backend = AppletBackend(conn)
        answers = {m.member_id: backend.respond(kr.member_challenge(keyring.keyring_id, m.member_id),
                                                Enrollment(backend="applet", slot=m.device["slot"]), _Pin()) for m in keyring.members}
    shares = {m: kr.open_member(keyring, keyring.member(m), a) for m, a in answers.items()}
    seed = kr.recover_seed(keyring, dict(list(shares.items())[:keyring.threshold]))
    secrets = set()
    for value in [seed, *answers.values(), *shares.values()]:
        secrets |= {bytes(value), bytes(value).hex().encode()}
    return secrets


def _code_secrets(codes) -> set:
    secrets = set()
    for code in codes["codes"]:
        compact = code.replace("-", "")
        secrets |= {code.encode(), compact.encode(), compact.lower().encode()}
    return secrets


def _assert_nothing_holds(secrets, directories, extra=None):
    files = [os.path.join(root, f) for d in directories for root, _, fs in os.walk(d) for f in fs]
    contents = {path: open(path, "rb").read() for path in files}
    contents.update(extra or {})
    for path, data in contents.items():
        for secret in secrets:
            assert secret not in data, f"a secret reached {path}"


def test_keyring_session_writes_no_secret(tmp_path, isolated_dirs):
    run = _Traced(tmp_path)
    run("enroll1", "enroll", "--device", "emulator", "--slot", "1")
    run("enroll2", "enroll", "--device", "emulator", "--slot", "2")
    profile_path = isolated_dirs / "config" / "sealcodes" / "profile.json"
    ids = sorted(json.loads(profile_path.read_text())["enrollments"])
    run("create", "keyring", "create", "home", "--device", ids[0], "--device", ids[1], "--threshold", "2")
    codes = json.loads(run("generate", "generate", LABEL, "--keyring", "home", "--json"))
    run("sheet", "sheet", LABEL)
    assert run("sheetpdf", "sheet", LABEL, "--pdf").startswith(b"%PDF")
    exported = tmp_path / "home.json"
    exported.write_bytes(run("export", "keyring", "export", "home", stdin=""))
    profile_bytes = profile_path.read_bytes()  # checked below with every other file
    os.unlink(profile_path)
    run("recover", "recover", LABEL, "--fingerprint", codes["fingerprint"], "--keyring-file", str(exported))
    config, emulator = run.check_writes(isolated_dirs)
    assert b'"keyrings"' in profile_bytes
    secrets = _keyring_secrets(exported.read_text(), emulator) | _code_secrets(codes) | {PIN.encode()}
    _assert_nothing_holds(secrets, (config, emulator), {"profile.json (before recover)": profile_bytes})


def test_keyring_removal_writes_no_secret(tmp_path, isolated_dirs):
    """The removal opens S, draws S', asks every member left twice and rotates the set: none of it
    (nor the new codes) reaches a file; only the profile and the emulator's flash are written."""
    run = _Traced(tmp_path)
    for slot in ("1", "2", "3"):
        run(f"enroll{slot}", "enroll", "--device", "emulator", "--slot", slot)
    profile_path = isolated_dirs / "config" / "sealcodes" / "profile.json"
    ids = sorted(json.loads(profile_path.read_text())["enrollments"])
    run("create", "keyring", "create", "home", *(a for i in ids for a in ("--device", i)), "--threshold", "2",
        stdin=f"{PIN}\n" * 3)
    old_codes = json.loads(run("generate", "generate", LABEL, "--keyring", "home", "--json"))
    old = run("export-old", "keyring", "export", "home", stdin="").decode()
    new_codes = json.loads(run("remove", "keyring", "remove", "home", "3", "--yes", "--json", stdin=f"{PIN}\n" * 3))
    assert new_codes["epoch"] == 1
    new = run("export-new", "keyring", "export", "home", stdin="").decode()
    config, emulator = run.check_writes(isolated_dirs)
    secrets = (_keyring_secrets(old, emulator) | _keyring_secrets(new, emulator) | _code_secrets(old_codes)
               | _code_secrets(new_codes) | {PIN.encode()})
    _assert_nothing_holds(secrets, (config, emulator))
