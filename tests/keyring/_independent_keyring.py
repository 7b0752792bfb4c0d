"""A second implementation of keyring v1 (docs/spec.md section 12), used only by the tests.

Written from the spec and built differently from sealcodes.keyring so one mistake cannot hide in
both: GF(2^8) through log/antilog tables of the generator 3 (the library multiplies bit by bit),
shares by summing a_i * x^i term by term (the library uses Horner), Lagrange interpolation by
solving with explicit basis products, HMAC/HKDF from tests/_independent_v1.py (hashlib only),
AES-GCM through the `Cipher` interface of `cryptography` (the library uses the AESGCM class),
base 32 through a string of bits, the canonical JSON from the spec's escaping table
(tests/_independent_json.py; the library uses json.dumps), the document's rules and the typing
rules of the paper form from the spec's text. It imports nothing from sealcodes.
"""

from __future__ import annotations

import hashlib
import json
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from _independent_json import canonical as canonical_json
from _independent_v1 import WHITE_SPACE, hkdf_expand, hkdf_extract

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
    """Section 12.5: members by id, keys sorted, no white space, the spec's escapes."""
    ordered = dict(document, members=sorted(document["members"], key=lambda m: m["member"]))
    return canonical_json(ordered)


# --- reading a document and a typed paper form (sections 12.5, 12.6) ------------------------------

class Refused(Exception):
    """The text is not a keyring document (or paper form) a reader may accept."""


#: section 12.5: every device field with the JSON types it may have
DEVICE_FIELDS = {"backend": "string", "serial": "string", "slot": "integer", "credential_id": "string",
                 "credential_name": "string", "public_key": "string", "rp_id": "string", "uv": "boolean",
                 "touch": "boolean or null", "device_id": "string", "device_kind": "string",
                 "device_name": "string", "key": "string", "curve": "string", "key_fingerprint": "string"}


def _typed(item, kind: str) -> bool:
    if kind == "string":
        return isinstance(item, str)
    if kind == "integer":
        return type(item) is int
    if kind == "boolean":
        return type(item) is bool
    return item is None or type(item) is bool


def _integer(item, low: int, high: int) -> int:
    if type(item) is not int or not low <= item <= high:
        raise Refused(f"not an integer {low}..{high}")
    return item


def _hex_field(item, size: int) -> str:
    if not isinstance(item, str) or not re.fullmatch(f"[0-9a-fA-F]{{{2 * size}}}", item):
        raise Refused(f"not {size} bytes of hex")
    return item.lower()


def _no_repeated_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Refused("a key twice in one object")
    return dict(pairs)


def read_document(text: str) -> dict:
    """The document as every reader understands it (the canonical one is canonical(result)), or Refused."""
    try:
        doc = json.loads(text, object_pairs_hook=_no_repeated_keys)
    except ValueError:
        raise Refused("not JSON") from None
    if not isinstance(doc, dict) or doc.get("type") != "sealcodes-keyring" or doc.get("version") != 1 \
            or type(doc.get("version")) is not int:
        raise Refused("not a keyring document of version 1")
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
        raise Refused("name")
    members, seen = [], set()
    if not isinstance(doc.get("members"), list) or not doc["members"]:
        raise Refused("members")
    for raw in doc["members"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("device"), dict):
            raise Refused("member")
        m = _integer(raw.get("member"), 1, 255)
        if m in seen:
            raise Refused("member id twice")
        seen.add(m)
        device = {}
        for key, kind in DEVICE_FIELDS.items():
            if key in raw["device"]:
                if not _typed(raw["device"][key], kind):
                    raise Refused(f"device field {key}")
                device[key] = raw["device"][key]
        if "backend" not in device:
            raise Refused("device without backend")
        members.append({"device": device, "envelope": _hex_field(raw.get("envelope"), 48), "member": m,
                        "nonce": _hex_field(raw.get("nonce"), 12)})
    threshold = _integer(doc.get("threshold"), 1, 255)
    if threshold > len(members):
        raise Refused("threshold above the number of members")
    retired = _integer(doc["retired_max"], 0, 255) if "retired_max" in doc else 0
    return {"id": _hex_field(doc.get("id"), 16), "members": sorted(members, key=lambda m: m["member"]),
            "name": name, "retired_max": max(retired, *seen), "threshold": threshold,
            "type": "sealcodes-keyring", "version": 1}


def read_paper(typed: str) -> dict:
    """A typed paper form: White_Space and "-" dropped, ASCII lower case raised, o/O read as 0 and
    i/I/l/L as 1, then "SCK1", whole symbols only, zero padding bits, the 4-byte check; or Refused."""
    kept = [c for c in typed if ord(c) not in WHITE_SPACE and c != "-"]
    folded = "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in kept)
    folded = folded.replace("O", "0").replace("I", "1").replace("L", "1")
    if folded[:4] != "SCK1" or any(c not in ALPHABET for c in folded[4:]):
        raise Refused("prefix or symbol")
    bits = "".join(f"{ALPHABET.index(c):05b}" for c in folded[4:])
    padding = len(bits) % 8
    if padding >= 5 or "1" in bits[len(bits) - padding:]:
        raise Refused("padding")
    data = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits) - padding, 8))
    if len(data) <= 4 or hashlib.sha256(data[:-4]).digest()[:4] != data[-4:]:
        raise Refused("check")
    return read_document(data[:-4].decode("utf-8"))


def same_serial(recorded: str, reported: str) -> bool:
    """Section 12.5: the decimal serial a device reports names the member whose recorded serial is
    that decimal text, or 8 hex digits (either case) of the same number."""
    if not recorded or not re.fullmatch(r"[0-9]+", reported):
        return False
    if recorded == reported:
        return True
    return bool(re.fullmatch(r"[0-9A-Fa-f]{8}", recorded)) and int(recorded, 16) == int(reported)


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
