"""The token's flash on the board's block device, read and written in place (no copy in RAM).

BlockFlash maps the Platform's flash pages (sealtoken.core.platform: page erase, writes that only
clear bits) onto blocks of a MicroPython block device with the extended interface
(`readblocks(block, buf, offset)`, `writeblocks(block, buf, offset)` that programs without erasing,
`ioctl(6, block)` that erases; `rp2.Flash()` on a Pico). The flash chip programs whole 256-byte
pages at 256-byte offsets (the Pico SDK's flash_range_program requires both; MicroPython's rp2.Flash
does not check them), and programming a 1 leaves a bit as it is: a write of a few words programs
the pages it touches with 0xFF everywhere else, so nothing else changes and nothing is read first.

Which blocks? On stock MicroPython the filesystem (littlefs, or FAT) owns every block of
`rp2.Flash()`, and a block it thinks free it may use at any time. `reserve_blocks` has the
filesystem give the token its blocks: one file of exactly one block per page, in a directory of
its own. A file of one block is one data block that the filesystem never moves or reads unless
the file itself is written or read; the token then erases and programs that block directly. The
files are found on the device by a random marker written into them, the block numbers are kept in
a map file written last (under a temporary name, then renamed), and only then does the token use
them: a power cut before that leaves no map, and the next start makes the files again. The files
must never be removed or written while the token's state matters: they are its flash.
"""

import os
import struct

from sealtoken.core.micro import const

PROGRAM_PAGE = const(256)
_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_BLOCK_ERASE = const(6)
_MARKER = b"sealtoken-reserved-block"
_MAP_MAGIC = b"SLTM"
_ERASED_PAGE = b"\xff" * PROGRAM_PAGE


class FlashReservationError(Exception):
    """The blocks for the token cannot be reserved or found (see reserve_blocks)."""


class BlockFlash:
    """Pages of the token's flash on blocks of a block device, one block per page."""

    def __init__(self, bdev, blocks):
        self.bdev = bdev
        self.blocks = blocks
        self._program = bytearray(PROGRAM_PAGE)

    def read(self, page, offset, length):
        buf = bytearray(length)
        if length:
            self.bdev.readblocks(self.blocks[page], buf, offset)
        return buf

    def write(self, page, offset, data):
        block = self.blocks[page]
        program = self._program
        data = memoryview(data)
        pos = 0
        try:
            while pos < len(data):
                at = offset + pos
                start = at % PROGRAM_PAGE
                take = min(PROGRAM_PAGE - start, len(data) - pos)
                program[:] = _ERASED_PAGE
                program[start:start + take] = data[pos:pos + take]
                self.bdev.writeblocks(block, program, at - start)
                pos += take
        finally:
            program[:] = _ERASED_PAGE  # it held secrets

    def erase(self, page):
        self.bdev.ioctl(_IOCTL_BLOCK_ERASE, self.blocks[page])


def map_bytes(blocks):
    """The map file: "SLTM" | count u16 | the block numbers, u32 each (big endian) | SHA-256[:8] of the rest."""
    body = _MAP_MAGIC + struct.pack(">H", len(blocks)) + b"".join(struct.pack(">I", b) for b in blocks)
    import hashlib
    return body + hashlib.sha256(body).digest()[:8]


def _read_map(directory, count):
    import hashlib
    with open(directory + "/map", "rb") as f:
        data = f.read()
    body, check = data[:-8], data[-8:]
    if (len(data) != 6 + 4 * count + 8 or body[:4] != _MAP_MAGIC or hashlib.sha256(body).digest()[:8] != check
            or struct.unpack(">H", body[4:6])[0] != count):
        raise FlashReservationError("the token's flash map is damaged")
    return [struct.unpack(">I", body[6 + 4 * i:10 + 4 * i])[0] for i in range(count)]


def _page_file(directory, page):
    return "%s/%02d" % (directory, page)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def reserve_blocks(bdev, directory, count, random_bytes):
    """The block numbers (one per page) the token's flash takes on bdev: from the map in directory,
    or reserved now through the filesystem mounted on bdev (first start). Raises
    FlashReservationError when a reserved file is gone (the flash is lost) or when the filesystem
    does not keep each file in a block of its own."""
    block_size = bdev.ioctl(_IOCTL_BLOCK_SIZE, 0)
    try:
        blocks = _read_map(directory, count)
    except OSError:
        blocks = None
    if blocks is not None:
        for page in range(count):
            try:
                size = os.stat(_page_file(directory, page))[6]
            except OSError:
                size = -1
            if size != block_size:
                raise FlashReservationError("a file of the token's flash is missing: its state is lost")
        return blocks
    return _reserve(bdev, directory, count, block_size, random_bytes)


def _reserve(bdev, directory, count, block_size, random_bytes):
    try:
        os.mkdir(directory)
    except OSError:
        pass
    for name in ("map", "map.new"):
        _remove(directory + "/" + name)
    tag = _MARKER + bytes(random_bytes(16))
    filler = _ERASED_PAGE
    for page in range(count):
        path = _page_file(directory, page)
        _remove(path)  # left by a start cut short: its block may be taken by the token already
        head = tag + struct.pack(">H", page)
        with open(path, "wb") as f:
            f.write(head)
            written = len(head)
            while written < block_size:
                n = min(len(filler), block_size - written)
                f.write(filler[:n])
                written += n
    found = [None] * count
    probe = bytearray(len(tag) + 2)
    for block in range(bdev.ioctl(_IOCTL_BLOCK_COUNT, 0)):
        bdev.readblocks(block, probe, 0)
        if probe[:len(tag)] == tag:
            page = struct.unpack(">H", probe[len(tag):])[0]
            if page >= count or found[page] is not None:
                raise FlashReservationError("the filesystem keeps a flash file in more than one block")
            found[page] = block
    if None in found:
        raise FlashReservationError("the filesystem does not keep each flash file in a block of its own")
    for block in found:
        bdev.ioctl(_IOCTL_BLOCK_ERASE, block)
    with open(directory + "/map.new", "wb") as f:
        f.write(map_bytes(found))
    os.rename(directory + "/map.new", directory + "/map")
    return found
