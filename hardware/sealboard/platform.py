"""CPythonPlatform: the sealtoken Platform on a PC.

Flash is NOR flash as the firmware meets it on a board (the model of
sealtoken.core.simplatform.NorFlash: page erase, word writes that only clear bits,
an erase count per page with a limit), kept in memory or, with a state
directory, written through to files there: flash0.bin holds the first half of
the pages and flash1.bin the second, which is exactly where the old two-bank
store kept its two 32 KiB banks, so an old state directory is read as it is
(the store converts its image on first load); erase-counts.bin holds the wear.
Randomness comes from os.urandom (or a seeded DRBG for reproducible tests),
public-key and block-cipher crypto from `cryptography`. User presence follows a
policy so tests can exercise approval, refusal, timeouts and waiting for a touch.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sealtoken.core.platform import (
    UP_APPROVED,
    UP_CANCELLED,
    UP_DENIED,
    UP_TIMEOUT,
    Platform,
)
from sealtoken.core.simplatform import NorFlash

PRESENCE_POLICIES = ("approve", "deny", "timeout", "wait")
_KEEPALIVE_INTERVAL_S = 0.1


class CryptographyPrimitives:
    """P-256 and AES-256-CBC of the Platform through pyca/cryptography, for platforms on CPython
    (this one, and the tests' deterministic fuzzing platform): key generation stays with each."""

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


class CPythonPlatform(CryptographyPrimitives, Platform):
    def __init__(self, state_dir=None, rng_seed=None, presence="approve", page_size=None, num_pages=None):
        if presence not in PRESENCE_POLICIES:
            raise ValueError(f"unknown presence policy {presence!r}")
        self.presence = presence
        self._touched = threading.Event()
        self._drbg_key = None
        if rng_seed is not None:
            self._drbg_key = hashlib.sha256(b"sealboard drbg" + str(rng_seed).encode()).digest()
            self._drbg_counter = 0
        if page_size is not None:
            self.PAGE_SIZE = page_size
        if num_pages is not None:
            self.NUM_PAGES = num_pages
        self.flash = NorFlash(self.NUM_PAGES, self.PAGE_SIZE, self.WORD_SIZE, self.MAX_ERASE_CYCLES,
                              self.MAX_WORD_WRITES)
        self._state_dir = state_dir
        self._fds = []
        self._wear_fd = None
        if state_dir is not None:
            if self.NUM_PAGES % 2:
                raise ValueError("a state directory holds an even number of flash pages")
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            half = self.NUM_PAGES // 2
            file_size = half * self.PAGE_SIZE
            for i in range(2):
                fd = os.open(os.path.join(state_dir, f"flash{i}.bin"), os.O_RDWR | os.O_CREAT, 0o600)
                self._fds.append(fd)
                if os.fstat(fd).st_size != file_size:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, b"\xff" * file_size, 0)
                    os.fsync(fd)
                content = os.pread(fd, file_size, 0)
                for page in range(half):
                    self.flash.set_content(i * half + page, content[page * self.PAGE_SIZE:(page + 1) * self.PAGE_SIZE])
            self._wear_fd = os.open(os.path.join(state_dir, "erase-counts.bin"), os.O_RDWR | os.O_CREAT, 0o600)
            wear = os.pread(self._wear_fd, 4 * self.NUM_PAGES, 0)
            if len(wear) != 4 * self.NUM_PAGES:  # new (or from before erase counts were kept): none yet
                wear = bytes(4 * self.NUM_PAGES)
                os.ftruncate(self._wear_fd, 0)
                os.pwrite(self._wear_fd, wear, 0)
            self.flash.erase_counts[:] = list(struct.unpack(f">{self.NUM_PAGES}I", wear))

    def close(self):
        for fd in self._fds + ([self._wear_fd] if self._wear_fd is not None else []):
            os.close(fd)
        self._fds = []
        self._wear_fd = None

    # --- concurrency -------------------------------------------------------------------
    def new_lock(self):
        """A real lock: run_background runs CTAP requests in threads beside the card."""
        return threading.Lock()

    def run_background(self, work):
        """Run a long CTAP request beside the card so NFCCTAP_GETRESPONSE polls see 9100 keepalives."""
        threading.Thread(target=work, name="sealtoken-ctap", daemon=True).start()
        return True

    def wink(self):
        """No LED on a PC: the emulated token has nothing to blink."""

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

    def sleep_ms(self, ms):
        time.sleep(ms / 1000.0)

    # --- flash (NOR model, written through to the state files) ---------------------
    def erase_counts(self):
        """Erases of each page so far (the model's wear report)."""
        return list(self.flash.erase_counts)

    def flash_read(self, page, offset, length):
        return self.flash.read(page, offset, length)

    def flash_write(self, page, offset, data):
        data = bytes(data)
        self.flash.program(page, offset, data)
        self._persist(page, offset, len(data))

    def flash_erase(self, page):
        self.flash.erase(page)
        self._persist(page, 0, self.PAGE_SIZE)
        if self._wear_fd is not None:
            os.pwrite(self._wear_fd, struct.pack(">I", self.flash.erase_counts[page]), 4 * page)

    def _persist(self, page, offset, length):
        if not self._fds:
            return
        half = self.NUM_PAGES // 2
        fd = self._fds[page // half]
        os.pwrite(fd, self.flash.read(page, offset, length), (page % half) * self.PAGE_SIZE + offset)

    def flash_sync(self):
        for fd in self._fds + ([self._wear_fd] if self._wear_fd is not None else []):
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

    def p384_generate(self):
        if self._drbg_key is None:
            key = ec.generate_private_key(ec.SECP384R1())
        else:
            while True:  # deterministic key for seeded runs: a scalar from the DRBG
                d = int.from_bytes(self.random_bytes(48), "big")
                if 0 < d < _P384_ORDER:
                    key = ec.derive_private_key(d, ec.SECP384R1())
                    break
        d = key.private_numbers().private_value.to_bytes(48, "big")
        x, y = self.p384_public(d)
        return d, x, y

    def p384_public(self, private):
        if len(private) != 48:
            raise ValueError("bad P-384 scalar")
        numbers = ec.derive_private_key(int.from_bytes(bytes(private), "big"), ec.SECP384R1()).public_key().public_numbers()
        return numbers.x.to_bytes(48, "big"), numbers.y.to_bytes(48, "big")

    def p384_ecdh(self, private, peer_x, peer_y):
        if len(peer_x) != 48 or len(peer_y) != 48:
            raise ValueError("bad point")
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), b"\x04" + bytes(peer_x) + bytes(peer_y))
        key = ec.derive_private_key(int.from_bytes(bytes(private), "big"), ec.SECP384R1())
        return key.exchange(ec.ECDH(), peer)


_P384_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
