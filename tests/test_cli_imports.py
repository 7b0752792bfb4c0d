"""The CLI loads only what a command needs: `generate` on a smartcard application imports neither
the verifier, batch and keyring code nor the client libraries (yubikit, python-fido2, cryptography)
it does not use. Start-up is most of what a `generate` costs (benchmarks/bench_generate.py)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from _support import run_cli

PIN = "4711-pin"
LABEL = "imports.example/alice"

# runs the installed CLI's entry point, then prints the modules it loaded (one JSON line on stderr)
_WITH_MODULES = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write("MODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
from sealcodes._cli import main
sys.argv = ["sealcodes"] + sys.argv[1:]
main()
"""

# (logging: sealcodes.log; sealcodes.enrollment: to enroll only; discovery: to list or name devices)
NOT_FOR_GENERATE = ("sealcodes.verifier", "sealcodes._cli.verifier", "sealcodes.batch", "sealcodes._cli.batch",
                    "sealcodes.keyring", "sealcodes._cli.keyring", "sealcodes.sheet", "fido2", "cryptography",
                    "argon2", "filelock", "sealcodes.enrollment", "sealcodes.devices.discovery", "logging")


def _modules_of(*args, stdin=""):
    result = subprocess.run([sys.executable, "-c", _WITH_MODULES, *args], input=stdin, capture_output=True,
                            text=True, timeout=120)
    line = next(x for x in result.stderr.splitlines() if x.startswith("MODULES "))
    assert result.returncode == 0, result.stderr
    return set(json.loads(line[len("MODULES "):])), result.stdout


def _loaded(modules, prefix):
    return sorted(m for m in modules if m == prefix or m.startswith(prefix + "."))


def test_every_command_is_registered_by_its_module():
    from sealcodes import _cli

    defined = {}
    for module_name in set(_cli.COMMAND_MODULES.values()):
        for command in importlib.import_module(f"sealcodes._cli.{module_name}").COMMANDS:
            defined[command.name] = module_name
    assert defined == _cli.COMMAND_MODULES


def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    from sealcodes._cli import COMMAND_MODULES

    for name in COMMAND_MODULES:
        assert f"\n  {name} " in result.stdout


@pytest.mark.pcsc
def test_generate_on_the_applet_loads_no_client_library(vpcd_token, isolated_dirs):
    assert run_cli("enroll", "--device", vpcd_token.reader, input=PIN + "\n").returncode == 0
    first = run_cli("generate", LABEL, "--json", "--no-confirm", input=PIN + "\n")
    assert first.returncode == 0, first.stderr
    modules, out = _modules_of("generate", LABEL, "--json", stdin=PIN + "\n")
    assert json.loads(out)["codes"] == json.loads(first.stdout)["codes"]
    for prefix in NOT_FOR_GENERATE + ("yubikit", "ykman"):
        assert not _loaded(modules, prefix), prefix


@pytest.mark.pcsc
def test_generate_on_ykoath_needs_no_yubikit(vpcd_token, isolated_dirs):
    """SELECT + CALCULATE go through sealcodes' APDU layer; yubikit is for enrollment only."""
    result = run_cli("enroll", "--device", vpcd_token.reader, "--backend", "ykoath")
    assert result.returncode == 0, result.stderr
    first = run_cli("generate", LABEL, "--json", "--no-confirm")
    assert first.returncode == 0, first.stderr
    modules, out = _modules_of("generate", LABEL, "--json")
    assert json.loads(out)["codes"] == json.loads(first.stdout)["codes"]
    for prefix in NOT_FOR_GENERATE + ("yubikit", "ykman"):
        assert not _loaded(modules, prefix), prefix
    assert "sealcodes.backends.ykoath" in modules


@pytest.mark.pcsc
def test_generate_on_fido2_over_pcsc_needs_no_webauthn_layer(vpcd_token, isolated_dirs):
    """getInfo, clientPin and getAssertion go through the backend's own NFCCTAP requests
    (nfcctap.py): python-fido2's Ctap2 and WebAuthn layer stay unloaded; its CBOR codec is used."""
    from fido2.ctap2 import Ctap2
    from fido2.ctap2.pin import ClientPin

    from sealcodes.pcsc import PcscConnection

    with PcscConnection(vpcd_token.reader) as conn:
        ClientPin(Ctap2(conn.ctap_device())).set_pin(PIN)
    result = run_cli("enroll", "--device", vpcd_token.reader, "--backend", "fido2", input=PIN + "\n")
    assert result.returncode == 0, result.stderr
    first = run_cli("generate", LABEL, "--json", "--no-confirm", input=PIN + "\n")
    assert first.returncode == 0, first.stderr
    modules, out = _modules_of("generate", LABEL, "--json", stdin=PIN + "\n")
    assert json.loads(out)["codes"] == json.loads(first.stdout)["codes"]
    for prefix in ("fido2.ctap2", "fido2.webauthn", "fido2.client", "fido2.pcsc", "yubikit", "sealcodes.verifier",
                   "sealcodes.keyring", "sealcodes.enrollment", "logging"):
        assert not _loaded(modules, prefix), prefix
    assert "sealcodes.backends.fido2.nfcctap" in modules
    # a wrong PIN is told as such, with the tries left, and costs one try
    wrong = run_cli("generate", LABEL, "--json", input="not-the-pin\n")
    assert wrong.returncode == 1 and "wrong FIDO2 PIN (7 attempts left)" in wrong.stderr, wrong.stderr
