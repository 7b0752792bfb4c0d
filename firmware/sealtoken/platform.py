"""The Platform: the only way the firmware core reaches the outside world.

Boards (hardware/sealboard) implement it; tests use a seeded RNG and a hand-moved
clock. MicroPython rules apply: plain classes, no abc, no typing at runtime.

Storage is a tiny flash model: NUM_BANKS banks of BANK_SIZE bytes each. A write
may be cut by power loss at any point; sealtoken.storage builds atomic updates on
top of that (see its docstring for the contract).
"""

# user presence outcomes
UP_APPROVED = 0
UP_DENIED = 1
UP_TIMEOUT = 2
UP_CANCELLED = 3


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

        The core serializes every storage update with one (sealtoken.storage.Store), so a
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
        """Monotonic milliseconds."""
        raise NotImplementedError

    # --- persistent storage (flash model) ------------------------------------
    BANK_SIZE = 32768
    NUM_BANKS = 2

    def flash_read(self, bank, offset, length):
        """Bytes [offset, offset+length) of bank; erased flash reads as 0xFF."""
        raise NotImplementedError

    def flash_write(self, bank, offset, data):
        """Write data at offset of bank (may be cut short by power loss)."""
        raise NotImplementedError

    def flash_sync(self):
        """Barrier: everything written before is durable when this returns."""

    # --- user presence --------------------------------------------------------
    def wait_user_presence(self, timeout_ms, keepalive):
        """Block until the user touches the token, refuses, or timeout.

        keepalive(status) is called every ~100 ms while waiting (status 2 =
        UPNEEDED); when it returns True the request was cancelled. Returns one
        of UP_APPROVED, UP_DENIED, UP_TIMEOUT, UP_CANCELLED.
        """
        raise NotImplementedError

    # --- hashing beyond sha256 (MicroPython boards may lack sha1/sha512) ------
    def hash(self, name, data):
        """Digest of data with 'sha1', 'sha256' or 'sha512'."""
        import hashlib
        return getattr(hashlib, name)(data).digest()

    # --- public-key and block cipher crypto ----------------------------------
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

    def aes256_cbc_encrypt(self, key, iv, data):
        """AES-256-CBC, no padding (len(data) % 16 == 0)."""
        raise NotImplementedError

    def aes256_cbc_decrypt(self, key, iv, data):
        raise NotImplementedError
