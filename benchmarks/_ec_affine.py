"""The baseline of bench_ec.py: P-256 scalar multiplication as it is usually first written, in
affine coordinates with double-and-add and one modular inversion per point operation (the
shape of the host's sealcodes.backends.fido2.p256, with pow(v, p - 2, p) as the inverse:
MicroPython's pow(v, -1, p) returns 0). MicroPython-compatible; not used by the firmware."""

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _inverse(v):
    return pow(v, P - 2, P)


def point_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 - 3) * _inverse(2 * y1) % P
    else:
        lam = (y2 - y1) * _inverse(x2 - x1) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def point_mul(k, point):
    result = None
    addend = point
    while k:
        if k & 1:
            result = point_add(result, addend)
        addend = point_add(addend, addend)
        k >>= 1
    return result
