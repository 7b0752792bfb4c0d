"""BoardPlatform: the sealtoken Platform of a MicroPython board.

- flash: NUM_PAGES pages of PAGE_SIZE (the block size) on the board's block device, read and
  written in place (sealdevice.flash; nothing of it is kept in RAM);
- user presence: a press of the board's button (a release, then a press, seen after the request
  arrived: a button held down or stuck approves nothing), polled every POLL_MS, with the
  firmware's keep-alive every KEEPALIVE_MS and the LED blinking while it waits, for at most the
  board file's PRESENCE_TIMEOUT_MS (PRESENCE_TIMEOUT_MS when it has none) or the shorter time
  the firmware asks for;
- wink and status: the LED (on: ready; blinking slowly: waiting for a touch; quickly: wink);
- randomness: os.urandom (the RP2040's and RP2350's hardware entropy behind MicroPython's);
- clock: time.ticks_ms, extended to a counter that does not wrap (ticks wrap after 2^30 ms on rp2);
- crypto: sealtoken.crypto.PurePythonCrypto (native where the image has it, see docs/board-crypto.md);
  hashes from hashlib; SHA-512 (no MicroPython port has it) and SHA-1 where a port lacks it from
  the firmware's pure-Python ones (slow: only OATH credentials of those hashes use them).

The board file gives `button()`, `led()`, the block device and optionally PRESENCE_TIMEOUT_MS; see
hardware/boards/rp2/board.py.
"""

import os
import time

from sealdevice.flash import BlockFlash, FlashReservationError, reserve_blocks
from sealtoken.core.micro import const
from sealtoken.core.platform import UP_APPROVED, UP_CANCELLED, UP_TIMEOUT, Platform
from sealtoken.crypto import PurePythonCrypto

POLL_MS = const(10)
PRESENCE_TIMEOUT_MS = const(30000)
KEEPALIVE_MS = const(100)
_STATUS_UPNEEDED = const(2)
_BLINK_WAIT_MS = const(250)
_BLINK_WINK_MS = const(80)
_WINK_MS = const(1500)


class Led:
    """The status LED; `tick` (from the timer) makes a wink blink without holding up the main loop."""

    def __init__(self, pin):
        self.pin = pin
        self._wink_until = None
        self._next = 0
        self.ready()

    def ready(self):
        self._set(1)

    def _set(self, value):
        if self.pin is not None:
            self.pin.value(value)

    def toggle_every(self, now, period):
        if time.ticks_diff(now, self._next) >= 0:
            self._next = time.ticks_add(now, period)
            if self.pin is not None:
                self.pin.value(1 - self.pin.value())

    def wink(self):
        self._wink_until = time.ticks_add(time.ticks_ms(), _WINK_MS)

    def tick(self, now):
        if self._wink_until is None:
            return
        if time.ticks_diff(self._wink_until, now) > 0:
            self.toggle_every(now, _BLINK_WINK_MS)
        else:
            self._wink_until = None
            self.ready()


class BoardPlatform(PurePythonCrypto, Platform):
    PAGE_SIZE = 4096
    NUM_PAGES = 16

    def __init__(self, board):
        self.board = board
        bdev = board.flash()
        if bdev.ioctl(5, 0) != self.PAGE_SIZE:
            raise FlashReservationError("the block device's blocks are not %d bytes" % self.PAGE_SIZE)
        self.flash = BlockFlash(bdev, reserve_blocks(bdev, board.FLASH_DIR, self.NUM_PAGES, self.random_bytes))
        self.led = Led(board.led())
        self.waiting_for_touch = False
        self.presence_timeout_ms = getattr(board, "PRESENCE_TIMEOUT_MS", PRESENCE_TIMEOUT_MS)
        self._ms = 0
        self._last = time.ticks_ms()

    # --- randomness, clock ----------------------------------------------------------------
    def random_bytes(self, n):
        return os.urandom(n)

    def now_ms(self):
        raw = time.ticks_ms()
        self._ms += time.ticks_diff(raw, self._last)
        self._last = raw
        return self._ms

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    # --- flash ---------------------------------------------------------------------------
    def flash_read(self, page, offset, length):
        return self.flash.read(page, offset, length)

    def flash_write(self, page, offset, data):
        self.flash.write(page, offset, data)

    def flash_erase(self, page):
        self.flash.erase(page)

    # --- the LED and the button --------------------------------------------------------------
    def wink(self):
        self.led.wink()

    def wait_user_presence(self, timeout_ms, keepalive):
        timeout_ms = min(timeout_ms, self.presence_timeout_ms)
        button = self.board.button
        start = time.ticks_ms()
        last_keepalive = None
        released = not button()
        self.waiting_for_touch = True
        try:
            while True:
                now = time.ticks_ms()
                if last_keepalive is None or time.ticks_diff(now, last_keepalive) >= KEEPALIVE_MS:
                    last_keepalive = now
                    if keepalive is not None and keepalive(_STATUS_UPNEEDED):
                        return UP_CANCELLED
                pressed = button()
                if pressed and released:
                    return UP_APPROVED
                if not pressed:
                    released = True
                if time.ticks_diff(now, start) >= timeout_ms:
                    return UP_TIMEOUT
                self.led.toggle_every(now, _BLINK_WAIT_MS)
                time.sleep_ms(POLL_MS)
        finally:
            self.waiting_for_touch = False
            self.led.ready()

    # --- hashes ----------------------------------------------------------------------------
    def hash(self, name, data):
        import hashlib
        fn = getattr(hashlib, name, None)
        if fn is not None:
            return fn(bytes(data)).digest()
        if name in ("sha1", "sha512"):  # a port without them: the firmware's pure ones (slow)
            from sealtoken.crypto import sha
            return getattr(sha, name)(bytes(data))
        raise ValueError("unsupported hash")
