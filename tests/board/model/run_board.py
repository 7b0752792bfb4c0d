"""Start the board package under MicroPython's unix port as a Pico starts it (tests/board run this):

    micropython [-X heapsize=N] run_board.py MODEL_DIR DIST_DIR

MODEL_DIR (the models of machine and rp2) comes first on sys.path, then DIST_DIR/lib (the built
.mpy files, where a Pico keeps them) and DIST_DIR (main.py). Then what MicroPython's frozen
_boot.py does on rp2 (boot_fs.py), then main.py.

Two settings for tests: $SEALBOARD_MODEL_TICKS_WRAP_AT (ticks.py: time.ticks_ms wraps at that
instant) and $SEALBOARD_MODEL_PRESENCE_TIMEOUT_MS (the board file's PRESENCE_TIMEOUT_MS, as a board
file of one's own would set it).
"""

import os
import sys

sys.path[:0] = [sys.argv[1], sys.argv[2] + "/lib", sys.argv[2]]

if os.getenv("SEALBOARD_MODEL_TICKS_WRAP_AT"):
    import ticks

    ticks.install(int(os.getenv("SEALBOARD_MODEL_TICKS_WRAP_AT")))

if os.getenv("SEALBOARD_MODEL_PRESENCE_TIMEOUT_MS"):
    import board

    board.PRESENCE_TIMEOUT_MS = int(os.getenv("SEALBOARD_MODEL_PRESENCE_TIMEOUT_MS"))

import boot_fs  # noqa: E402

boot_fs.mount()

import main  # noqa: E402,F401
