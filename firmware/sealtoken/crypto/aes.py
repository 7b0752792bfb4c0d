"""AES-256 in CBC mode without padding, in pure Python (MicroPython-compatible).

What CTAP's PIN/UV protocols and PIV's management key need:
    aes256_cbc_encrypt(key, iv, data) / aes256_cbc_decrypt(key, iv, data)
with a 32-byte key, a 16-byte IV and len(data) a multiple of 16 (ValueError otherwise).

Byte-oriented (FIPS 197): S-box lookups and xtime on bytes, so every value stays a small
integer on 32-bit boards too (32-bit T-table words would be big integers there). A block's
state is kept in 16 local variables with the round written out (no index arithmetic, no
ShiftRows table: about 1.4x faster on MicroPython than a loop over the columns of a
bytearray), at the cost of about 1.6 KB more bytecode. Table lookups indexed by secret
bytes are NOT constant-time; the round keys and buffers are wiped after each call and the
state's local variables zeroed after each block (the interpreter's own value stack is not).
"""


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
# c + r (InvShiftRows from c - r): the rounds below have these positions written out


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


def encrypt_block(w, s):
    """Encrypt the 16 bytes of bytearray s in place with round keys w. The state lives in 16 local
    small integers (s0..s15, then t0..t15 for the next round): constant indices, no ShiftRows table."""
    sbox = _SBOX
    xt = _XT
    s0 = s[0] ^ w[0]
    s1 = s[1] ^ w[1]
    s2 = s[2] ^ w[2]
    s3 = s[3] ^ w[3]
    s4 = s[4] ^ w[4]
    s5 = s[5] ^ w[5]
    s6 = s[6] ^ w[6]
    s7 = s[7] ^ w[7]
    s8 = s[8] ^ w[8]
    s9 = s[9] ^ w[9]
    s10 = s[10] ^ w[10]
    s11 = s[11] ^ w[11]
    s12 = s[12] ^ w[12]
    s13 = s[13] ^ w[13]
    s14 = s[14] ^ w[14]
    s15 = s[15] ^ w[15]
    o = 16
    while o < 224:
        a0 = sbox[s0]
        a1 = sbox[s5]
        a2 = sbox[s10]
        a3 = sbox[s15]
        x = a0 ^ a1 ^ a2 ^ a3
        t0 = a0 ^ x ^ xt[a0 ^ a1] ^ w[o]
        t1 = a1 ^ x ^ xt[a1 ^ a2] ^ w[o + 1]
        t2 = a2 ^ x ^ xt[a2 ^ a3] ^ w[o + 2]
        t3 = a3 ^ x ^ xt[a3 ^ a0] ^ w[o + 3]
        a0 = sbox[s4]
        a1 = sbox[s9]
        a2 = sbox[s14]
        a3 = sbox[s3]
        x = a0 ^ a1 ^ a2 ^ a3
        t4 = a0 ^ x ^ xt[a0 ^ a1] ^ w[o + 4]
        t5 = a1 ^ x ^ xt[a1 ^ a2] ^ w[o + 5]
        t6 = a2 ^ x ^ xt[a2 ^ a3] ^ w[o + 6]
        t7 = a3 ^ x ^ xt[a3 ^ a0] ^ w[o + 7]
        a0 = sbox[s8]
        a1 = sbox[s13]
        a2 = sbox[s2]
        a3 = sbox[s7]
        x = a0 ^ a1 ^ a2 ^ a3
        t8 = a0 ^ x ^ xt[a0 ^ a1] ^ w[o + 8]
        t9 = a1 ^ x ^ xt[a1 ^ a2] ^ w[o + 9]
        t10 = a2 ^ x ^ xt[a2 ^ a3] ^ w[o + 10]
        t11 = a3 ^ x ^ xt[a3 ^ a0] ^ w[o + 11]
        a0 = sbox[s12]
        a1 = sbox[s1]
        a2 = sbox[s6]
        a3 = sbox[s11]
        x = a0 ^ a1 ^ a2 ^ a3
        t12 = a0 ^ x ^ xt[a0 ^ a1] ^ w[o + 12]
        t13 = a1 ^ x ^ xt[a1 ^ a2] ^ w[o + 13]
        t14 = a2 ^ x ^ xt[a2 ^ a3] ^ w[o + 14]
        t15 = a3 ^ x ^ xt[a3 ^ a0] ^ w[o + 15]
        s0 = t0
        s1 = t1
        s2 = t2
        s3 = t3
        s4 = t4
        s5 = t5
        s6 = t6
        s7 = t7
        s8 = t8
        s9 = t9
        s10 = t10
        s11 = t11
        s12 = t12
        s13 = t13
        s14 = t14
        s15 = t15
        o += 16
    s[0] = sbox[s0] ^ w[224]
    s[1] = sbox[s5] ^ w[225]
    s[2] = sbox[s10] ^ w[226]
    s[3] = sbox[s15] ^ w[227]
    s[4] = sbox[s4] ^ w[228]
    s[5] = sbox[s9] ^ w[229]
    s[6] = sbox[s14] ^ w[230]
    s[7] = sbox[s3] ^ w[231]
    s[8] = sbox[s8] ^ w[232]
    s[9] = sbox[s13] ^ w[233]
    s[10] = sbox[s2] ^ w[234]
    s[11] = sbox[s7] ^ w[235]
    s[12] = sbox[s12] ^ w[236]
    s[13] = sbox[s1] ^ w[237]
    s[14] = sbox[s6] ^ w[238]
    s[15] = sbox[s11] ^ w[239]
    # the state's bytes out of the frame
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = s10 = s11 = 0
    s12 = s13 = s14 = s15 = t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0
    t8 = t9 = t10 = t11 = t12 = t13 = t14 = t15 = a0 = a1 = a2 = a3 = 0
    x = 0


def decrypt_block(w, s):
    """Decrypt the 16 bytes of bytearray s in place (the inverse cipher of FIPS 197 5.3), the state in
    local small integers as in encrypt_block."""
    inv_sbox = _INV_SBOX
    xt = _XT
    s0 = s[0] ^ w[224]
    s1 = s[1] ^ w[225]
    s2 = s[2] ^ w[226]
    s3 = s[3] ^ w[227]
    s4 = s[4] ^ w[228]
    s5 = s[5] ^ w[229]
    s6 = s[6] ^ w[230]
    s7 = s[7] ^ w[231]
    s8 = s[8] ^ w[232]
    s9 = s[9] ^ w[233]
    s10 = s[10] ^ w[234]
    s11 = s[11] ^ w[235]
    s12 = s[12] ^ w[236]
    s13 = s[13] ^ w[237]
    s14 = s[14] ^ w[238]
    s15 = s[15] ^ w[239]
    o = 208
    while o:
        a0 = inv_sbox[s0] ^ w[o]
        a1 = inv_sbox[s13] ^ w[o + 1]
        a2 = inv_sbox[s10] ^ w[o + 2]
        a3 = inv_sbox[s7] ^ w[o + 3]
        u = xt[xt[a0 ^ a2]]
        v = xt[xt[a1 ^ a3]]
        a0 ^= u
        a1 ^= v
        a2 ^= u
        a3 ^= v
        x = a0 ^ a1 ^ a2 ^ a3
        t0 = a0 ^ x ^ xt[a0 ^ a1]
        t1 = a1 ^ x ^ xt[a1 ^ a2]
        t2 = a2 ^ x ^ xt[a2 ^ a3]
        t3 = a3 ^ x ^ xt[a3 ^ a0]
        a0 = inv_sbox[s4] ^ w[o + 4]
        a1 = inv_sbox[s1] ^ w[o + 5]
        a2 = inv_sbox[s14] ^ w[o + 6]
        a3 = inv_sbox[s11] ^ w[o + 7]
        u = xt[xt[a0 ^ a2]]
        v = xt[xt[a1 ^ a3]]
        a0 ^= u
        a1 ^= v
        a2 ^= u
        a3 ^= v
        x = a0 ^ a1 ^ a2 ^ a3
        t4 = a0 ^ x ^ xt[a0 ^ a1]
        t5 = a1 ^ x ^ xt[a1 ^ a2]
        t6 = a2 ^ x ^ xt[a2 ^ a3]
        t7 = a3 ^ x ^ xt[a3 ^ a0]
        a0 = inv_sbox[s8] ^ w[o + 8]
        a1 = inv_sbox[s5] ^ w[o + 9]
        a2 = inv_sbox[s2] ^ w[o + 10]
        a3 = inv_sbox[s15] ^ w[o + 11]
        u = xt[xt[a0 ^ a2]]
        v = xt[xt[a1 ^ a3]]
        a0 ^= u
        a1 ^= v
        a2 ^= u
        a3 ^= v
        x = a0 ^ a1 ^ a2 ^ a3
        t8 = a0 ^ x ^ xt[a0 ^ a1]
        t9 = a1 ^ x ^ xt[a1 ^ a2]
        t10 = a2 ^ x ^ xt[a2 ^ a3]
        t11 = a3 ^ x ^ xt[a3 ^ a0]
        a0 = inv_sbox[s12] ^ w[o + 12]
        a1 = inv_sbox[s9] ^ w[o + 13]
        a2 = inv_sbox[s6] ^ w[o + 14]
        a3 = inv_sbox[s3] ^ w[o + 15]
        u = xt[xt[a0 ^ a2]]
        v = xt[xt[a1 ^ a3]]
        a0 ^= u
        a1 ^= v
        a2 ^= u
        a3 ^= v
        x = a0 ^ a1 ^ a2 ^ a3
        t12 = a0 ^ x ^ xt[a0 ^ a1]
        t13 = a1 ^ x ^ xt[a1 ^ a2]
        t14 = a2 ^ x ^ xt[a2 ^ a3]
        t15 = a3 ^ x ^ xt[a3 ^ a0]
        s0 = t0
        s1 = t1
        s2 = t2
        s3 = t3
        s4 = t4
        s5 = t5
        s6 = t6
        s7 = t7
        s8 = t8
        s9 = t9
        s10 = t10
        s11 = t11
        s12 = t12
        s13 = t13
        s14 = t14
        s15 = t15
        o -= 16
    s[0] = inv_sbox[s0] ^ w[0]
    s[1] = inv_sbox[s13] ^ w[1]
    s[2] = inv_sbox[s10] ^ w[2]
    s[3] = inv_sbox[s7] ^ w[3]
    s[4] = inv_sbox[s4] ^ w[4]
    s[5] = inv_sbox[s1] ^ w[5]
    s[6] = inv_sbox[s14] ^ w[6]
    s[7] = inv_sbox[s11] ^ w[7]
    s[8] = inv_sbox[s8] ^ w[8]
    s[9] = inv_sbox[s5] ^ w[9]
    s[10] = inv_sbox[s2] ^ w[10]
    s[11] = inv_sbox[s15] ^ w[11]
    s[12] = inv_sbox[s12] ^ w[12]
    s[13] = inv_sbox[s9] ^ w[13]
    s[14] = inv_sbox[s6] ^ w[14]
    s[15] = inv_sbox[s3] ^ w[15]
    # the state's bytes out of the frame
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = s10 = s11 = 0
    s12 = s13 = s14 = s15 = t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0
    t8 = t9 = t10 = t11 = t12 = t13 = t14 = t15 = a0 = a1 = a2 = a3 = 0
    x = u = v = 0


def _check(iv, data):
    if len(iv) != 16:
        raise ValueError("AES-CBC needs a 16-byte IV")
    if len(data) % 16:
        raise ValueError("AES-CBC without padding needs whole 16-byte blocks")


def _wipe(*buffers):
    for buf in buffers:
        for i in range(len(buf)):
            buf[i] = 0


def aes256_cbc_encrypt(key, iv, data):
    """AES-256-CBC encryption without padding."""
    _check(iv, data)
    w = expand_key(key)
    s = bytearray(iv)
    out = bytearray(len(data))
    try:
        for off in range(0, len(data), 16):
            for i in range(16):
                s[i] ^= data[off + i]
            encrypt_block(w, s)
            out[off:off + 16] = s
        return bytes(out)
    finally:
        _wipe(w, s, out)


def aes256_cbc_decrypt(key, iv, data):
    """AES-256-CBC decryption without padding."""
    _check(iv, data)
    w = expand_key(key)
    prev = bytearray(iv)
    s = bytearray(16)
    out = bytearray(len(data))
    try:
        for off in range(0, len(data), 16):
            s[:] = data[off:off + 16]
            decrypt_block(w, s)
            for i in range(16):
                out[off + i] = s[i] ^ prev[i]
            prev[:] = data[off:off + 16]
        return bytes(out)
    finally:
        _wipe(w, prev, s, out)
