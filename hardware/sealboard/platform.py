"""CPythonPlatform: the sealtoken Platform on a PC.

Flash banks live in files (or memory), randomness comes from os.urandom (or a
seeded DRBG for reproducible tests), public-key and block-cipher crypto from
`cryptography`. User presence follows a policy so tests can exercise approval,
refusal, timeouts and waiting for a touch.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sealtoken.platform import (
    UP_APPROVED,
    UP_CANCELLED,
    UP_DENIED,
    UP_TIMEOUT,
    Platform,
)

PRESENCE_POLICIES = ("approve", "deny", "timeout", "wait")
_KEEPALIVE_INTERVAL_S = 0.1


class CPythonPlatform(Platform):
    def __init__(self, state_dir=None, rng_seed=None, presence="approve"):
        if presence not in PRESENCE_POLICIES:
            raise ValueError(f"unknown presence policy {presence!r}")
        self.presence = presence
        self._touched = threading.Event()
        self._drbg_key = None
        if rng_seed is not None:
            self._drbg_key = hashlib.sha256(b"sealboard drbg" + str(rng_seed).encode()).digest()
            self._drbg_counter = 0
        self._state_dir = state_dir
        self._banks = []
        if state_dir is None:
            self._banks = [bytearray(b"\xff" * self.BANK_SIZE) for _ in range(self.NUM_BANKS)]
        else:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            self._fds = []
            for i in range(self.NUM_BANKS):
                path = os.path.join(state_dir, f"flash{i}.bin")
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                if os.fstat(fd).st_size != self.BANK_SIZE:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, b"\xff" * self.BANK_SIZE, 0)
                    os.fsync(fd)
                self._fds.append(fd)

    def close(self):
        for fd in getattr(self, "_fds", []):
            os.close(fd)
        self._fds = []

    # --- randomness ----------------------------------------------------------
    def random_bytes(self, n):
        if self._drbg_key is None:
            return os.urandom(n)
        out = b""
        while len(out) < n:
            self._drbg_counter += 1
            out += hashlib.sha256(self._drbg_key + self._drbg_counter.to_bytes(8, "big")).digest()
        return out[:n]

    # --- clock -----------------------------------------------------------------
    def now_ms(self):
        return int(time.monotonic() * 1000)

    # --- flash -----------------------------------------------------------------
    def _check(self, bank, offset, length):
        if not (0 <= bank < self.NUM_BANKS and 0 <= offset and offset + length <= self.BANK_SIZE):
            raise ValueError("flash access out of range")

    def flash_read(self, bank, offset, length):
        self._check(bank, offset, length)
        if self._state_dir is None:
            return bytes(self._banks[bank][offset:offset + length])
        return os.pread(self._fds[bank], length, offset)

    def flash_write(self, bank, offset, data):
        self._check(bank, offset, len(data))
        if self._state_dir is None:
            self._banks[bank][offset:offset + len(data)] = data
        else:
            os.pwrite(self._fds[bank], bytes(data), offset)

    def flash_sync(self):
        for fd in getattr(self, "_fds", []):
            os.fsync(fd)

    # --- user presence -----------------------------------------------------------
    def press(self):
        """Simulate a touch (for the "wait" policy)."""
        self._touched.set()

    def wait_user_presence(self, timeout_ms, keepalive):
        if self.presence == "approve":
            return UP_APPROVED
        if self.presence == "deny":
            return UP_DENIED
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            if self.presence == "wait" and self._touched.is_set():
                self._touched.clear()
                return UP_APPROVED
            if keepalive is not None and keepalive(2):
                return UP_CANCELLED
            if time.monotonic() >= deadline:
                return UP_TIMEOUT
            self._touched.wait(min(_KEEPALIVE_INTERVAL_S, max(0.0, deadline - time.monotonic())))

    # --- concurrency -------------------------------------------------------------------
    def new_lock(self):
        """A real lock: run_background runs CTAP requests in threads beside the card."""
        return threading.Lock()

    # --- background work ------------------------------------------------------------
    def run_background(self, work):
        """Run a long CTAP request beside the card so NFCCTAP_GETRESPONSE polls see 9100 keepalives."""
        threading.Thread(target=work, name="sealtoken-ctap", daemon=True).start()

    # --- crypto ----------------------------------------------------------------
    def hash(self, name, data):
        return hashlib.new(name, bytes(data)).digest()

    def p256_generate(self):
        key = ec.generate_private_key(ec.SECP256R1()) if self._drbg_key is None else None
        if key is None:
            # deterministic key for seeded runs: a scalar from the DRBG
            while True:
                d = int.from_bytes(self.random_bytes(32), "big")
                if 0 < d < _P256_ORDER:
                    key = ec.derive_private_key(d, ec.SECP256R1())
                    break
        d = key.private_numbers().private_value.to_bytes(32, "big")
        x, y = self.p256_public(d)
        return d, x, y

    @staticmethod
    def _private_key(private):
        return ec.derive_private_key(int.from_bytes(bytes(private), "big"), ec.SECP256R1())

    def p256_public(self, private):
        numbers = self._private_key(private).public_key().public_numbers()
        return numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")

    def p256_ecdh(self, private, peer_x, peer_y):
        if len(peer_x) != 32 or len(peer_y) != 32:
            raise ValueError("bad point")
        peer = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + bytes(peer_x) + bytes(peer_y)
        )
        return self._private_key(private).exchange(ec.ECDH(), peer)

    def p256_sign(self, private, message):
        return self._private_key(private).sign(bytes(message), ec.ECDSA(hashes.SHA256()))

    def aes256_cbc_encrypt(self, key, iv, data):
        enc = Cipher(algorithms.AES(bytes(key)), modes.CBC(bytes(iv))).encryptor()
        return enc.update(bytes(data)) + enc.finalize()

    def aes256_cbc_decrypt(self, key, iv, data):
        dec = Cipher(algorithms.AES(bytes(key)), modes.CBC(bytes(iv))).decryptor()
        return dec.update(bytes(data)) + dec.finalize()


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
