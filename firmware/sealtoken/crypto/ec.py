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
  - the generator of P-256 uses a signed comb (Lim-Lee with two blocks, every digit +1 or -1,
    one table of 64 affine points, built on first use or by precompute()): 21 doublings and
    44 additions per key;
  - any other point uses signed digits (width-5 NAF) over an affine table of its odd
    multiples 1P, 3P, ... 15P (made with one inversion for all of them; a negative digit
    negates y on the fly): 256 doublings and about 43 additions, each a mixed (Z2 = 1) one;
  - scalars are recoded in small integers, so no big integer is shifted per bit;
  - inverses by Lehmer's extended Euclidean algorithm: most of its steps in small integers.

The peer points of ECDH are validated (coordinates below p, on the curve; with
cofactor 1 that also puts them in the group); infinity cannot be encoded as (x, y).
"""

import hashlib
import struct

from sealtoken.core.hmac import hmac_sha256

# pow(z, -1, p) is not used for inverses: it silently returns 0 on MicroPython 1.29
_NAF_WIDTH = 5                     # signed digits of points other than the comb's generator
_NAF_POINTS = 1 << (_NAF_WIDTH - 2)  # table entries 1..8: 1P, 3P, ... 15P
_NEG = 0x80                        # a step's table index with this bit adds the entry's negative
# bits of the leading parts Lehmer's inversion works on: they and its cofactors stay small
# integers (62 bits on a 64-bit port, 30 on a 32-bit board such as the RP2040; the pointer size
# tells which)
_LEHMER_BITS = 60 if struct.calcsize("P") >= 8 else 28
_LEHMER_TOP = 1 << _LEHMER_BITS


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
        self.comb_teeth = comb_teeth  # rows of the generator's signed comb; 0: no comb, the NAF
        self.comb = None              # the comb's packed table (_pack) once built
        # the comb's columns per block: 2 * teeth * columns signed digits cover every scalar
        self.comb_columns = (self.bits + 2 * comb_teeth - 1) // (2 * comb_teeth) if comb_teeth else 0


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
def _run(p, steps, xs, ys, zs, size=0):
    """Run steps over a table of points and return the Jacobian result (X, Y, Z).

    steps is a bytearray of pairs (m, i): double the accumulator m times, then add table
    point j = i & 0x7F when i > 0, its negative when i has the bit _NEG. Point j is
    (xs[j], ys[j], zs[j]), or affine when zs is None; with size, xs is a packed affine table
    (_pack) of coordinates of size bytes. The accumulator starts at infinity; Z == 0 in the
    result means infinity.
    """
    if size:
        size <<= 3  # bits of y in a packed entry
        low = (1 << size) - 1
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
        j = i & 0x7F
        if size:
            j -= 1
            x2 = xs[j >> 3][j & 7]
            y2 = x2 & low
            x2 >>= size
            z2 = 1
        else:
            x2 = xs[j]
            y2 = ys[j]
            z2 = 1 if zs is None else zs[j]
        if i >= _NEG:
            y2 = p - y2
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


def _small_bits(x):
    """Bit length of a small integer x >= 0."""
    n = 0
    while x >= 256:
        x >>= 8
        n += 8
    while x:
        x >>= 1
        n += 1
    return n


def _inverse(z, m):
    """1/z mod m (z not a multiple of m): the extended Euclidean algorithm in Lehmer's form (Knuth,
    TAOCP 4.5.2, Algorithm L). The quotients come from the leading _LEHMER_BITS bits of the two
    remainders, in small integers, for as long as both bounds of Knuth's test agree on them; their
    2x2 matrix is then applied to the big remainders and to the cofactors of z at once (about every
    _LEHMER_BITS / 2 bits). When the test accepts no quotient, one exact division step; once the
    remainders are small, exact steps in small integers to the end. Less garbage and faster on
    MicroPython than one big-integer division per quotient (pow(z, m - 2, m) is slower still)."""
    a = m
    b = z % m
    sa = 0       # a = sa * z (mod m)
    sb = 1       # b = sb * z (mod m)
    shift = 0    # the leading parts are a >> shift and b >> shift
    x = a
    while x >= _LEHMER_TOP:
        x >>= _LEHMER_BITS
        shift += _LEHMER_BITS
    shift += _small_bits(x) - _LEHMER_BITS
    while b:
        if shift > 0:
            x = a >> shift
            if x < _LEHMER_TOP >> 8:  # a lost bits since: move the window down to its top
                shift -= _LEHMER_BITS - _small_bits(x)
                if shift < 0:
                    shift = 0
                x = a >> shift
            y = b >> shift
        else:
            x = a
            y = b
        A = 1
        B = 0
        C = 0
        D = 1
        while y:
            if shift > 0:
                # (x + A) // (y + C) and (x + B) // (y + D) bound the quotient of the big numbers
                yc = y + C
                yd = y + D
                if yc <= 0 or yd <= 0:
                    break
                q = (x + A) // yc
                if q != (x + B) // yd:
                    break
            else:
                q = x // y  # a and b are small integers: exact steps to the end
            t = A - q * C
            A = C
            C = t
            t = B - q * D
            B = D
            D = t
            t = x - q * y
            x = y
            y = t
        if B == 0:
            # no quotient is certain from the leading parts (a large one): one exact step
            q, r = divmod(a, b)
            a = b
            b = r
            t = sa - q * sb
            sa = sb
            sb = t
        else:
            t = A * a + B * b
            b = C * a + D * b
            a = t
            t = A * sa + B * sb
            sb = C * sa + D * sb
            sa = t
    if a != 1:
        raise ValueError("not invertible")
    return sa % m


def _emit(steps, doublings, index):
    while doublings > 255:
        steps.append(255)
        steps.append(0)
        doublings -= 255
    steps.append(doublings)
    steps.append(index)


def _naf_steps(scalar, size, bits):
    """Steps of the width-5 NAF of a scalar (bytes) over the table of _odd_multiples: digits are odd,
    -15..15, at least 5 positions apart. Recoded from the least significant bit in small integers:
    acc holds the rest of the scalar from position i on, as far as its bytes are loaded (a carry
    into bytes not yet loaded stays above them in acc, and the next byte is added to it)."""
    # the digits from the least significant up: position (two bytes) and digit + 16, allocated at once
    # (a growing list is copied to twice its size, more than a fragmented heap may offer in one piece)
    found = bytearray(3 * (bits // _NAF_WIDTH + 2))
    count = 0
    acc = 0
    loaded = 0   # bits of the scalar in acc, from position i on
    j = size - 1  # the next byte to load (the last one is the least significant)
    i = 0
    while True:
        if loaded < 8 and j >= 0:
            acc += scalar[j] << loaded
            loaded += 8
            j -= 1
        if not acc & 1:
            if not acc and j < 0:
                break
            acc >>= 1
            loaded -= 1
            i += 1
            continue
        d = acc & 31
        if d >= 16:
            d -= 32
        acc -= d  # a multiple of 32 now
        found[count] = i >> 8
        found[count + 1] = i & 0xFF
        found[count + 2] = d + 16
        count += 3
        acc >>= _NAF_WIDTH
        loaded -= _NAF_WIDTH
        i += _NAF_WIDTH
    steps = bytearray()
    k = count - 3
    above = -1  # the position of the digit above (none before the top one)
    while k >= 0:
        i = found[k] << 8 | found[k + 1]
        d = found[k + 2] - 16
        _emit(steps, above - i if above >= 0 else 0, (d + 1) >> 1 if d > 0 else _NEG | ((1 - d) >> 1))
        above = i
        k -= 3
    _emit(steps, above if above > 0 else 0, 0)
    return steps


def _comb_steps(curve, k):
    """Steps of the generator's signed comb for an odd scalar k < 2^B, B = 2 * teeth * columns (264).

    k = sum of s_j 2^j over j < B with every s_j = +1 or -1: s_j = +1 where bit j of
    k' = (k + 2^B - 1) / 2 is set. Position j = (2 r + u) * columns + c is row r, block u, column
    c. Column c of block u adds the sum over the rows of s 2^(r * 2 columns + u columns) G: a table
    entry when the top row's sign is +1 (entry 1 + u * half + the lower rows' bits), else the
    negative of the entry with every sign flipped. Columns go from the top, block 1 before block 0,
    one doubling between columns (none while the accumulator is infinity)."""
    teeth = curve.comb_teeth
    columns = curve.comb_columns
    pieces = 2 * teeth
    kk = (k + (1 << (pieces * columns)) - 1) >> 1
    # piece m = 2 r + u: the bits of row r, block u, as a small integer (columns bits)
    mask = (1 << columns) - 1
    part = [0] * pieces
    m = 0
    while m < pieces:
        part[m] = kk & mask
        kk >>= columns
        m += 1
    half = 1 << (teeth - 1)
    low = half - 1
    steps = bytearray(4 * columns)
    c = columns - 1
    s = 0
    while c >= 0:
        u = 1
        while u >= 0:
            index = 0
            m = pieces - 2 + u
            while m >= 0:
                index = index << 1 | (part[m] >> c) & 1
                m -= 2
            steps[s] = u  # block 1 first: the column's doubling
            if index & half:
                steps[s + 1] = 1 + u * half + (index & low)
            else:
                steps[s + 1] = _NEG | (1 + u * half + (index ^ low))
            s += 2
            u -= 1
        c -= 1
    return steps


def _to_affine_x(p, X, Z):
    zi = _inverse(Z, p)
    return X * zi * zi % p


def _to_affine(p, X, Y, Z):
    zi = _inverse(Z, p)
    zi2 = zi * zi % p
    return X * zi2 % p, Y * zi2 % p * zi % p


def _batch_affine(p, xs, ys, zs, first, count):
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
        xs[i] = xs[i] * zi2 % p
        ys[i] = ys[i] * zi2 % p * zi % p
        j -= 1


def _pack(size, xs, ys, count, table=None, offset=0):
    """Affine entries 1 .. count as entries offset + 1 .. offset + count of a packed table for _run
    (a new one without table): entry e is x * 2^(8 size) + y, one integer with exactly its digits
    (through bytes: a remainder keeps the digit storage of its dividend, twice its size): three
    quarters of the heap of two integers a point on a 64-bit port, five sixths on a 32-bit one.
    Entry e is table[(e - 1) >> 3][(e - 1) & 7]: MicroPython's collector marks from a stack of 64
    entries, and a list of more objects than that overflows it, which costs a scan of the whole heap
    at every collection from then on (measured: twice the time of the collections of a FIDO request)."""
    if table is None:
        table = [[0] * 8 for _ in range((count + 7) >> 3)]
    for j in range(1, count + 1):
        e = offset + j - 1
        table[e >> 3][e & 7] = int.from_bytes(xs[j].to_bytes(size, "big") + ys[j].to_bytes(size, "big"), "big")
    return table


def _odd_multiples(curve, x, y):
    """Packed affine table (_pack) of P, 3P, ... 15P (entry i is (2i - 1)P) of a point of prime
    order (no entry is infinity); a step takes an entry's negative with the bit _NEG."""
    p = curve.p
    count = _NAF_POINTS
    xs = [0] * (count + 1)
    ys = [0] * (count + 1)
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
    _batch_affine(p, xs, ys, zs, 2, count - 1)
    return _pack(curve.size, xs, ys, count)


def precompute(curve=P256):
    """Build the comb table of the curve's generator now (else on first use): a board may call
    this at start-up so that the first key generation is not the slow one.

    Entry 1 + u * half + i (half = 2^(teeth - 1), i < half) is T_u(i) = sum over the rows r of
    s_r 2^(r * 2 columns + u columns) G, with s = +1 for the top row and for the rows r whose bit
    is set in i, -1 for the others (_comb_steps). Built block by block (one inversion each), in
    lists of half + 1 entries: a heap that earlier work left in pieces may lack room for larger
    ones (the main firmware's 512-byte lists here failed in the sequences' smallest heap)."""
    if curve.comb is not None or not curve.comb_teeth:
        return
    p = curve.p
    teeth = curve.comb_teeth
    columns = curve.comb_columns
    half = 1 << (teeth - 1)
    table = [[0] * 8 for _ in range(half >> 2)]  # _pack's rows of 8 entries
    # Q_m = 2^(m * columns) G for m < 2 teeth: row r of block u is Q_(2r + u)
    qx = [curve.gx]
    qy = [curve.gy]
    qz = [1]
    steps = bytearray((0, 1))
    _emit(steps, columns, 0)
    for m in range(1, 2 * teeth):
        x, y, z = _run(p, steps, (0, qx[m - 1]), (0, qy[m - 1]), (0, qz[m - 1]))
        qx.append(x)
        qy.append(y)
        qz.append(z)
    prev = teeth + 1  # the view's slot of the entry an addition starts from
    for u in range(2):
        xs = [0] * (half + 1)
        ys = [0] * (half + 1)
        zs = [0] * (half + 1)
        view_x = [0] * (teeth + 2)
        view_y = [0] * (teeth + 2)
        view_z = [0] * (teeth + 2)
        for r in range(teeth):
            view_x[r + 1] = qx[2 * r + u]
            view_y[r + 1] = qy[2 * r + u]
            view_z[r + 1] = qz[2 * r + u]
        # T_u(0): the top row's point minus all the others (row r is slot r + 1)
        steps = bytearray((0, teeth))
        for r in range(1, teeth):
            steps.append(0)
            steps.append(_NEG | r)
        xs[1], ys[1], zs[1] = _run(p, steps, view_x, view_y, view_z)
        # T_u(i) = T_u(i without its lowest bit, row r's) + 2 (row r's point): slot r + 1 doubled
        for r in range(1, teeth):
            view_x[r], view_y[r], view_z[r] = _run(p, bytes((0, r, 1, 0)), view_x, view_y, view_z)
        for i in range(1, half):
            low = i & -i
            slot = 1
            while low > 1:
                low >>= 1
                slot += 1
            view_x[prev] = xs[1 + (i & (i - 1))]
            view_y[prev] = ys[1 + (i & (i - 1))]
            view_z[prev] = zs[1 + (i & (i - 1))]
            xs[1 + i], ys[1 + i], zs[1 + i] = _run(p, bytes((0, prev, 0, slot)), view_x, view_y, view_z)
        _batch_affine(p, xs, ys, zs, 1, half)
        _pack(curve.size, xs, ys, half, table, u * half)
    curve.comb = table


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
    return _run(curve.p, _naf_steps(scalar, curve.size, curve.bits), _odd_multiples(curve, x, y), None, None,
                curve.size)


def multiply_base(curve, k):
    """Jacobian k * G for an integer 1 <= k < n (the comb where the curve has one)."""
    if not curve.comb_teeth:
        return multiply(curve, k, curve.gx, curve.gy)
    if curve.comb is None:
        precompute(curve)
    # the signed comb takes odd scalars: n is odd and (k + n) G = k G (k + n < 2^257). No branch on
    # the parity: an even k gets n added, an odd one 0, by the same operations
    k += curve.n * (1 - (k & 1))
    return _run(curve.p, _comb_steps(curve, k), curve.comb, None, None, curve.size)


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
def nonces(curve, d, digest, extra=b""):
    """RFC 6979 section 3.2 candidates k (1 <= k < n) for the key d and a digest of curve.size
    bytes; extra is the additional data k' of section 3.6 (the hedge), empty for RFC vectors."""
    size = curve.size
    x = scalar_from_bytes(curve, d).to_bytes(size, "big")
    h = (int.from_bytes(digest, "big") % curve.n).to_bytes(size, "big")  # bits2octets
    v = b"\x01" * 32
    key = bytes(32)
    key = hmac_sha256(key, v + b"\x00" + x + h + bytes(extra))
    v = hmac_sha256(key, v)
    key = hmac_sha256(key, v + b"\x01" + x + h + bytes(extra))
    v = hmac_sha256(key, v)
    while True:
        t = b""
        while len(t) < size:
            v = hmac_sha256(key, v)
            t += v
        k = int.from_bytes(t[:size], "big")
        if 0 < k < curve.n:
            yield k
        key = hmac_sha256(key, v + b"\x00")
        v = hmac_sha256(key, v)


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
