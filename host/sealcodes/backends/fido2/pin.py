"""CTAP 2.1 PIN/UV auth protocols 1 and 2, and the clientPin requests sealcodes makes.

Written against the specification (CTAP 2.1, section 6.5) rather than taken from python-fido2's
ClientPin, so that a response needs neither python-fido2's WebAuthn layer (loading it costs more
than the whole device exchange) nor more than one key agreement per operation. Works over any
object with python-fido2's `Ctap2.client_pin(...)` signature: python-fido2's own `Ctap2` (USB
HID) and `NfcCtap2` (PC/SC, nfcctap.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os

# clientPin subcommands and result keys (CTAP 2.1, 6.5.5)
GET_PIN_RETRIES = 0x01
GET_KEY_AGREEMENT = 0x02
GET_TOKEN_USING_PIN_LEGACY = 0x05  # getPinToken (CTAP 2.0)
GET_TOKEN_USING_UV = 0x06
GET_TOKEN_USING_PIN = 0x09  # getPinUvAuthTokenUsingPinWithPermissions
RESULT_KEY_AGREEMENT = 0x01
RESULT_PIN_UV_TOKEN = 0x02
RESULT_PIN_RETRIES = 0x03

# pinUvAuthToken permissions
PERMISSION_MAKE_CREDENTIAL = 0x01
PERMISSION_GET_ASSERTION = 0x02


def token_supported(info) -> bool:
    """The key issues tokens with permissions (CTAP 2.1 `pinUvAuthToken` option)."""
    return info.options.get("pinUvAuthToken") is True


class PinProtocolV1:
    """PIN/UV auth protocol 1: shared secret SHA-256(Z), AES-256-CBC with a zero IV, HMAC-SHA-256
    truncated to 16 bytes."""

    VERSION = 1

    def kdf(self, z: bytes) -> bytes:
        return hashlib.sha256(z).digest()

    def encapsulate(self, peer_cose_key) -> tuple[dict, bytes]:
        """(our COSE key for the platformKeyAgreementKey field, the shared secret)."""
        from cryptography.hazmat.primitives.asymmetric import ec

        private = ec.generate_private_key(ec.SECP256R1())
        numbers = private.public_key().public_numbers()
        key_agreement = {1: 2, 3: -25, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        x, y = peer_cose_key[-2], peer_cose_key[-3]
        if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 32):
            raise ValueError("malformed key agreement key")
        peer = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                             ec.SECP256R1()).public_key()
        # exchange() returns immutable bytes: that one copy of Z cannot be wiped (docs/host-security.md)
        return key_agreement, self.kdf(private.exchange(ec.ECDH(), peer))

    @staticmethod
    def _cbc(key: bytes, iv: bytes):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        return Cipher(algorithms.AES(key), modes.CBC(iv))

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        encryptor = self._cbc(key, bytes(16)).encryptor()
        return encryptor.update(plaintext) + encryptor.finalize()

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) % 16:
            raise ValueError("ciphertext is not whole AES blocks")
        decryptor = self._cbc(key, bytes(16)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, hashlib.sha256).digest()[:16]

    def validate_token(self, token: bytes) -> bytes:
        if len(token) not in (16, 32):
            raise ValueError("a PIN/UV token is 16 or 32 bytes")
        return token


class PinProtocolV2(PinProtocolV1):
    """PIN/UV auth protocol 2: HKDF-SHA-256 splits Z into an HMAC key and an AES key; AES-256-CBC
    with a random IV sent first; full HMAC-SHA-256."""

    VERSION = 2
    HKDF_SALT = bytes(32)

    def kdf(self, z: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(info):
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=self.HKDF_SALT, info=info).derive(z)

        return derive(b"CTAP2 HMAC key") + derive(b"CTAP2 AES key")

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        iv = os.urandom(16)
        encryptor = self._cbc(key[32:], iv).encryptor()
        return iv + encryptor.update(plaintext) + encryptor.finalize()

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) < 16 or len(ciphertext) % 16:
            raise ValueError("ciphertext is not an IV and whole AES blocks")
        decryptor = self._cbc(key[32:], ciphertext[:16]).decryptor()
        return decryptor.update(ciphertext[16:]) + decryptor.finalize()

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key[:32], message, hashlib.sha256).digest()

    def validate_token(self, token: bytes) -> bytes:
        if len(token) != 32:
            raise ValueError("a PIN/UV token is 32 bytes")
        return token


PROTOCOLS = (PinProtocolV2, PinProtocolV1)  # preferred first


class ClientPin:
    """The clientPin requests of one operation, agreeing on the shared secret once (CTAP 2.1 lets
    the same secret serve the PIN token and the hmac-secret salt; a new agreement costs a message).
    After a wrong PIN the key makes a new key-agreement key: `forget_agreement()`."""

    def __init__(self, ctap, protocol):
        self.ctap = ctap
        self.protocol = protocol
        self._agreement = None

    def shared_secret(self) -> tuple[dict, bytes]:
        if self._agreement is None:
            answer = self.ctap.client_pin(self.protocol.VERSION, GET_KEY_AGREEMENT)
            self._agreement = self.protocol.encapsulate(answer[RESULT_KEY_AGREEMENT])
        return self._agreement

    def forget_agreement(self) -> None:
        self._agreement = None

    def get_pin_token(self, pin: bytes, permissions: int, rp_id: str, info) -> bytes:
        """A pinUvAuthToken from the PIN (UTF-8 bytes): with permissions when the key has them
        (CTAP 2.1), else the CTAP 2.0 getPinToken."""
        key_agreement, shared = self.shared_secret()
        # LEFT(SHA-256(PIN), 16) opens the key like the PIN itself; digest() returns immutable bytes,
        # so this one short-lived copy cannot be wiped (docs/host-security.md)
        pin_hash_enc = self.protocol.encrypt(shared, hashlib.sha256(pin).digest()[:16])
        if token_supported(info):
            answer = self.ctap.client_pin(self.protocol.VERSION, GET_TOKEN_USING_PIN, key_agreement=key_agreement,
                                          pin_hash_enc=pin_hash_enc, permissions=permissions, permissions_rpid=rp_id)
        else:
            answer = self.ctap.client_pin(self.protocol.VERSION, GET_TOKEN_USING_PIN_LEGACY,
                                          key_agreement=key_agreement, pin_hash_enc=pin_hash_enc)
        return self.protocol.validate_token(self.protocol.decrypt(shared, answer[RESULT_PIN_UV_TOKEN]))

    def get_uv_token(self, permissions: int, rp_id: str, on_keepalive=None) -> bytes:
        key_agreement, shared = self.shared_secret()
        answer = self.ctap.client_pin(self.protocol.VERSION, GET_TOKEN_USING_UV, key_agreement=key_agreement,
                                      permissions=permissions, permissions_rpid=rp_id, on_keepalive=on_keepalive)
        return self.protocol.validate_token(self.protocol.decrypt(shared, answer[RESULT_PIN_UV_TOKEN]))

    def get_pin_retries(self) -> int:
        return int(self.ctap.client_pin(self.protocol.VERSION, GET_PIN_RETRIES)[RESULT_PIN_RETRIES])
