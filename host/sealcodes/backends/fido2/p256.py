"""P-256 for the fido2 backend: ES256 keys as COSE, signature checks, and recovering a
credential's public key from its signatures (for `recover`, when no profile holds the key)."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

COSE_ES256 = -7

_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
      0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _point_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % _P == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, _P) % _P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (lam * lam - x1 - x2) % _P
    return x3, (lam * (x1 - x3) - y1) % _P


def _point_mul(k, point):
    result = None
    addend = point
    while k:
        if k & 1:
            result = _point_add(result, addend)
        addend = _point_add(addend, addend)
        k >>= 1
    return result


def recover_public_keys(message: bytes, der_signature: bytes) -> list:
    """The P-256 public keys (x, y) under which der_signature verifies for message."""
    r, s = decode_dss_signature(der_signature)
    if not (0 < r < _N and 0 < s < _N):
        return []
    e = int.from_bytes(hashlib.sha256(message).digest(), "big") % _N
    r_inv = pow(r, -1, _N)
    keys = []
    y2 = (pow(r, 3, _P) - 3 * r + _B) % _P
    y = pow(y2, (_P + 1) // 4, _P)
    if y * y % _P != y2:
        return []
    for ry in (y, _P - y):
        point = _point_add(_point_mul(s * r_inv % _N, (r, ry)), _point_mul((-e * r_inv) % _N, _G))
        if point is not None:
            keys.append(point)
    return keys


def public_key(x: int, y: int) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def cose_es256(key: ec.EllipticCurvePublicKey) -> dict:
    numbers = key.public_numbers()
    return {1: 2, 3: COSE_ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}


def verify(key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    try:
        key.verify(bytes(signature), bytes(message), ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False
