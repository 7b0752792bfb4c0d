"""A second, independent implementation of verifier records v1 and v2 (docs/spec.md sections 13
and 14), used only by the tests.

Written from the spec alone and built differently from sealcodes.verifier.record:

- Argon2id is implemented here in pure Python from RFC 9106 (hashlib.blake2b only), where the
  library calls `cryptography` (OpenSSL); it is checked against the RFC 9106 test vector;
- the salted fast hash uses the RFC 2104 HMAC of tests/_independent_v1.py;
- codes come from tests/_independent_v1.py, typed codes are read with a regular expression;
- a record's JSON line is written by tests/_independent_json.py (the library uses json.dumps),
  and a record is read (checked, label and account brought to NFC) from the spec's rules;
- record v2's Ed25519 signatures come from tests/_independent_ed25519.py (plain Python, RFC 8032),
  where the library uses OpenSSL.

It imports nothing from sealcodes. Pure Python Argon2 is slow: use it with small memory costs.
"""

from __future__ import annotations

import hashlib
import re
import struct

import unicodedata

import _independent_ed25519 as ed25519
from _independent_json import record_line
from _independent_v1 import (CROCKFORD, FORMATS, Rejected, base32_check, damm_check, generate, hkdf_expand, hkdf_extract,
                             hmac_sha256, label_bytes)

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
BLOCK_WORDS = 128
SYNC_POINTS = 4
ARGON2_VERSION = 0x13
ARGON2ID = 2


# --- Argon2id (RFC 9106) -------------------------------------------------------------------------


def _le32(n: int) -> bytes:
    return struct.pack("<I", n)


def _blake2b(data: bytes, size: int = 64) -> bytes:
    return hashlib.blake2b(data, digest_size=size).digest()


def _h_prime(data: bytes, length: int) -> bytes:
    """H' of RFC 9106 section 3.3: variable-length hash."""
    if length <= 64:
        return _blake2b(_le32(length) + data, length)
    r = -(-length // 32) - 2
    v = _blake2b(_le32(length) + data)
    out = v[:32]
    for _ in range(r - 1):
        v = _blake2b(v)
        out += v[:32]
    out += _blake2b(v, length - 32 * r)
    return out


def _gb(v, a, b, c, d):
    va, vb, vc, vd = v[a], v[b], v[c], v[d]
    va = (va + vb + 2 * (va & MASK32) * (vb & MASK32)) & MASK64
    vd ^= va
    vd = ((vd >> 32) | (vd << 32)) & MASK64
    vc = (vc + vd + 2 * (vc & MASK32) * (vd & MASK32)) & MASK64
    vb ^= vc
    vb = ((vb >> 24) | (vb << 40)) & MASK64
    va = (va + vb + 2 * (va & MASK32) * (vb & MASK32)) & MASK64
    vd ^= va
    vd = ((vd >> 16) | (vd << 48)) & MASK64
    vc = (vc + vd + 2 * (vc & MASK32) * (vd & MASK32)) & MASK64
    vb ^= vc
    vb = ((vb >> 63) | (vb << 1)) & MASK64
    v[a], v[b], v[c], v[d] = va, vb, vc, vd


def _permute(v):
    """The permutation P on 16 words."""
    _gb(v, 0, 4, 8, 12)
    _gb(v, 1, 5, 9, 13)
    _gb(v, 2, 6, 10, 14)
    _gb(v, 3, 7, 11, 15)
    _gb(v, 0, 5, 10, 15)
    _gb(v, 1, 6, 11, 12)
    _gb(v, 2, 7, 8, 13)
    _gb(v, 3, 4, 9, 14)


def _compress(x, y):
    """G(X, Y) of RFC 9106 section 3.5, on blocks of 128 words."""
    r = [a ^ b for a, b in zip(x, y)]
    q = list(r)
    for row in range(8):
        words = q[16 * row: 16 * row + 16]
        _permute(words)
        q[16 * row: 16 * row + 16] = words
    for col in range(8):
        positions = [16 * i + 2 * col + k for i in range(8) for k in (0, 1)]
        words = [q[p] for p in positions]
        _permute(words)
        for p, w in zip(positions, words):
            q[p] = w
    return [a ^ b for a, b in zip(q, r)]


def _words(data: bytes):
    return list(struct.unpack("<128Q", data))


def _bytes(words) -> bytes:
    return struct.pack("<128Q", *words)


def argon2id(password: bytes, salt: bytes, memory_kib: int, iterations: int, lanes: int, length: int,
             secret: bytes = b"", associated: bytes = b"") -> bytes:
    h0 = _blake2b(b"".join([
        _le32(lanes), _le32(length), _le32(memory_kib), _le32(iterations), _le32(ARGON2_VERSION), _le32(ARGON2ID),
        _le32(len(password)), password, _le32(len(salt)), salt, _le32(len(secret)), secret,
        _le32(len(associated)), associated,
    ]))
    blocks_total = 4 * lanes * (memory_kib // (4 * lanes))
    lane_length = blocks_total // lanes
    segment = lane_length // SYNC_POINTS
    memory = [[None] * lane_length for _ in range(lanes)]
    for lane in range(lanes):
        for j in (0, 1):
            memory[lane][j] = _words(_h_prime(h0 + _le32(j) + _le32(lane), 1024))
    zero = [0] * BLOCK_WORDS
    for pass_number in range(iterations):
        for slice_number in range(SYNC_POINTS):
            for lane in range(lanes):
                independent = pass_number == 0 and slice_number < SYNC_POINTS // 2
                addresses = None
                counter = 0
                start = 2 if pass_number == 0 and slice_number == 0 else 0
                for index in range(start, segment):
                    column = slice_number * segment + index
                    previous = memory[lane][column - 1 if column else lane_length - 1]
                    if independent:
                        if addresses is None or index % BLOCK_WORDS == 0:
                            counter += 1
                            block = [pass_number, lane, slice_number, blocks_total, iterations, ARGON2ID, counter]
                            block += [0] * (BLOCK_WORDS - len(block))
                            addresses = _compress(zero, _compress(zero, block))
                        pseudo = addresses[index % BLOCK_WORDS]
                    else:
                        pseudo = previous[0]
                    j1, j2 = pseudo & MASK32, pseudo >> 32
                    ref_lane = lane if pass_number == 0 and slice_number == 0 else j2 % lanes
                    same = ref_lane == lane
                    if pass_number == 0:
                        if slice_number == 0 or same:
                            area = slice_number * segment + index - 1
                        else:
                            area = slice_number * segment - (1 if index == 0 else 0)
                    else:
                        if same:
                            area = lane_length - segment + index - 1
                        else:
                            area = lane_length - segment - (1 if index == 0 else 0)
                    x = (j1 * j1) >> 32
                    relative = area - 1 - ((area * x) >> 32)
                    first = 0 if pass_number == 0 or slice_number == SYNC_POINTS - 1 else (slice_number + 1) * segment
                    reference = memory[ref_lane][(first + relative) % lane_length]
                    new = _compress(previous, reference)
                    if pass_number > 0:
                        new = [a ^ b for a, b in zip(new, memory[lane][column])]
                    memory[lane][column] = new
    final = memory[0][lane_length - 1]
    for lane in range(1, lanes):
        final = [a ^ b for a, b in zip(final, memory[lane][lane_length - 1])]
    return _h_prime(_bytes(final), length)


# --- verifier records ----------------------------------------------------------------------------

TAG = b"sealcodes/verifier/v1"


def canonical(typed: str, format_id: str) -> str | None:
    """The compact code for typed text, or None if it is not a code of the format (check included)."""
    alphabet, data_symbols, _ = FORMATS[format_id]
    text = re.sub(r"[ \-]", "", typed)
    if alphabet != "0123456789":
        upper = text.translate(str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        text = upper.translate(str.maketrans("OIL", "011"))
    if not re.fullmatch(f"[{alphabet}]{{{data_symbols + 1}}}", text):
        return None
    if alphabet == CROCKFORD:
        values = [CROCKFORD.index(c) for c in text]
        good = base32_check(values[:-1]) == values[-1]
    else:
        good = damm_check(text[:-1]) == text[-1]
    return text if good else None


def digest_message(format_id: str, compact: str) -> bytes:
    fmt = format_id.encode()
    code = compact.encode()
    return TAG + b"\x00" + len(fmt).to_bytes(2, "big") + fmt + len(code).to_bytes(2, "big") + code


def digest(hash_params: dict, salt: bytes, format_id: str, compact: str) -> bytes:
    message = digest_message(format_id, compact)
    if hash_params["scheme"] == "argon2id":
        return argon2id(message, salt, hash_params["memory_kib"], hash_params["iterations"],
                        hash_params["lanes"], 32)
    if hash_params["scheme"] == "hmac-sha256":
        return hmac_sha256(salt, message)
    raise ValueError("unknown scheme")


def record(response: bytes, label: str, epoch: int, format_id: str, count: int, account: str,
           hash_params: dict, salt: bytes) -> dict:
    derived = generate(response, label, epoch, format_id, count)
    compact = [code.replace("-", "").replace(" ", "") for code in derived["codes"]]
    return {
        "type": "sealcodes-verifier-record",
        "version": 1,
        "account": unicodedata.normalize("NFC", account),
        "label": unicodedata.normalize("NFC", label),
        "epoch": epoch,
        "format": format_id,
        "count": count,
        "fingerprint": derived["fingerprint"],
        "hash": hash_params,
        "salt": salt.hex(),
        "digests": [digest(hash_params, salt, format_id, c).hex() for c in compact],
    }


def peppered(pepper: bytes, stored_digest: bytes) -> bytes:
    return hmac_sha256(pepper, stored_digest)


def pepper_id(pepper: bytes) -> str:
    """Section 13.3: the first 16 hex digits (8 bytes) of the SHA-256, in lower case."""
    return hashlib.sha256(b"sealcodes/verifier/v1/pepper-id\x00" + pepper).digest()[:8].hex()


def line(record: dict) -> str:
    """The record as one line of JSON (section 13.1), as sealcodes prints it."""
    return record_line(record)


_RECORD_MEMBERS = ["type", "version", "account", "label", "epoch", "format", "count", "fingerprint", "hash", "salt",
                   "digests"]
_LOWER_HEX = re.compile(r"[0-9a-f]+")


def _whole(item, low: int, high: int) -> bool:
    return type(item) is int and low <= item <= high


def read_record(data) -> dict:
    """A record as a verifier stores it: every rule of section 13 checked, the label in NFC and the
    account in its normal form (section 13.5); Rejected(kind) otherwise."""
    if not isinstance(data, dict) or sorted(data) != sorted(_RECORD_MEMBERS):
        raise Rejected("members")
    if data["type"] != "sealcodes-verifier-record" or type(data["version"]) is not int or data["version"] != 1:
        raise Rejected("type")
    out = dict(data)
    if not isinstance(data["label"], str) or not isinstance(data["account"], str):
        raise Rejected("label or account")
    out["label"] = label_bytes(data["label"]).decode("utf-8")  # NFC, label rules, 1..128 bytes
    out["account"] = account_name(data["account"])
    if out["account"] is None:
        raise Rejected("account")
    if not _whole(data["epoch"], 0, 2**32 - 1) or not _whole(data["count"], 1, 100):
        raise Rejected("epoch or count")
    if data["format"] not in FORMATS:
        raise Rejected("format")
    fingerprint = data["fingerprint"]
    if not isinstance(fingerprint, str) or not re.fullmatch(f"[{CROCKFORD}]{{4}}-[{CROCKFORD}]{{4}}", fingerprint):
        raise Rejected("fingerprint")
    scheme = data["hash"]
    if not isinstance(scheme, dict):
        raise Rejected("hash")
    if scheme.get("scheme") == "argon2id" and sorted(scheme) == ["iterations", "lanes", "memory_kib", "scheme"]:
        lanes = scheme["lanes"]
        if not (_whole(lanes, 1, 16) and _whole(scheme["iterations"], 1, 16)
                and _whole(scheme["memory_kib"], 8 * lanes, 1 << 20)):
            raise Rejected("hash")
    elif scheme != {"scheme": "hmac-sha256"} or data["format"] != "base32-24":
        raise Rejected("hash")  # the fast hash only for the format of 112 bits or more
    salt, digests = data["salt"], data["digests"]
    if not isinstance(salt, str) or len(salt) != 32 or not _LOWER_HEX.fullmatch(salt):
        raise Rejected("salt")
    if not isinstance(digests, list) or len(digests) != data["count"] or len(set(map(str, digests))) != len(digests):
        raise Rejected("digests")
    if not all(isinstance(d, str) and len(d) == 64 and _LOWER_HEX.fullmatch(d) for d in digests):
        raise Rejected("digests")
    return out


# --- record v2: rotation commitment and proof (docs/spec.md section 14) ----------------------------

ROTATION_KEY_TAG = b"sealcodes/v1/rotation-key"
PROOF_TAG = b"sealcodes/verifier/v2/rotation"


def _lp16(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def rotation_key(response: bytes, label: str, epoch: int) -> bytes:
    """K = HKDF-Expand(HMAC-SHA-256("sealcodes/v1", R), tag || 0x00 || lp(label) || u32(epoch), 32)."""
    prk = hkdf_extract(b"sealcodes/v1", response)
    return hkdf_expand(prk, ROTATION_KEY_TAG + b"\x00" + _lp16(label_bytes(label)) + epoch.to_bytes(4, "big"), 32)


def commitment(response: bytes, label: str, epoch: int) -> bytes:
    return ed25519.public_key(rotation_key(response, label, epoch))


def proof_message(rec: dict, previous_label: str, previous_epoch: int) -> bytes:
    """The signed bytes, built from the record's JSON fields."""
    h = rec["hash"]
    account, label = (unicodedata.normalize("NFC", rec[k]) for k in ("account", "label"))
    out = [PROOF_TAG, b"\x00", _lp16(account.encode("utf-8")), _lp16(label.encode("utf-8")),
           rec["epoch"].to_bytes(4, "big"), _lp16(rec["format"].encode()), rec["count"].to_bytes(4, "big"),
           _lp16(rec["fingerprint"].encode())]
    out.append(_lp16(h["scheme"].encode()))
    for name in ("memory_kib", "iterations", "lanes"):
        out.append(h.get(name, 0).to_bytes(4, "big"))
    out.append(_lp16(bytes.fromhex(rec["salt"])))
    out += [bytes.fromhex(d) for d in rec["digests"]]
    out.append(bytes.fromhex(rec["commitment"]))
    out += [_lp16(unicodedata.normalize("NFC", previous_label).encode("utf-8")), previous_epoch.to_bytes(4, "big")]
    return b"".join(out)


def record_v2(response: bytes, label: str, epoch: int, format_id: str, count: int, account: str,
              hash_params: dict, salt: bytes, previous: dict | None = None) -> dict:
    """Record v2; `previous` = {"response": R bytes, "label", "epoch"} of the set it replaces."""
    rec = record(response, label, epoch, format_id, count, account, hash_params, salt)
    rec["version"] = 2
    rec["commitment"] = commitment(response, label, epoch).hex()
    if previous is not None:
        key = rotation_key(previous["response"], previous["label"], previous["epoch"])
        message = proof_message(rec, previous["label"], previous["epoch"])
        rec["proof"] = {"label": unicodedata.normalize("NFC", previous["label"]), "epoch": previous["epoch"],
                        "signature": ed25519.sign(key, message).hex()}
    return rec


def proof_holds(stored_commitment: bytes, rec: dict) -> bool:
    """What a verifier checks before it lets `rec` replace the set whose commitment it stored."""
    proof = rec.get("proof")
    if not isinstance(proof, dict) or not ed25519.is_prime_order_key(stored_commitment):
        return False
    try:
        message = proof_message(rec, proof["label"], proof["epoch"])
        signature = bytes.fromhex(proof["signature"])
    except (KeyError, ValueError, TypeError, AttributeError):
        return False
    return ed25519.verify(stored_commitment, message, signature)


_HEX_BYTES = re.compile(r"[0-9a-f]+")


def _hex_of(value, size: int) -> bool:
    return isinstance(value, str) and len(value) == 2 * size and _HEX_BYTES.fullmatch(value) is not None


def v2_fields_valid(rec: dict) -> bool:
    """The rules of section 14.2 on a record's version, commitment and proof (the v1 fields are
    section 13's): what a verifier refuses before it looks at any signature."""
    version = rec.get("version")
    if type(version) is not int or version not in (1, 2):
        return False
    if version == 1:
        return "commitment" not in rec and "proof" not in rec
    if not _hex_of(rec.get("commitment"), 32) or not ed25519.is_prime_order_key(bytes.fromhex(rec["commitment"])):
        return False
    if "proof" not in rec:
        return True
    proof = rec["proof"]
    if not isinstance(proof, dict) or set(proof) != {"label", "epoch", "signature"}:
        return False
    if not isinstance(proof["label"], str) or type(proof["epoch"]) is not int or not 0 <= proof["epoch"] < 1 << 32:
        return False
    if not _hex_of(proof["signature"], 64):
        return False
    try:
        signer_label = label_bytes(proof["label"])
    except Exception:  # Rejected: not a label
        return False
    same_label = signer_label == label_bytes(rec["label"])
    return not (same_label and proof["epoch"] >= rec["epoch"])


# --- account names (section 13.5) ----------------------------------------------------------------

# Default_Ignorable_Code_Point as DerivedCoreProperties.txt writes it (Unicode 15.1)
_IGNORABLE_TEXT = """00AD 034F 061C 115F..1160 17B4..17B5 180B..180D 180E 180F 200B..200F 202A..202E 2060..2064
2065 2066..206F 3164 FE00..FE0F FEFF FFA0 FFF0..FFF8 1BCA0..1BCA3 1D173..1D17A E0000..E0FFF"""


def _ignorable() -> set[int]:
    points = set()
    for item in _IGNORABLE_TEXT.split():
        low, _, high = item.partition("..")
        points.update(range(int(low, 16), int(high or low, 16) + 1))
    return points


_IGNORABLE = _ignorable()


def account_name(text: str) -> str | None:
    """The normal form of an account (NFKC, no default-ignorable code point, the label rules of
    section 1), or None when it is refused."""
    nfkc = unicodedata.normalize("NFKC", text)
    if not nfkc or any(ord(c) in _IGNORABLE or unicodedata.category(c) in ("Cc", "Cs") for c in nfkc):
        return None
    if nfkc[0].isspace() or nfkc[-1].isspace() or len(nfkc.encode("utf-8", "surrogatepass")) > 128:
        return None
    return nfkc
