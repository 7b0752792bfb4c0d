"""run(board): the sealtoken firmware as a composite USB device (HID for FIDO2, CCID for the
card's applets) on a MicroPython board, until power goes.

    import board
    from sealdevice.app import run
    run(board)          # main.py of every board

The main loop hands what the USB callbacks received to the token and queues its answers
(`Device.step`), and idles (machine.idle) when there is nothing to do. A timer every TICK_MS sends
CTAPHID's PROCESSING keep-alive and CCID's time extension while the token computes, and blinks
the LED for a wink. Holding the board's button during the first second (the LED flickers) starts
nothing: the USB serial REPL stays, for maintenance (mpremote).
"""

import gc
import time

import machine

from sealdevice.ccid import CcidInterface
from sealdevice.hid import CtapHidInterface
from sealdevice.platform import BoardPlatform
from sealdevice.usb import UsbDevice
from sealtoken import VERSION
from sealtoken.core.micro import const
from sealtoken.token import Token

MANUFACTURER = "sealcodes"
PRODUCT = "sealtoken board (not tamper-resistant)"
TICK_MS = const(100)
_MAINTENANCE_WINDOW_MS = const(1000)


def serial_text(serial):
    """The USB serial number: the token's serial in decimal, as sealcodes and ykman show serials."""
    return str(int.from_bytes(bytes(serial), "big"))


def bcd_version():
    major, minor, patch = VERSION[0], VERSION[1], VERSION[2]
    return (major & 0xFF) << 8 | (minor & 0x0F) << 4 | (patch & 0x0F)


class Device:
    """The token, its platform and its USB interfaces."""

    def __init__(self, board):
        self.board = board
        self.platform = BoardPlatform(board)
        self.token = Token(self.platform)
        prepare_crypto(self.platform)
        usbd = machine.USBDevice()
        self.hid = CtapHidInterface(usbd, self.token.ctaphid, self.platform)
        self.ccid = CcidInterface(usbd, self.token.card)
        self.usb = UsbDevice([self.hid, self.ccid], board.VID, board.PID, bcd_version(), MANUFACTURER, PRODUCT,
                             serial_text(self.token.serial))
        self.timer = None

    def start(self):
        self.usb.start()
        self.timer = self.board.periodic(TICK_MS, self._tick)

    def _tick(self, _timer):
        now = time.ticks_ms()
        self.hid.tick()
        self.ccid.tick(now)
        self.platform.led.tick(now)

    def step(self):
        """One pass of the main loop: False when there was nothing to do."""
        worked = self.hid.pump()
        return self.ccid.pump() or worked

    def run_forever(self):
        while True:
            if not self.step():
                machine.idle()


def prepare_crypto(platform):
    """Build the P-256 generator's comb table now, at start (pure-Python crypto only: a native
    provider has none), and keep it in one run at the bottom of the heap. True when it was built.

    Built on first use instead (the first key generation or signature), it was made in a heap the
    card applets and earlier requests had cut into pieces, and its transient copies then found no
    room. And wherever it is built, its points are made last, after the garbage of their making:
    once that garbage is collected, the table's 126 numbers lie spread over the tens of KiB it
    took, cutting that free heap into pieces too small for a 4 KiB buffer (seen at start, and for
    the 1.5 KB objects of later requests; docs/board.md, "Heap"). So: collect, then copy each
    number (a new one, allocated from the bottom of the now free heap, one after the other), and
    collect the spread-out originals."""
    # providers are chosen per operation: the table serves each that multiplies the generator
    if all(platform.crypto_backend(name) != "pure" for name in ("p256_generate", "p256_public", "p256_sign")):
        return False
    from sealtoken.crypto import ec

    ec.precompute(ec.P256)
    gc.collect()
    for table in ec.P256.comb or ():
        for i in range(len(table)):
            table[i] = table[i] + 0  # a copy of the number (ints are immutable: nothing else changes)
    gc.collect()
    return True


def maintenance_requested(board):
    """The button held during the first second after start: stay out of the way."""
    led = board.led()
    start = time.ticks_ms()
    held = False
    while time.ticks_diff(time.ticks_ms(), start) < _MAINTENANCE_WINDOW_MS:
        if led is not None:
            led.value(1 - led.value())
        if board.button():
            held = True
            break
        time.sleep_ms(50)
    if led is not None:
        led.value(0)
    return held


def run(board):
    if maintenance_requested(board):
        return None
    device = Device(board)
    device.start()
    device.run_forever()
