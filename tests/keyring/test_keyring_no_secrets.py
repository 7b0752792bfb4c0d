"""docs/security.md item 7/9 for keyrings and sheets: a session (enroll, keyring create, generate --keyring, sheet
as text and PDF, recover --keyring-file) under strace writes only the profile and the emulator's
flash, and neither holds a code, the PIN, a member's answer, a share or the set seed S."""

from __future__ import annotations

import json
import os
import re
import subprocess

from sealcodes import keyring as kr
from sealcodes.records import Enrollment
from _support import console_script

PIN = "kr-s3cret-PIN-42"
LABEL = "mail.example/dave"
WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")
OPEN_RE = re.compile(r'open(?:at)?\((?:[^,]+, )?"([^"]+)", ([^)]*)\)\s+=\s+(-?\d+)')


def test_keyring_session_writes_no_secret(tmp_path, isolated_dirs):
    trace_dir = tmp_path / "traces"
    trace_dir.mkdir()
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(tmp_path / "tmp"))

    def run(name, *args, stdin=f"{PIN}\n{PIN}\n"):
        result = subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=open,openat,creat", "-o", str(trace_dir / f"{name}.log"),
             console_script("sealcodes"), *args], input=stdin.encode(), capture_output=True, env=env,
            timeout=180, cwd=tmp_path / "tmp")
        assert result.returncode == 0, result.stderr
        return result.stdout

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

    written = set()
    for log in trace_dir.iterdir():
        for match in OPEN_RE.finditer(log.read_text(errors="replace")):
            path, flags, fd = match.groups()
            if int(fd) >= 0 and WRITE_FLAGS.search(flags):
                written.add(os.path.realpath(path))
    config = os.path.realpath(isolated_dirs / "config" / "sealcodes")
    emulator = os.path.realpath(isolated_dirs / "data" / "sealcodes" / "emulator")
    unexpected = sorted(p for p in written if not p.startswith((config + os.sep, emulator + os.sep))
                        and p not in ("/dev/null", "/dev/tty"))
    assert unexpected == [], f"files written outside the profile and emulator dirs: {unexpected}"
    assert os.listdir(tmp_path / "tmp") == []

    # the members' answers, their shares and S, computed here from the emulated token
    from sealboard.emulator import EmulatedToken
    from sealcodes.backends.applet import AppletBackend
    from sealcodes.backends.base import Interaction

    class _Pin(Interaction):
        def request_pin(self, purpose, new=False):
            return PIN

    keyring = kr.from_json(exported.read_text())
    with EmulatedToken(emulator) as token, token.connect() as conn:
        backend = AppletBackend(conn)
        answers = {m.member_id: backend.respond(kr.member_challenge(keyring.keyring_id, m.member_id),
                                                Enrollment(backend="applet", slot=m.device["slot"]), _Pin()) for m in keyring.members}
    shares = {m: kr.open_member(keyring, keyring.member(m), a) for m, a in answers.items()}
    seed = kr.recover_seed(keyring, shares)
    secrets = {PIN.encode(), bytes(seed), bytes(seed).hex().encode()}
    for value in list(answers.values()) + list(shares.values()):
        secrets |= {bytes(value), bytes(value).hex().encode()}
    for code in codes["codes"]:
        compact = code.replace("-", "")
        secrets |= {code.encode(), compact.encode(), compact.lower().encode()}
    files = [os.path.join(root, f) for d in (config, emulator) for root, _, fs in os.walk(d) for f in fs]
    contents = {path: open(path, "rb").read() for path in files}
    contents["profile.json (before recover)"] = profile_bytes
    assert b'"keyrings"' in profile_bytes
    for path, data in contents.items():
        for secret in secrets:
            assert secret not in data, f"a secret reached {path}"
