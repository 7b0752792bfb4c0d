"""Keyring v1 (docs/spec.md, "Keyring v1"): one set seed S, opened by any k of n devices.

Pure: no device access, no printing. The caller asks each member's device for its answer to
`member_challenge(...)` and hands the answer here.

    challenge_m = SHA-256("sealcodes/keyring/v1/challenge" || 0x00 || id || u8(m))
    PRK_m       = HKDF-Extract(salt="sealcodes/keyring/v1", IKM=answer_m)
    KEK_m       = HKDF-Expand(PRK_m, "sealcodes/keyring/v1/wrap" || 0x00 || id || u8(m) || u8(k), 32)
    AAD_m       = "sealcodes/keyring/v1" || 0x00 || id || u8(m) || u8(k)
    envelope_m  = AES-256-GCM(KEK_m, nonce_m, share_m, AAD_m)
    share_m     = f(m) byte by byte, f of degree k-1 over GF(2^8) (0x11B), f(0) = S

S, every share, KEK and answer live in bytearrays and are wiped after use. The envelopes are not
secret: they are stored in the profile and exported for paper.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import InvalidInputError, SealcodesError
from .memory import wipe

VERSION = 1
DOC_TYPE = "sealcodes-keyring"
SALT = b"sealcodes/keyring/v1"
CHALLENGE_TAG = b"sealcodes/keyring/v1/challenge"
WRAP_TAG = b"sealcodes/keyring/v1/wrap"
TAG_END = b"\x00"

SEED_BYTES = 32
ID_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
MEMBER_MIN, MEMBER_MAX = 1, 255
MIN_MEMBERS = 2
ANSWER_MIN_BYTES, ANSWER_MAX_BYTES = 16, 64
NAME_MAX_CHARS = 64
MAX_DOC_BYTES = 64 * 1024

GF_POLY = 0x11B  # x^8 + x^4 + x^3 + x + 1

PAPER_PREFIX = "SCK1"
PAPER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PAPER_CHECK_BYTES = 4

#: public fields a member may carry so that its device can be found and asked without a profile
#: (docs/spec.md section 12.5 lists them with their JSON types); `key`, `curve` and
#: `key_fingerprint` let a PIV or OpenPGP card be checked before its PIN is sent
_DEVICE_FIELDS = {
    "backend": str, "serial": str, "slot": int, "credential_id": str, "credential_name": str,
    "public_key": str, "rp_id": str, "uv": bool, "touch": (bool, type(None)), "device_id": str,
    "device_kind": str, "device_name": str, "key": str, "curve": str, "key_fingerprint": str,
}

#: characters dropped from a typed paper form: Unicode White_Space (docs/spec.md sections 1 and 12.6)
PAPER_WHITE_SPACE = frozenset(
    chr(c) for c in (*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
                     0x202F, 0x205F, 0x3000)
)


class KeyringError(SealcodesError):
    """A keyring document is malformed, or its envelopes do not open."""


class EnvelopeOpenError(KeyringError):
    """An envelope did not authenticate: tampered, swapped member, or another device's answer."""


# --- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    member_id: int
    device: dict = field(compare=False)  # public metadata: backend, serial, slot, credential id...
    nonce: bytes = b""
    ciphertext: bytes = b""

    @property
    def backend(self) -> str:
        return self.device["backend"]

    def describe(self) -> str:
        """One line for messages; the fields come from a document that may be foreign: escaped."""
        d = self.device
        where = d.get("serial") or d.get("device_name") or d.get("device_kind") or "?"
        extra = d.get("slot") or d.get("credential_name") or (d.get("credential_id") or "")[:8]
        text = f"member {self.member_id}: {d['backend']} on {where}" + (f" ({extra})" if extra else "")
        return escape_text(text[:200])


@dataclass(frozen=True)
class Keyring:
    keyring_id: bytes
    name: str
    threshold: int
    members: tuple = ()
    retired_max: int = 0  # highest member id ever used, removed members included

    def member(self, member_id: int) -> Member:
        for m in self.members:
            if m.member_id == member_id:
                return m
        raise KeyringError(f"keyring {self.name!r} has no member {member_id}")

    def next_member_id(self) -> int:
        # never reuse an id: a removed member's envelope must not stand for a new member
        start = max([self.retired_max, *(m.member_id for m in self.members)]) + 1
        if start > MEMBER_MAX:
            raise KeyringError(f"keyring {self.name!r} has used all {MEMBER_MAX} member ids")
        return start



def escape_text(text: str) -> str:
    """Untrusted text made safe for a terminal or a sheet: one escaping rule for the whole tool
    (sealcodes.text.printable)."""
    from .text import printable

    return printable(text)


# --- byte strings of the spec --------------------------------------------------------------------


def _id_bytes(keyring_id) -> bytes:
    if not isinstance(keyring_id, (bytes, bytearray)) or len(keyring_id) != ID_BYTES:
        raise InvalidInputError(f"a keyring id is {ID_BYTES} bytes")
    return bytes(keyring_id)


def _member_byte(member_id: int) -> bytes:
    if isinstance(member_id, bool) or not isinstance(member_id, int) or not MEMBER_MIN <= member_id <= MEMBER_MAX:
        raise InvalidInputError(f"a member id is {MEMBER_MIN}..{MEMBER_MAX}")
    return bytes([member_id])


def _threshold_byte(threshold: int) -> bytes:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= MEMBER_MAX:
        raise InvalidInputError(f"a threshold is 1..{MEMBER_MAX}")
    return bytes([threshold])


def member_challenge(keyring_id: bytes, member_id: int) -> bytes:
    """The 32 bytes sent to member `member_id`'s device (never equal to a v1 code challenge)."""
    return hashlib.sha256(CHALLENGE_TAG + TAG_END + _id_bytes(keyring_id) + _member_byte(member_id)).digest()


def associated_data(keyring_id: bytes, member_id: int, threshold: int) -> bytes:
    return SALT + TAG_END + _id_bytes(keyring_id) + _member_byte(member_id) + _threshold_byte(threshold)


def _wrap_key(answer, keyring_id: bytes, member_id: int, threshold: int) -> bytearray:
    """KEK_m = HKDF-SHA-256(salt=SALT, IKM=answer, info=WRAP_TAG||0||id||u8(m)||u8(k), L=32)."""
    if not isinstance(answer, (bytes, bytearray, memoryview)):
        raise TypeError("the device answer must be bytes-like")
    if not ANSWER_MIN_BYTES <= len(answer) <= ANSWER_MAX_BYTES:
        raise InvalidInputError(f"the device answer has {len(answer)} bytes; expected "
                                f"{ANSWER_MIN_BYTES} to {ANSWER_MAX_BYTES}")
    prk = bytearray(hmac.new(SALT, bytes(answer), hashlib.sha256).digest())
    try:
        info = WRAP_TAG + TAG_END + _id_bytes(keyring_id) + _member_byte(member_id) + _threshold_byte(threshold)
        return bytearray(hmac.new(bytes(prk), info + b"\x01", hashlib.sha256).digest())  # one block: L = 32
    finally:
        wipe(prk)


# --- GF(2^8) and Shamir --------------------------------------------------------------------------


def gf_mul(a: int, b: int) -> int:
    result = 0
    while b:
        if b & 1:
            result ^= a
        a <<= 1
        if a & 0x100:
            a ^= GF_POLY
        b >>= 1
    return result


def gf_inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    result, power, exponent = 1, a, 254  # a^254 = a^-1
    while exponent:
        if exponent & 1:
            result = gf_mul(result, power)
        power = gf_mul(power, power)
        exponent >>= 1
    return result


def split(seed, xs, threshold: int, random_bytes=os.urandom) -> dict:
    """Shares of `seed` at the x-coordinates `xs`: {x: bytearray}. Coefficients a_1..a_{k-1} of each
    byte's polynomial are drawn from `random_bytes` (one call of len(seed) bytes per coefficient,
    a_1 first). threshold 1 gives every member the seed itself."""
    xs = list(xs)
    if len(set(xs)) != len(xs):
        raise InvalidInputError("member ids must be distinct")
    for x in xs:
        _member_byte(x)
    if not 1 <= threshold <= len(xs):
        raise InvalidInputError(f"threshold must be 1..{len(xs)} (the number of members)")
    coefficients = [bytearray(random_bytes(len(seed))) for _ in range(threshold - 1)]
    try:
        shares = {}
        for x in xs:
            share = bytearray(len(seed))
            for j in range(len(seed)):
                # Horner from the highest coefficient down to f(0) = seed[j]
                y = 0
                for coefficient in reversed(coefficients):
                    y = gf_mul(y, x) ^ coefficient[j]
                share[j] = gf_mul(y, x) ^ seed[j]
            shares[x] = share
        return shares
    finally:
        for coefficient in coefficients:
            wipe(coefficient)


def interpolate(shares: dict, at: int = 0) -> bytearray:
    """The polynomial through `shares` ({x: bytes}) evaluated at `at` (0 gives the seed)."""
    xs = list(shares)
    if not xs:
        raise InvalidInputError("no shares")
    size = len(shares[xs[0]])
    out = bytearray(size)
    for xi in xs:
        # Lagrange basis l_i(at) = prod_{j != i} (at - x_j) / (x_i - x_j); minus is XOR in GF(2^8)
        numerator, denominator = 1, 1
        for xj in xs:
            if xj != xi:
                numerator = gf_mul(numerator, at ^ xj)
                denominator = gf_mul(denominator, xi ^ xj)
        basis = gf_mul(numerator, gf_inv(denominator))
        share = shares[xi]
        for j in range(size):
            out[j] ^= gf_mul(basis, share[j])
    return out


# --- envelopes -----------------------------------------------------------------------------------


def seal_member(keyring_id: bytes, member_id: int, threshold: int, share, answer, nonce: bytes | None = None):
    """(nonce, ciphertext||tag) wrapping `share` for the member whose device gave `answer`."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else bytes(nonce)
    if len(nonce) != NONCE_BYTES:
        raise InvalidInputError(f"a nonce is {NONCE_BYTES} bytes")
    kek = _wrap_key(answer, keyring_id, member_id, threshold)
    try:
        sealed = AESGCM(bytes(kek)).encrypt(nonce, bytes(share), associated_data(keyring_id, member_id, threshold))
    finally:
        wipe(kek)
    return nonce, sealed


def open_member(keyring: Keyring, member: Member, answer) -> bytearray:
    """The member's share (a bytearray the caller wipes), or EnvelopeOpenError."""
    kek = _wrap_key(answer, keyring.keyring_id, member.member_id, keyring.threshold)
    try:
        plain = AESGCM(bytes(kek)).decrypt(member.nonce, member.ciphertext,
                                           associated_data(keyring.keyring_id, member.member_id, keyring.threshold))
    except InvalidTag:
        raise EnvelopeOpenError(
            f"the envelope of {member.describe()} does not open with this device's answer: the envelope was "
            "changed, belongs to another member, or this is not that device; no codes shown"
        ) from None
    finally:
        wipe(kek)
    share = bytearray(plain)
    del plain
    if len(share) != SEED_BYTES:
        wipe(share)
        raise EnvelopeOpenError(f"the envelope of {member.describe()} holds a share of the wrong size")
    return share


def new_keyring_id() -> bytes:
    return os.urandom(ID_BYTES)


def new_seed() -> bytearray:
    return bytearray(os.urandom(SEED_BYTES))


def _sealed_members(keyring_id: bytes, ids: list, devices: list, answers: list, threshold: int, seed) -> tuple:
    """One Member per id: seed split for `ids`, each share wrapped with that device's answer."""
    if len(devices) != len(answers) or len(ids) != len(answers):
        raise InvalidInputError("one answer per member is needed")
    shares = split(seed, ids, threshold)
    try:
        members = []
        for member_id, device, answer in zip(ids, devices, answers):
            nonce, sealed = seal_member(keyring_id, member_id, threshold, shares[member_id], answer)
            members.append(Member(member_id, _public_device(device), nonce, sealed))
        return tuple(members)
    finally:
        for share in shares.values():
            wipe(share)


def create(name: str, devices: list, answers: list, threshold: int = 1, seed=None, keyring_id=None) -> Keyring:
    """A new keyring: S (made here unless given, then wiped by the caller) split for the members.

    `devices` are the members' public metadata in member-id order (ids 1..n); `answers[i]` is the
    answer of devices[i] to member_challenge(keyring_id, i + 1).
    """
    name = validate_name(name)
    if len(devices) < MIN_MEMBERS:
        raise InvalidInputError(f"a keyring needs at least {MIN_MEMBERS} members")
    keyring_id = new_keyring_id() if keyring_id is None else _id_bytes(keyring_id)
    own_seed = seed is None
    seed = new_seed() if own_seed else seed
    ids = list(range(1, len(devices) + 1))
    try:
        members = _sealed_members(keyring_id, ids, devices, answers, threshold, seed)
        return Keyring(keyring_id, name, threshold, members, retired_max=len(ids))
    finally:
        if own_seed:
            wipe(seed)


def recover_seed(keyring: Keyring, opened: dict) -> bytearray:
    """S from `opened` ({member id: share}) once at least k members opened; the caller wipes S."""
    if len(opened) < keyring.threshold:
        raise KeyringError(f"keyring {keyring.name!r} needs {keyring.threshold} members; only {len(opened)} "
                           "answered")
    chosen = dict(list(opened.items())[: keyring.threshold])
    return interpolate(chosen, 0)


def add_member(keyring: Keyring, opened: dict, device: dict, answer) -> Keyring:
    """The keyring with one more member, from k opened shares; the new member's share is the same
    polynomial evaluated at its new id, so every existing envelope stays valid."""
    if len(opened) < keyring.threshold:
        raise KeyringError(f"adding a member needs {keyring.threshold} present members")
    member_id = keyring.next_member_id()
    chosen = dict(list(opened.items())[: keyring.threshold])
    share = interpolate(chosen, member_id)
    try:
        nonce, sealed = seal_member(keyring.keyring_id, member_id, keyring.threshold, share, answer)
    finally:
        wipe(share)
    member = Member(member_id, _public_device(device), nonce, sealed)
    return replace(keyring, members=keyring.members + (member,), retired_max=max(keyring.retired_max, member_id))


def reseed(keyring: Keyring, keep: list, answers: dict, seed, keyring_id: bytes, threshold: int | None = None) -> Keyring:
    """The keyring re-made for the members `keep` (ids, each keeping its id) around a new seed and a
    new keyring id: `answers[m]` is member m's answer to member_challenge(keyring_id, m) (the NEW id).
    Every other member is dropped, its id retired. Nothing of the old keyring's envelopes is kept,
    so an old envelope (an old export, sheet or profile) opens nothing of the result."""
    keyring_id = _id_bytes(keyring_id)
    if keyring_id == keyring.keyring_id:
        raise InvalidInputError("re-seeding needs a new keyring id")
    kept = [keyring.member(m) for m in keep]
    if not kept:
        raise InvalidInputError(f"keyring {keyring.name!r} would have no member left")
    threshold = keyring.threshold if threshold is None else threshold
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= len(kept):
        raise InvalidInputError(f"the threshold must be 1..{len(kept)} (the members left)")
    ids = [m.member_id for m in kept]
    members = _sealed_members(keyring_id, ids, [m.device for m in kept], [answers[m] for m in ids], threshold, seed)
    retired = max([keyring.retired_max, *(m.member_id for m in keyring.members)])
    return Keyring(keyring_id, keyring.name, threshold, members, retired_max=retired)


def _public_device(device: dict) -> dict:
    out = {}
    for key, kinds in _DEVICE_FIELDS.items():
        if key in device:
            if not isinstance(device[key], kinds) or (kinds is int and isinstance(device[key], bool)):
                raise InvalidInputError(f"device field {key!r} has the wrong type")
            out[key] = device[key]
    if "backend" not in out:
        raise InvalidInputError("a member's device needs its backend")
    return out


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX_CHARS or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise InvalidInputError(f"a keyring name is 1..{NAME_MAX_CHARS} characters of A-Z a-z 0-9 . _ -")
    return name


# --- the document (JSON) and its paper form --------------------------------------------------------


def to_document(keyring: Keyring) -> dict:
    """The document; members in ascending member id (the canonical order)."""
    return {
        "type": DOC_TYPE,
        "version": VERSION,
        "id": keyring.keyring_id.hex(),
        "name": keyring.name,
        "threshold": keyring.threshold,
        "retired_max": keyring.retired_max,
        "members": [
            {"member": m.member_id, "device": dict(m.device), "nonce": m.nonce.hex(), "envelope": m.ciphertext.hex()}
            for m in sorted(keyring.members, key=lambda m: m.member_id)
        ],
    }


def to_json(keyring: Keyring) -> str:
    """Canonical JSON (docs/spec.md section 12.5): keys sorted, no white space, ASCII only with
    lower-case `\\u` escapes, members by id. What the paper form encodes; these bytes never change."""
    return json.dumps(to_document(keyring), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


_HEX_DIGITS = re.compile(r"\A[0-9A-Fa-f]*\Z")


def _hex(value, size, what):
    """Bytes from hex: written lower-case, read in either case (nothing else: no spaces)."""
    if not isinstance(value, str) or len(value) != 2 * size:
        raise KeyringError(f"keyring document: {what} must be {size} bytes of hex")
    if not _HEX_DIGITS.match(value):
        raise KeyringError(f"keyring document: {what} is not hex")
    return bytes.fromhex(value)


def _int_field(doc, key, low, high):
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise KeyringError(f"keyring document: {key} must be an integer {low}..{high}")
    return value


def from_document(doc) -> Keyring:
    """A Keyring from its JSON document, every field checked (KeyringError names the first bad one)."""
    if not isinstance(doc, dict) or doc.get("type") != DOC_TYPE:
        raise KeyringError("not a sealcodes keyring document")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise KeyringError(f"keyring document version {str(doc.get('version'))[:12]!r} is not supported "
                           f"(this sealcodes reads version {VERSION})")
    keyring_id = _hex(doc.get("id"), ID_BYTES, "id")
    try:
        name = validate_name(doc.get("name"))
    except InvalidInputError as exc:
        raise KeyringError(f"keyring document: {exc}") from None
    threshold = _int_field(doc, "threshold", 1, MEMBER_MAX)
    retired_max = _int_field(doc, "retired_max", 0, MEMBER_MAX) if "retired_max" in doc else 0
    raw_members = doc.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        raise KeyringError("keyring document: members must be a non-empty list")
    members, seen = [], set()
    for raw in raw_members:
        if not isinstance(raw, dict):
            raise KeyringError("keyring document: a member is not an object")
        member_id = _int_field(raw, "member", MEMBER_MIN, MEMBER_MAX)
        if member_id in seen:
            raise KeyringError(f"keyring document: member {member_id} appears twice")
        seen.add(member_id)
        try:
            device = _public_device(raw.get("device") if isinstance(raw.get("device"), dict) else {})
        except InvalidInputError as exc:
            raise KeyringError(f"keyring document: member {member_id}: {exc}") from None
        nonce = _hex(raw.get("nonce"), NONCE_BYTES, f"member {member_id} nonce")
        sealed = _hex(raw.get("envelope"), SEED_BYTES + TAG_BYTES, f"member {member_id} envelope")
        members.append(Member(member_id, device, nonce, sealed))
    if threshold > len(members):
        raise KeyringError(f"keyring document: threshold {threshold} is more than its {len(members)} members")
    retired_max = max([retired_max, *seen])
    members.sort(key=lambda m: m.member_id)  # any order is read; the canonical one is by id
    return Keyring(keyring_id, name, threshold, tuple(members), retired_max=retired_max)


def from_json(text) -> Keyring:
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_DOC_BYTES:
            raise KeyringError("keyring document is too large")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise KeyringError("keyring document is not UTF-8") from None
    if len(text) > MAX_DOC_BYTES:
        raise KeyringError("keyring document is too large")
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError:  # a repeated key raises KeyringError (not a ValueError) through the hook
        raise KeyringError("keyring document is not valid JSON") from None
    except RecursionError:
        raise KeyringError("keyring document is nested too deeply") from None
    return from_document(doc)


def _unique_keys(pairs) -> dict:
    """A JSON object whose keys are all different: two readers that kept the first or the last of a
    repeated key would see two different keyrings in one document."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise KeyringError(f"keyring document: the key {escape_text(key[:40])!r} appears twice in one object")
        out[key] = value
    return out


def _b32_encode(data: bytes) -> str:
    bits = int.from_bytes(data, "big") if data else 0
    nbits = 8 * len(data)
    pad = (-nbits) % 5
    bits <<= pad
    count = (nbits + pad) // 5
    return "".join(PAPER_ALPHABET[(bits >> (5 * (count - 1 - i))) & 31] for i in range(count))


def _b32_decode(text: str) -> bytes:
    count = len(text)
    nbits = 5 * count
    nbytes = nbits // 8
    extra = nbits - 8 * nbytes
    if extra >= 5:  # a whole symbol of padding: no encoder writes that many symbols
        raise KeyringError("keyring text: mistyped (one symbol too many or too few)")
    value = 0
    for char in text:
        value = (value << 5) | PAPER_ALPHABET.index(char)
    if value & ((1 << extra) - 1):
        raise KeyringError("keyring text: mistyped (stray bits at the end)")
    return (value >> extra).to_bytes(nbytes, "big")


def to_paper(keyring: Keyring) -> str:
    """The compact form for paper and QR codes: SCK1 + Crockford base 32 of (JSON || SHA-256(JSON)[:4]),
    no separators (a QR code holds it in alphanumeric mode)."""
    data = to_json(keyring).encode("ascii")
    return PAPER_PREFIX + _b32_encode(data + hashlib.sha256(data).digest()[:PAPER_CHECK_BYTES])


def paper_lines(text: str, group=4, per_line=12) -> list:
    """The paper form cut into numbered-free lines of `per_line` groups of `group` symbols."""
    groups = [text[i:i + group] for i in range(0, len(text), group)]
    return [" ".join(groups[i:i + per_line]) for i in range(0, len(groups), per_line)]


# ASCII letters only are case-folded (as for typed codes): "ı".upper() would otherwise read as I, then 1
_FOLD = str.maketrans({**{chr(c): chr(c - 32) for c in range(ord("a"), ord("z") + 1)},
                       "o": "0", "O": "0", "i": "1", "I": "1", "l": "1", "L": "1"})


def from_paper(text: str) -> Keyring:
    """Read the paper form as typed (docs/spec.md section 12.6): White_Space and '-' dropped
    anywhere (so several lines are fine), ASCII case and the O/I/L look-alikes forgiven, the
    SCK1 prefix included."""
    if len(text) > 2 * MAX_DOC_BYTES:
        raise KeyringError("keyring text is too long")
    compact = "".join(c for c in text if c not in PAPER_WHITE_SPACE and c != "-").translate(_FOLD)
    if not compact.startswith(PAPER_PREFIX):
        raise KeyringError(f"keyring text must start with {PAPER_PREFIX}")
    body = compact[len(PAPER_PREFIX):]
    bad = next((c for c in body if c not in PAPER_ALPHABET), None)
    if bad is not None:
        raise KeyringError(f"keyring text: {bad!r} is not a base-32 symbol" if bad.isprintable()
                           else "keyring text: a character is not a base-32 symbol")
    raw = _b32_decode(body)
    data, check = raw[:-PAPER_CHECK_BYTES], raw[-PAPER_CHECK_BYTES:]
    if len(raw) <= PAPER_CHECK_BYTES or not hmac.compare_digest(hashlib.sha256(data).digest()[:PAPER_CHECK_BYTES], check):
        raise KeyringError("keyring text: mistyped (its check does not match); compare it with the sheet")
    return from_json(data)


def load_any(text) -> Keyring:
    """A keyring from either its JSON document or its paper form."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise KeyringError("keyring file is not UTF-8 text") from None
    stripped = text.strip()
    if stripped.startswith("{"):
        return from_json(stripped)
    return from_paper(stripped)

