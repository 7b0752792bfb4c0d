"""docs/security.md items 7, 8, 20: a whole session writes no code, response or PIN to any file, works with no network.

The commands run under strace; every file they open for writing must be one the
tool is allowed to write (profile, its lock and temp file, the emulator's flash),
and none of them may contain a code (any spelling), the PIN, or the device response.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from _support import console_script, profile_and_emulator_only

PIN = "s3cret-PIN-771"
LABEL = "mail.example/carol"


def _spellings(code):
    compact = code.replace("-", "").replace(" ", "")
    return {code, compact, compact.lower()}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is installed by scripts/setup.sh --test")
def test_session_writes_no_secret(tmp_path, isolated_dirs):
    trace_dir = tmp_path / "traces"
    trace_dir.mkdir()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    outputs = []

    def run(name, *args):
        log = trace_dir / f"{name}.log"
        result = subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=open,openat,creat", "-o", str(log), console_script("sealcodes"),
             *args], input=PIN + "\n", capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
        return result

    run("enroll", "enroll", "--device", "emulator")
    first = json.loads(run("generate", "generate", LABEL, "--json").stdout)
    rotated = json.loads(run("rotate", "rotate", LABEL, "--json").stdout)
    run("recover", "recover", LABEL, "--fingerprint", first["fingerprint"], "--device", "emulator")

    config, emulator = profile_and_emulator_only(trace_dir, isolated_dirs)

    secrets = {PIN, PIN.encode().hex()}
    for code in first["codes"] + rotated["codes"]:
        secrets |= _spellings(code)
    files = [os.path.join(root, f) for d in (config, emulator) for root, _, fs in os.walk(d) for f in fs]
    assert files, "the session wrote no profile?"
    for path in files:
        data = open(path, "rb").read()
        for secret in secrets:
            assert secret.encode() not in data, f"a secret reached {path}"

    # the device responses: ask the emulated token directly, then look for them in every file
    from sealboard.emulator import EmulatedToken
    from sealcodes.backends.applet import AppletBackend
    from sealcodes.backends.base import Interaction
    from sealcodes.derivation import challenge
    from sealcodes.records import Enrollment

    class _Pin(Interaction):
        def request_pin(self, purpose, new=False):
            return PIN

    os.environ["SEALCODES_EMULATOR_DIR"] = emulator
    try:
        with EmulatedToken(emulator) as token, token.connect() as conn:
            backend = AppletBackend(conn)
            responses = [backend.respond(challenge(LABEL, e), Enrollment(backend="applet", slot=1), _Pin()) for e in (0, 1)]
    finally:
        del os.environ["SEALCODES_EMULATOR_DIR"]
    for path in files:
        data = open(path, "rb").read()
        for r in responses:
            assert bytes(r) not in data and r.hex().encode() not in data


def test_core_dumps_disabled_in_cli():
    code = "import resource, sealcodes._cli as c, sealcodes.memory as m; m.disable_core_dumps(); " \
           "print(resource.getrlimit(resource.RLIMIT_CORE))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "(0, 0)"


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="unshare -n needs root")
def test_works_without_network():
    result = subprocess.run(["unshare", "-n", console_script("sealcodes"), "demo"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "same codes: yes" in result.stdout
