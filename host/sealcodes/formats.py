"""The v1 code formats (docs/spec.md sections 4-6): alphabets, check symbols, display, typed input.

A code exists in two shapes here:

- compact: the data symbols followed by the check symbol, nothing else ("PDNVH2W6DE8S0C1K");
- display: the compact code cut into groups, as printed ("PDNV-H2W6-DE8S-0C1K").

`parse_code` turns what a person typed into the compact shape. Codes are secrets: nothing in this
module prints them, logs them or puts them (or a piece of them) in an exception message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Mapping, Protocol, Sequence, Union

from .errors import InvalidInputError

CROCKFORD_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DECIMAL_DIGITS = "0123456789"

#: characters a person may type between symbols; dropped when reading a code
TYPED_SEPARATORS = frozenset(" -")
#: base-32 look-alikes, read (after upper-casing) as the symbol they resemble
CROCKFORD_LOOK_ALIKES = MappingProxyType({"O": "0", "I": "1", "L": "1"})

#: x^5 + x^2 + 1, the reduction polynomial of GF(32) for the base-32 check symbol
GF32_POLYNOMIAL = 0x25
GF32_SIZE = 32

#: the Damm quasigroup of docs/spec.md section 6; row = interim digit, column = next digit
DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

DEFAULT_FORMAT_ID = "base32-16"


# --- check symbols -------------------------------------------------------------------------------


class CheckScheme(Protocol):
    """How a format computes and verifies its check symbol, on symbol values (not characters)."""

    name: str

    def residue(self, values: Sequence[int]) -> int:
        """Run the check loop over `values`; a complete valid code gives 0."""

    def check_value(self, data_values: Sequence[int]) -> int:
        """The value of the check symbol that follows `data_values`."""


def gf32_mul2(s: int) -> int:
    """Multiply a GF(32) element by x: shift left one bit, reduce by x^5 + x^2 + 1."""
    s <<= 1
    if s & GF32_SIZE:
        s ^= GF32_POLYNOMIAL
    return s


class Gf32Check:
    """Base 32: s = mul2(s) XOR v over the data; the check value is mul2(s)."""

    name = "gf32"

    def __repr__(self) -> str:
        return "GF32_CHECK"

    def residue(self, values: Sequence[int]) -> int:
        s = 0
        for value in values:
            s = gf32_mul2(s) ^ value
        return s

    def check_value(self, data_values: Sequence[int]) -> int:
        return gf32_mul2(self.residue(data_values))


class DammCheck:
    """Decimal digits: the Damm algorithm; the check digit is the interim after the data."""

    name = "damm"

    def __repr__(self) -> str:
        return "DAMM_CHECK"

    def residue(self, values: Sequence[int]) -> int:
        interim = 0
        for value in values:
            interim = DAMM_TABLE[interim][value]
        return interim

    def check_value(self, data_values: Sequence[int]) -> int:
        return self.residue(data_values)


GF32_CHECK = Gf32Check()
DAMM_CHECK = DammCheck()


# --- formats -------------------------------------------------------------------------------------


def symbols_of(n: int, alphabet: str, width: int) -> str:
    """The `width` base-len(alphabet) digits of `n`, most significant first, leading zeros kept."""
    radix = len(alphabet)
    if not 0 <= n < radix**width:
        raise ValueError("number out of range for the requested width")
    digits = []
    for _ in range(width):
        n, digit = divmod(n, radix)
        digits.append(alphabet[digit])
    return "".join(reversed(digits))


@dataclass(frozen=True, eq=False)
class Format:
    """One v1 code format: `data_symbols` symbols of `alphabet`, then one check symbol."""

    id: str
    alphabet: str
    data_symbols: int
    check: CheckScheme
    group_size: int
    separator: str
    #: how a person reading a typed code is told what is allowed (never the code itself)
    typed_symbols_hint: str
    #: read typed a-z as A-Z
    fold_case: bool = False
    #: typed characters read as another symbol (after case folding)
    look_alikes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def radix(self) -> int:
        return len(self.alphabet)

    @property
    def length(self) -> int:
        """Symbols in a compact code: the data symbols and the check symbol."""
        return self.data_symbols + 1

    @property
    def modulus(self) -> int:
        """a^d: how many different codes the format has."""
        return self.radix**self.data_symbols

    @property
    def entropy_bits(self) -> float:
        return self.data_symbols * math.log2(self.radix)

    @cached_property
    def symbol_values(self) -> Mapping[str, int]:
        return MappingProxyType({symbol: value for value, symbol in enumerate(self.alphabet)})

    # encoding

    def data_from_int(self, n: int) -> str:
        """The data symbols of n, 0 <= n < modulus."""
        return symbols_of(n, self.alphabet, self.data_symbols)

    def check_symbol(self, data: str) -> str:
        """The check symbol that follows the data symbols `data`."""
        if len(data) != self.data_symbols:
            raise ValueError(f"a {self.id} code has {self.data_symbols} data symbols")
        return self.alphabet[self.check.check_value(self._values_of(data))]

    def code_from_int(self, n: int) -> str:
        """The compact code for n, 0 <= n < modulus: data symbols, then the check symbol."""
        data = self.data_from_int(n)
        return data + self.check_symbol(data)

    def code_from_block(self, block: bytes | bytearray) -> str:
        """The compact code for a derived block B_i: n = B_i (big-endian) mod a^d (docs/spec.md section 4)."""
        return self.code_from_int(int.from_bytes(block, "big") % self.modulus)

    def display(self, code: str) -> str:
        """A compact code cut into groups, as shown and printed."""
        size = self.group_size
        return self.separator.join(code[start : start + size] for start in range(0, len(code), size))

    # verification

    def has_valid_check(self, code: str) -> bool:
        """Whether the check symbol of a compact code (as `parse_code` returns) matches its data."""
        if len(code) != self.length:
            raise ValueError(f"a compact {self.id} code has {self.length} symbols")
        return self.check.residue(self._values_of(code)) == 0

    def _values_of(self, symbols: str) -> list[int]:
        try:
            return [self.symbol_values[symbol] for symbol in symbols]
        except KeyError:
            raise ValueError(f"not a compact {self.id} code") from None


def _crockford(format_id: str, data_symbols: int) -> Format:
    """A Crockford base 32 format with the GF(32) check symbol, grouped by 4 with '-'."""
    return Format(
        id=format_id,
        alphabet=CROCKFORD_BASE32,
        data_symbols=data_symbols,
        check=GF32_CHECK,
        group_size=4,
        separator="-",
        typed_symbols_hint="a base 32 symbol (0-9 and A-Z except U; spaces and '-' are ignored)",
        fold_case=True,
        look_alikes=CROCKFORD_LOOK_ALIKES,
    )


BASE32_16 = _crockford("base32-16", 15)
BASE32_24 = _crockford("base32-24", 23)
DIGITS_24 = Format(
    id="digits-24",
    alphabet=DECIMAL_DIGITS,
    data_symbols=23,
    check=DAMM_CHECK,
    group_size=4,
    separator=" ",
    typed_symbols_hint="a digit (0-9; spaces and '-' are ignored)",
)

#: every v1 format by id; ids are exact (case-sensitive), they enter the derivation as bytes
FORMATS: Mapping[str, Format] = MappingProxyType({f.id: f for f in (BASE32_16, BASE32_24, DIGITS_24)})

FormatLike = Union[str, Format]


def get_format(fmt: FormatLike) -> Format:
    """The registered format for an id (or a registered Format); InvalidInputError otherwise."""
    if isinstance(fmt, Format):
        if FORMATS.get(fmt.id) is fmt:
            return fmt
        raise InvalidInputError(f"unknown format object {fmt.id!r}; use one of sealcodes.formats.FORMATS")
    if not isinstance(fmt, str):
        raise TypeError("format must be a format id (str) or a Format")
    try:
        return FORMATS[fmt]
    except KeyError:
        shown = fmt if len(fmt) <= 32 else fmt[:32] + "..."
        known = ", ".join(FORMATS)
        raise InvalidInputError(f"unknown format {shown!r}; v1 formats are {known}") from None


# --- typed input ---------------------------------------------------------------------------------


def _read_typed_symbols(text: str, symbols: Format, length: int, thing: str, kind: str) -> str:
    """The symbols of `symbols.alphabet` in typed `text`, read with the typed-input rules of `symbols`.

    Messages name what is read (`thing`: "code"; `kind`: "base32-16 code") and never quote the text.
    """
    if not isinstance(text, str):
        raise TypeError(f"a typed {thing} must be text (str)")
    found = []
    for position, char in enumerate(text, start=1):
        if char in TYPED_SEPARATORS:
            continue
        if symbols.fold_case and "a" <= char <= "z":  # ASCII only: 'ı'.upper() must not become 'I'
            char = char.upper()
        char = symbols.look_alikes.get(char, char)
        if char not in symbols.symbol_values:
            raise InvalidInputError(f"character {position} of the {thing} is not {symbols.typed_symbols_hint}")
        found.append(char)
    if len(found) != length:
        raise InvalidInputError(f"a {kind} has {length} symbols; {len(found)} were typed")
    return "".join(found)


def parse_code(text: str, fmt: FormatLike) -> str:
    """Read a code typed by a person (docs/spec.md section 5) and return it compact.

    Spaces and '-' are dropped; for base 32, a-z is read as A-Z, O as 0, I and L as 1. Anything
    else outside the alphabet, or a wrong number of symbols, raises InvalidInputError with a
    message that names the position or the count, never the code. The check symbol is not
    verified here: see `Format.has_valid_check` and `is_well_formed`.
    """
    code_format = get_format(fmt)
    return _read_typed_symbols(text, code_format, code_format.length, "code", f"{code_format.id} code")


def parse_base32(text: str, length: int, thing: str) -> str:
    """Read `length` Crockford base-32 symbols typed by a person, with the rules of typed codes
    (for a fingerprint, say). `thing` names it in error messages."""
    return _read_typed_symbols(text, BASE32_16, length, thing, thing)


def check_matches(text: str, fmt: FormatLike) -> bool:
    """Parse a typed code (raising InvalidInputError as `parse_code` does); True if its check symbol matches."""
    code_format = get_format(fmt)
    return code_format.has_valid_check(parse_code(text, code_format))


def is_well_formed(text: str, fmt: FormatLike) -> bool:
    """True when `text` reads as a code of `fmt` whose check symbol matches; never raises for bad text.

    An unknown format still raises InvalidInputError: that is the caller's mistake, not the typist's.
    """
    code_format = get_format(fmt)
    try:
        return check_matches(text, code_format)
    except InvalidInputError:
        return False


def display_code(code: str, fmt: FormatLike) -> str:
    """A compact code in its display grouping."""
    return get_format(fmt).display(code)
