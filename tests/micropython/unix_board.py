"""The token as a board runs it, on the MicroPython unix port (not a pytest module).

    micropython -X heapsize=BYTES unix_board.py FIRMWARE_DIR FLASH_FILE
    micropython -X heapsize=BYTES -m unix_board FIRMWARE_DIR FLASH_FILE   (compiled, from sys.path)

FIRMWARE_DIR holds the sealtoken package (.mpy as a board loads it, or .py), or is "-" when the
package is frozen into the interpreter. The token gets what a board gives it:

- flash in FLASH_FILE (made, erased, when missing), outside the heap as a board's flash is: NOR
  rules (a page erases to 0xFF, a write only clears bits and is refused when it would set one),
  never mirrored in RAM (a read or write holds only the bytes it moves);
- crypto from sealtoken.crypto, all of it pure Python (as on a stock Pico), randomness from
  os.urandom, the clock from time.ticks_ms, user presence granted at once (a touch);
- nothing else in the heap: no test code runs here. The client (tests/_unix_board.py) sends
  requests over stdin and reads the answers on stdout.

Frames, both ways: one kind byte, a 4-byte big-endian length, the payload. Requests:
  A apdu       -> the card's response (data || SW1 SW2)
  H report     -> the CTAPHID input reports it caused, each 64 bytes, concatenated
  M            -> 8 bytes: heap in use after a collection, heap size (gc.mem_alloc, + gc.mem_free)
  F n(4)       -> empty; every following A or H request runs with only about n bytes of heap
                  free (the rest held by ballast while it runs), until F 0: how small a heap
                  an operation of several requests runs in
  P            -> the ATR; the token is powered off and on (USB reset, card removed)
  Q            -> empty; the process ends
Every answer's kind byte is "K", or "E" with the exception's text when the request itself failed
outside the token. Answers to A and H carry the microseconds the token took first (4 bytes).
"""

import gc
import os
import sys
import time

_PAGE_BUFFER = 256
_ERASED = b"\xff" * _PAGE_BUFFER


def _setup_path(firmware):
    if firmware != "-":
        sys.path.insert(0, firmware)


_setup_path(sys.argv[1])

from sealtoken.core.platform import FlashError, Platform, UP_APPROVED  # noqa: E402
from sealtoken.crypto import PurePythonCrypto  # noqa: E402


class FileFlash:
    """NOR flash in a file: NUM_PAGES pages of PAGE_SIZE bytes, kept out of the heap."""

    def __init__(self, path, num_pages, page_size):
        self.page_size = page_size
        self.num_pages = num_pages
        try:
            size = os.stat(path)[6]
        except OSError:
            size = -1
        if size != num_pages * page_size:
            with open(path, "wb") as f:
                for _ in range(num_pages * page_size // _PAGE_BUFFER):
                    f.write(_ERASED)
        self.file = open(path, "r+b")

    def check(self, page, offset, length):
        if not 0 <= page < self.num_pages:
            raise ValueError("bad flash page")
        if offset < 0 or length < 0 or offset + length > self.page_size:
            raise ValueError("flash access out of range")

    def read(self, page, offset, length):
        self.check(page, offset, length)
        self.file.seek(page * self.page_size + offset)
        return self.file.read(length)

    def write(self, page, offset, data):
        self.check(page, offset, len(data))
        if offset % 4 or len(data) % 4:
            raise FlashError("flash writes are whole aligned words")
        # the bits as one integer: NOR rules in a few C operations, as a board's flash driver (C)
        # costs next to nothing beside the firmware's Python
        self.file.seek(page * self.page_size + offset)
        old = int.from_bytes(self.file.read(len(data)), "big")
        new = int.from_bytes(bytes(data), "big")
        if new & ~old:
            raise FlashError("writing a 1 over a 0 needs an erase")
        self.file.seek(page * self.page_size + offset)
        self.file.write((old & new).to_bytes(len(data), "big"))

    def erase(self, page):
        self.check(page, 0, 0)
        self.file.seek(page * self.page_size)
        for _ in range(self.page_size // _PAGE_BUFFER):
            self.file.write(_ERASED)

    def sync(self):
        self.file.flush()


class _NoNativeCrypto:
    """A provider with no operation: a stock Pico has no C crypto module (cryptolib comes only with
    the networking builds), so every operation runs in pure Python here too, although this port
    has cryptolib."""


class UnixBoard(PurePythonCrypto, Platform):
    """A board Platform on the unix port: what hardware/boards gives a token, minus the hardware."""

    native_crypto = _NoNativeCrypto()

    def __init__(self, flash_path):
        self.flash = FileFlash(flash_path, self.NUM_PAGES, self.PAGE_SIZE)

    def random_bytes(self, n):
        return os.urandom(n)

    def now_ms(self):
        return time.ticks_ms()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def flash_read(self, page, offset, length):
        return self.flash.read(page, offset, length)

    def flash_write(self, page, offset, data):
        self.flash.write(page, offset, data)

    def flash_erase(self, page):
        self.flash.erase(page)

    def flash_sync(self):
        self.flash.sync()

    def wait_user_presence(self, timeout_ms, keepalive):
        return UP_APPROVED

    def hash(self, name, data):
        import hashlib
        fn = getattr(hashlib, name, None)
        if fn is None:  # the unix port has no sha512: the firmware's own fallback, as a board would
            from sealtoken.crypto import sha
            return getattr(sha, name)(bytes(data))
        return fn(data).digest()


def _read_exactly(stream, n):
    data = stream.read(n)
    while data is not None and len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    if data is None or len(data) < n:
        raise EOFError
    return data


def _answer(out, kind, payload):
    out.write(kind)
    out.write(len(payload).to_bytes(4, "big"))
    out.write(payload)
    out.flush()


def _ballast(free):
    """Hold heap until about `free` bytes are left (largest pieces first); returns the holder."""
    held = [None] * 1024
    i = 0
    for piece in (16384, 4096, 1024, 256, 64):
        while i < len(held) and gc.mem_free() >= free + piece:
            try:
                held[i] = bytearray(piece - 16)
            except MemoryError:
                break
            i += 1
    return held


def serve(token, inp, out):
    free = None
    while True:
        kind = _read_exactly(inp, 1)
        payload = _read_exactly(inp, int.from_bytes(_read_exactly(inp, 4), "big"))
        try:
            if kind == b"A" or kind == b"H":
                gc.collect()
                ballast = None if not free else _ballast(free)
                start = time.ticks_us()
                if kind == b"A":
                    answer = token.card.process_apdu(payload)
                else:
                    answer = token.ctaphid.handle_packet(payload)
                took = time.ticks_diff(time.ticks_us(), start)
                ballast = None
                if kind == b"H":
                    answer = b"".join(_sent) + b"".join(answer)
                    _sent[:] = []
                _answer(out, b"K", took.to_bytes(4, "big") + answer)
            elif kind == b"M":
                gc.collect()
                used = gc.mem_alloc()
                _answer(out, b"K", used.to_bytes(4, "big") + (used + gc.mem_free()).to_bytes(4, "big"))
            elif kind == b"F":
                free = int.from_bytes(payload, "big")
                _answer(out, b"K", b"")
            elif kind == b"P":
                token.power_off()
                _answer(out, b"K", bytes(token.power_on()))
            elif kind == b"Q":
                _answer(out, b"K", b"")
                return
            else:
                _answer(out, b"E", b"unknown request")
        except Exception as e:  # MemoryError outside the token, a bad frame: said, not fatal
            ballast = None
            _answer(out, b"E", repr(e).encode())


_sent = []  # reports CTAPHID sends while a request runs (keepalives), before its answer


def main():
    from sealtoken.token import Token
    token = Token(UnixBoard(sys.argv[2]))
    token.ctaphid.attach(_sent.append, None)
    gc.collect()
    serve(token, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
