"""What MicroPython's frozen _boot.py does on rp2, for the model: littlefs over rp2.Flash() with
256-byte programs, formatted when the flash holds none, mounted (here where the board file keeps
the token's flash files, since the unix port's root is the PC's)."""

import vfs

import board
import rp2


def mount():
    try:
        vfs.umount(board.FLASH_DIR)
    except OSError:
        pass
    bdev = rp2.Flash()
    try:
        fs = vfs.VfsLfs2(bdev, progsize=256)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev, progsize=256)
        fs = vfs.VfsLfs2(bdev, progsize=256)
    vfs.mount(fs, board.FLASH_DIR)
