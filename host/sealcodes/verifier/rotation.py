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
    # cryptography takes bytes: this copy cannot be wiped, only dropped (the caller's K is wiped)
    return Ed25519PrivateKey.from_private_bytes(bytes(key))


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
    if proof is None or stored_commitment is None or len(stored_commitment) != COMMITMENT_BYTES:
        return False
    try:
        message = proof_message(record, proof.label, proof.epoch)
        Ed25519PublicKey.from_public_bytes(bytes(stored_commitment)).verify(bytes(proof.signature), message)
    except (InvalidSignature, InvalidInputError, ValueError):
        return False
    return True
