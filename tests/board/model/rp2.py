"""A model of MicroPython's `rp2` module for the unix port: Flash and bootsel_button.

Flash() is the block device under MicroPython's filesystem, as rp2.Flash() is on a Pico: blocks of
4096 bytes in the file $SEALBOARD_MODEL_FLASH ($SEALBOARD_MODEL_FLASH_BLOCKS of them), read and
written in place (no copy in RAM). What it enforces, from rp2.Flash's documentation, the
block-device protocol (os.AbstractBlockDev) and the Pico SDK's flash functions that rp2.Flash calls:
- readblocks(block, buf[, offset]): any length within the device;
- writeblocks(block, buf) erases the blocks it covers, then programs; writeblocks(block, buf,
  offset) only programs: offset and length must be whole 256-byte pages (flash_range_program's
  rule; rp2.Flash does not check it and the chip would be programmed wrongly, here it raises);
  programming can only clear bits (NOR flash: flash = flash AND data);
- ioctl(4) block count, ioctl(5) block size, ioctl(6, block) erases one block; 1, 2, 3 answer 0.
An erase takes $SEALBOARD_MODEL_ERASE_MS milliseconds (default 0; a Pico's W25Q16JV takes 45 typically
and 400 at most per 4 KB sector, with interrupts off, so no callback runs meanwhile).
For power-cut tests, cut_after(n, mode) lets n more programs or erases complete and cuts power in
the next one (mode "none": it does not happen; "truncate": only a prefix of it happens; "flip":
all of it but a few bits keep their old value), then raises PowerCut, and every flash access
raises it until reboot().

bootsel_button(): $SEALBOARD_MODEL_BUTTON is "auto" (once the USB device is active, pressed at every
other read: a touch whenever one is awaited, but none at power-up), or a file whose first byte is "1" while the button is held; unset: never pressed.
"""

import os

BLOCK_SIZE = 4096
PROGRAM_PAGE = 256
CUT_MODES = ("none", "truncate", "flip")
_ERASED = b"\xff" * BLOCK_SIZE  # made once: an erase allocates nothing, as on the chip
_SCRATCH = bytearray(BLOCK_SIZE)


class PowerCut(BaseException):
    """Power was cut (a BaseException: firmware that catches Exception must not swallow it)."""


_NO_POWER = PowerCut()


class Flash:
    _instance = None

    def __new__(cls, start=-1, len=-1):
        if start != -1 or len != -1:
            raise NotImplementedError("the model has no partitions")
        if Flash._instance is None:
            Flash._instance = object.__new__(cls)
            Flash._instance._open()
        return Flash._instance

    def _open(self):
        self.path = os.getenv("SEALBOARD_MODEL_FLASH")
        self.count = int(os.getenv("SEALBOARD_MODEL_FLASH_BLOCKS") or "96")
        try:
            size = os.stat(self.path)[6]
        except OSError:
            size = -1
        if size != self.count * BLOCK_SIZE:
            with open(self.path, "wb") as f:
                for _ in range(self.count):
                    f.write(_ERASED)
        self.file = open(self.path, "r+b")  # unbuffered: each write reaches the file (no fsync: fast)
        self.programs = 0
        self.erases = 0
        self.erase_ms = int(os.getenv("SEALBOARD_MODEL_ERASE_MS") or "0")
        self.powered = True
        self._cut = None

    # --- power cuts ----------------------------------------------------------------------
    @property
    def operations(self):
        return self.programs + self.erases

    def cut_after(self, n, mode="none"):
        if mode not in CUT_MODES:
            raise ValueError("unknown cut mode")
        self._cut = [n, mode]

    def reboot(self):
        self.powered = True
        self._cut = None

    def _check_power(self):
        if not self.powered:
            raise _NO_POWER  # made beforehand: a finaliser may be writing, with the heap locked

    def _cut_now(self):
        cut = self._cut
        if cut is None:
            return None
        if cut[0] == 0:
            self._cut = None
            self.powered = False
            return cut[1]
        cut[0] -= 1
        return None

    def save(self, path):
        """Copy the whole flash to a file (tests: a state to come back to), without holding it in RAM."""
        _copy(self.file, path, True)

    def load(self, path):
        """Bring back a state save() made."""
        _copy(self.file, path, False)

    # --- the block device -------------------------------------------------------------------
    def _range(self, block, offset, length):
        if not 0 <= block < self.count or offset < 0 or block * BLOCK_SIZE + offset + length > self.count * BLOCK_SIZE:
            raise ValueError("flash access out of range")
        return block * BLOCK_SIZE + offset

    def readblocks(self, block, buf, offset=0):
        self._check_power()
        self.file.seek(self._range(block, offset, len(buf)))
        self.file.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        # nothing is allocated here (as in rp2.Flash, which copies with memcpy): littlefs may write
        # from a file's finaliser, when the heap is locked
        self._check_power()
        if offset is None:
            for b in range(block, block + (len(buf) + BLOCK_SIZE - 1) // BLOCK_SIZE):
                self.ioctl(6, b)
            offset = 0
        if offset % PROGRAM_PAGE or len(buf) % PROGRAM_PAGE:
            raise ValueError("rp2 flash programs whole 256-byte pages at 256-byte offsets")
        at = self._range(block, offset, len(buf))
        mode = self._cut_now()
        if mode == "none":
            raise PowerCut()
        n = len(buf) // 2 + 3 if mode == "truncate" else len(buf)
        page = _SCRATCH
        done = 0
        while done < n:
            step = min(BLOCK_SIZE, n - done)
            self.file.seek(at + done)
            self.file.readinto(memoryview(page)[:step])
            for i in range(step):
                page[i] &= buf[done + i]  # NOR: programming only clears bits
            if mode == "flip" and done == 0:
                for i in (step // 3, step // 2):
                    self.file.seek(at + i)
                    self.file.readinto(memoryview(page)[i:i + 1])  # these bytes were not programmed
            self.file.seek(at + done)
            self.file.write(memoryview(page)[:step])
            done += step
        self.programs += 1
        if mode is not None:
            raise PowerCut()

    def ioctl(self, op, arg):
        if op in (1, 2, 3):
            return 0
        if op == 4:
            return self.count
        if op == 5:
            return BLOCK_SIZE
        if op == 6:
            self._check_power()
            at = self._range(arg, 0, BLOCK_SIZE)
            mode = self._cut_now()
            if mode == "none":
                raise PowerCut()
            if self.erase_ms:
                import time
                time.sleep_ms(self.erase_ms)
            length = BLOCK_SIZE // 2 + 100 if mode == "truncate" else BLOCK_SIZE
            self.file.seek(at)
            self.file.write(memoryview(_ERASED)[:length])
            if mode == "flip":
                self.file.seek(at + 1000)
                self.file.write(b"\x7f")  # one bit stayed programmed
            self.erases += 1
            if mode is not None:
                raise PowerCut()
            return 0
        return None


def _copy(flash_file, path, out):
    # a small chunk: a tests' helper, it must not need a block-sized piece of a heap that hundreds of
    # token boots have cut up (the token's own code never copies the flash)
    chunk = bytearray(256)
    flash_file.seek(0)
    with open(path, "wb" if out else "rb") as other:
        while True:
            n = (flash_file if out else other).readinto(chunk)
            if not n:
                break
            (other if out else flash_file).write(memoryview(chunk)[:n])


_presses = [0]


def bootsel_button():
    how = os.getenv("SEALBOARD_MODEL_BUTTON")
    if not how:
        return 0
    if how == "auto":
        import machine
        if not machine._singleton or not machine._singleton[0].active():
            return 0
        _presses[0] += 1
        return _presses[0] & 1
    try:
        with open(how, "rb") as f:
            return 1 if f.read(1) == b"1" else 0
    except OSError:
        return 0
