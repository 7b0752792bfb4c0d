"""Verifier records, versions 1 and 2 (docs/spec.md sections 13 and 14): what a service needs to
check the codes of one set, and nothing that would give the codes back. Version 2 adds the set's
rotation commitment and, when it replaces an active set, the proof that the device of that set
made it (rotation.py).

A record holds the set's metadata (account, label, epoch, format, count, fingerprint), the hash
scheme and its parameters, one random salt for the whole set and one digest per code:

    input_i  = "sealcodes/verifier/v1" || 0x00 || lp(format) || lp(canonical code i)
    digest_i = Argon2id(password = input_i, salt, m, t, p, length 32)        scheme "argon2id"
             | HMAC-SHA-256(key = salt, msg = input_i)                        scheme "hmac-sha256"

The canonical code is the compact code: data symbols followed by the check symbol, upper-case
ASCII, no separators (what `formats.parse_code` returns). Every digest of a set shares its salt,
so checking an attempt costs one hash whatever the number of codes. `hmac-sha256` is only allowed
for formats of 112 bits or more (NIST SP 800-63B, look-up secrets).

A verifier may add a pepper (a secret key of its own): it stores HMAC-SHA-256(pepper, digest_i)
instead of digest_i, so a copy of its database alone is not enough to test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import struct
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping, Sequence

from .. import derivation
from ..errors import InvalidInputError
from ..formats import FORMATS, get_format, parse_code
from ..memory import wipe
from .rotation import RotationProof, check_commitment, commitment, rotation_key, sign_proof

RECORD_TYPE = "sealcodes-verifier-record"
RECORD_VERSION = 1
RECORD_VERSION_ROTATION = 2  # v1 + the set's rotation commitment (+ a proof when it replaces a set)
RECORD_VERSIONS = (RECORD_VERSION, RECORD_VERSION_ROTATION)
DIGEST_TAG = b"sealcodes/verifier/v1"
PEPPER_ID_TAG = b"sealcodes/verifier/v1/pepper-id"

SCHEME_ARGON2ID = "argon2id"
SCHEME_HMAC_SHA256 = "hmac-sha256"
SCHEMES = (SCHEME_ARGON2ID, SCHEME_HMAC_SHA256)

SALT_BYTES = 16
DIGEST_BYTES = 32
#: formats with at least this much entropy may use the salted fast hash (SP 800-63B)
FAST_HASH_MIN_BITS = 112

#: default Argon2id cost (OWASP / SP 800-63B guidance): 19 MiB, 2 passes, 1 lane
DEFAULT_MEMORY_KIB = 19456
DEFAULT_ITERATIONS = 2
DEFAULT_LANES = 1
#: what a verifier accepts in a record, so one record cannot make every attempt cost minutes
MAX_MEMORY_KIB = 1 << 20  # 1 GiB
MAX_ITERATIONS = 16
MAX_LANES = 16
ACCOUNT_MAX_BYTES = 128
#: the longest line a stream of JSON lines may hold (a record of 100 codes is about 8 KiB)
RECORD_LINE_MAX = 1 << 20
PEPPER_MIN_BYTES = 16
PEPPER_MAX_BYTES = 64

_HEX = re.compile(r"\A[0-9a-f]*\Z")
_RECORD_KEYS = ("type", "version", "account", "label", "epoch", "format", "count", "fingerprint",
                "hash", "salt", "digests")
_RECORD_V2_KEYS = _RECORD_KEYS + ("commitment", "proof")
_PROOF_KEYS = ("label", "epoch", "signature")


@dataclass(frozen=True)
class HashParams:
    """The hash of a set: `argon2id` with its cost, or `hmac-sha256` (cost fields None)."""

    scheme: str
    memory_kib: int | None = None
    iterations: int | None = None
    lanes: int | None = None

    @classmethod
    def argon2id(cls, memory_kib=DEFAULT_MEMORY_KIB, iterations=DEFAULT_ITERATIONS, lanes=DEFAULT_LANES):
        params = cls(SCHEME_ARGON2ID, memory_kib, iterations, lanes)
        params.validate()
        return params

    @classmethod
    def hmac_sha256(cls):
        return cls(SCHEME_HMAC_SHA256)

    @classmethod
    def default_for(cls, fmt) -> "HashParams":
        """Argon2id at the default cost below 112 bits of entropy, the salted fast hash above."""
        if get_format(fmt).entropy_bits >= FAST_HASH_MIN_BITS:
            return cls.hmac_sha256()
        return cls.argon2id()

    def validate(self) -> None:
        if self.scheme == SCHEME_ARGON2ID:
            # one bound at a time: the memory floor depends on lanes, checked to be an integer first
            for name, low, high in (("lanes", lambda: 1, MAX_LANES), ("iterations", lambda: 1, MAX_ITERATIONS),
                                    ("memory_kib", lambda: 8 * self.lanes, MAX_MEMORY_KIB)):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int) or not low() <= value <= high:
                    raise InvalidInputError(f"argon2id {name} must be an integer from {low()} to {high}")
        elif self.scheme == SCHEME_HMAC_SHA256:
            if (self.memory_kib, self.iterations, self.lanes) != (None, None, None):
                raise InvalidInputError("hmac-sha256 takes no cost parameters")
        else:
            raise InvalidInputError(f"unknown hash scheme; known: {', '.join(SCHEMES)}")

    def allowed_for(self, fmt) -> None:
        """The fast hash is refused for formats under 112 bits."""
        code_format = get_format(fmt)
        if self.scheme == SCHEME_HMAC_SHA256 and code_format.entropy_bits < FAST_HASH_MIN_BITS:
            raise InvalidInputError(
                f"{code_format.id} carries {code_format.entropy_bits:.1f} bits: it needs argon2id, "
                f"hmac-sha256 is only allowed from {FAST_HASH_MIN_BITS} bits"
            )

    def to_dict(self) -> dict:
        if self.scheme == SCHEME_ARGON2ID:
            return {"scheme": self.scheme, "memory_kib": self.memory_kib, "iterations": self.iterations,
                    "lanes": self.lanes}
        return {"scheme": self.scheme}

    @classmethod
    def from_dict(cls, data: Any) -> "HashParams":
        if not isinstance(data, dict):
            raise InvalidInputError("record field 'hash' must be an object")
        scheme = data.get("scheme")
        if scheme == SCHEME_ARGON2ID:
            _only_keys(data, ("scheme", "memory_kib", "iterations", "lanes"), "hash")
            params = cls(scheme, data.get("memory_kib"), data.get("iterations"), data.get("lanes"))
        elif scheme == SCHEME_HMAC_SHA256:
            _only_keys(data, ("scheme",), "hash")
            params = cls(scheme)
        else:
            raise InvalidInputError(f"record field 'hash.scheme' must be one of {', '.join(SCHEMES)}")
        params.validate()
        return params


# --- digests -------------------------------------------------------------------------------------


def _lp(data: bytes | bytearray) -> bytes:
    return struct.pack(">H", len(data)) + bytes(data)


def digest_input(format_id: str, compact_code: str) -> bytearray:
    """The bytes hashed for one code: tag, 0x00, lp(format), lp(compact code). Caller wipes it."""
    code = bytearray(compact_code.encode("ascii"))
    try:
        buffer = bytearray(DIGEST_TAG + b"\x00" + _lp(format_id.encode("ascii")))
        buffer += struct.pack(">H", len(code))
        buffer += code
        return buffer
    finally:
        wipe(code)


def hash_input(params: HashParams, salt: bytes, data: bytes | bytearray) -> bytes:
    """One hash computation of the scheme over `data`."""
    if params.scheme == SCHEME_ARGON2ID:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        kdf = Argon2id(salt=bytes(salt), length=DIGEST_BYTES, iterations=params.iterations,
                       lanes=params.lanes, memory_cost=params.memory_kib)
        return kdf.derive(bytes(data))
    if params.scheme == SCHEME_HMAC_SHA256:
        return hmac.digest(bytes(salt), bytes(data), "sha256")
    raise InvalidInputError("unknown hash scheme")


def code_digest(params: HashParams, salt: bytes, format_id: str, compact_code: str) -> bytes:
    """digest_i for one compact code (data symbols + check symbol)."""
    data = digest_input(format_id, compact_code)
    try:
        return hash_input(params, salt, data)
    finally:
        wipe(data)


def pepper_digest(pepper: bytes | None, digest: bytes) -> bytes:
    """What a verifier stores and compares: HMAC-SHA-256(pepper, digest), or the digest itself."""
    if pepper is None:
        return bytes(digest)
    return hmac.digest(bytes(pepper), bytes(digest), "sha256")


def pepper_id(pepper: bytes | None) -> str:
    """A public name of a pepper (16 hex digits), to notice a missing or wrong pepper at start-up."""
    if pepper is None:
        return ""
    return hashlib.sha256(PEPPER_ID_TAG + b"\x00" + bytes(pepper)).hexdigest()[:16]


def validate_pepper(pepper: bytes) -> bytes:
    if not PEPPER_MIN_BYTES <= len(pepper) <= PEPPER_MAX_BYTES:
        raise InvalidInputError(f"the pepper must be {PEPPER_MIN_BYTES} to {PEPPER_MAX_BYTES} bytes")
    return pepper


def canonical_code(typed: str, fmt) -> str | None:
    """The compact code for typed text, or None when it does not read as a code of `fmt` with a
    matching check symbol ("mistyped"). No hash is computed here."""
    code_format = get_format(fmt)
    try:
        compact = parse_code(typed, code_format)
    except InvalidInputError:
        return None
    return compact if code_format.has_valid_check(compact) else None


# --- the record ----------------------------------------------------------------------------------


#: Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt, Unicode 15.1): code
#: points a renderer shows as nothing, so `alice` and `alice` + U+200B would read as one name
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)


def _default_ignorable(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in DEFAULT_IGNORABLE)


def normalize_account(account: str) -> str:
    """The account as the verifier stores and compares it (docs/spec.md section 13.5): NFKC, so
    compatibility spellings (full-width `ａlice`, ligatures) become one name; refused when it holds
    a default-ignorable code point (invisible: U+200B, U+00AD, bidi controls, variation
    selectors...); then the label rules: no control characters, no white space at either end,
    1..128 bytes of UTF-8."""
    if not isinstance(account, str):
        raise TypeError("account must be text (str)")
    text = unicodedata.normalize("NFKC", account)
    for position, char in enumerate("" if text.isascii() else text, start=1):  # all ignorables are >= U+00AD
        if _default_ignorable(char):
            raise InvalidInputError(f"account contains an invisible character (U+{ord(char):04X}) "
                                    f"at position {position}")
    try:
        return derivation.normalize_label_text(text)
    except InvalidInputError as exc:
        raise InvalidInputError(str(exc).replace("label", "account", 1).replace("(NFC)", "(NFKC)")) from None


@dataclass(frozen=True)
class VerifierRecord:
    """One verifier record (docs/spec.md): a set's metadata, hash, salt and one digest per code."""

    account: str
    label: str
    epoch: int
    format: str
    count: int
    fingerprint: str
    hash: HashParams
    salt: bytes
    digests: tuple[bytes, ...]
    #: v2: the Ed25519 public key of the set's rotation key (docs/spec.md section 14); None in v1
    commitment: bytes | None = None
    #: v2, when the record replaces an active set of the account: that set's signature over this record
    proof: RotationProof | None = None

    @property
    def version(self) -> int:
        return RECORD_VERSION if self.commitment is None else RECORD_VERSION_ROTATION

    def validate(self) -> "VerifierRecord":
        if normalize_account(self.account) != self.account:
            raise InvalidInputError("record account is not normalised (NFKC)")
        if derivation.normalize_label_text(self.label) != self.label:
            raise InvalidInputError("record label is not in NFC")
        derivation.validate_epoch(self.epoch)
        get_format(self.format)
        derivation.validate_count(self.count)
        if derivation.parse_fingerprint(self.fingerprint) != self.fingerprint:
            raise InvalidInputError("record fingerprint must be written XXXX-XXXX")
        self.hash.validate()
        self.hash.allowed_for(self.format)
        if len(self.salt) != SALT_BYTES:
            raise InvalidInputError(f"record salt must be {SALT_BYTES} bytes")
        if len(self.digests) != self.count:
            raise InvalidInputError("record has not one digest per code")
        if any(len(d) != DIGEST_BYTES for d in self.digests):
            raise InvalidInputError(f"record digests must be {DIGEST_BYTES} bytes each")
        if len(set(self.digests)) != len(self.digests):
            raise InvalidInputError("record digests are not all different")
        if self.commitment is not None:
            check_commitment(self.commitment)
        if self.proof is not None:
            if self.commitment is None:
                raise InvalidInputError("a record with a proof must carry its own commitment (record v2)")
            self.proof.validate()
            if self.proof.label == self.label and self.proof.epoch >= self.epoch:
                raise InvalidInputError("record proof must come from an older epoch of the label")
        return self

    def to_dict(self) -> dict:
        data = {
            "type": RECORD_TYPE,
            "version": self.version,
            "account": self.account,
            "label": self.label,
            "epoch": self.epoch,
            "format": self.format,
            "count": self.count,
            "fingerprint": self.fingerprint,
            "hash": self.hash.to_dict(),
            "salt": self.salt.hex(),
            "digests": [d.hex() for d in self.digests],
        }
        if self.commitment is not None:
            data["commitment"] = self.commitment.hex()
        if self.proof is not None:
            data["proof"] = {"label": self.proof.label, "epoch": self.proof.epoch,
                             "signature": self.proof.signature.hex()}
        return data

    def to_json(self) -> str:
        """One line of JSON, keys in the order of docs/spec.md, non-ASCII kept as \\u escapes."""
        return json.dumps(self.to_dict(), separators=(", ", ": "))

    @classmethod
    def from_dict(cls, data: Any) -> "VerifierRecord":
        if not isinstance(data, dict):
            raise InvalidInputError("a verifier record must be a JSON object")
        if "version" not in data:
            raise InvalidInputError("record field 'version' is missing")
        version = data["version"]
        if type(version) is not int or version not in RECORD_VERSIONS:  # not true, not 2.0
            raise InvalidInputError(f"record 'version' must be {RECORD_VERSION} or {RECORD_VERSION_ROTATION}")
        _only_keys(data, _RECORD_KEYS if version == RECORD_VERSION else _RECORD_V2_KEYS, "record")
        required = _RECORD_KEYS if version == RECORD_VERSION else _RECORD_KEYS + ("commitment",)
        missing = [k for k in required if k not in data]
        if missing:
            raise InvalidInputError(f"record field {missing[0]!r} is missing")
        if data["type"] != RECORD_TYPE:
            raise InvalidInputError(f"record 'type' must be {RECORD_TYPE!r}")
        for key in ("account", "label", "format", "fingerprint", "salt"):
            if not isinstance(data[key], str):
                raise InvalidInputError(f"record field {key!r} must be a string")
        for key in ("epoch", "count"):
            if isinstance(data[key], bool) or not isinstance(data[key], int):
                raise InvalidInputError(f"record field {key!r} must be an integer")
        if data["format"] not in FORMATS:
            raise InvalidInputError(f"record field 'format' must be one of {', '.join(FORMATS)}")
        digests = data["digests"]
        if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
            raise InvalidInputError("record field 'digests' must be a list of hex strings")
        if len(digests) > derivation.COUNT_MAX:
            raise InvalidInputError(f"record has more than {derivation.COUNT_MAX} digests")
        record = cls(
            account=normalize_account(data["account"]),
            label=derivation.normalize_label_text(data["label"]),
            epoch=data["epoch"],
            format=data["format"],
            count=data["count"],
            fingerprint=data["fingerprint"],
            hash=HashParams.from_dict(data["hash"]),
            salt=_from_hex(data["salt"], "salt"),
            digests=tuple(_from_hex(d, "digests") for d in digests),
            commitment=None if version == RECORD_VERSION else _hex_field(data, "commitment"),
            proof=_proof_from(data["proof"]) if "proof" in data else None,
        )
        return record.validate()

    @classmethod
    def from_json(cls, text: str) -> "VerifierRecord":
        try:
            data = load_json(text)
        except DuplicateMemberError:
            raise InvalidInputError("a verifier record names a member twice") from None
        except (ValueError, RecursionError):
            raise InvalidInputError("a verifier record must be JSON") from None
        return cls.from_dict(data)


class DuplicateMemberError(Exception):
    """A JSON object names a member twice."""


def _unique_members(pairs) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise DuplicateMemberError()
    return data


def load_json(text):
    """json.loads, refusing any object that names a member twice (DuplicateMemberError): with a
    name given twice, two readers (one keeping the first, one the last) would see two different
    requests or records. ValueError for text that is not JSON."""
    return json.loads(text, object_pairs_hook=_unique_members)


def _only_keys(data: Mapping, allowed: Sequence[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise InvalidInputError(f"{where} has an unknown field (allowed: {', '.join(allowed)})")


def _hex_field(data: Mapping, key: str) -> bytes:
    if not isinstance(data[key], str):
        raise InvalidInputError(f"record field {key!r} must be a string")
    return _from_hex(data[key], key)


def _proof_from(data: Any) -> RotationProof:
    if not isinstance(data, dict):
        raise InvalidInputError("record field 'proof' must be an object")
    _only_keys(data, _PROOF_KEYS, "record proof")
    missing = [k for k in _PROOF_KEYS if k not in data]
    if missing:
        raise InvalidInputError(f"record proof field {missing[0]!r} is missing")
    if not isinstance(data["label"], str):
        raise InvalidInputError("record proof field 'label' must be a string")
    if isinstance(data["epoch"], bool) or not isinstance(data["epoch"], int):
        raise InvalidInputError("record proof field 'epoch' must be an integer")
    return RotationProof(derivation.normalize_label_text(data["label"]), data["epoch"],
                         _hex_field(data, "signature")).validate()


def _from_hex(text: str, field_name: str) -> bytes:
    if not _HEX.match(text) or len(text) % 2:
        raise InvalidInputError(f"record field {field_name!r} must be lower-case hex")
    return bytes.fromhex(text)


@dataclass(frozen=True)
class PreviousSet:
    """The set a rotation replaces on the verifier: its device response R (a bytearray the caller
    wipes), label and epoch. Its rotation key signs the new record."""

    response: bytearray = field(repr=False)
    label: str
    epoch: int


def make_record(codes: derivation.CodeSet, account: str | None = None, params: HashParams | None = None,
                salt: bytes | None = None, response=None, previous: PreviousSet | None = None) -> VerifierRecord:
    """The verifier record of a derived set: fresh random salt (unless given, for vectors), one
    digest per code. The codes are read, never kept.

    With `response` (the set's R) the record is v2: it carries the set's rotation commitment. With
    `previous` as well, it carries the proof that the device of that set made this one (section 14).
    R is read, never kept or modified."""
    code_format = get_format(codes.format)
    params = params or HashParams.default_for(code_format)
    params.validate()
    params.allowed_for(code_format)
    salt = os.urandom(SALT_BYTES) if salt is None else bytes(salt)
    if len(salt) != SALT_BYTES:
        raise InvalidInputError(f"the salt must be {SALT_BYTES} bytes")
    digests = tuple(code_digest(params, salt, code_format.id, parse_code(code, code_format)) for code in codes.codes)
    if previous is not None and response is None:
        raise InvalidInputError("a rotation proof needs the new set's response too (its commitment)")
    record = VerifierRecord(
        account=normalize_account(codes.label if account is None else account),
        label=codes.label,
        epoch=codes.epoch,
        format=code_format.id,
        count=codes.count,
        fingerprint=codes.fingerprint,
        hash=params,
        salt=salt,
        digests=digests,
        commitment=None if response is None else _commitment_of(response, codes.label, codes.epoch),
    ).validate()
    if previous is None:
        return record
    key = rotation_key(previous.response, previous.label, previous.epoch)
    try:
        proof = sign_proof(key, record, derivation.normalize_label_text(previous.label), previous.epoch)
    finally:
        wipe(key)
    return replace(record, proof=proof).validate()


class RecordMaker:
    """Makes the verifier records of the set an operation derives, while the set's R is at hand:
    the library's operations call it before R is wiped (and, for a rotation, with the set it
    replaces). One record per account (a set may log in several accounts; the label when none is
    given). It keeps only the records, which hold no secret."""

    def __init__(self, accounts=(), params: HashParams | None = None):
        if isinstance(accounts, str) or accounts is None:  # one account given as itself
            accounts = (accounts,)
        self.accounts = tuple(accounts) or (None,)
        self.params = params
        self.records: tuple[VerifierRecord, ...] = ()

    @property
    def record(self) -> VerifierRecord:
        """The only record (one account)."""
        (only,) = self.records
        return only

    def __call__(self, codes: derivation.CodeSet, response, previous: PreviousSet | None = None) -> None:
        self.records = tuple(make_record(codes, account=account, params=self.params, response=response,
                                         previous=previous) for account in self.accounts)


def _commitment_of(response, label: str, epoch: int) -> bytes:
    key = rotation_key(response, label, epoch)
    try:
        return commitment(key)
    finally:
        wipe(key)


def read_records(text: str) -> list[VerifierRecord]:
    """Records from text: one JSON object, or JSON lines (one record per non-empty line)."""
    stripped = text.strip()
    if not stripped:
        raise InvalidInputError("no verifier record in the input")
    try:
        return [VerifierRecord.from_json(stripped)]
    except InvalidInputError:
        if "\n" not in stripped:
            raise
    records = []
    for number, line in enumerate(stripped.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(VerifierRecord.from_json(line))
        except InvalidInputError as exc:
            raise InvalidInputError(f"line {number}: {exc}") from None
    return records


def stream_records(handle) -> Iterator[VerifierRecord]:
    """Records from a binary stream of JSON lines, one line at a time, so memory stays bounded
    whatever the stream's size: each line UTF-8, at most RECORD_LINE_MAX bytes; blank lines are
    skipped. A line that is not a record raises InvalidInputError naming it."""
    number = 0
    while True:
        line = handle.readline(RECORD_LINE_MAX + 1)
        if not line:
            return
        number += 1
        if len(line) > RECORD_LINE_MAX:
            raise InvalidInputError(f"line {number} is longer than {RECORD_LINE_MAX // 1024} KiB")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"line {number} is not UTF-8 text") from None
        if not text.strip():
            continue
        try:
            record = VerifierRecord.from_json(text)
        except InvalidInputError as exc:
            raise InvalidInputError(f"line {number}: {exc}") from None
        yield record
