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


class Platform:
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
        raise NotImplementedError
