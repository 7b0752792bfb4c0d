"""SHA-1 and SHA-512 (FIPS 180-4) in pure Python, for MicroPython ports whose hashlib lacks them
(sha512 on every port; sha1 on ports built without it). Slow: only OATH credentials of those
hashes use them on a board.

A module of its own, imported only when one is needed: a board that needs a fallback hash does not
also load the simulator Platform (sealtoken.core.simplatform) that used to hold them, about 8 KiB of
heap on a 32-bit port (docs/board.md, "Heap").
"""

import struct

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF


def _pad(data, block, length_bytes):
    n = len(data)
    out = bytearray(data)
    out.append(0x80)
    while (len(out) + length_bytes) % block:
        out.append(0)
    bits = n * 8
    out.extend(bytes(length_bytes - 8))
    out.extend(struct.pack(">Q", bits))
    return out


def sha1(data):
    """SHA-1 (FIPS 180-4), for platforms whose hashlib lacks it. Slow; tests only."""
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    msg = _pad(data, 64, 8)
    for off in range(0, len(msg), 64):
        w = list(struct.unpack(">16I", msg[off:off + 64]))
        for t in range(16, 80):
            x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
            w.append(((x << 1) | (x >> 31)) & _M32)
        a, b, c, d, e = h
        for t in range(80):
            if t < 20:
                f, k = (b & c) | ((b ^ _M32) & d), 0x5A827999
            elif t < 40:
                f, k = b ^ c ^ d, 0x6ED9EBA1
            elif t < 60:
                f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
            else:
                f, k = b ^ c ^ d, 0xCA62C1D6
            tmp = (((a << 5) | (a >> 27)) + (f & _M32) + e + k + w[t]) & _M32
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _M32, a, tmp
        h = [(x + y) & _M32 for x, y in zip(h, (a, b, c, d, e))]
    return struct.pack(">5I", *h)


def _iroot(n, k):
    """floor(n ** (1/k)) for integers (Newton's method)."""
    x = 1
    while x ** k <= n:  # a start above the root
        x <<= 1
    while True:
        y = ((k - 1) * x + n // (x ** (k - 1))) // k
        if y >= x:
            return x
        x = y


_SHA512_CONST = []


def _sha512_constants():
    """(H0, K) of SHA-512: fractional bits of square / cube roots of the first primes."""
    if not _SHA512_CONST:
        primes = []
        n = 2
        while len(primes) < 80:
            if all(n % p for p in primes):
                primes.append(n)
            n += 1
        h0 = [_iroot(p << 128, 2) & _M64 for p in primes[:8]]
        k = [_iroot(p << 192, 3) & _M64 for p in primes]
        _SHA512_CONST.append((h0, k))
    return _SHA512_CONST[0]


def _rotr64(x, n):
    return ((x >> n) | (x << (64 - n))) & _M64


def sha512(data):
    """SHA-512 (FIPS 180-4), for platforms whose hashlib lacks it. Slow; tests only."""
    h0, k = _sha512_constants()
    h = list(h0)
    msg = _pad(data, 128, 16)
    for off in range(0, len(msg), 128):
        w = list(struct.unpack(">16Q", msg[off:off + 128]))
        for t in range(16, 80):
            s0 = _rotr64(w[t - 15], 1) ^ _rotr64(w[t - 15], 8) ^ (w[t - 15] >> 7)
            s1 = _rotr64(w[t - 2], 19) ^ _rotr64(w[t - 2], 61) ^ (w[t - 2] >> 6)
            w.append((w[t - 16] + s0 + w[t - 7] + s1) & _M64)
        a, b, c, d, e, f, g, hh = h
        for t in range(80):
            s1 = _rotr64(e, 14) ^ _rotr64(e, 18) ^ _rotr64(e, 41)
            ch = (e & f) ^ ((e ^ _M64) & g)
            t1 = (hh + s1 + ch + k[t] + w[t]) & _M64
            s0 = _rotr64(a, 28) ^ _rotr64(a, 34) ^ _rotr64(a, 39)
            maj = (a & b) ^ (a & c) ^ (b & c)
            t2 = (s0 + maj) & _M64
            hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M64, c, b, a, (t1 + t2) & _M64
        h = [(x + y) & _M64 for x, y in zip(h, (a, b, c, d, e, f, g, hh))]
    return struct.pack(">8Q", *h)
