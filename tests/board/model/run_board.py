"""Start the board package under MicroPython's unix port as a Pico starts it (tests/board run this):

    micropython [-X heapsize=N] run_board.py MODEL_DIR DIST_DIR

MODEL_DIR (the models of machine and rp2) comes first on sys.path, then DIST_DIR/lib (the built
.mpy files, where a Pico keeps them) and DIST_DIR (main.py). Then what MicroPython's frozen
_boot.py does on rp2: littlefs over rp2.Flash() with 256-byte programs, formatted when it holds
none, mounted where the board file keeps the token's flash files; then main.py.
"""

import sys

sys.path[:0] = [sys.argv[1], sys.argv[2] + "/lib", sys.argv[2]]

import rp2  # noqa: E402
import vfs  # noqa: E402

bdev = rp2.Flash()
try:
    fs = vfs.VfsLfs2(bdev, progsize=256)
except OSError:
    vfs.VfsLfs2.mkfs(bdev, progsize=256)
    fs = vfs.VfsLfs2(bdev, progsize=256)

import board  # noqa: E402

vfs.mount(fs, board.FLASH_DIR)
del bdev, fs

import main  # noqa: E402,F401
