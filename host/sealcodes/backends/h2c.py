"""RFC 9380 hash_to_curve for two suites, in pure Python integers.

    P256_XMD:SHA-256_SSWU_RO_   (NIST P-256, expand_message_xmd with SHA-256)
    P384_XMD:SHA-384_SSWU_RO_   (NIST P-384, expand_message_xmd with SHA-384)

Used by the ECDH derivation input (docs/spec.md, "ECDH derivation input"): the
host maps a challenge to a point whose discrete logarithm nobody knows and asks
the card to multiply it by its private key. Inputs are public (the challenge), so
this code is not constant-time and need not be.

    point = hash_to_curve(P256, msg, dst)     # (x, y) integers
    encode_point(P256, point)                 # 04 || X || Y
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple


class Curve(NamedTuple):
    """A short Weierstrass curve y^2 = x^3 + a*x + b over GF(p) with its RFC 9380 suite parameters."""

    name: str         # "P-256" / "P-384"
    suite: str        # RFC 9380 suite ID
    p: int
    a: int
    b: int
    n: int            # group order (cofactor 1)
    z: int            # SSWU constant Z
    field_len: int    # bytes of one field element / x-coordinate
    sample_len: int   # L of hash_to_field
    hash_name: str    # expand_message_xmd hash


P256 = Curve(
    name="P-256",
    suite="P256_XMD:SHA-256_SSWU_RO_",
    p=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
    a=-3,
    b=0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    z=-10,
    field_len=32,
    sample_len=48,
    hash_name="sha256",
)

P384 = Curve(
    name="P-384",
    suite="P384_XMD:SHA-384_SSWU_RO_",
    p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF,
    a=-3,
    b=0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    n=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    z=-12,
    field_len=48,
    sample_len=72,
    hash_name="sha384",
)

CURVES = {P256.name: P256, P384.name: P384}


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int, hash_name: str) -> bytes:
    """RFC 9380 section 5.3.1."""
    h = getattr(hashlib, hash_name)
    b_in_bytes = h().digest_size
    s_in_bytes = h().block_size
    if len(dst) > 255:
        # section 5.3.3: oversize DSTs are hashed first
        dst = h(b"H2C-OVERSIZE-DST-" + dst).digest()
    ell = -(-len_in_bytes // b_in_bytes)
    if ell > 255 or len_in_bytes > 65535:
        raise ValueError("expand_message_xmd: requested length too large")
    dst_prime = dst + bytes((len(dst),))
    msg_prime = bytes(s_in_bytes) + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = h(msg_prime).digest()
    b_prev = h(b0 + b"\x01" + dst_prime).digest()
    out = bytearray(b_prev)
    for i in range(2, ell + 1):
        b_prev = h(bytes(x ^ y for x, y in zip(b0, b_prev)) + bytes((i,)) + dst_prime).digest()
        out += b_prev
    return bytes(out[:len_in_bytes])


def hash_to_field(curve: Curve, msg: bytes, dst: bytes, count: int) -> list[int]:
    """RFC 9380 section 5.2 with m = 1."""
    uniform = expand_message_xmd(msg, dst, count * curve.sample_len, curve.hash_name)
    return [
        int.from_bytes(uniform[i * curve.sample_len:(i + 1) * curve.sample_len], "big") % curve.p
        for i in range(count)
    ]


def _sqrt(curve: Curve, value: int) -> int | None:
    """Square root in GF(p) for p = 3 mod 4 (both curves), or None when value is not a square."""
    root = pow(value, (curve.p + 1) // 4, curve.p)
    return root if root * root % curve.p == value % curve.p else None


def map_to_curve_sswu(curve: Curve, u: int) -> tuple[int, int]:
    """Simplified SWU (RFC 9380 section 6.6.2, straight-line description)."""
    p, a, b, z = curve.p, curve.a % curve.p, curve.b, curve.z % curve.p
    u2 = u * u % p
    tv1 = (z * z * u2 * u2 + z * u2) % p
    tv1 = pow(tv1, p - 2, p)  # inv0: 0 stays 0
    if tv1 == 0:
        x1 = b * pow(z * a, p - 2, p) % p
    else:
        x1 = (-b * pow(a, p - 2, p)) * (1 + tv1) % p
    gx1 = (x1 * x1 * x1 + a * x1 + b) % p
    y = _sqrt(curve, gx1)
    if y is not None:
        x = x1
    else:
        x = z * u2 * x1 % p
        y = _sqrt(curve, (x * x * x + a * x + b) % p)
        if y is None:  # impossible for a valid Z; guards a wrong constant
            raise ArithmeticError("SSWU: neither candidate is on the curve")
    if u % 2 != y % 2:  # sgn0 for m = 1
        y = p - y
    return x, y


def point_add(curve: Curve, p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
    """Affine addition; None is the point at infinity."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    p = curve.p
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % p == 0:
            return None
        slope = (3 * x1 * x1 + curve.a) * pow(2 * y1, p - 2, p) % p
    else:
        slope = (y2 - y1) * pow(x2 - x1, p - 2, p) % p
    x3 = (slope * slope - x1 - x2) % p
    return x3, (slope * (x1 - x3) - y1) % p


def hash_to_curve(curve: Curve, msg: bytes, dst: bytes) -> tuple[int, int]:
    """RFC 9380 hash_to_curve, random-oracle variant (cofactor 1: no clearing needed)."""
    u0, u1 = hash_to_field(curve, msg, dst, 2)
    point = point_add(curve, map_to_curve_sswu(curve, u0), map_to_curve_sswu(curve, u1))
    if point is None:  # probability ~2^-256; never a valid input to ECDH
        raise ArithmeticError("hash_to_curve gave the point at infinity")
    return point


def on_curve(curve: Curve, point: tuple[int, int]) -> bool:
    x, y = point
    p = curve.p
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x + curve.a * x + curve.b)) % p == 0


def encode_point(curve: Curve, point: tuple[int, int]) -> bytes:
    """SEC 1 uncompressed encoding: 04 || X || Y."""
    n = curve.field_len
    return b"\x04" + point[0].to_bytes(n, "big") + point[1].to_bytes(n, "big")


def decode_point(curve: Curve, data: bytes) -> tuple[int, int]:
    """(x, y) of an uncompressed point; ValueError when it is malformed or not on the curve."""
    n = curve.field_len
    if len(data) != 1 + 2 * n or data[0] != 0x04:
        raise ValueError(f"not an uncompressed {curve.name} point")
    point = int.from_bytes(data[1:1 + n], "big"), int.from_bytes(data[1 + n:], "big")
    if not on_curve(curve, point):
        raise ValueError(f"the point is not on {curve.name}")
    return point
