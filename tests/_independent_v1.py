"""A second, independent implementation of the v1 derivation, used only by the tests.

Written from docs/spec.md alone and on purpose built differently from sealcodes.derivation and
sealcodes.formats, so that one mistake cannot hide in both:

- HMAC-SHA-256 is assembled here from hashlib.sha256 with the RFC 2104 ipad/opad construction
  (the library uses the hmac module);
- base-32 symbols are cut from the integer 5 bits at a time, decimal ones come from "%023d"
  (the library divides repeatedly);
- the base-32 check symbol is the polynomial sum(v_j * x^(d-j)) over GF(32) computed with a
  carry-less multiplication (the library runs the mul2 loop);
- the Damm table is indexed as strings, and white space is the Unicode White_Space list from
  PropList.txt (the library uses str.isspace()).

It imports nothing from sealcodes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

SHA256_BLOCK = 64

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DAMM_ROWS = (
    "0317598642",
    "7092154863",
    "4206871359",
    "1750983426",
    "6123045978",
    "3674209581",
    "5869720134",
    "8945362017",
    "9438617205",
    "2581436790",
)

#: Unicode White_Space (PropList.txt)
WHITE_SPACE = frozenset(
    [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)

#: format id -> (alphabet, number of data symbols, group separator)
FORMATS = {
    "base32-16": (CROCKFORD, 15, "-"),
    "base32-24": (CROCKFORD, 23, "-"),
    "digits-24": ("0123456789", 23, " "),
}


class Rejected(Exception):
    """The parameters are not acceptable; `kind` names the parameter at fault."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


# --- primitives, from RFC 2104 and RFC 5869 -------------------------------------------------------


def _hmac(hash_name: str, key: bytes, message: bytes) -> bytes:
    """RFC 2104 over a hash of 64-byte blocks (SHA-256, SHA-1)."""
    if len(key) > SHA256_BLOCK:
        key = hashlib.new(hash_name, key).digest()
    key = key.ljust(SHA256_BLOCK, b"\x00")
    inner = hashlib.new(hash_name, bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.new(hash_name, bytes(k ^ 0x5C for k in key) + inner).digest()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return _hmac("sha256", key, message)


def hmac_sha1(key: bytes, message: bytes) -> bytes:
    """The `yubiotp` backend's HMAC (section 3)."""
    return _hmac("sha1", key, message)


def yubiotp_block(challenge: bytes) -> bytes:
    """Section 3: the 64 bytes sent to a YubiKey OTP slot, the challenge then 0x01 bytes when it
    ends in 0x00, 0x00 bytes otherwise."""
    pad = b"\x01" if challenge[-1] == 0 else b"\x00"
    return challenge + pad * (64 - len(challenge))


def yubiotp_response(key: bytes, challenge: bytes, lt64: bool) -> bytes:
    """R of a slot holding `key`: with HMAC_LT64 the block loses its trailing run of bytes equal
    to its last byte (the padding, never the challenge's own last byte); without it, all 64 count."""
    block = yubiotp_block(challenge)
    if lt64:
        end = 64
        while end and block[end - 1] == block[-1]:
            end -= 1
        block = block[:end]
    return hmac_sha1(key, block)


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac_sha256(salt or b"\x00" * 32, ikm)


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    blocks = [b""]
    while sum(map(len, blocks)) < length:
        blocks.append(hmac_sha256(prk, blocks[-1] + info + bytes([len(blocks)])))
    return b"".join(blocks)[:length]


# --- the derivation -------------------------------------------------------------------------------


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def label_bytes(label: str) -> bytes:
    nfc = unicodedata.normalize("NFC", label)
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in nfc):
        raise Rejected("label")
    if nfc and (ord(nfc[0]) in WHITE_SPACE or ord(nfc[-1]) in WHITE_SPACE):
        raise Rejected("label")
    data = nfc.encode("utf-8")
    if not 1 <= len(data) <= 128:
        raise Rejected("label")
    return data


def _check_parameters(response: bytes, label: str, epoch: int, format_id: str, count: int) -> bytes:
    data = label_bytes(label)
    if not 0 <= epoch < 1 << 32:
        raise Rejected("epoch")
    if format_id not in FORMATS:
        raise Rejected("format")
    if not 1 <= count <= 100:
        raise Rejected("count")
    if not 16 <= len(response) <= 64:
        raise Rejected("response")
    return data


def challenge(label: str, epoch: int) -> bytes:
    data = label_bytes(label)
    if not 0 <= epoch < 1 << 32:
        raise Rejected("epoch")
    return hashlib.sha256(b"sealcodes/v1/challenge\x00" + _lp(data) + epoch.to_bytes(4, "big")).digest()


def gf32_multiply(a: int, b: int) -> int:
    product = 0
    for bit in range(5):
        if b >> bit & 1:
            product ^= a << bit
    for bit in range(8, 4, -1):  # reduce degree 8..5 with x^5 = x^2 + 1
        if product >> bit & 1:
            product ^= 0x25 << (bit - 5)
    return product


def gf32_power_of_x(exponent: int) -> int:
    result = 1
    for _ in range(exponent):
        result = gf32_multiply(result, 2)
    return result


def base32_check(values: list[int]) -> int:
    d = len(values)
    check = 0
    for j, value in enumerate(values):
        check ^= gf32_multiply(value, gf32_power_of_x(d - j))
    return check


def damm_check(digits: str) -> str:
    interim = "0"
    for digit in digits:
        interim = DAMM_ROWS[int(interim)][int(digit)]
    return interim


def encode(number: int, format_id: str) -> str:
    """The displayed code for a reduced number n (0 <= n < a^d)."""
    alphabet, data_symbols, separator = FORMATS[format_id]
    if alphabet == CROCKFORD:
        values = [(number >> (5 * (data_symbols - 1 - j))) & 31 for j in range(data_symbols)]
        compact = "".join(CROCKFORD[v] for v in values) + CROCKFORD[base32_check(values)]
    else:
        data = "%0*d" % (data_symbols, number)
        compact = data + damm_check(data)
    return separator.join(re.findall(".{1,4}", compact))


def generate(response: bytes, label: str, epoch: int, format_id: str, count: int) -> dict:
    """{"challenge": hex, "codes": [...], "fingerprint": "XXXX-XXXX"}, or raise Rejected(kind)."""
    data = _check_parameters(response, label, epoch, format_id, count)
    alphabet, data_symbols, _ = FORMATS[format_id]
    modulus = len(alphabet) ** data_symbols
    prk = hkdf_extract(b"sealcodes/v1", response)
    common = _lp(data) + epoch.to_bytes(4, "big") + _lp(format_id.encode())
    codes = []
    for i in range(count):
        block = hkdf_expand(prk, b"sealcodes/v1/code\x00" + common + i.to_bytes(4, "big"), 32)
        codes.append(encode(int(block.hex(), 16) % modulus, format_id))
    f = int(hkdf_expand(prk, b"sealcodes/v1/fingerprint\x00" + common, 32).hex(), 16) % 32**8
    fingerprint = "".join(CROCKFORD[(f >> (5 * k)) & 31] for k in range(7, -1, -1))
    return {
        "challenge": challenge(label, epoch).hex(),
        "codes": codes,
        "fingerprint": fingerprint[:4] + "-" + fingerprint[4:],
    }
