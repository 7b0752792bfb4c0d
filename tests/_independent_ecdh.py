"""A second, independent implementation of the ECDH derivation input (docs/spec.md section 11).

Written from the spec and RFC 9380 alone, built differently from sealcodes.backends.h2c and
sealcodes.backends.ecdh so that one mistake cannot hide in both:

- expand_message_xmd is written as the RFC's loop over b_0 .. b_ell with strxor on ints;
- square roots use Euler's criterion first, then the (p+1)/4 power; inversions use pow(x, -1, p);
- the scalar multiplication d*P and the x-coordinate come from `cryptography` (OpenSSL's ECDH),
  with P handed to it as a peer public key;
- HKDF is `cryptography`'s HKDF class.

It imports nothing from sealcodes.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# name -> (suite, p, b, Z, L, hash, cryptography curve, field bytes)
CURVES = {
    "P-256": ("P256_XMD:SHA-256_SSWU_RO_",
              2**256 - 2**224 + 2**192 + 2**96 - 1,
              int("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b", 16),
              -10, 48, "sha256", ec.SECP256R1(), 32),
    "P-384": ("P384_XMD:SHA-384_SSWU_RO_",
              2**384 - 2**128 - 2**96 + 2**32 - 1,
              int("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875a"
                  "c656398d8a2ed19d2a85c8edd3ec2aef", 16),
              -12, 72, "sha384", ec.SECP384R1(), 48),
}


def xmd(msg: bytes, dst: bytes, n: int, hash_name: str) -> bytes:
    hf = hashlib.new(hash_name)
    b_len, r_len = hf.digest_size, hf.block_size
    tag = dst + bytes([len(dst)])
    blocks = [hashlib.new(hash_name, b"\0" * r_len + msg + n.to_bytes(2, "big") + b"\0" + tag).digest()]
    out = b""
    prev = 0
    for i in range(1, (n + b_len - 1) // b_len + 1):
        x = int.from_bytes(blocks[0], "big") ^ prev
        block = hashlib.new(hash_name, x.to_bytes(b_len, "big") + bytes([i]) + tag).digest()
        prev = int.from_bytes(block, "big")
        out += block
    return out[:n]


def _is_square(v: int, p: int) -> bool:
    return v % p == 0 or pow(v, (p - 1) // 2, p) == 1


def _sswu(u: int, p: int, b: int, z: int) -> tuple[int, int]:
    a = p - 3
    g = lambda x: (x ** 3 + a * x + b) % p  # noqa: E731
    den = (z * z * pow(u, 4, p) + z * u * u) % p
    if den == 0:
        x = b * pow(z * a, -1, p) % p
    else:
        x = (p - b) * pow(a, -1, p) * (1 + pow(den, -1, p)) % p
    if not _is_square(g(x), p):
        x = z * u * u * x % p
    y = pow(g(x), (p + 1) // 4, p)
    if (u & 1) != (y & 1):
        y = (-y) % p
    return x, y


def _add(p1, p2, p):
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, p) % p
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, p) % p
    x3 = (lam * lam - x1 - x2) % p
    return x3, (lam * (x1 - x3) - y1) % p


def hash_to_curve(curve: str, msg: bytes, dst: bytes) -> tuple[int, int]:
    _suite, p, b, z, size, hash_name, _c, _n = CURVES[curve]
    uniform = xmd(msg, dst, 2 * size, hash_name)
    u0 = int.from_bytes(uniform[:size], "big") % p
    u1 = int.from_bytes(uniform[size:], "big") % p
    return _add(_sswu(u0, p, b, z), _sswu(u1, p, b, z), p)


def challenge(label: bytes, epoch: int) -> bytes:
    """docs/spec.md section 2 (label already NFC UTF-8)."""
    return hashlib.sha256(b"sealcodes/v1/challenge\0" + len(label).to_bytes(2, "big") + label
                          + epoch.to_bytes(4, "big")).digest()


def derive(curve: str, private_value: int, chal: bytes) -> dict:
    """Everything the spec names for one card key and one challenge (hex strings)."""
    suite, p, _b, _z, _size, _h, ec_curve, n = CURVES[curve]
    dst = b"sealcodes/v1/ecdh/" + suite.encode()
    px, py = hash_to_curve(curve, chal, dst)
    point = b"\x04" + px.to_bytes(n, "big") + py.to_bytes(n, "big")
    key = ec.derive_private_key(private_value, ec_curve)
    public = key.public_key().public_numbers()
    q = b"\x04" + public.x.to_bytes(n, "big") + public.y.to_bytes(n, "big")
    z = key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec_curve, point))
    lp = lambda d: len(d).to_bytes(2, "big") + d  # noqa: E731
    info = b"sealcodes/v1/ecdh/response\0" + lp(curve.encode()) + lp(q) + lp(chal)
    r = HKDF(hashes.SHA256(), 32, b"sealcodes/v1/ecdh", info).derive(z)
    return {"point": point.hex(), "public_key": q.hex(), "shared_x": z.hex(), "response": r.hex(),
            "key_fingerprint": hashlib.sha256(q).hexdigest()}


def private_key_from_seed(curve: str, seed_text: str) -> int:
    """How the vectors' fixed keys were made (docs/spec.md section 11): d = (H(seed) mod (n - 1)) + 1,
    H = SHA-256 for P-256 and SHA-384 for P-384 over the seed text's UTF-8, read big-endian; n is the
    group order (SEC 2)."""
    orders = {"P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
              "P-384": int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
                           "581a0db248b0a77aecec196accc52973", 16)}
    digest = hashlib.new(CURVES[curve][5], seed_text.encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % (orders[curve] - 1) + 1
