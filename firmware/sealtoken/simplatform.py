"""SimPlatform: a deterministic, MicroPython-safe Platform for tests.

- randomness: a seeded hash DRBG (SHA-256 in counter mode), same seed -> same bytes;
- clock: moved by hand (``advance_ms``, ``set_ms``);
- flash: NUM_BANKS RAM banks of BANK_SIZE bytes, erased = 0xFF. ``cut_power_after(n,
  corrupt)`` lets the next n flash_write calls complete and cuts power during the
  one after: that write is applied according to ``corrupt`` and ``PowerCut`` is
  raised; every flash access then raises PowerCut until ``reboot()``;
- user presence: a policy (``presence``): one of the UP_* outcomes, or a callable
  ``policy(timeout_ms, keepalive) -> UP_*``.

- hashes: sha256 from hashlib; sha1 and sha512 from hashlib when it has them,
  else from the small pure-Python versions below (MicroPython ports often lack
  them), so the OATH / OTP applets run under MicroPython tests too.

P-256 and AES are not available here (NotImplementedError, inherited); the
CPython platform in hardware/sealboard provides them.
"""

import hashlib
import struct

from .platform import Platform, UP_APPROVED, UP_CANCELLED, UP_TIMEOUT

# what happens to the flash_write in progress when power is cut
CORRUPT_NONE = "none"          # the write does not happen at all
CORRUPT_TRUNCATE = "truncate"  # only a prefix of the data reaches flash (possibly empty)
CORRUPT_FLIP = "flip"          # all of it is written, with one or more bits flipped
CORRUPT_TORN = "torn"          # a prefix is written, its last byte garbled
CORRUPT_MODES = (CORRUPT_NONE, CORRUPT_TRUNCATE, CORRUPT_FLIP, CORRUPT_TORN)

KEEPALIVE_INTERVAL_MS = 100
STATUS_UPNEEDED = 2


_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF


def _pad(data, block, length_bytes):
    n = len(data)
    out = bytearray(data)
    out.append(0x80)
    while (len(out) + length_bytes) % block:
        out.append(0)
    bits = n * 8
    out.extend(bytes(length_bytes - 8))
    out.extend(struct.pack(">Q", bits))
    return out


def sha1(data):
    """SHA-1 (FIPS 180-4), for platforms whose hashlib lacks it. Slow; tests only."""
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    msg = _pad(data, 64, 8)
    for off in range(0, len(msg), 64):
        w = list(struct.unpack(">16I", msg[off:off + 64]))
        for t in range(16, 80):
            x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
            w.append(((x << 1) | (x >> 31)) & _M32)
        a, b, c, d, e = h
        for t in range(80):
            if t < 20:
                f, k = (b & c) | ((b ^ _M32) & d), 0x5A827999
            elif t < 40:
                f, k = b ^ c ^ d, 0x6ED9EBA1
            elif t < 60:
                f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
            else:
                f, k = b ^ c ^ d, 0xCA62C1D6
            tmp = (((a << 5) | (a >> 27)) + (f & _M32) + e + k + w[t]) & _M32
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _M32, a, tmp
        h = [(x + y) & _M32 for x, y in zip(h, (a, b, c, d, e))]
    return struct.pack(">5I", *h)


def _iroot(n, k):
    """floor(n ** (1/k)) for integers (Newton's method)."""
    x = 1
    while x ** k <= n:  # a start above the root
        x <<= 1
    while True:
        y = ((k - 1) * x + n // (x ** (k - 1))) // k
        if y >= x:
            return x
        x = y


_SHA512_CONST = []


def _sha512_constants():
    """(H0, K) of SHA-512: fractional bits of square / cube roots of the first primes."""
    if not _SHA512_CONST:
        primes = []
        n = 2
        while len(primes) < 80:
            if all(n % p for p in primes):
                primes.append(n)
            n += 1
        h0 = [_iroot(p << 128, 2) & _M64 for p in primes[:8]]
        k = [_iroot(p << 192, 3) & _M64 for p in primes]
        _SHA512_CONST.append((h0, k))
    return _SHA512_CONST[0]


def _rotr64(x, n):
    return ((x >> n) | (x << (64 - n))) & _M64


def sha512(data):
    """SHA-512 (FIPS 180-4), for platforms whose hashlib lacks it. Slow; tests only."""
    h0, k = _sha512_constants()
    h = list(h0)
    msg = _pad(data, 128, 16)
    for off in range(0, len(msg), 128):
        w = list(struct.unpack(">16Q", msg[off:off + 128]))
        for t in range(16, 80):
            s0 = _rotr64(w[t - 15], 1) ^ _rotr64(w[t - 15], 8) ^ (w[t - 15] >> 7)
            s1 = _rotr64(w[t - 2], 19) ^ _rotr64(w[t - 2], 61) ^ (w[t - 2] >> 6)
            w.append((w[t - 16] + s0 + w[t - 7] + s1) & _M64)
        a, b, c, d, e, f, g, hh = h
        for t in range(80):
            s1 = _rotr64(e, 14) ^ _rotr64(e, 18) ^ _rotr64(e, 41)
            ch = (e & f) ^ ((e ^ _M64) & g)
            t1 = (hh + s1 + ch + k[t] + w[t]) & _M64
            s0 = _rotr64(a, 28) ^ _rotr64(a, 34) ^ _rotr64(a, 39)
            maj = (a & b) ^ (a & c) ^ (b & c)
            t2 = (s0 + maj) & _M64
            hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M64, c, b, a, (t1 + t2) & _M64
        h = [(x + y) & _M64 for x, y in zip(h, (a, b, c, d, e, f, g, hh))]
    return struct.pack(">8Q", *h)


_FALLBACK_HASHES = {"sha1": sha1, "sha512": sha512}


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
    def __init__(self, seed=b"sealtoken-sim", bank_size=None, presence=UP_APPROVED, now_ms=0):
        if bank_size is not None:
            self.BANK_SIZE = bank_size
        self._rng = HashDrbg(seed)
        self._corrupt_rng = HashDrbg(b"corrupt:" + (seed.encode() if isinstance(seed, str) else bytes(seed)))
        self._now = now_ms
        self.banks = [bytearray(b"\xff" * self.BANK_SIZE) for _ in range(self.NUM_BANKS)]
        self.presence = presence
        self.presence_requests = 0
        # counters, for tests
        self.flash_writes = 0
        self.flash_syncs = 0
        self.random_requests = 0
        # power-cut control
        self.powered = True
        self._cut_countdown = None
        self._cut_mode = CORRUPT_NONE

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

    def advance_ms(self, ms):
        if ms < 0:
            raise ValueError("the clock is monotonic")
        self._now += ms

    def set_ms(self, ms):
        if ms < self._now:
            raise ValueError("the clock is monotonic")
        self._now = ms

    # --- flash -------------------------------------------------------------------
    def _check(self, bank, offset, length):
        if not self.powered:
            raise PowerCut()
        if not 0 <= bank < self.NUM_BANKS:
            raise ValueError("bad flash bank")
        if offset < 0 or length < 0 or offset + length > self.BANK_SIZE:
            raise ValueError("flash access out of range")

    def flash_read(self, bank, offset, length):
        self._check(bank, offset, length)
        return bytes(self.banks[bank][offset:offset + length])

    def flash_write(self, bank, offset, data):
        data = bytes(data)
        self._check(bank, offset, len(data))
        if self._cut_countdown is not None:
            if self._cut_countdown == 0:
                self._tear(bank, offset, data)
                self.powered = False
                self._cut_countdown = None
                raise PowerCut()
            self._cut_countdown -= 1
        self.banks[bank][offset:offset + len(data)] = data
        self.flash_writes += 1

    def flash_sync(self):
        if not self.powered:
            raise PowerCut()
        self.flash_syncs += 1

    def _tear(self, bank, offset, data):
        """Apply the interrupted write according to the corruption mode."""
        mode = self._cut_mode
        rng = self._corrupt_rng
        flash = self.banks[bank]
        n = len(data)
        if mode == CORRUPT_NONE or n == 0:
            return
        if mode == CORRUPT_TRUNCATE:
            keep = rng.below(n)  # 0..n-1: never the whole write
            flash[offset:offset + keep] = data[:keep]
        elif mode == CORRUPT_FLIP:
            garbled = bytearray(data)
            flipped = []
            for _ in range(1 + rng.below(3)):
                bit = rng.below(n * 8)
                if bit not in flipped:  # distinct bits: the data always ends up different
                    flipped.append(bit)
                    garbled[bit >> 3] ^= 1 << (bit & 7)
            flash[offset:offset + n] = garbled
        elif mode == CORRUPT_TORN:
            keep = 1 + rng.below(n)  # 1..n bytes, the last one garbled
            garbled = bytearray(data[:keep])
            garbled[keep - 1] ^= 1 + rng.below(255)
            flash[offset:offset + keep] = garbled
        else:
            raise ValueError("unknown corruption mode")

    def cut_power_after(self, n, corrupt=CORRUPT_NONE):
        """Let n more flash writes complete; cut power during the next one."""
        if corrupt not in CORRUPT_MODES:
            raise ValueError("unknown corruption mode")
        if n < 0:
            raise ValueError("n must be >= 0")
        self._cut_countdown = n
        self._cut_mode = corrupt

    def cancel_power_cut(self):
        self._cut_countdown = None

    def reboot(self):
        """Power comes back: flash keeps what was written, any pending cut is dropped."""
        self.powered = True
        self._cut_countdown = None

    def flash_snapshot(self):
        return [bytes(b) for b in self.banks]

    def flash_restore(self, snapshot):
        self.banks = [bytearray(b) for b in snapshot]

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
