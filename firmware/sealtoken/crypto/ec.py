"""P-256 and P-384 in pure Python, for boards without a C library (MicroPython-compatible).

NOT CONSTANT-TIME. Python integers take time (and allocate memory) that depends on
their values, and the scalar multiplications below skip work for zero bits and
windows. Someone who can time many operations of the token precisely, or watch its
power draw, may learn bits of private keys. Use a C module through the native hook
(sealtoken.crypto, docs/board-crypto.md) where that threat matters.

What is here, per curve (short Weierstrass, a = -3, cofactor 1):
  generate(random_bytes)         -> (d, x, y) as bytes; d by rejection sampling
  public(d)                      -> (x, y); ValueError unless 1 <= d <= n-1
  ecdh(d, x, y)                  -> x coordinate of d * (x, y); ValueError for a bad point
  sign(d, message, random_bytes) -> DER ECDSA-SHA-256 signature (P-256)
and the Platform's functions p256_* / p384_* built from them.

How it stays fast and lean on MicroPython:
  - Jacobian coordinates (X, Y, Z) ~ (X/Z^2, Y/Z^3): one inversion per scalar
    multiplication instead of one per point addition;
  - one loop (_run) does every doubling and addition, with the point in local variables:
    no tuple or object per step; the formulas are dbl-2001-b (a = -3) and a Jacobian
    addition that skips the Z2 products when the added point is affine (Z2 = 1);
  - the generator of P-256 uses a comb (Lim-Lee, one table of 2^t - 1 affine points, built
    on first use or by precompute()): about 256/t doublings and additions per key;
  - any other point uses signed digits (width-5 NAF) over an affine table of its odd
    multiples 1P, 3P, ... 15P and their negatives (made with one inversion for all of
    them): 256 doublings and about 43 additions, each a mixed (Z2 = 1) addition;
  - scalars are read bit by bit from bytes, so no big integer is shifted per bit.

The peer points of ECDH are validated (coordinates below p, on the curve; with
cofactor 1 that also puts them in the group); infinity cannot be encoded as (x, y).
"""

import hashlib

# pow(z, -1, p) is not used for inverses: it silently returns 0 on MicroPython 1.29
_NAF_WIDTH = 5                     # signed digits of points other than the comb's generator
_NAF_POINTS = 1 << (_NAF_WIDTH - 2)  # table entries 1..8: 1P, 3P, ... 15P; 9..16: their negatives


class Curve:
    """Domain parameters of a curve y^2 = x^3 - 3x + b over GF(p) with a prime order n."""

    def __init__(self, name, size, p, n, b, gx, gy, comb_teeth):
        self.name = name
        self.size = size          # bytes of a coordinate or a scalar
        self.p = p
        self.n = n
        self.b = b
        self.gx = gx
        self.gy = gy
        self.bits = size * 8      # n has exactly this many bits on both curves
        self.comb_teeth = comb_teeth  # 0: no comb, the generator goes through the window
        self.comb = None              # (xs, ys) of the comb table once built


P256 = Curve(
    "P-256", 32,
    0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
    0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    6,
)

# P-384 serves PIV and OpenPGP keys only (seldom): no comb table in RAM for it
P384 = Curve(
    "P-384", 48,
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF,
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
    0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
    0,
)


# --- the one point loop ------------------------------------------------------------
def _run(p, steps, xs, ys, zs):
    """Run steps over a table of points and return the Jacobian result (X, Y, Z).

    steps is a bytearray of pairs (m, i): double the accumulator m times, then add table
    point i when i > 0 (point i is (xs[i], ys[i], zs[i]), or affine when zs is None).
    The accumulator starts at infinity; Z == 0 in the result means infinity.
    """
    X = Y = 0
    Z = 0  # infinity
    k = 0
    end = len(steps)
    while k < end:
        m = steps[k]
        i = steps[k + 1]
        k += 2
        if Z:
            while m:
                # dbl-2001-b: 3M + 5S
                zz = Z * Z % p
                yy = Y * Y % p
                al = 3 * (X - zz) * (X + zz) % p
                be = (X * yy << 2) % p
                Z = (Y * Z << 1) % p
                X = (al * al - (be << 1)) % p
                Y = (al * (be - X) - (yy * yy << 3)) % p
                m -= 1
        if not i:
            continue
        x2 = xs[i]
        y2 = ys[i]
        z2 = 1 if zs is None else zs[i]
        if not Z:
            X, Y, Z = x2, y2, z2
            continue
        zz = Z * Z % p
        if z2 == 1:  # affine point: U1 = X, S1 = Y
            u2 = x2 * zz % p
            s2 = y2 * zz % p * Z % p
            h = u2 - X
            r = s2 - Y
            u1 = X
            s1 = Y
        else:
            z2z2 = z2 * z2 % p
            u1 = X * z2z2 % p
            s1 = Y * z2z2 % p * z2 % p
            h = x2 * zz % p - u1
            r = y2 * zz % p * Z % p - s1
        if h == 0:
            if r == 0:  # the same point: double it
                zz = Z * Z % p
                yy = Y * Y % p
                al = 3 * (X - zz) * (X + zz) % p
                be = (X * yy << 2) % p
                Z = (Y * Z << 1) % p
                X = (al * al - (be << 1)) % p
                Y = (al * (be - X) - (yy * yy << 3)) % p
            else:  # P + (-P)
                X = Y = Z = 0
            continue
        hh = h * h % p
        hhh = h * hh % p
        v = u1 * hh % p
        X = (r * r - hhh - (v << 1)) % p
        Y = (r * (v - X) - s1 * hhh) % p
        Z = Z * h % p if z2 == 1 else Z * z2 % p * h % p
    return X, Y, Z


def _inverse(z, m):
    """1/z mod m (z not a multiple of m) by the extended Euclidean algorithm: about 6x faster on
    MicroPython than pow(z, m - 2, m), for about 40 KB of short-lived integers per call."""
    r0 = m
    r1 = z % m
    s0 = 0
    s1 = 1
    while r1:
        q, r = divmod(r0, r1)
        r0 = r1
        r1 = r
        t = s0 - q * s1
        s0 = s1
        s1 = t
    if r0 != 1:
        raise ValueError("not invertible")
    return s0 % m


def _bit(scalar, size, i):
    """Bit i (0 = least significant) of a big-endian scalar of size bytes."""
    return (scalar[size - 1 - (i >> 3)] >> (i & 7)) & 1


def _emit(steps, doublings, index):
    while doublings > 255:
        steps.append(255)
        steps.append(0)
        doublings -= 255
    steps.append(doublings)
    steps.append(index)


def _naf_steps(scalar, size, bits):
    """Steps of the width-5 NAF of a scalar (bytes) over the table of _odd_multiples: digits are odd,
    -15..15, at least 5 positions apart. Recoded from the least significant bit with a carry, in
    small integers only: at position i the rest of the scalar is (scalar >> i) + carry."""
    mask = (1 << _NAF_WIDTH) - 1
    half = 1 << (_NAF_WIDTH - 1)
    digits = bytearray(bits + 1)  # digit + 16 at its position, 0 where there is none
    i = 0
    carry = 0
    while i < bits or carry:
        b = (_bit(scalar, size, i) if i < bits else 0) + carry
        if not b & 1:
            carry = b >> 1
            i += 1
            continue
        window = carry
        t = _NAF_WIDTH - 1
        while t >= 0:
            if i + t < bits:
                window += _bit(scalar, size, i + t) << t
            t -= 1
        d = window & mask
        if d >= half:
            d -= 1 << _NAF_WIDTH
        carry = (window - d) >> _NAF_WIDTH
        digits[i] = d + 16
        i += _NAF_WIDTH
    steps = bytearray()
    pending = -1  # doublings owed since the top digit (none before it)
    i = bits
    while i >= 0:
        if pending >= 0:
            pending += 1
        d = digits[i] - 16
        if d != -16:
            _emit(steps, pending if pending > 0 else 0, (d + 1) >> 1 if d > 0 else _NAF_POINTS + ((1 - d) >> 1))
            pending = 0
        i -= 1
    _emit(steps, pending if pending > 0 else 0, 0)
    return steps


def _comb_steps(scalar, size, teeth, columns):
    """Comb steps: column c (from the top) adds the point of bits c, c + columns, c + 2*columns, ..."""
    steps = bytearray()
    c = columns - 1
    while c >= 0:
        index = 0
        t = teeth - 1
        while t >= 0:
            i = t * columns + c
            index <<= 1
            if i < size * 8:
                index |= _bit(scalar, size, i)
            t -= 1
        steps.append(1)
        steps.append(index)
        c -= 1
    return steps


def _to_affine_x(p, X, Z):
    zi = _inverse(Z, p)
    return X * zi * zi % p


def _to_affine(p, X, Y, Z):
    zi = _inverse(Z, p)
    zi2 = zi * zi % p
    return X * zi2 % p, Y * zi2 % p * zi % p


def _batch_affine(p, size, xs, ys, zs, first, count):
    """Entries first .. first + count - 1 of a Jacobian table made affine in place, with one
    inversion for all of them (Montgomery's trick: prefix products, then back)."""
    prefix = [1] * count
    acc = 1
    for j in range(count):
        acc = acc * zs[first + j] % p
        prefix[j] = acc
    inv = _inverse(acc, p)
    j = count - 1
    while j >= 0:
        i = first + j
        zi = inv * prefix[j - 1] % p if j else inv   # 1 / z_i
        inv = inv * zs[i] % p                         # 1 / (z_first ... z_{i-1})
        zi2 = zi * zi % p
        # through bytes: a remainder keeps the digit storage of its dividend (twice the size),
        # and the table lives as long as the scalar multiplication (the comb's: for good)
        xs[i] = int.from_bytes((xs[i] * zi2 % p).to_bytes(size, "big"), "big")
        ys[i] = int.from_bytes((ys[i] * zi2 % p * zi % p).to_bytes(size, "big"), "big")
        j -= 1


def _odd_multiples(curve, x, y):
    """Affine table [-, P, 3P, ... 15P, -P, -3P, ... -15P] (index i <= 8 holds (2i - 1)P, index
    8 + i its negative) of a point of prime order (no entry is infinity)."""
    p = curve.p
    count = _NAF_POINTS
    xs = [0] * (2 * count + 1)
    ys = [0] * (2 * count + 1)
    zs = [1] * (count + 1)
    xs[1] = x
    ys[1] = y
    x2, y2, z2 = _run(p, b"\x00\x01\x01\x00", xs, ys, None)  # 2P
    view_x = [0, 0, x2]
    view_y = [0, 0, y2]
    view_z = [0, 0, z2]
    for i in range(2, count + 1):
        # (2i - 1)P = (2i - 3)P + 2P: the entries i - 1 and 2 of a two-entry view
        view_x[1] = xs[i - 1]
        view_y[1] = ys[i - 1]
        view_z[1] = zs[i - 1]
        xs[i], ys[i], zs[i] = _run(p, b"\x00\x01\x00\x02", view_x, view_y, view_z)
    _batch_affine(p, curve.size, xs, ys, zs, 2, count - 1)
    for i in range(1, count + 1):
        xs[count + i] = xs[i]
        ys[count + i] = p - ys[i]
    return xs, ys


def precompute(curve=P256):
    """Build the comb table of the curve's generator now (else on first use): a board may call
    this at start-up so that the first key generation is not the slow one."""
    if curve.comb is not None or not curve.comb_teeth:
        return
    p = curve.p
    teeth = curve.comb_teeth
    columns = (curve.bits + teeth - 1) // teeth
    # tooth points 2^(j * columns) G, then every sum of a subset of them
    xs = [0] * (1 << teeth)
    ys = [0] * (1 << teeth)
    zs = [0] * (1 << teeth)
    tx, ty, tz = curve.gx, curve.gy, 1
    steps = bytearray((0, 1))
    _emit(steps, columns, 0)
    for j in range(teeth):
        if j:
            tx, ty, tz = _run(p, steps, (0, tx), (0, ty), (0, tz))
        bit = 1 << j
        xs[bit], ys[bit], zs[bit] = tx, ty, tz
        for low in range(1, bit):
            xs[bit | low], ys[bit | low], zs[bit | low] = _run(
                p, b"\x00\x01\x00\x02", (0, xs[low], tx), (0, ys[low], ty), (0, zs[low], tz))
    # to affine with one inversion for the whole table
    _batch_affine(p, curve.size, xs, ys, zs, 1, len(xs) - 1)
    curve.comb = (xs, ys)


# --- scalars, points, encodings -------------------------------------------------------
def scalar_from_bytes(curve, d):
    """The private scalar of d (exactly curve.size bytes); ValueError unless 1 <= d <= n-1."""
    if len(d) != curve.size:
        raise ValueError("bad private key length")
    k = int.from_bytes(bytes(d), "big")
    if not 0 < k < curve.n:
        raise ValueError("private key out of range")
    return k


def check_point(curve, x, y):
    """(x, y) as integers when it is a point of the curve; ValueError otherwise."""
    size = curve.size
    if len(x) != size or len(y) != size:
        raise ValueError("bad point length")
    p = curve.p
    xi = int.from_bytes(bytes(x), "big")
    yi = int.from_bytes(bytes(y), "big")
    if xi >= p or yi >= p:
        raise ValueError("point coordinate not below p")
    if (yi * yi - (xi * xi - 3) * xi - curve.b) % p:
        raise ValueError("point not on the curve")
    return xi, yi


def encode_point(curve, x, y):
    """SEC1 uncompressed encoding: 04 || x || y."""
    return b"\x04" + bytes(x) + bytes(y)


def decode_point(curve, data):
    """(x, y) bytes of a SEC1 uncompressed point, validated; ValueError otherwise."""
    size = curve.size
    if len(data) != 1 + 2 * size or data[0] != 4:
        raise ValueError("not an uncompressed point")
    x = bytes(data[1:1 + size])
    y = bytes(data[1 + size:])
    check_point(curve, x, y)
    return x, y


def multiply(curve, k, x, y):
    """Jacobian k * (x, y) for an integer 1 <= k < n and a validated point."""
    scalar = k.to_bytes(curve.size, "big")
    xs, ys = _odd_multiples(curve, x, y)
    return _run(curve.p, _naf_steps(scalar, curve.size, curve.bits), xs, ys, None)


def multiply_base(curve, k):
    """Jacobian k * G for an integer 1 <= k < n (the comb where the curve has one)."""
    if not curve.comb_teeth:
        return multiply(curve, k, curve.gx, curve.gy)
    if curve.comb is None:
        precompute(curve)
    teeth = curve.comb_teeth
    columns = (curve.bits + teeth - 1) // teeth
    steps = _comb_steps(k.to_bytes(curve.size, "big"), curve.size, teeth, columns)
    xs, ys = curve.comb
    return _run(curve.p, steps, xs, ys, None)


def public(curve, d):
    """(x, y) bytes of the public key of private key d (bytes)."""
    X, Y, Z = multiply_base(curve, scalar_from_bytes(curve, d))
    x, y = _to_affine(curve.p, X, Y, Z)
    return x.to_bytes(curve.size, "big"), y.to_bytes(curve.size, "big")


def generate(curve, random_bytes):
    """(d, x, y): a private key drawn uniformly from 1..n-1 by rejection sampling, and its public key."""
    while True:
        d = random_bytes(curve.size)
        k = int.from_bytes(bytes(d), "big")
        if 0 < k < curve.n:
            break
    x, y = public(curve, d)
    return bytes(d), x, y


def ecdh(curve, d, peer_x, peer_y):
    """The x coordinate of d * peer (bytes); ValueError for a bad key or point."""
    k = scalar_from_bytes(curve, d)
    px, py = check_point(curve, peer_x, peer_y)
    X, _, Z = multiply(curve, k, px, py)
    if not Z:  # cannot happen for a point of prime order n and 0 < k < n
        raise ValueError("shared point at infinity")
    return _to_affine_x(curve.p, X, Z).to_bytes(curve.size, "big")


# --- ECDSA (P-256 with SHA-256) --------------------------------------------------------
def _hmac_sha256(key, data):
    """HMAC-SHA-256 for the 32-byte keys of RFC 6979 (one block of pad)."""
    inner = bytearray(64)
    outer = bytearray(64)
    for i in range(32):
        inner[i] = key[i] ^ 0x36
        outer[i] = key[i] ^ 0x5C
    for i in range(32, 64):
        inner[i] = 0x36
        outer[i] = 0x5C
    h = hashlib.sha256(inner)
    h.update(data)
    o = hashlib.sha256(outer)
    o.update(h.digest())
    for i in range(64):
        inner[i] = 0
        outer[i] = 0
    return o.digest()


def nonces(curve, d, digest, extra=b""):
    """RFC 6979 section 3.2 candidates k (1 <= k < n) for the key d and a digest of curve.size
    bytes; extra is the additional data k' of section 3.6 (the hedge), empty for RFC vectors."""
    size = curve.size
    x = scalar_from_bytes(curve, d).to_bytes(size, "big")
    h = (int.from_bytes(digest, "big") % curve.n).to_bytes(size, "big")  # bits2octets
    v = b"\x01" * 32
    key = bytes(32)
    key = _hmac_sha256(key, v + b"\x00" + x + h + bytes(extra))
    v = _hmac_sha256(key, v)
    key = _hmac_sha256(key, v + b"\x01" + x + h + bytes(extra))
    v = _hmac_sha256(key, v)
    while True:
        t = b""
        while len(t) < size:
            v = _hmac_sha256(key, v)
            t += v
        k = int.from_bytes(t[:size], "big")
        if 0 < k < curve.n:
            yield k
        key = _hmac_sha256(key, v + b"\x00")
        v = _hmac_sha256(key, v)


def _der_integer(value, size):
    raw = value.to_bytes(size, "big")
    i = 0
    while i < size - 1 and raw[i] == 0:
        i += 1
    raw = raw[i:]
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return b"\x02" + bytes((len(raw),)) + raw


def der_signature(r, s, size=32):
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (DER), for P-256 sizes."""
    body = _der_integer(r, size) + _der_integer(s, size)
    return b"\x30" + bytes((len(body),)) + body


def sign_digest(curve, d, digest, extra=b""):
    """(r, s) of ECDSA over a SHA-256 digest, k from RFC 6979 with extra as k' (section 3.6)."""
    n = curve.n
    k_d = scalar_from_bytes(curve, d)
    e = int.from_bytes(digest, "big")  # bits2int: the digest has exactly n's 256 bits
    for k in nonces(curve, d, digest, extra):
        X, _, Z = multiply_base(curve, k)
        r = _to_affine_x(curve.p, X, Z) % n
        if not r:
            continue
        s = _inverse(k, n) * (e + r * k_d) % n
        if s:
            return r, s


def sign(curve, d, message, random_bytes=None):
    """DER ECDSA-SHA-256 signature of message. With random_bytes, 32 fresh random bytes are the
    hedge k' of RFC 6979 section 3.6: k stays safe when the RNG is weak (it is a function of the
    key and message at worst) and is not a pure function of them when the RNG works."""
    if curve is not P256:
        raise ValueError("ECDSA is offered for P-256 only")
    extra = b"" if random_bytes is None else bytes(random_bytes(32))
    r, s = sign_digest(curve, d, hashlib.sha256(bytes(message)).digest(), extra)
    return der_signature(r, s, curve.size)


# --- the Platform's functions -------------------------------------------------------------
def p256_generate(random_bytes):
    return generate(P256, random_bytes)


def p256_public(private):
    return public(P256, private)


def p256_ecdh(private, peer_x, peer_y):
    return ecdh(P256, private, peer_x, peer_y)


def p256_sign(private, message, random_bytes):
    return sign(P256, private, message, random_bytes)


def p384_generate(random_bytes):
    return generate(P384, random_bytes)


def p384_public(private):
    return public(P384, private)


def p384_ecdh(private, peer_x, peer_y):
    return ecdh(P384, private, peer_x, peer_y)
