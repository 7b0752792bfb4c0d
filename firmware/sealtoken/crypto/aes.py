"""AES-256 in CBC mode without padding, in pure Python (MicroPython-compatible).

What CTAP's PIN/UV protocols and PIV's management key need:
    aes256_cbc_encrypt(key, iv, data) / aes256_cbc_decrypt(key, iv, data)
with a 32-byte key, a 16-byte IV and len(data) a multiple of 16 (ValueError otherwise).

Byte-oriented (FIPS 197): S-box lookups and xtime on bytes, the state in a bytearray, so
every value stays a small integer on 32-bit boards too (32-bit T-table words would be
big integers there). Table lookups indexed by secret bytes are NOT constant-time; the
round keys and state are wiped after each call.
"""


from sealtoken.core.hmac import wipe


def _xtime(a):
    a <<= 1
    return (a ^ 0x11B) if a & 0x100 else a


def _tables():
    """(S-box, inverse S-box, xtime) as 256-byte tables, computed from GF(2^8) arithmetic."""
    # walk the multiplicative group with the generator 3: exp[i] = 3^i
    exp = bytearray(256)
    log = bytearray(256)
    a = 1
    for i in range(255):
        exp[i] = a
        log[a] = i
        a ^= _xtime(a)
    sbox = bytearray(256)
    inv_sbox = bytearray(256)
    for x in range(256):
        b = exp[(255 - log[x]) % 255] if x else 0  # multiplicative inverse, 0 -> 0
        s = b
        for _ in range(4):  # affine transform: b ^ rotl(b,1) ^ ... ^ rotl(b,4) ^ 0x63
            b = ((b << 1) | (b >> 7)) & 0xFF
            s ^= b
        s ^= 0x63
        sbox[x] = s
        inv_sbox[s] = x
    xt = bytearray(256)
    for x in range(256):
        xt[x] = _xtime(x)
    return bytes(sbox), bytes(inv_sbox), bytes(xt)


_SBOX, _INV_SBOX, _XT = _tables()
# state byte of column c, row r is s[4c + r]; ShiftRows takes row r of column c from column
# c + r: the input positions of output column c are _SHIFT[4c .. 4c+3]
_SHIFT = bytes((0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11))
_INV_SHIFT = bytes((0, 13, 10, 7, 4, 1, 14, 11, 8, 5, 2, 15, 12, 9, 6, 3))


def expand_key(key):
    """The 15 round keys of AES-256 (240 bytes, a bytearray the caller wipes)."""
    if len(key) != 32:
        raise ValueError("AES-256 needs a 32-byte key")
    sbox = _SBOX
    w = bytearray(240)
    w[0:32] = key
    rcon = 1
    for i in range(32, 240, 4):
        t0 = w[i - 4]
        t1 = w[i - 3]
        t2 = w[i - 2]
        t3 = w[i - 1]
        if i % 32 == 0:
            t0, t1, t2, t3 = sbox[t1] ^ rcon, sbox[t2], sbox[t3], sbox[t0]
            rcon = _xtime(rcon)
        elif i % 32 == 16:
            t0, t1, t2, t3 = sbox[t0], sbox[t1], sbox[t2], sbox[t3]
        w[i] = w[i - 32] ^ t0
        w[i + 1] = w[i - 31] ^ t1
        w[i + 2] = w[i - 30] ^ t2
        w[i + 3] = w[i - 29] ^ t3
    return w


def encrypt_block(w, s, t):
    """Encrypt the 16 bytes of bytearray s in place with round keys w; t is a 16-byte scratch.

    Rounds 1-13 are written out column by column (the byte positions are ShiftRows': _SHIFT): on
    MicroPython a loop over the columns, with its index arithmetic, took a fifth more time."""
    sbox = _SBOX
    xt = _XT
    for i in range(16):
        s[i] ^= w[i]
    for o in range(16, 224, 16):
        # SubBytes, ShiftRows, then MixColumns (b_r = a_r ^ (a0^a1^a2^a3) ^ xtime(a_r ^ a_r+1))
        # and AddRoundKey
        a0 = sbox[s[0]]
        a1 = sbox[s[5]]
        a2 = sbox[s[10]]
        a3 = sbox[s[15]]
        x = a0 ^ a1 ^ a2 ^ a3
        t[0] = a0 ^ x ^ xt[a0 ^ a1] ^ w[o]
        t[1] = a1 ^ x ^ xt[a1 ^ a2] ^ w[o + 1]
        t[2] = a2 ^ x ^ xt[a2 ^ a3] ^ w[o + 2]
        t[3] = a3 ^ x ^ xt[a3 ^ a0] ^ w[o + 3]
        a0 = sbox[s[4]]
        a1 = sbox[s[9]]
        a2 = sbox[s[14]]
        a3 = sbox[s[3]]
        x = a0 ^ a1 ^ a2 ^ a3
        t[4] = a0 ^ x ^ xt[a0 ^ a1] ^ w[o + 4]
        t[5] = a1 ^ x ^ xt[a1 ^ a2] ^ w[o + 5]
        t[6] = a2 ^ x ^ xt[a2 ^ a3] ^ w[o + 6]
        t[7] = a3 ^ x ^ xt[a3 ^ a0] ^ w[o + 7]
        a0 = sbox[s[8]]
        a1 = sbox[s[13]]
        a2 = sbox[s[2]]
        a3 = sbox[s[7]]
        x = a0 ^ a1 ^ a2 ^ a3
        t[8] = a0 ^ x ^ xt[a0 ^ a1] ^ w[o + 8]
        t[9] = a1 ^ x ^ xt[a1 ^ a2] ^ w[o + 9]
        t[10] = a2 ^ x ^ xt[a2 ^ a3] ^ w[o + 10]
        t[11] = a3 ^ x ^ xt[a3 ^ a0] ^ w[o + 11]
        a0 = sbox[s[12]]
        a1 = sbox[s[1]]
        a2 = sbox[s[6]]
        a3 = sbox[s[11]]
        x = a0 ^ a1 ^ a2 ^ a3
        t[12] = a0 ^ x ^ xt[a0 ^ a1] ^ w[o + 12]
        t[13] = a1 ^ x ^ xt[a1 ^ a2] ^ w[o + 13]
        t[14] = a2 ^ x ^ xt[a2 ^ a3] ^ w[o + 14]
        t[15] = a3 ^ x ^ xt[a3 ^ a0] ^ w[o + 15]
        s[:] = t
    shift = _SHIFT
    for i in range(16):  # round 14: no MixColumns
        t[i] = sbox[s[shift[i]]] ^ w[224 + i]
    s[:] = t


def decrypt_block(w, s, t):
    """Decrypt the 16 bytes of bytearray s in place (the inverse cipher of FIPS 197 5.3), rounds
    13-1 written out as in encrypt_block (the byte positions are InvShiftRows': _INV_SHIFT)."""
    inv_sbox = _INV_SBOX
    xt = _XT
    for i in range(16):
        s[i] ^= w[224 + i]
    for o in range(208, 0, -16):
        # InvShiftRows, InvSubBytes, AddRoundKey, then InvMixColumns = MixColumns after adding
        # 4*(a0^a2) to rows 0, 2 and 4*(a1^a3) to rows 1, 3
        a0 = inv_sbox[s[0]] ^ w[o]
        a1 = inv_sbox[s[13]] ^ w[o + 1]
        a2 = inv_sbox[s[10]] ^ w[o + 2]
        a3 = inv_sbox[s[7]] ^ w[o + 3]
        u = xt[xt[a0 ^ a2]]
        v = xt[xt[a1 ^ a3]]
        a0 ^= u
        a1 ^= v
        a2 ^= u
        a3 ^= v
        x = a0 ^ a1 ^ a2 ^ a3
        t[0] = a0 ^ x ^ xt[a0 ^ a1]
        t[1] = a1 ^ x ^ xt[a1 ^ a2]
        t[2] = a2 ^ x ^ xt[a2 ^ a3]
        t[3] = a3 ^ x ^ xt[a3 ^ a0]
        a0 = inv_sbox[s[4]] ^ w[o + 4]
        a1 = inv_sbox[s[1]] ^ w[o + 5]
        a2 = inv_sbox[s[14]] ^ w[o + 6]
        a3 = inv_sbox[s[11]] ^ w[o + 7]
        u = xt[xt[a0 ^ a2]]
        v = xt[xt[a1 ^ a3]]
        a0 ^= u
        a1 ^= v
        a2 ^= u
        a3 ^= v
        x = a0 ^ a1 ^ a2 ^ a3
        t[4] = a0 ^ x ^ xt[a0 ^ a1]
        t[5] = a1 ^ x ^ xt[a1 ^ a2]
        t[6] = a2 ^ x ^ xt[a2 ^ a3]
        t[7] = a3 ^ x ^ xt[a3 ^ a0]
        a0 = inv_sbox[s[8]] ^ w[o + 8]
        a1 = inv_sbox[s[5]] ^ w[o + 9]
        a2 = inv_sbox[s[2]] ^ w[o + 10]
        a3 = inv_sbox[s[15]] ^ w[o + 11]
        u = xt[xt[a0 ^ a2]]
        v = xt[xt[a1 ^ a3]]
        a0 ^= u
        a1 ^= v
        a2 ^= u
        a3 ^= v
        x = a0 ^ a1 ^ a2 ^ a3
        t[8] = a0 ^ x ^ xt[a0 ^ a1]
        t[9] = a1 ^ x ^ xt[a1 ^ a2]
        t[10] = a2 ^ x ^ xt[a2 ^ a3]
        t[11] = a3 ^ x ^ xt[a3 ^ a0]
        a0 = inv_sbox[s[12]] ^ w[o + 12]
        a1 = inv_sbox[s[9]] ^ w[o + 13]
        a2 = inv_sbox[s[6]] ^ w[o + 14]
        a3 = inv_sbox[s[3]] ^ w[o + 15]
        u = xt[xt[a0 ^ a2]]
        v = xt[xt[a1 ^ a3]]
        a0 ^= u
        a1 ^= v
        a2 ^= u
        a3 ^= v
        x = a0 ^ a1 ^ a2 ^ a3
        t[12] = a0 ^ x ^ xt[a0 ^ a1]
        t[13] = a1 ^ x ^ xt[a1 ^ a2]
        t[14] = a2 ^ x ^ xt[a2 ^ a3]
        t[15] = a3 ^ x ^ xt[a3 ^ a0]
        s[:] = t
    shift = _INV_SHIFT
    for i in range(16):  # round 0: no InvMixColumns
        t[i] = inv_sbox[s[shift[i]]] ^ w[i]
    s[:] = t


def _check(iv, data):
    if len(iv) != 16:
        raise ValueError("AES-CBC needs a 16-byte IV")
    if len(data) % 16:
        raise ValueError("AES-CBC without padding needs whole 16-byte blocks")


def _wipe(*buffers):
    for buf in buffers:
        wipe(buf)


def aes256_cbc_encrypt(key, iv, data):
    """AES-256-CBC encryption without padding."""
    _check(iv, data)
    w = expand_key(key)
    s = bytearray(iv)
    t = bytearray(16)
    out = bytearray(len(data))
    try:
        for off in range(0, len(data), 16):
            for i in range(16):
                s[i] ^= data[off + i]
            encrypt_block(w, s, t)
            out[off:off + 16] = s
        return bytes(out)
    finally:
        _wipe(w, s, t, out)


def aes256_cbc_decrypt(key, iv, data):
    """AES-256-CBC decryption without padding."""
    _check(iv, data)
    w = expand_key(key)
    prev = bytearray(iv)
    s = bytearray(16)
    t = bytearray(16)
    out = bytearray(len(data))
    try:
        for off in range(0, len(data), 16):
            s[:] = data[off:off + 16]
            decrypt_block(w, s, t)
            for i in range(16):
                out[off + i] = s[i] ^ prev[i]
            prev[:] = data[off:off + 16]
        return bytes(out)
    finally:
        _wipe(w, prev, s, t, out)
