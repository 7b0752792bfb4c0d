"""Device-bound rotation (docs/spec.md section 14): who may replace a set on a verifier.

Every set has a rotation key K, derived from its device response R like its codes are, but under
its own HKDF label, so K reveals nothing about any code and no code reveals K:

    PRK = HMAC-SHA-256(key = "sealcodes/v1", msg = R)                               (section 4)
    K   = HKDF-Expand(PRK, "sealcodes/v1/rotation-key" || 0x00 || lp(label) || u32(epoch), 32)

K is an Ed25519 private key (RFC 8032). A record v2 carries the matching public key, the set's
*commitment*. A later record for the same account proves it comes from whoever holds the device
(or k members of the keyring) by an Ed25519 signature, made with the K of the active set it
replaces, over the new record's every field (`proof_message`). The verifier keeps only
commitments, so it can check a proof but never make one; the signature binds the exact new record,
so a proof seen in transit cannot carry other codes.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from .. import derivation
from ..errors import InvalidInputError
from ..memory import wipe

ROTATION_KEY_TAG = b"sealcodes/v1/rotation-key"
PROOF_TAG = b"sealcodes/verifier/v2/rotation"
KEY_BYTES = 32
COMMITMENT_BYTES = 32
SIGNATURE_BYTES = 64


def _lp(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


def rotation_key(response, label: str, epoch: int) -> bytearray:
    """K of the set (label, epoch) made from device response R. Caller wipes it."""
    label_bytes = derivation.normalize_label(label)
    epoch = derivation.validate_epoch(epoch)
    derivation.validate_response(response)
    prk = derivation.hkdf_extract(derivation.VERSION_TAG, response)
    try:
        info = ROTATION_KEY_TAG + derivation.TAG_END + _lp(label_bytes) + _u32(epoch)
        return derivation.hkdf_expand(prk, info, KEY_BYTES)
    finally:
        wipe(prk)


def _private_key(key):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if len(key) != KEY_BYTES:
        raise InvalidInputError(f"a rotation key is {KEY_BYTES} bytes")
    return Ed25519PrivateKey.from_private_bytes(key)  # K stays the caller's bytearray (wiped by it)


# --- the commitment is a point of the prime-order subgroup (public data: no constant time needed) --

_P = 2**255 - 19
_ORDER = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decode_point(data: bytes):
    """RFC 8032 5.1.3, strictly: y < p, and x = 0 with the sign bit set refused. None if invalid."""
    value = int.from_bytes(data, "little")
    y, sign = value & ((1 << 255) - 1), value >> 255
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P:
        x = x * _SQRT_M1 % _P
        if (v * x * x - u) % _P:
            return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a, b = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    c, d = 2 * t1 * t2 * _D % _P, 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _is_neutral(point) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0


def check_commitment(data: bytes) -> bytes:
    """A commitment as section 14.2 requires it: 32 bytes encoding, canonically, a point of order
    L (not the neutral point, no small-order part). Anything else would let someone who knows no
    key make proofs that hold. Returns the bytes, or raises InvalidInputError."""
    data = bytes(data)
    refusal = _commitment_refusal(data)
    if refusal is not None:
        raise InvalidInputError(refusal)
    return data


@functools.lru_cache(maxsize=4096)
def _commitment_refusal(data: bytes) -> str | None:
    """Why `data` is no commitment, or None. The point multiplication costs about 2 ms in Python
    and a record is checked when it is read and again when it is imported: remembered (public data).
    With PyNaCl installed (the server extra), libsodium answers a valid key in about 0.05 ms: its
    crypto_core_ed25519_is_valid_point is exactly the rule of section 14.2 (canonical, on the curve,
    in the prime-order group, not of small order); a refusal is explained by the Python check."""
    if len(data) == COMMITMENT_BYTES and _libsodium_says_valid(data):
        return None
    return _python_refusal(data)


def _libsodium_says_valid(data: bytes) -> bool:
    try:
        from nacl.bindings import crypto_core_ed25519_is_valid_point
    except ImportError:
        return False
    return bool(crypto_core_ed25519_is_valid_point(data))


def _python_refusal(data: bytes) -> str | None:
    point = _decode_point(data) if len(data) == COMMITMENT_BYTES else None
    if point is None:
        return "record commitment is not the encoding of a curve point"
    multiple, scalar, power = (0, 1, 1, 0), _ORDER, point
    while scalar:
        if scalar & 1:
            multiple = _add(multiple, power)
        power = _add(power, power)
        scalar >>= 1
    if _is_neutral(point) or not _is_neutral(multiple):
        return "record commitment is not a point of the prime-order group (small order)"
    return None


def commitment(key) -> bytes:
    """The set's commitment: the Ed25519 public key of K (32 bytes)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return _private_key(key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class RotationProof:
    """Which active set of the account signs (its label and epoch), and the signature."""

    label: str
    epoch: int
    signature: bytes

    def validate(self) -> "RotationProof":
        if derivation.normalize_label_text(self.label) != self.label:
            raise InvalidInputError("record proof label is not in NFC")
        derivation.validate_epoch(self.epoch)
        if len(self.signature) != SIGNATURE_BYTES:
            raise InvalidInputError(f"record proof signature must be {SIGNATURE_BYTES} bytes")
        return self


def proof_message(record, previous_label: str, previous_epoch: int) -> bytes:
    """The bytes a proof signs: every field of the new record but the proof itself, and which set
    signs (docs/spec.md section 14.3)."""
    params = record.hash
    if record.commitment is None or len(record.commitment) != COMMITMENT_BYTES:
        raise InvalidInputError("a record with a proof must carry its own commitment")
    parts = [
        PROOF_TAG, derivation.TAG_END,
        _lp(record.account.encode("utf-8")),
        _lp(record.label.encode("utf-8")),
        _u32(record.epoch),
        _lp(record.format.encode("ascii")),
        _u32(record.count),
        _lp(record.fingerprint.encode("ascii")),
        _lp(params.scheme.encode("ascii")),
        _u32(params.memory_kib or 0), _u32(params.iterations or 0), _u32(params.lanes or 0),
        _lp(bytes(record.salt)),
        *(bytes(d) for d in record.digests),
        bytes(record.commitment),
        _lp(previous_label.encode("utf-8")),
        _u32(previous_epoch),
    ]
    return b"".join(parts)


def sign_proof(previous_key, record, previous_label: str, previous_epoch: int) -> RotationProof:
    """The proof for `record` (which must carry its commitment), made with the K of the set it
    replaces (label `previous_label`, epoch `previous_epoch`). The caller wipes `previous_key`."""
    message = proof_message(record, previous_label, previous_epoch)
    return RotationProof(previous_label, previous_epoch, _private_key(previous_key).sign(message)).validate()


def verify_proof(stored_commitment: bytes, record) -> bool:
    """Whether `record.proof` is a valid signature under `stored_commitment` (the commitment the
    verifier holds for the set the proof names) over this exact record."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    proof = record.proof
    if proof is None or stored_commitment is None:
        return False
    try:
        check_commitment(stored_commitment)  # a small-order key would let anyone "sign"
        message = proof_message(record, proof.label, proof.epoch)
        Ed25519PublicKey.from_public_bytes(bytes(stored_commitment)).verify(bytes(proof.signature), message)
    except (InvalidSignature, InvalidInputError, ValueError):
        return False
    return True
