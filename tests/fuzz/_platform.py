"""FuzzPlatform: SimPlatform (seeded DRBG, hand-moved clock, RAM flash) plus P-256 and AES.

The whole token (FIDO included) runs on it deterministically: the same seed gives
the same keys, the same credential ids and the same answers, so a failing input
can be replayed. No background jobs (no run_background): every request is
answered synchronously, as a board without threads would.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sealtoken.simplatform import SimPlatform

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _private_key(private):
    return ec.derive_private_key(int.from_bytes(bytes(private), "big"), ec.SECP256R1())


class FuzzPlatform(SimPlatform):
    def p256_generate(self):
        while True:
            d = int.from_bytes(bytes(self.random_bytes(32)), "big")
            if 0 < d < _P256_ORDER:
                break
        private = d.to_bytes(32, "big")
        x, y = self.p256_public(private)
        return private, x, y

    def p256_public(self, private):
        numbers = _private_key(private).public_key().public_numbers()
        return numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")

    def p256_ecdh(self, private, peer_x, peer_y):
        if len(peer_x) != 32 or len(peer_y) != 32:
            raise ValueError("bad point")
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + bytes(peer_x) + bytes(peer_y))
        return _private_key(private).exchange(ec.ECDH(), peer)

    def p256_sign(self, private, message):
        return _private_key(private).sign(bytes(message), ec.ECDSA(hashes.SHA256()))

    def aes256_cbc_encrypt(self, key, iv, data):
        enc = Cipher(algorithms.AES(bytes(key)), modes.CBC(bytes(iv))).encryptor()
        return enc.update(bytes(data)) + enc.finalize()

    def aes256_cbc_decrypt(self, key, iv, data):
        dec = Cipher(algorithms.AES(bytes(key)), modes.CBC(bytes(iv))).decryptor()
        return dec.update(bytes(data)) + dec.finalize()
