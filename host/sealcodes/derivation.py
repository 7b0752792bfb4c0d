"""The v1 derivation (docs/spec.md): from a label and an epoch to the device challenge, from the device response R to codes.

    challenge = SHA-256("sealcodes/v1/challenge" || 0x00 || lp(label) || u32(epoch))
    PRK       = HMAC-SHA-256(key="sealcodes/v1", msg=R)                       (HKDF-Extract)
    B_i       = HKDF-Expand(PRK, "sealcodes/v1/code" || 0x00 || lp(label) || u32(epoch)
                                 || lp(format) || u32(i), 32)
    F         = HKDF-Expand(PRK, "sealcodes/v1/fingerprint" || 0x00 || lp(label) || u32(epoch)
                                 || lp(format), 32)

Nothing here changes an output once released (docs/spec.md); docs/spec.md restates the contract and
tests/vectors/derivation-v1.json pins it.

Secrets: R is only read, never copied or kept; PRK and every B_i live in bytearrays that are
overwritten as soon as they are used. Python cannot wipe the intermediate `bytes` returned by
hmac, nor the integers and strings a code passes through; those are dropped at once. No secret
ever appears in an exception message or in a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import unicodedata
from dataclasses import dataclass, field

from .errors import InvalidInputError
from .memory import wipe
from .formats import (
    CROCKFORD_BASE32,
    DEFAULT_FORMAT_ID,
    FORMATS,
    Format,
    FormatLike,
    get_format,
    parse_base32,
    symbols_of,
)

#: HKDF-Extract salt, and the prefix of every domain label of v1
VERSION_TAG = b"sealcodes/v1"
CHALLENGE_TAG = b"sealcodes/v1/challenge"
CODE_TAG = b"sealcodes/v1/code"
FINGERPRINT_TAG = b"sealcodes/v1/fingerprint"
TAG_END = b"\x00"

LABEL_MAX_BYTES = 128
EPOCH_MIN = 0
EPOCH_MAX = 2**32 - 1
COUNT_MIN = 1
COUNT_MAX = 100
DEFAULT_COUNT = 10
RESPONSE_MIN_BYTES = 16
RESPONSE_MAX_BYTES = 64

HASH_NAME = "sha256"
HASH_BYTES = 32
BLOCK_BYTES = 32  # length of each B_i and of F
FINGERPRINT_SYMBOLS = 8


# --- parameters ----------------------------------------------------------------------------------


def normalize_label_text(label: str) -> str:
    """The label as sealcodes stores and compares it: NFC text that passes every label rule.

    Rejected, never repaired: control characters (category Cc), white space at either end, text
    that is not valid Unicode (lone surrogates), an empty label, more than 128 bytes of UTF-8 in
    NFC. Messages name the position or code point of the problem, not the label.
    """
    if not isinstance(label, str):
        raise TypeError("label must be text (str)")
    text = unicodedata.normalize("NFC", label)
    if not text:
        raise InvalidInputError("label is empty")
    for position, char in enumerate(text, start=1):
        category = unicodedata.category(char)
        if category == "Cc":
            raise InvalidInputError(f"label contains a control character (U+{ord(char):04X}) at position {position}")
        if category == "Cs":
            raise InvalidInputError(f"label is not valid Unicode text (lone surrogate at position {position})")
    # Once Cc is excluded, str.isspace() is exactly the Unicode White_Space property.
    if text[0].isspace():
        raise InvalidInputError("label starts with white space")
    if text[-1].isspace():
        raise InvalidInputError("label ends with white space")
    size = len(text.encode("utf-8"))
    if size > LABEL_MAX_BYTES:
        raise InvalidInputError(f"label is {size} bytes in UTF-8 (NFC); at most {LABEL_MAX_BYTES} are allowed")
    return text


def normalize_label(label: str) -> bytes:
    """The label as it enters the derivation: NFC, UTF-8, 1..128 bytes (rules of `normalize_label_text`)."""
    return normalize_label_text(label).encode("utf-8")


def _require_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer")
    return value


def validate_epoch(epoch: int) -> int:
    """The epoch, checked to be 0..2^32-1."""
    if not EPOCH_MIN <= _require_int(epoch, "epoch") <= EPOCH_MAX:
        raise InvalidInputError(f"epoch must be between {EPOCH_MIN} and {EPOCH_MAX}")
    return epoch


def validate_count(count: int) -> int:
    """The number of codes, checked to be 1..100."""
    if not COUNT_MIN <= _require_int(count, "count") <= COUNT_MAX:
        raise InvalidInputError(f"count must be between {COUNT_MIN} and {COUNT_MAX}")
    return count


def validate_response(response: bytes | bytearray | memoryview) -> None:
    """Check that the device response R is bytes-like and 16..64 bytes long (its content is opaque)."""
    if not isinstance(response, (bytes, bytearray, memoryview)):
        raise TypeError("the device response must be bytes-like")
    size = memoryview(response).nbytes
    if not RESPONSE_MIN_BYTES <= size <= RESPONSE_MAX_BYTES:
        raise InvalidInputError(
            f"the device response has {size} bytes; expected {RESPONSE_MIN_BYTES} to {RESPONSE_MAX_BYTES}"
        )


@dataclass(frozen=True)
class CodeSetParams:
    """The parameters of a code set (docs/spec.md section 1), checked once.

    `CodeSetParams.of()` is where a label, epoch, format and count are checked, as they enter the
    library; `with_checked()` moves them to values checked already (what a loaded profile holds for
    a set: profile.py checks it as the file is read) and `next_epoch()` to the following epoch
    (checked there). Everything that takes a CodeSetParams (the challenge, the codes, the
    fingerprint) uses it as it is, checking nothing again."""

    label: str  # NFC text that passes every label rule
    epoch: int
    code_format: Format
    count: int
    label_bytes: bytes = field(repr=False)  # the label as it enters the derivation: UTF-8 of `label`

    @classmethod
    def of(cls, label: str, epoch: int, fmt: FormatLike = DEFAULT_FORMAT_ID, count: int = DEFAULT_COUNT):
        """The parameters, each checked (InvalidInputError names the one that is bad)."""
        text = normalize_label_text(label)
        return cls(text, validate_epoch(epoch), get_format(fmt), validate_count(count), text.encode("utf-8"))

    @property
    def format(self) -> str:
        """The format id ("base32-16", ...)."""
        return self.code_format.id

    def with_checked(self, epoch: int, fmt: str | None = None, count: int | None = None) -> "CodeSetParams":
        """These parameters at an epoch, format id and count checked already: what a loaded profile
        records for the set (profile.py checks it as the file is read), or what the caller checked;
        None keeps this one's."""
        return CodeSetParams(self.label, epoch, self.code_format if fmt is None else FORMATS[fmt],
                             self.count if count is None else count, self.label_bytes)

    def next_epoch(self) -> "CodeSetParams":
        """The same set one epoch on (rotation): the new epoch is checked."""
        return CodeSetParams(self.label, validate_epoch(self.epoch + 1), self.code_format, self.count,
                             self.label_bytes)


def validate_parameters(label: str, epoch: int, fmt: FormatLike, count: int) -> CodeSetParams:
    """Check every parameter of a code set before the device is asked (InvalidInputError if one is bad)."""
    return CodeSetParams.of(label, epoch, fmt, count)


def parse_fingerprint(text: str) -> str:
    """Read a fingerprint typed by a person (rules of typed base-32 codes); return it as XXXX-XXXX."""
    symbols = parse_base32(text, FINGERPRINT_SYMBOLS, "fingerprint")
    return _fingerprint_display(symbols)


def _fingerprint_display(symbols: str) -> str:
    half = FINGERPRINT_SYMBOLS // 2
    return symbols[:half] + "-" + symbols[half:]


# --- byte strings of the spec --------------------------------------------------------------------


def _u16(n: int) -> bytes:
    return struct.pack(">H", n)


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


def _length_prefixed(data: bytes) -> bytes:
    return _u16(len(data)) + data


def challenge_input(label_bytes: bytes, epoch: int) -> bytes:
    """The message hashed into the challenge, for a normalized label and a valid epoch."""
    return CHALLENGE_TAG + TAG_END + _length_prefixed(label_bytes) + _u32(epoch)


def fingerprint_info(label_bytes: bytes, epoch: int, format_id: str) -> bytes:
    """HKDF info of the fingerprint F."""
    return FINGERPRINT_TAG + TAG_END + _length_prefixed(label_bytes) + _u32(epoch) + _length_prefixed(
        format_id.encode("ascii")
    )


def code_info(label_bytes: bytes, epoch: int, format_id: str, index: int) -> bytes:
    """HKDF info of block B_i (index i = code number - 1)."""
    return (
        CODE_TAG
        + TAG_END
        + _length_prefixed(label_bytes)
        + _u32(epoch)
        + _length_prefixed(format_id.encode("ascii"))
        + _u32(index)
    )


# --- primitives ----------------------------------------------------------------------------------


def hkdf_extract(salt: bytes, ikm: bytes | bytearray | memoryview) -> bytearray:
    """HKDF-Extract with SHA-256 (RFC 5869): PRK = HMAC-SHA-256(salt, IKM). Caller wipes the result."""
    return bytearray(hmac.digest(salt, ikm, HASH_NAME))


def hkdf_expand(prk: bytes | bytearray, info: bytes, length: int) -> bytearray:
    """HKDF-Expand with SHA-256 (RFC 5869), `length` <= 255 * 32. Caller wipes the result."""
    if not 0 < length <= 255 * HASH_BYTES:
        raise ValueError("HKDF-Expand length out of range")
    okm = bytearray(length)
    previous = b""
    for counter, start in enumerate(range(0, length, HASH_BYTES), start=1):
        previous = hmac.digest(prk, previous + info + bytes([counter]), HASH_NAME)
        chunk = previous[: length - start]
        okm[start : start + len(chunk)] = chunk
    return okm


# --- derivation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSet:
    """A derived set of codes. `codes[k - 1]` is code number k, in display form.

    The repr never shows the codes.
    """

    label: str  # NFC
    epoch: int
    format: str  # format id
    codes: list[str] = field(repr=False)
    fingerprint: str  # XXXX-XXXX

    @property
    def count(self) -> int:
        return len(self.codes)

    def numbered(self) -> list[tuple[int, str]]:
        """(number, code) pairs, numbered from 1 as people see them."""
        return list(enumerate(self.codes, start=1))


def challenge(label: str, epoch: int) -> bytes:
    """The 32-byte challenge sent to the device for this label and epoch (docs/spec.md section 2)."""
    return challenge_of(CodeSetParams.of(label, epoch))


def challenge_of(params: CodeSetParams) -> bytes:
    """The challenge of a code set's (checked) parameters."""
    return hashlib.sha256(challenge_input(params.label_bytes, params.epoch)).digest()


def _compact_code(prk: bytearray, params: CodeSetParams, index: int) -> str:
    block = hkdf_expand(prk, code_info(params.label_bytes, params.epoch, params.format, index), BLOCK_BYTES)
    try:
        return params.code_format.code_from_block(block)
    finally:
        wipe(block)


def _fingerprint(prk: bytearray, params: CodeSetParams) -> str:
    block = hkdf_expand(prk, fingerprint_info(params.label_bytes, params.epoch, params.format), BLOCK_BYTES)
    try:
        value = int.from_bytes(block, "big") % len(CROCKFORD_BASE32) ** FINGERPRINT_SYMBOLS
    finally:
        wipe(block)
    return _fingerprint_display(symbols_of(value, CROCKFORD_BASE32, FINGERPRINT_SYMBOLS))


def derive(
    response: bytes | bytearray | memoryview,
    label: str,
    epoch: int,
    fmt: FormatLike = DEFAULT_FORMAT_ID,
    count: int = DEFAULT_COUNT,
) -> CodeSet:
    """The code set for device response R (docs/spec.md section 4). R is read, never kept or modified."""
    return derive_set(response, CodeSetParams.of(label, epoch, fmt, count))


def derive_set(response: bytes | bytearray | memoryview, params: CodeSetParams) -> CodeSet:
    """The code set of R and a code set's (checked) parameters. R is read, never kept or modified."""
    validate_response(response)
    prk = hkdf_extract(VERSION_TAG, response)
    try:
        codes = [params.code_format.display(_compact_code(prk, params, index)) for index in range(params.count)]
        set_fingerprint = _fingerprint(prk, params)
    finally:
        wipe(prk)
    return CodeSet(label=params.label, epoch=params.epoch, format=params.format, codes=codes,
                   fingerprint=set_fingerprint)


def fingerprint(
    response: bytes | bytearray | memoryview, label: str, epoch: int, fmt: FormatLike = DEFAULT_FORMAT_ID
) -> str:
    """Only the fingerprint (XXXX-XXXX) of the set, without computing any code."""
    return fingerprint_of(response, CodeSetParams.of(label, epoch, fmt))


def fingerprint_of(response: bytes | bytearray | memoryview, params: CodeSetParams) -> str:
    """Only the fingerprint of R with a code set's (checked) parameters (its count plays no part)."""
    validate_response(response)
    prk = hkdf_extract(VERSION_TAG, response)
    try:
        return _fingerprint(prk, params)
    finally:
        wipe(prk)
