"""A second implementation of keyring v1 (docs/spec.md section 12), used only by the tests.

Written from the spec and built differently from sealcodes.keyring so one mistake cannot hide in
both: GF(2^8) through log/antilog tables of the generator 3 (the library multiplies bit by bit),
shares by summing a_i * x^i term by term (the library uses Horner), Lagrange interpolation by
solving with explicit basis products, HMAC/HKDF from tests/_independent_v1.py (hashlib only),
AES-GCM through the `Cipher` interface of `cryptography` (the library uses the AESGCM class),
base 32 through a string of bits. It imports nothing from sealcodes.
"""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from _independent_v1 import hkdf_expand, hkdf_extract

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

EXP = [0] * 510
LOG = [0] * 256
_value = 1
for _i in range(255):
    EXP[_i] = _value
    LOG[_value] = _i
    # multiply by the generator 3 = x + 1: v*x XOR v, reduced by 0x11B
    _doubled = _value << 1
    if _doubled & 0x100:
        _doubled ^= 0x11B
    _value = _doubled ^ _value
for _i in range(255, 510):
    EXP[_i] = EXP[_i - 255]


def mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError
    if a == 0:
        return 0
    return EXP[(LOG[a] - LOG[b]) % 255]


def power(x: int, n: int) -> int:
    out = 1
    for _ in range(n):
        out = mul(out, x)
    return out


def challenge(keyring_id: bytes, member: int) -> bytes:
    return hashlib.sha256(b"sealcodes/keyring/v1/challenge\x00" + keyring_id + bytes([member])).digest()


def aad(keyring_id: bytes, member: int, threshold: int) -> bytes:
    return b"sealcodes/keyring/v1\x00" + keyring_id + bytes([member, threshold])


def kek(answer: bytes, keyring_id: bytes, member: int, threshold: int) -> bytes:
    prk = hkdf_extract(b"sealcodes/keyring/v1", answer)
    return hkdf_expand(prk, b"sealcodes/keyring/v1/wrap\x00" + keyring_id + bytes([member, threshold]), 32)


def share(seed: bytes, coefficients: list, x: int) -> bytes:
    out = []
    for j, secret_byte in enumerate(seed):
        total = secret_byte
        for i, coefficient in enumerate(coefficients, start=1):
            total ^= mul(coefficient[j], power(x, i))
        out.append(total)
    return bytes(out)


def lagrange(points: dict, at: int = 0) -> bytes:
    xs = sorted(points)
    size = len(points[xs[0]])
    out = bytearray(size)
    for xi in xs:
        weight = 1
        for xl in xs:
            if xl != xi:
                weight = mul(weight, div(at ^ xl, xi ^ xl))
        for j in range(size):
            out[j] ^= mul(weight, points[xi][j])
    return bytes(out)


def gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, associated: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(associated)
    body = encryptor.update(plaintext) + encryptor.finalize()
    return body + encryptor.tag


def gcm_decrypt(key: bytes, nonce: bytes, sealed: bytes, associated: bytes) -> bytes | None:
    """The plaintext, or None when the tag does not verify."""
    from cryptography.exceptions import InvalidTag

    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, sealed[-16:])).decryptor()
    decryptor.authenticate_additional_data(associated)
    try:
        return decryptor.update(sealed[:-16]) + decryptor.finalize()
    except InvalidTag:
        return None


def paper(canonical_json: str) -> str:
    data = canonical_json.encode("ascii")
    data += hashlib.sha256(data).digest()[:4]
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 5)
    return "SCK1" + "".join(ALPHABET[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))


def unpaper(text: str) -> dict:
    body = text[4:]
    bits = "".join(f"{ALPHABET.index(c):05b}" for c in body)
    usable = len(bits) - len(bits) % 8
    assert set(bits[usable:]) <= {"0"}
    data = bytes(int(bits[i:i + 8], 2) for i in range(0, usable, 8))
    assert hashlib.sha256(data[:-4]).digest()[:4] == data[-4:]
    return json.loads(data[:-4])


def canonical(document: dict) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def open_keyring(document: dict, answers: dict) -> bytes | None:
    """S from a keyring document and {member id: answer}, or None if any envelope fails."""
    keyring_id = bytes.fromhex(document["id"])
    threshold = document["threshold"]
    points = {}
    for member in document["members"]:
        m = member["member"]
        if m not in answers:
            continue
        key = kek(answers[m], keyring_id, m, threshold)
        opened = gcm_decrypt(key, bytes.fromhex(member["nonce"]), bytes.fromhex(member["envelope"]),
                             aad(keyring_id, m, threshold))
        if opened is None:
            return None
        points[m] = opened
        if len(points) == threshold:
            return lagrange(points)
    return None
