#!/usr/bin/env python3
"""`sealcodes generate` against bare client scripts, on the same virtual card, in one run.

Our token is served through pcscd + vpcd (`sealtoken serve --vpcd`); every figure is a whole
process as a user runs it (interpreter start-up, imports, PC/SC connect, the device work,
output), the median of alternating runs; a ratio is the median of per-round ratios, with its
interquartile range:

- ykoath: `sealcodes generate` vs a bare yubikit script (ykman's PC/SC device, OathSession,
  one CALCULATE) vs a floor script that imports only pyscard and sends SELECT + CALCULATE; the
  device found from the profile, and named with `--device READER` and `--device SERIAL`;
- the built-in emulator: `generate` with the device from the profile vs `--device emulator`;
- fido2 (PIN + hmac-secret): `sealcodes generate` vs a bare python-fido2 script (CtapPcscDevice,
  Ctap2, ClientPin PIN token, one hmac-secret assertion), and vs the same script doing the same
  device work as sealcodes (a silent assertion, signature checked, before the PIN is sent);
- APDUs and CTAP messages per run next to the minimum the protocol needs, counted by wrapping
  pyscard's SCardTransmit in a separate run of each;
- `sealcodes --help` vs `ykman --help`; and the earlier in-process figures (applet, FIDO2).

Needs pcscd with vsmartcard-vpcd (scripts/start-pcscd.sh) and the package installed with its
yubikey extra. Uses vpcd's second slot (port 35964, reader "Virtual PCD 00 01") and waits for
the test suite's lock on it.

    python benchmarks/bench_generate.py [--rounds N] [--port 35964]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PIN = "bench-pin-1"
LABEL = "bench.example/user"
LOCK_PATH = "/tmp/sealcodes-tests-vpcd.lock"

# what each protocol needs at the least for one response (PC/SC, card already in the reader)
MIN_YKOATH = "2 APDUs (SELECT OATH, CALCULATE)"
MIN_FIDO2 = ("5 APDUs / 4 CTAP messages (SELECT FIDO, getInfo, getKeyAgreement, getPinToken, "
             "getAssertion with hmac-secret), extended APDUs; sealcodes adds the pre-PIN proof: 6 / 5")

COUNTER = r'''
import atexit, collections, sys
from smartcard import scard
import smartcard.pcsc.PCSCCardConnection as _pcc
counts = collections.Counter()
state = {"chain": False, "command": None}
_real = scard.SCardTransmit
def _counting(card, protocol, apdu):
    counts["apdu"] += 1
    if len(apdu) > 5 and apdu[1] == 0x10:  # NFCCTAP_MSG: a CTAP request, maybe in chained fragments
        if not state["chain"]:
            state["command"] = apdu[7] if apdu[4] == 0 and len(apdu) > 7 else apdu[5]  # extended / short Lc
        state["chain"] = bool(apdu[0] & 0x10)
        if not state["chain"]:
            counts["ctap"] += 1
            counts["ctap_%02x" % state["command"]] += 1
    return _real(card, protocol, apdu)
scard.SCardTransmit = _counting
_pcc.SCardTransmit = _counting
_real_connect = scard.SCardConnect
def _connect(*args):
    counts["connect"] += 1
    return _real_connect(*args)
scard.SCardConnect = _connect
_pcc.SCardConnect = _connect
atexit.register(lambda: print("COUNTS " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())), file=sys.stderr))
if "-v" in sys.argv:
    sys.argv.remove("-v")
'''

BARE_YUBIKIT = '''
import sys
from ykman.pcsc import list_devices
from yubikit.core.smartcard import SmartCardConnection
from yubikit.oath import OathSession

device = list_devices(sys.argv[1])[0]
with device.open_connection(SmartCardConnection) as connection:
    response = OathSession(connection).calculate(b"sealcodes", bytes.fromhex(sys.argv[2]))
print(response.hex())
'''

FLOOR_PYSCARD = '''
import sys
from smartcard import scard

rv, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
rv, card, protocol = scard.SCardConnect(context, sys.argv[1], scard.SCARD_SHARE_SHARED,
                                        scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
aid = bytes.fromhex("a0000005272101")
scard.SCardTransmit(card, protocol, [0, 0xA4, 4, 0, len(aid)] + list(aid) + [0])
challenge = bytes.fromhex(sys.argv[2])
data = [0x71, 9] + list(b"sealcodes") + [0x74, len(challenge)] + list(challenge)
rv, response = scard.SCardTransmit(card, protocol, [0, 0xA2, 0, 0, len(data)] + data + [0])
print(bytes(response[3:-2]).hex())
scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
'''

BARE_FIDO2 = '''
import os, sys
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin
from fido2.pcsc import CtapPcscDevice

reader, pin, credential_id, salt = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4])
device = next(CtapPcscDevice.list_devices(reader))
ctap = Ctap2(device)
client_pin = ClientPin(ctap)
token = client_pin.get_pin_token(pin, ClientPin.PERMISSION.GET_ASSERTION, "sealcodes:")
protocol = client_pin.protocol
key_agreement, shared_secret = client_pin._get_shared_secret()
salt_enc = protocol.encrypt(shared_secret, salt)
client_data_hash = os.urandom(32)
assertion = ctap.get_assertion(
    "sealcodes:", client_data_hash, [{"type": "public-key", "id": credential_id}],
    extensions={"hmac-secret": {1: key_agreement, 2: salt_enc, 3: protocol.authenticate(shared_secret, salt_enc),
                                4: protocol.VERSION}},
    pin_uv_param=protocol.authenticate(token, client_data_hash), pin_uv_protocol=protocol.VERSION)
print(protocol.decrypt(shared_secret, assertion.auth_data.extensions["hmac-secret"]).hex())
'''

# the same device work as sealcodes: before any PIN, a silent (up=false) assertion proves the key
# holds the enrolled credential (its ES256 signature checked with the recorded public key)
BARE_FIDO2_PROVEN = BARE_FIDO2.replace(
    "client_pin = ClientPin(ctap)",
    """from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\\x04" + bytes.fromhex(sys.argv[5]))
proof_hash = os.urandom(32)
proof = ctap.get_assertion("sealcodes:", proof_hash, [{"type": "public-key", "id": credential_id}],
                           options={"up": False})
public.verify(proof.signature, bytes(proof.auth_data) + proof_hash, ec.ECDSA(hashes.SHA256()))
client_pin = ClientPin(ctap)""")


class Card:
    """`sealtoken serve --vpcd` on one vpcd port, holding the test suite's lock for that port."""

    def __init__(self, port, state):
        self.port, self.state = port, state
        self.reader = f"Virtual PCD 00 0{port - 35963}"
        self.lock = os.open(f"{LOCK_PATH}.{port}", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.process = subprocess.Popen([str(BIN / "sealtoken"), "serve", "--vpcd", f"127.0.0.1:{port}",
                                         "--state", state], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self._present():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise SystemExit(f"bench: the card did not appear in {self.reader}")
            time.sleep(0.05)

    def _present(self):
        from smartcard import scard

        rv, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        rv, card, _ = scard.SCardConnect(context, self.reader, scard.SCARD_SHARE_SHARED,
                                         scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if rv == 0:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(context)
        return rv == 0

    def close(self):
        self.process.terminate()
        self.process.wait()
        os.close(self.lock)


def _run(argv, stdin="", env=None):
    t0 = time.perf_counter()
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed: {result.stderr.strip()[-500:]}")
    return elapsed, result.stdout


def _counts(argv, stdin, workdir):
    """APDUs, CTAP messages and connects of one run, counted by wrapping pyscard in the process."""
    counter = Path(workdir) / "_bench_count.py"
    counter.write_text(COUNTER)
    code = ("import sys, runpy, _bench_count; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    env = dict(os.environ, PYTHONPATH=workdir)
    result = subprocess.run([sys.executable, "-c", code, *argv], input=stdin, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"bench: counting run of {argv[0]} failed: {result.stderr.strip()[-800:]}")
    line = next((x for x in result.stderr.splitlines() if x.startswith("COUNTS ")), "COUNTS")
    counts = dict(item.split("=") for item in line.split()[1:])
    return {k: int(v) for k, v in counts.items()}


def _sealcodes(*args):
    return [str(BIN / "sealcodes"), *args]


def _compile_installed():
    """Byte-compile sealcodes as `pip install` does (an editable checkout, or PYTHONDONTWRITEBYTECODE,
    would otherwise make it recompile its sources on every run, which the client libraries never do)."""
    import sealcodes

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.dirname(sealcodes.__file__)], env=env,
                   check=True, stdout=subprocess.DEVNULL)


def compare(args):
    from sealcodes import derivation

    _compile_installed()

    workdir = tempfile.mkdtemp(prefix="sealcodes-bench-")
    scripts = {}
    for name, text in (("bare_yubikit.py", BARE_YUBIKIT), ("floor_pyscard.py", FLOOR_PYSCARD),
                       ("bare_fido2.py", BARE_FIDO2), ("bare_fido2_proven.py", BARE_FIDO2_PROVEN)):
        scripts[name] = Path(workdir) / name
        scripts[name].write_text(textwrap.dedent(text))
    card = Card(args.port, os.path.join(workdir, "token"))
    try:
        reader = card.reader
        oath_profile, fido_profile = os.path.join(workdir, "oath.json"), os.path.join(workdir, "fido.json")
        _run(_sealcodes("--profile", oath_profile, "enroll", "--device", reader, "--backend", "ykoath", "--force"))
        _set_fido_pin(reader)
        _run(_sealcodes("--profile", fido_profile, "enroll", "--device", reader, "--backend", "fido2",
                        "--uv", "required"), stdin=PIN + "\n")
        ours_oath = _sealcodes("--profile", oath_profile, "generate", LABEL, "--json")
        ours_fido = _sealcodes("--profile", fido_profile, "generate", LABEL, "--json")
        first_oath = json.loads(_run(ours_oath)[1])
        serial = next(iter(json.load(open(oath_profile))["enrollments"].values()))["serial"]
        named_reader, named_serial = ours_oath + ["--device", reader], ours_oath + ["--device", serial]
        emu_profile = os.path.join(workdir, "emulator.json")
        emu_env = dict(os.environ, SEALCODES_EMULATOR_DIR=os.path.join(workdir, "emulator"))
        _run(_sealcodes("--profile", emu_profile, "enroll", "--device", "emulator", "--backend", "ykoath"),
             env=emu_env)
        ours_emu = _sealcodes("--profile", emu_profile, "generate", LABEL, "--json")
        named_emu = ours_emu + ["--device", "emulator"]
        first_emu = json.loads(_run(ours_emu, env=emu_env)[1])
        first_fido = json.loads(_run(ours_fido, PIN + "\n")[1])
        credential = json.load(open(fido_profile))["enrollments"]
        credential_id = next(iter(credential.values()))["credential_id"]
        from sealcodes.backends.fido2 import b64url_decode

        cred_hex = b64url_decode(credential_id).hex()
        from fido2 import cbor

        cose = cbor.decode(b64url_decode(next(iter(credential.values()))["public_key"]))
        point_hex = (cose[-2] + cose[-3]).hex()
        salt = derivation.challenge(LABEL, 0).hex()
        bare_oath = [sys.executable, str(scripts["bare_yubikit.py"]), reader, salt]
        floor_oath = [sys.executable, str(scripts["floor_pyscard.py"]), reader, salt]
        bare_fido = [sys.executable, str(scripts["bare_fido2.py"]), reader, PIN, cred_hex, salt]
        proven_fido = [sys.executable, str(scripts["bare_fido2_proven.py"]), reader, PIN, cred_hex, salt, point_hex]
        # the same device answers: the bare scripts' R gives the codes sealcodes showed
        for argv, first in ((bare_oath, first_oath), (floor_oath, first_oath), (bare_fido, first_fido),
                            (proven_fido, first_fido)):
            response = bytearray.fromhex(_run(argv)[1].strip())
            assert list(derivation.derive(response, LABEL, 0).codes) == first["codes"], argv[1]
        for argv, first, env in ((named_reader, first_oath, None), (named_serial, first_oath, None),
                                 (named_emu, first_emu, emu_env)):
            assert json.loads(_run(argv, env=env)[1]) == first, argv[-1]

        runs = {"ours_oath": (ours_oath, ""), "bare_oath": (bare_oath, ""), "floor_oath": (floor_oath, ""),
                "named_reader": (named_reader, ""), "named_serial": (named_serial, ""),
                "ours_emu": (ours_emu, ""), "named_emu": (named_emu, ""),
                "ours_fido": (ours_fido, PIN + "\n"), "bare_fido": (bare_fido, ""),
                "proven_fido": (proven_fido, ""),
                "python": ([sys.executable, "-c", "pass"], ""),
                "startup": ([sys.executable, "-c", STARTUP_IMPORTS], "")}
        times = {name: [] for name in runs}
        names = list(runs)
        for round_number in range(args.rounds):
            # alternating, so drift hits every contender alike; the order turns each round, so no
            # contender always runs right after the same other one (sealcodes resets the card on
            # close after a PIN, which the next process could feel)
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                argv, stdin = runs[name]
                times[name].append(_run(argv, stdin, emu_env if name in EMULATOR_RUNS else None)[0])
        med = {name: statistics.median(values) * 1000 for name, values in times.items()}
        counts = {}
        for name, (argv, stdin) in runs.items():
            if name in ("python", "startup") or name in EMULATOR_RUNS:
                continue
            counts[name] = _counts(argv[1:] if argv[0] == sys.executable else argv, stdin, workdir)
    finally:
        card.close()

    def paired_ratio(name, base):
        """The median of per-round ratios, with its interquartile range: each round ran both
        back to back, so a slow spell of the machine hits both sides of a ratio alike."""
        ratios = sorted(a / b for a, b in zip(times[name], times[base]))
        q1, q2, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        return f"{q2:5.2f}x (IQR {q1:.2f}-{q3:.2f})"

    def row(label, name, base=None, minimum=""):
        c = counts[name]
        ratio = paired_ratio(name, base) if base else " " * 22
        msgs = f"{c.get('apdu', 0):3d} APDUs {c.get('ctap', 0):2d} CTAP {c.get('connect', 0)} connect"
        if args.verbose:
            msgs += "  " + " ".join(f"{k}={v}" for k, v in sorted(c.items()) if k.startswith("ctap_"))
        print(f"  {label:<38} {med[name]:8.1f} ms  {ratio}  {msgs}  {minimum}")

    print(f"whole process, median of {args.rounds} alternating runs, reader {reader!r} (pcscd + vpcd, our token);")
    print("ratios: median of the per-round ratios (interquartile range)")
    print("ykoath (one OATH CALCULATE):")
    row("bare yubikit script", "bare_oath")
    row("sealcodes generate", "ours_oath", "bare_oath")
    row("sealcodes generate --device READER", "named_reader", "bare_oath")
    row("sealcodes generate --device SERIAL", "named_serial", "bare_oath")
    row("--device READER vs profile path", "named_reader", "ours_oath")
    row("--device SERIAL vs profile path", "named_serial", "ours_oath")
    row("floor: pyscard only, SELECT+CALCULATE", "floor_oath", "bare_oath", f"protocol minimum: {MIN_YKOATH}")
    print("built-in emulator, ykoath (no PC/SC):")
    for label, name, base in (("sealcodes generate", "ours_emu", None),
                              ("sealcodes generate --device emulator", "named_emu", "ours_emu")):
        ratio = paired_ratio(name, base) if base else " " * 22
        print(f"  {label:<38} {med[name]:8.1f} ms  {ratio}")
    print("fido2 (PIN token + one hmac-secret assertion):")
    row("bare python-fido2 script", "bare_fido")
    row("sealcodes generate", "ours_fido", "bare_fido", f"protocol minimum: {MIN_FIDO2}")
    row("bare script + pre-PIN proof", "proven_fido")
    row("sealcodes generate vs that", "ours_fido", "proven_fido", "(the same device work: sealcodes proves the "
        "key holds the credential before sending a PIN)")
    startup = med["startup"] - med["python"]
    reference = med["bare_fido"] + startup
    print(f"  {'reference: bare script + CLI start-up':<34} {reference:8.1f} ms  "
          f"{med['ours_fido'] / reference:5.2f}x {'':16} (sealcodes' own start-up, no device: {startup:.1f} ms over "
          f"the interpreter's {med['python']:.1f} ms)")


EMULATOR_RUNS = ("ours_emu", "named_emu")

# what `generate` loads before it talks to a device: click, the CLI command, the library, PC/SC
STARTUP_IMPORTS = "import sealcodes._cli, sealcodes._cli.codeset, sealcodes.pcsc"


def _set_fido_pin(reader):
    from fido2.ctap2 import Ctap2
    from fido2.ctap2.pin import ClientPin
    from fido2.pcsc import CtapPcscDevice

    device = next(CtapPcscDevice.list_devices(reader))
    ClientPin(Ctap2(device)).set_pin(PIN)
    device.close()


def startup_floor(rounds=9):
    """What any sealcodes command costs before it touches a device: the interpreter, click and the
    library (the code a bare client script does not have), next to the interpreter alone."""
    cases = {"python -c pass": [sys.executable, "-c", "pass"],
             "import click": [sys.executable, "-c", "import click"],
             "import sealcodes CLI + library": [sys.executable, "-c",
                                                STARTUP_IMPORTS]}
    times = {k: [] for k in cases}
    for _ in range(rounds):
        for name, argv in cases.items():
            times[name].append(_run(argv)[0])
    print("start-up without a device (median of %d):" % rounds)
    for name, values in times.items():
        print(f"  {name:<34} {statistics.median(values) * 1000:8.1f} ms")


def help_times(rounds=7):
    out = {}
    for name, argv in (("sealcodes", [str(BIN / "sealcodes"), "--help"]), ("ykman", [str(BIN / "ykman"), "--help"])):
        if Path(argv[0]).exists():
            out[name] = statistics.median(_run(argv)[0] for _ in range(rounds)) * 1000
    line = f"sealcodes --help start-up: {out['sealcodes']:7.1f} ms (median of {rounds})"
    if "ykman" in out:
        line += f", ykman --help {out['ykman']:7.1f} ms, ratio {out['sealcodes'] / out['ykman']:4.2f}x"
    print(line)


def in_process(rounds):
    """The earlier figures: the applet and FIDO2 backends in process vs through pcscd + vpcd."""
    from sealboard.emulator import EmulatedToken

    from sealcodes import derivation
    from sealcodes.backends.applet import AppletBackend
    from sealcodes.backends.base import Interaction
    from sealcodes.enrollment import AppletOptions
    from sealcodes.records import Enrollment

    class _Pin(Interaction):
        def request_pin(self, purpose, new=False):
            return PIN

    slot1 = Enrollment(backend="applet", slot=1)
    state = tempfile.mkdtemp(prefix="sealcodes-bench-inproc-")
    with EmulatedToken(state) as token:
        with token.connect() as conn:
            AppletBackend(conn).enroll(_Pin(), AppletOptions(slot=1))
        local = []
        for _ in range(rounds):
            with token.connect() as conn:
                t0 = time.perf_counter()
                response = AppletBackend(conn).respond(derivation.challenge(LABEL, 0), slot1, _Pin())
                codes = derivation.derive(response, LABEL, 0)
                local.append(time.perf_counter() - t0)
                local_apdus = conn.apdu_count
    print(f"applet generate in process: {statistics.median(local) * 1000:7.2f} ms (median of {rounds}), "
          f"{local_apdus} APDUs (SELECT, VERIFY, DERIVE)")
    return codes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--port", type=int, default=35964, choices=(35963, 35964))
    parser.add_argument("-v", "--verbose", action="store_true", help="CTAP messages by command byte")
    args = parser.parse_args()
    compare(args)
    startup_floor()
    help_times()
    in_process(max(args.rounds, 5))


if __name__ == "__main__":
    main()
