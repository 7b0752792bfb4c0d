"""A model of rp2's tick counter, made to wrap at a wall-clock instant the test chooses.

time.ticks_ms() on rp2 counts milliseconds modulo 2^30 and wraps about every 12.4 days: a test
cannot wait for that, and the 64-bit unix port's ticks wrap only at 2^62. With
$SEALBOARD_MODEL_TICKS_WRAP_AT (milliseconds since the Unix epoch) run_board.py puts this module
in place of `time` before anything imports it: ticks_ms(), ticks_add() and ticks_diff() then work
modulo 2^30 as rp2's do (MicroPython's documented arithmetic), and ticks_ms() reaches 2^30 (reads
0 again) at that instant. Everything else is the port's own `time`.
"""

import time as _time

_PERIOD = 1 << 30
_MASK = _PERIOD - 1
_HALF = _PERIOD // 2
_offset = 0


def install(wrap_at_ms):
    """Make ticks_ms() wrap at wrap_at_ms (Unix epoch, ms) and stand in for `time` from now on."""
    import sys

    global _offset
    now_wall = _time.time_ns() // 1000000
    _offset = (_PERIOD - (wrap_at_ms - now_wall) - _time.ticks_ms()) & _MASK
    for name in dir(_time):
        if not name.startswith("__") and name not in ("ticks_ms", "ticks_add", "ticks_diff"):
            globals()[name] = getattr(_time, name)
    sys.modules["time"] = sys.modules[__name__]


def ticks_ms():
    return (_time.ticks_ms() + _offset) & _MASK


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(end, start):
    return ((end - start + _HALF) & _MASK) - _HALF
