"""The Raspberry Pi Pico (RP2040) and Pico 2 (RP2350), with or without W, under MicroPython >= 1.23:
everything that differs from one port or board to another. A port with machine.USBDevice (samd,
and others as MicroPython adds it) needs only a file like this one.

VID 0x1209, PID 0x0001: a pid.codes *test* PID, free for testing and never for products that
are sold or handed out (docs/board.md). Someone who distributes boards asks pid.codes for a PID of
their own (free for open-source hardware) and sets it here; pcscd's CCID driver then needs that
VID/PID in its list of readers (docs/board.md, "pcscd").
"""

import machine
import rp2

VID = 0x1209
PID = 0x0001
FLASH_DIR = "/sealtoken-flash"   # the files that hold the token's flash blocks: never remove them
PRESENCE_TIMEOUT_MS = 30000      # the longest wait for a press of BOOTSEL; then the request times out


def flash():
    """The block device under MicroPython's filesystem (the part of the flash after the firmware)."""
    return rp2.Flash()


def button():
    """True while BOOTSEL is pressed (read between two flash accesses; about 10 microseconds)."""
    return rp2.bootsel_button() == 1


def led():
    return machine.Pin("LED", machine.Pin.OUT)


def periodic(period_ms, callback):
    """A soft timer: callback(timer) every period_ms, from MicroPython's scheduler."""
    return machine.Timer(period=period_ms, mode=machine.Timer.PERIODIC, callback=callback)
