"""`--device D` for a set in the profile opens that device directly: a reader name, the set's serial
or `emulator` costs what the recorded path costs (one connect, the same APDUs), with nothing listed
or probed and no device discovery loaded. Through pcscd + vpcd with our token; the figures are in
benchmarks/bench_generate.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from _support import run_cli

PIN = "named-pin-1"
LABEL = "named.example/alice"

# the installed CLI's entry point with pyscard's connects and APDUs counted; prints what it loaded
_COUNTED = """
import atexit, collections, json, sys
counts = collections.Counter()
try:
    from smartcard import scard
except ImportError:
    scard = None
if scard is not None:
    for name in ("SCardConnect", "SCardTransmit", "SCardListReaders"):
        def counting(*args, _real=getattr(scard, name), _name=name):
            counts[_name] += 1
            return _real(*args)
        setattr(scard, name, counting)
atexit.register(lambda: sys.stderr.write("COUNTED " + json.dumps(
    {"counts": counts, "modules": sorted(m for m in sys.modules if m.startswith("sealcodes.devices"))}) + "\\n"))
from sealcodes._cli import main
sys.argv = ["sealcodes"] + sys.argv[1:]
main()
"""


def _counted(*args, stdin=PIN + "\n"):
    result = subprocess.run([sys.executable, "-c", _COUNTED, *args], input=stdin, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stderr.splitlines() if x.startswith("COUNTED "))
    found = json.loads(line[len("COUNTED "):])
    return json.loads(result.stdout)["codes"], found["counts"], set(found["modules"])


@pytest.mark.pcsc
@pytest.mark.parametrize("backend", ["applet", "ykoath"])
def test_a_named_reader_or_serial_costs_what_the_profile_path_costs(vpcd_token, isolated_dirs, backend):
    reader = vpcd_token.reader
    enrolled = run_cli("enroll", "--device", reader, "--backend", backend, input=PIN + "\n")
    assert enrolled.returncode == 0, enrolled.stderr
    first = run_cli("generate", LABEL, "--json", input=PIN + "\n")
    assert first.returncode == 0, first.stderr
    (meta,) = json.loads((isolated_dirs / "config" / "sealcodes" / "profile.json").read_text())["enrollments"].values()
    codes, recorded, modules = _counted("generate", LABEL, "--json")
    assert codes == json.loads(first.stdout)["codes"]
    assert recorded["SCardConnect"] == 1 and "sealcodes.devices.discovery" not in modules
    for spec in (reader, meta["serial"]):
        named_codes, named, modules = _counted("generate", LABEL, "--json", "--device", spec)
        assert named_codes == codes
        assert "sealcodes.devices.discovery" not in modules, spec  # nothing listed or probed
        assert named["SCardConnect"] == 1 and named["SCardTransmit"] == recorded["SCardTransmit"], (spec, named)
        assert named.get("SCardListReaders", 0) <= recorded.get("SCardListReaders", 0), (spec, named)


@pytest.mark.pcsc
def test_a_named_reader_that_holds_another_card_is_refused_before_any_pin(two_tokens, isolated_dirs):
    """A reader named directly is still proven first: another token there is refused, no PIN tried."""
    mine, other = two_tokens
    assert run_cli("enroll", "--device", mine.reader, input=PIN + "\n").returncode == 0
    assert run_cli("generate", LABEL, "--json", input=PIN + "\n").returncode == 0
    assert run_cli("--profile", str(isolated_dirs / "other.json"), "enroll", "--device", other.reader,
                   input=PIN + "\n").returncode == 0
    result = run_cli("generate", LABEL, "--device", other.reader, input="")  # no PIN on stdin
    assert result.returncode == 1
    assert "is not the one this set belongs to" in result.stderr and "no PIN was tried" in result.stderr


def test_emulator_named_costs_no_discovery(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    first = run_cli("generate", LABEL, "--json", input=PIN + "\n")
    codes, _, modules = _counted("generate", LABEL, "--json", "--device", "emulator")
    assert codes == json.loads(first.stdout)["codes"]
    assert "sealcodes.devices.discovery" not in modules
    refused = run_cli("generate", LABEL, "--device", "Some Reader 00 00", input=PIN + "\n")
    assert refused.returncode == 1 and "belongs to the emulator" in refused.stderr
