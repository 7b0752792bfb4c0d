"""The Platform: the only way the firmware core reaches the outside world.

Every capability the core uses is declared here, with what it must do:
concurrency (new_lock, run_background), randomness (random_bytes), the clock
(now_ms, sleep_ms), NOR flash (flash_read, flash_write, flash_erase,
flash_sync and the geometry constants), user presence (wait_user_presence),
the wink of CTAPHID (wink), and crypto primitives (hash, p256_*, aes256_cbc_*).
The core calls nothing else on a platform, and imports no I/O module (time,
socket, os, threading...): tests/test_platform_boundary.py checks both.

Boards (hardware/sealboard) implement it; tests use SimPlatform (a seeded RNG,
a hand-moved clock, a NOR flash model with power cuts). MicroPython rules apply:
plain classes, no abc, no typing at runtime.

Flash is NOR flash as it is: NUM_PAGES pages of PAGE_SIZE bytes; an erase sets
a whole page to 0xFF; a write programs whole aligned words and can only clear
bits; each page survives about MAX_ERASE_CYCLES erases. A write or an erase may
be cut by power loss at any point; sealtoken.core.storage builds an atomic,
wear-levelled store on top of that (see docs/firmware-store.md).
"""

# user presence outcomes
UP_APPROVED = 0
UP_DENIED = 1
UP_TIMEOUT = 2
UP_CANCELLED = 3


class FlashError(Exception):
    """A flash write the hardware cannot do (misaligned, or a 1 over a 0 without an erase)."""


class FlashWornOut(FlashError):
    """A page has reached its erase-cycle limit: the flash is worn out."""


class SingleThreadLock:
    """The lock of a board that runs one thing at a time: acquiring it twice is a bug."""

    def __init__(self):
        self._held = False

    def acquire(self):
        if self._held:
            raise RuntimeError("lock acquired twice")
        self._held = True
        return True

    def release(self):
        if not self._held:
            raise RuntimeError("lock released while not held")
        self._held = False

    def locked(self):
        return self._held


class Platform:
    # --- concurrency --------------------------------------------------------
    def new_lock(self):
        """A new mutual-exclusion lock: acquire() blocks until it is free, release() frees it.

        The core serializes every storage update with one (sealtoken.core.storage.Store), so a
        request running in the background and one in the foreground never interleave their
        read-modify-write of the store. A board that runs work concurrently must return a
        real lock (CPython: threading.Lock, MicroPython: _thread.allocate_lock()); the default
        is for boards that run one thing at a time.
        """
        return SingleThreadLock()

    # --- randomness -------------------------------------------------------
    def random_bytes(self, n):
        """n bytes from a cryptographically secure RNG."""
        raise NotImplementedError

    # --- clock -------------------------------------------------------------
    def now_ms(self):
        """Monotonic milliseconds (any origin)."""
        raise NotImplementedError

    def sleep_ms(self, ms):
        """Let ms milliseconds pass (the FIDO applet's short wait for a background request)."""
        raise NotImplementedError

    # --- background work ------------------------------------------------------
    def run_background(self, work):
        """Start work() running beside the caller and return True, or return False when
        the board cannot run two things at once (the default): the caller then does the
        work itself. A board that returns True must also make new_lock() a real lock.
        Used by the FIDO applet to answer NFCCTAP polls (9100) while a request runs."""
        return False

    # --- signalling ---------------------------------------------------------------
    def wink(self):
        """Show the user which token this is (CTAPHID_WINK): blink a LED, or nothing."""

    # --- NOR flash ------------------------------------------------------------
    PAGE_SIZE = 4096            # bytes per erase unit
    NUM_PAGES = 16
    WORD_SIZE = 4               # writes are whole words at word-aligned offsets
    MAX_WORD_WRITES = 2         # writes to one word between two erases (each may only clear bits)
    MAX_ERASE_CYCLES = 100000   # erases a page survives

    def flash_read(self, page, offset, length):
        """Bytes [offset, offset+length) of a page (within the page); erased flash reads 0xFF."""
        raise NotImplementedError

    def flash_write(self, page, offset, data):
        """Program data (bytes-like: the store passes memoryviews of its buffers, valid during the
        call) at offset of page: len(data) and offset are multiples of WORD_SIZE,
        and the write can only clear bits (flash becomes flash & data; a 1 over a 0 raises
        FlashError). Power loss may cut it short, leaving a prefix or some bits not cleared."""
        raise NotImplementedError

    def flash_erase(self, page):
        """Set the whole page to 0xFF. Raises FlashWornOut past MAX_ERASE_CYCLES erases.
        Power loss may cut it short, leaving the page partly erased."""
        raise NotImplementedError

    def flash_sync(self):
        """Barrier: everything written or erased before is durable when this returns."""

    # --- user presence --------------------------------------------------------
    def wait_user_presence(self, timeout_ms, keepalive):
        """Block until the user touches the token, refuses, or timeout.

        keepalive(status) is called every ~100 ms while waiting (status 2 =
        UPNEEDED); when it returns True the request was cancelled. Returns one
        of UP_APPROVED, UP_DENIED, UP_TIMEOUT, UP_CANCELLED.
        """
        raise NotImplementedError

    # --- crypto primitives --------------------------------------------------------
    # sha256 comes from hashlib (every MicroPython port has it); everything else here
    # so that a board can use its own hardware or library.
    def hash(self, name, data):
        """Digest of data with 'sha1', 'sha256' or 'sha512' (MicroPython ports may lack sha1/sha512)."""
        import hashlib
        return getattr(hashlib, name)(data).digest()

    def p256_generate(self):
        """New P-256 key: returns (private_scalar_32_bytes, x_32, y_32)."""
        raise NotImplementedError

    def p256_public(self, private):
        """(x_32, y_32) of a private scalar."""
        raise NotImplementedError

    def p256_ecdh(self, private, peer_x, peer_y):
        """Shared secret x coordinate (32 bytes); raises ValueError for an invalid point."""
        raise NotImplementedError

    def p256_sign(self, private, message):
        """DER-encoded ECDSA-SHA256 signature of message."""
        raise NotImplementedError

    # optional: P-384 (PIV / OpenPGP ECDH keys); a platform without it leaves these
    # raising NotImplementedError and the applets then refuse P-384 keys
    def p384_generate(self):
        """New P-384 key: returns (private_scalar_48_bytes, x_48, y_48)."""
        raise NotImplementedError

    def p384_public(self, private):
        """(x_48, y_48) of a private scalar; ValueError when it is not in 1..n-1."""
        raise NotImplementedError

    def p384_ecdh(self, private, peer_x, peer_y):
        """Shared secret x coordinate (48 bytes); raises ValueError for an invalid point."""
        raise NotImplementedError

    def aes256_cbc_encrypt(self, key, iv, data):
        """AES-256-CBC, no padding (len(data) % 16 == 0)."""
        raise NotImplementedError

    def aes256_cbc_decrypt(self, key, iv, data):
        """Inverse of aes256_cbc_encrypt."""
        raise NotImplementedError
