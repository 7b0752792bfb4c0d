"""The ECDH derivation input (docs/spec.md section 11): R from a card's EC key.

    point  = request_point(curve, challenge)          # what the card is asked to multiply
    z      = <card: x-coordinate of d * point>        # PIV GENERAL AUTHENTICATE / OpenPGP PSO:DECIPHER
    r      = response_from_shared(curve, public, challenge, z)   # 32-byte R for the v1 derivation

The card's public key Q (uncompressed SEC 1) is bound into R, and its SHA-256
(`key_fingerprint`) is what a profile records to recognise the key before a PIN
is sent. Shared by the `piv` and `openpgp` backends (it is how they obtain R, so
it lives in the backend layer, next to them).
"""

from __future__ import annotations

import hashlib
import hmac

from ..memory import wipe
from .h2c import CURVES, Curve, decode_point, encode_point, hash_to_curve

DST_PREFIX = b"sealcodes/v1/ecdh/"
KDF_SALT = b"sealcodes/v1/ecdh"
KDF_INFO_TAG = b"sealcodes/v1/ecdh/response"
RESPONSE_BYTES = 32
CHALLENGE_BYTES = 32


def curve_named(name: str) -> Curve:
    try:
        return CURVES[name]
    except KeyError:
        raise ValueError(f"unsupported curve {name!r} (supported: {', '.join(CURVES)})") from None


def dst(curve: Curve) -> bytes:
    """The hash_to_curve domain-separation tag: "sealcodes/v1/ecdh/" || suite ID."""
    return DST_PREFIX + curve.suite.encode("ascii")


def request_point(curve: Curve, challenge: bytes) -> bytes:
    """P = hash_to_curve(challenge), uncompressed: the point sent to the card."""
    if len(challenge) != CHALLENGE_BYTES:
        raise ValueError(f"the challenge must be {CHALLENGE_BYTES} bytes")
    return encode_point(curve, hash_to_curve(curve, bytes(challenge), dst(curve)))


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def response_info(curve: Curve, public_key: bytes, challenge: bytes) -> bytes:
    return KDF_INFO_TAG + b"\x00" + _lp(curve.name.encode("ascii")) + _lp(bytes(public_key)) + _lp(bytes(challenge))


def response_from_shared(curve: Curve, public_key: bytes, challenge: bytes,
                         shared_x: bytes | bytearray) -> bytearray:
    """R = HKDF-SHA-256(salt "sealcodes/v1/ecdh", IKM Z, info, 32). A bytearray: wipe it after use.

    Raises ValueError when Z or Q do not have the curve's sizes (a device answer is untrusted).
    """
    decode_point(curve, bytes(public_key))
    if len(shared_x) != curve.field_len:
        raise ValueError(f"the card's ECDH answer is not a {curve.field_len}-byte {curve.name} x-coordinate")
    # HKDF-SHA-256 (RFC 5869) with a 32-byte output: one Extract, one Expand block
    prk = bytearray(hmac.digest(KDF_SALT, bytes(shared_x), "sha256"))
    try:
        block = hmac.digest(prk, response_info(curve, public_key, challenge) + b"\x01", "sha256")
        return bytearray(block[:RESPONSE_BYTES])
    finally:
        wipe(prk)


def key_fingerprint(public_key: bytes) -> str:
    """SHA-256 of the uncompressed public key, hex: how a profile names the card's key."""
    return hashlib.sha256(bytes(public_key)).hexdigest()


def curve_of_public_key(public_key: bytes) -> Curve:
    """The curve of an uncompressed P-256 / P-384 point (by its length); ValueError otherwise."""
    for curve in CURVES.values():
        if len(public_key) == 1 + 2 * curve.field_len:
            decode_point(curve, bytes(public_key))
            return curve
    raise ValueError("not an uncompressed P-256 or P-384 public key")


def require_enrolled_key(public_key: bytes, enrollment, where: str) -> Curve:
    """The curve of the card's key, after checking it is the enrolled one (before any PIN is sent).
    `enrollment`: a records.Enrollment (or its JSON form)."""
    from ..errors import DeviceError, InvalidInputError

    expected = (enrollment.get("key_fingerprint") if isinstance(enrollment, dict)
                else getattr(enrollment, "key_fingerprint", None))
    if not isinstance(expected, str) or len(expected) != 64:
        raise InvalidInputError("the profile records no key fingerprint for this enrollment")
    if not hmac.compare_digest(key_fingerprint(public_key).encode(), expected.lower().encode()):
        raise DeviceError(f"the key in {where} is not the enrolled one (another card, or the key was replaced); "
                          "no PIN was sent")
    try:
        return curve_of_public_key(public_key)
    except ValueError:
        raise DeviceError(f"the card's public key in {where} is malformed") from None


def derive_response(curve: Curve, public_key: bytes, challenge: bytes, shared_x) -> bytearray:
    """R from the card's answer Z (wiped here); DeviceError when Z has the wrong size."""
    from ..errors import DeviceError

    try:
        return response_from_shared(curve, public_key, challenge, shared_x)
    except ValueError as exc:
        raise DeviceError(str(exc)) from None
    finally:
        if isinstance(shared_x, bytearray):
            wipe(shared_x)
