"""SimPlatform: a deterministic, MicroPython-safe Platform for tests.

- randomness: a seeded hash DRBG (SHA-256 in counter mode), same seed -> same bytes;
- clock: moved by hand (``advance_ms``, ``set_ms``);
- flash: NOR flash as it is (NorFlash below): NUM_PAGES pages of PAGE_SIZE bytes,
  erased = 0xFF; writes are word-aligned and can only clear bits (a 1 written over
  a 0 raises FlashError), each word at most MAX_WORD_WRITES times between erases;
  every page counts its erases and refuses to erase past MAX_ERASE_CYCLES
  (FlashWornOut); ``erase_counts()`` reports them. ``cut_power_after(n, corrupt,
  keep)`` lets the next n flash operations (writes and erases) complete and cuts
  power during the one after: that operation is applied according to
  ``corrupt`` (and ``keep``, the bytes that got through) and ``PowerCut`` is
  raised; every flash access then raises PowerCut until ``reboot()``;
- user presence: a policy (``presence``): one of the UP_* outcomes, or a callable
  ``policy(timeout_ms, keepalive) -> UP_*``.

- hashes: sha256 from hashlib; sha1 and sha512 from hashlib when it has them,
  else from the small pure-Python versions in sealtoken.crypto.sha (MicroPython
  ports often lack them), so the OATH / OTP applets run under MicroPython tests too.

P-256 and AES are not available here (NotImplementedError, inherited); the
CPython platform in hardware/sealboard provides them.
"""

import hashlib
import struct

from sealtoken.core.platform import FlashError, FlashWornOut, Platform, UP_APPROVED, UP_CANCELLED, UP_TIMEOUT
from sealtoken.crypto.sha import sha1, sha512

# what happens to the flash operation in progress when power is cut. NOR physics
# holds in every mode: a write only ever clears bits, an erase only ever sets them.
CORRUPT_NONE = "none"          # the operation does not happen at all
CORRUPT_TRUNCATE = "truncate"  # write: only a prefix of the data (possibly empty) reaches flash;
                               # erase: only a prefix of the page is erased
CORRUPT_FLIP = "flip"          # write: all of it, with 1..3 bits wrong; erase: 1..3 bits stay 0
CORRUPT_TORN = "torn"          # write: a prefix, its last byte garbled;
                               # erase: a prefix erased, the rest partly erased
CORRUPT_MODES = (CORRUPT_NONE, CORRUPT_TRUNCATE, CORRUPT_FLIP, CORRUPT_TORN)

KEEPALIVE_INTERVAL_MS = 100
STATUS_UPNEEDED = 2


_FALLBACK_HASHES = {"sha1": sha1, "sha512": sha512}

_ERASED = b"\xff" * 256
_ZEROS = bytes(256)


def _fill(buf, start, end, chunk):
    """buf[start:end] = chunk's byte, a chunk at a time: no temporary as large as a page."""
    step = len(chunk)
    while start < end:
        n = min(step, end - start)
        buf[start:start + n] = chunk if n == step else chunk[:n]
        start += n


class NorFlash:
    """RAM model of NOR flash: page erase to 0xFF, word writes that only clear bits.

    pages: list of bytearrays (the content); erase_counts: erases per page so far.
    Programming errors (misaligned write, a 1 over a 0, too many writes to a word)
    raise FlashError and change nothing; erasing a page that has had
    max_erase_cycles erases raises FlashWornOut and changes nothing.
    """

    def __init__(self, num_pages, page_size, word_size=4, max_erase_cycles=100000, max_word_writes=2):
        if page_size % word_size or num_pages < 1:
            raise ValueError("bad flash geometry")
        self.num_pages = num_pages
        self.page_size = page_size
        self.word_size = word_size
        self.max_erase_cycles = max_erase_cycles
        self.max_word_writes = max_word_writes
        self.pages = []
        for _ in range(num_pages):
            page = bytearray(page_size)
            _fill(page, 0, page_size, _ERASED)
            self.pages.append(page)
        self.erase_counts = [0] * num_pages
        self._word_writes = [bytearray(page_size // word_size) for _ in range(num_pages)]

    def check(self, page, offset, length):
        if not 0 <= page < self.num_pages:
            raise ValueError("bad flash page")
        if offset < 0 or length < 0 or offset + length > self.page_size:
            raise ValueError("flash access out of range")

    def read(self, page, offset, length):
        self.check(page, offset, length)
        return bytes(self.pages[page][offset:offset + length])

    def check_program(self, page, offset, data):
        """Raise FlashError unless data may be written at offset (nothing is changed)."""
        self.check(page, offset, len(data))
        w = self.word_size
        if offset % w or len(data) % w:
            raise FlashError("flash writes are whole aligned words")
        flash = self.pages[page]
        for i in range(len(data)):
            if data[i] & ~flash[offset + i] & 0xFF:
                raise FlashError("writing a 1 over a 0 needs an erase")
        counts = self._word_writes[page]
        for word in range(offset // w, (offset + len(data)) // w):
            if counts[word] >= self.max_word_writes:
                raise FlashError("too many writes to one flash word")

    def program(self, page, offset, data):
        self.check_program(page, offset, data)
        self.apply(page, offset, data)

    def apply(self, page, offset, data):
        """Clear bits: flash &= data over the range (what a write, whole or partial, does)."""
        flash = self.pages[page]
        for i in range(len(data)):
            flash[offset + i] &= data[i]
        w = self.word_size
        counts = self._word_writes[page]
        for word in range(offset // w, (offset + len(data) + w - 1) // w):
            if counts[word] < 255:
                counts[word] += 1

    def erase(self, page):
        self.check(page, 0, 0)
        self.count_erase(page)
        _fill(self.pages[page], 0, self.page_size, _ERASED)
        counts = self._word_writes[page]
        _fill(counts, 0, len(counts), _ZEROS)

    def count_erase(self, page):
        if self.erase_counts[page] >= self.max_erase_cycles:
            raise FlashWornOut("flash page %d is worn out" % page)
        self.erase_counts[page] += 1

    def set_content(self, page, data):
        """Load a page's content (a snapshot, an image from disk): words not 0xFF count as written once."""
        self.pages[page][:] = data
        counts = self._word_writes[page]
        w = self.word_size
        for word in range(len(counts)):
            counts[word] = 0 if data[word * w:word * w + w] == b"\xff" * w else 1


class PowerCut(BaseException):
    """Power was cut. Derives from BaseException on purpose: firmware code that
    catches Exception (the card turning crashes into 6F00) must not swallow it,
    just as no code runs on a real board once power is gone."""


class HashDrbg:
    """Deterministic byte stream: SHA-256(seed_hash || counter). Not for real keys."""

    def __init__(self, seed):
        if isinstance(seed, str):
            seed = seed.encode()
        self._key = hashlib.sha256(b"sealtoken-sim-drbg\x00" + bytes(seed)).digest()
        self._counter = 0
        self._buf = b""

    def read(self, n):
        out = bytearray()
        while len(out) < n:
            if not self._buf:
                self._buf = hashlib.sha256(self._key + struct.pack(">Q", self._counter)).digest()
                self._counter += 1
            take = min(n - len(out), len(self._buf))
            out.extend(self._buf[:take])
            self._buf = self._buf[take:]
        return bytes(out)

    def below(self, n):
        """Integer in [0, n) (n >= 1); tiny bias is fine for simulation."""
        return struct.unpack(">I", self.read(4))[0] % n


class SimPlatform(Platform):
    def __init__(self, seed=b"sealtoken-sim", page_size=None, num_pages=None, presence=UP_APPROVED, now_ms=0,
                 bank_size=None, max_erase_cycles=None):
        if bank_size is not None:
            # the geometry of the old two-bank store: two pages of bank_size bytes
            page_size, num_pages = bank_size, 2
        if page_size is not None:
            self.PAGE_SIZE = page_size
        if num_pages is not None:
            self.NUM_PAGES = num_pages
        if max_erase_cycles is not None:
            self.MAX_ERASE_CYCLES = max_erase_cycles
        self._rng = HashDrbg(seed)
        self._corrupt_rng = HashDrbg(b"corrupt:" + (seed.encode() if isinstance(seed, str) else bytes(seed)))
        self._now = now_ms
        self.flash = NorFlash(self.NUM_PAGES, self.PAGE_SIZE, self.WORD_SIZE, self.MAX_ERASE_CYCLES,
                              self.MAX_WORD_WRITES)
        self.presence = presence
        self.presence_requests = 0
        # counters, for tests
        self.flash_writes = 0
        self.flash_erases = 0
        self.flash_syncs = 0
        self.random_requests = 0
        # power-cut control
        self.powered = True
        self._cut_countdown = None
        self._cut_mode = CORRUPT_NONE
        self._cut_keep = None

    @property
    def banks(self):
        """The pages' content (bytearrays), e.g. to search flash for a secret."""
        return self.flash.pages

    @property
    def flash_ops(self):
        """Flash operations so far (writes + erases): what cut_power_after counts."""
        return self.flash_writes + self.flash_erases

    def erase_counts(self):
        """Erases of each page so far (the model's wear report)."""
        return list(self.flash.erase_counts)

    # --- randomness -----------------------------------------------------------
    def random_bytes(self, n):
        self.random_requests += 1
        return self._rng.read(n)

    # --- hashing -----------------------------------------------------------------
    def hash(self, name, data):
        data = bytes(data)
        if name == "sha256":
            return hashlib.sha256(data).digest()
        fn = getattr(hashlib, name, None)
        if fn is not None:
            return fn(data).digest()
        fallback = _FALLBACK_HASHES.get(name)
        if fallback is None:
            raise ValueError("unsupported hash")
        return fallback(data)

    # --- clock -------------------------------------------------------------------
    def now_ms(self):
        return self._now

    def sleep_ms(self, ms):
        """Simulated time: the clock moves on, nothing waits."""
        self.advance_ms(ms)

    def advance_ms(self, ms):
        if ms < 0:
            raise ValueError("the clock is monotonic")
        self._now += ms

    def set_ms(self, ms):
        if ms < self._now:
            raise ValueError("the clock is monotonic")
        self._now = ms

    # --- flash -------------------------------------------------------------------
    def _powered(self):
        if not self.powered:
            raise PowerCut()

    def _cut_now(self):
        """True when the operation starting now is the one power is cut in."""
        if self._cut_countdown is None:
            return False
        if self._cut_countdown == 0:
            self._cut_countdown = None
            return True
        self._cut_countdown -= 1
        return False

    def flash_read(self, page, offset, length):
        self._powered()
        return self.flash.read(page, offset, length)

    def flash_write(self, page, offset, data):
        data = bytes(data)
        self._powered()
        self.flash.check_program(page, offset, data)  # a programming error is the firmware's bug
        if self._cut_now():
            self._tear_write(page, offset, data)
            self.powered = False
            raise PowerCut()
        self.flash.apply(page, offset, data)
        self.flash_writes += 1

    def flash_erase(self, page):
        self._powered()
        self.flash.check(page, 0, 0)
        if self._cut_now():
            self._tear_erase(page)
            self.powered = False
            raise PowerCut()
        self.flash.erase(page)
        self.flash_erases += 1

    def flash_sync(self):
        self._powered()
        self.flash_syncs += 1

    def _keep(self, n, least):
        """Bytes of an interrupted operation that got through: the one asked for, or random."""
        if self._cut_keep is not None:
            return max(least, min(self._cut_keep, n))
        if least >= n:
            return n
        return least + self._corrupt_rng.below(n - least)

    def _tear_write(self, page, offset, data):
        """Apply the interrupted write according to the corruption mode (only clearing bits)."""
        mode = self._cut_mode
        rng = self._corrupt_rng
        n = len(data)
        if mode == CORRUPT_NONE or n == 0:
            return
        if mode == CORRUPT_TRUNCATE:
            got = data[:self._keep(n, 0)]
        elif mode == CORRUPT_FLIP:
            garbled = bytearray(data)
            flipped = []
            for _ in range(1 + rng.below(3)):
                bit = rng.below(n * 8)
                if bit not in flipped:
                    flipped.append(bit)
                    garbled[bit >> 3] ^= 1 << (bit & 7)
            got = garbled
        elif mode == CORRUPT_TORN:
            keep = self._keep(n, 1)
            garbled = bytearray(data[:keep])
            garbled[keep - 1] ^= 1 + rng.below(255)
            got = garbled
        else:
            raise ValueError("unknown corruption mode")
        self.flash.apply(page, offset, got)

    def _tear_erase(self, page):
        """Apply the interrupted erase according to the corruption mode (only setting bits)."""
        mode = self._cut_mode
        if mode == CORRUPT_NONE:
            return
        rng = self._corrupt_rng
        flash = self.flash.pages[page]
        size = len(flash)
        self.flash.count_erase(page)  # an interrupted erase wears the page too
        if mode == CORRUPT_TRUNCATE:
            keep = self._keep(size, 0)
            _fill(flash, 0, keep, _ERASED)
        elif mode == CORRUPT_FLIP:
            old = bytes(flash)
            _fill(flash, 0, size, _ERASED)
            for _ in range(1 + rng.below(3)):
                i = rng.below(size)
                bit = 1 << rng.below(8)
                if not old[i] & bit:
                    flash[i] &= ~bit & 0xFF
        elif mode == CORRUPT_TORN:
            keep = self._keep(size, 0)
            _fill(flash, 0, keep, _ERASED)
            for i in range(keep, size):
                flash[i] |= rng.read(1)[0]
        else:
            raise ValueError("unknown corruption mode")
        self.flash.set_content(page, bytes(flash))

    def cut_power_after(self, n, corrupt=CORRUPT_NONE, keep=None):
        """Let n more flash operations complete; cut power during the next one.

        keep: how many bytes of the interrupted write (or erase) get through, for
        CORRUPT_TRUNCATE and CORRUPT_TORN; None = chosen at random."""
        if corrupt not in CORRUPT_MODES:
            raise ValueError("unknown corruption mode")
        if n < 0:
            raise ValueError("n must be >= 0")
        self._cut_countdown = n
        self._cut_mode = corrupt
        self._cut_keep = keep

    def cancel_power_cut(self):
        self._cut_countdown = None

    def reboot(self):
        """Power comes back: flash keeps what was written, any pending cut is dropped."""
        self.powered = True
        self._cut_countdown = None

    def flash_snapshot(self):
        return [bytes(b) for b in self.flash.pages]

    def flash_restore(self, snapshot):
        for page in range(len(snapshot)):
            self.flash.set_content(page, snapshot[page])

    # --- user presence ---------------------------------------------------------
    def wait_user_presence(self, timeout_ms, keepalive):
        """Apply the presence policy. UP_TIMEOUT moves the clock by timeout_ms and
        calls keepalive every 100 ms (a True answer cancels)."""
        self.presence_requests += 1
        policy = self.presence
        if callable(policy):
            return policy(timeout_ms, keepalive)
        if keepalive is not None and keepalive(STATUS_UPNEEDED):
            return UP_CANCELLED
        if policy == UP_TIMEOUT:
            waited = 0
            while waited < timeout_ms:
                step = min(KEEPALIVE_INTERVAL_MS, timeout_ms - waited)
                self._now += step
                waited += step
                if keepalive is not None and keepalive(STATUS_UPNEEDED):
                    return UP_CANCELLED
            return UP_TIMEOUT
        return policy
