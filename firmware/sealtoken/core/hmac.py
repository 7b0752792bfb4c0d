"""HMAC (RFC 2104), HKDF (RFC 5869) and the small helpers secrets need.

MicroPython-compatible. SHA-256 comes from hashlib (present on every MicroPython
port we target); other hashes go through ``platform.hash(name, data)`` so a
board can supply sha1 / sha512 itself.

    hmac(platform, "sha1", key, msg)     -> digest bytes (any platform hash)
    hmac_sha256(key, msg)                -> 32 bytes, no platform needed
    hkdf_sha256(salt, ikm, info, length) -> bytes
    ct_equal(a, b)                       -> constant-time comparison (for equal lengths)
    wipe(buf)                            -> overwrite a bytearray with zeros

Keys are copied into bytearray pads that are wiped before returning; callers
own (and should wipe) their own copies.
"""

import hashlib

# block sizes of the hashes a platform may offer (bytes)
BLOCK_SIZES = {"sha1": 64, "sha256": 64, "sha512": 128}
DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha512": 64}


_ZEROS = memoryview(bytes(256))


def wipe(buf):
    """Overwrite a bytearray with zeros, in place; other types are left alone.

    Copies from a zero block made at import, 256 bytes at a time (a loop of byte stores took 5x
    as long on MicroPython); only small objects are allocated, as the loop did, so a wipe in a
    `finally` does not fail for want of a large free block. If even those cannot be had, it
    stores byte by byte."""
    if isinstance(buf, bytearray):
        n = len(buf)
        try:
            if n <= 256:
                buf[:] = _ZEROS[:n]
                return
            at = 0
            while at < n:
                m = min(256, n - at)
                buf[at:at + m] = _ZEROS[:m]
                at += m
        except MemoryError:
            for i in range(n):
                buf[i] = 0


def ct_equal(a, b):
    """True when a == b; time depends only on the lengths, not on the contents."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


_IPAD = b"\x36" * 128
_OPAD = b"\x5c" * 128


def _pads(key, block, hash_key):
    """(ipad_key, opad_key) bytearrays of one block; the caller wipes them."""
    if len(key) > block:
        key = hash_key(key)
    # the pads' bytes past the key are the pad bytes themselves (key bytes 0): only the key's
    # bytes are computed, half of a block for the usual 32-byte key
    ipad = bytearray(_IPAD[:block])
    opad = bytearray(_OPAD[:block])
    for i in range(len(key)):
        k = key[i]
        ipad[i] = k ^ 0x36
        opad[i] = k ^ 0x5C
    return ipad, opad


def _sha256(data):
    return hashlib.sha256(data).digest()


def hmac_sha256(key, msg):
    """HMAC-SHA-256(key, msg), 32 bytes."""
    ipad, opad = _pads(key, 64, _sha256)
    try:
        inner = hashlib.sha256(ipad)
        inner.update(msg)
        outer = hashlib.sha256(opad)
        outer.update(inner.digest())
        return outer.digest()
    finally:
        wipe(ipad)
        wipe(opad)


def hmac(platform, name, key, msg):
    """HMAC with the platform hash `name` ('sha1', 'sha256', 'sha512')."""
    if name == "sha256":
        return hmac_sha256(key, msg)
    block = BLOCK_SIZES.get(name)
    if block is None:
        raise ValueError("unsupported hash")

    def hash_key(k):
        return platform.hash(name, bytes(k))

    ipad, opad = _pads(key, block, hash_key)
    try:
        ipad.extend(msg)
        inner = platform.hash(name, bytes(ipad))
        opad.extend(inner)
        return platform.hash(name, bytes(opad))
    finally:
        wipe(ipad)
        wipe(opad)


def hkdf_sha256(salt, ikm, info, length):
    """HKDF-SHA-256 (RFC 5869): extract with salt (b"" = 32 zero bytes), expand to length bytes."""
    if length < 0 or length > 255 * 32:
        raise ValueError("bad HKDF length")
    if not salt:
        salt = bytes(32)
    prk = hmac_sha256(salt, ikm)
    out = bytearray()
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_sha256(prk, block + info + bytes((counter,)))
        out.extend(block)
        counter += 1
    return bytes(out[:length])
