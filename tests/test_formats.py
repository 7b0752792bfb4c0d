"""Formats, check symbols and typed input (docs/spec.md sections 4-6; docs/security.md items 1, 2, 5, 6)."""

from __future__ import annotations

import hashlib
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealcodes.derivation import derive
from sealcodes.errors import InvalidInputError
from sealcodes.formats import (
    BASE32_16,
    BASE32_24,
    CROCKFORD_BASE32,
    DAMM_CHECK,
    DAMM_TABLE,
    DEFAULT_FORMAT_ID,
    DIGITS_24,
    FORMATS,
    GF32_CHECK,
    Format,
    check_matches,
    display_code,
    get_format,
    gf32_mul2,
    is_well_formed,
    parse_code,
    symbols_of,
)


def deterministic(examples: int):
    """Hypothesis settings for this suite: `examples` examples, of the fixed sequence the default
    run draws (the profile of conftest.py: no database, no deadline)."""
    return settings(max_examples=examples)


ALL_FORMATS = list(FORMATS.values())
format_ids = pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: f.id)


def sample_codes(fmt: Format) -> list[str]:
    """Compact codes derived the normal way, plus the extreme values of the format."""
    codes = [fmt.code_from_int(0), fmt.code_from_int(fmt.modulus - 1), fmt.code_from_int(fmt.modulus // 3)]
    for seed in range(3):
        response = hashlib.sha256(b"sample %d" % seed).digest()
        codes += [parse_code(code, fmt) for code in derive(response, "samples", seed, fmt.id, 10).codes]
    return codes


# --- the registry ---------------------------------------------------------------------------------


def test_the_three_v1_formats():
    assert list(FORMATS) == ["base32-16", "base32-24", "digits-24"]
    assert DEFAULT_FORMAT_ID == "base32-16"
    assert CROCKFORD_BASE32 == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    table = {f.id: (f.alphabet, f.data_symbols, f.length, f.check.name, f.separator) for f in ALL_FORMATS}
    assert table == {
        "base32-16": (CROCKFORD_BASE32, 15, 16, "gf32", "-"),
        "base32-24": (CROCKFORD_BASE32, 23, 24, "gf32", "-"),
        "digits-24": ("0123456789", 23, 24, "damm", " "),
    }


def test_entropy_of_every_format_is_at_least_64_bits_and_default_is_75():
    for fmt in ALL_FORMATS:
        assert fmt.entropy_bits >= 64
    assert get_format(DEFAULT_FORMAT_ID).entropy_bits == 75
    assert BASE32_24.entropy_bits == 115 > 112
    assert round(DIGITS_24.entropy_bits, 1) == 76.4


def test_modulo_bias_bound_of_the_spec_holds():
    for fmt in ALL_FORMATS:
        assert fmt.modulus <= 2**115
        # bias of (256-bit value mod a^d) is at most a^d / 2^256
        assert fmt.modulus * 2**140 < 2**256


def test_get_format_accepts_ids_and_registered_objects_only():
    assert get_format("digits-24") is DIGITS_24
    assert get_format(BASE32_24) is BASE32_24
    for bad in ["base32-20", "BASE32-16", "", "base32-16 ", "x" * 1000]:
        with pytest.raises(InvalidInputError, match="unknown format") as info:
            get_format(bad)
        assert "\n" not in str(info.value) and len(str(info.value)) < 200
    impostor = Format(
        id="base32-16", alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", data_symbols=15, check=GF32_CHECK,
        group_size=4, separator="-", typed_symbols_hint="",
    )
    with pytest.raises(InvalidInputError):
        get_format(impostor)
    with pytest.raises(TypeError):
        get_format(16)


# --- encoding and display -------------------------------------------------------------------------


@format_ids
def test_int_to_symbols_keeps_leading_zeros_and_covers_the_range(fmt):
    assert fmt.data_from_int(0) == fmt.alphabet[0] * fmt.data_symbols
    assert fmt.data_from_int(1) == fmt.alphabet[0] * (fmt.data_symbols - 1) + fmt.alphabet[1]
    assert fmt.data_from_int(fmt.modulus - 1) == fmt.alphabet[-1] * fmt.data_symbols
    for bad in (-1, fmt.modulus):
        with pytest.raises(ValueError):
            fmt.data_from_int(bad)


@format_ids
@deterministic(200)
@given(data=st.data())
def test_int_to_symbols_is_positional_base_a(fmt, data):
    n = data.draw(st.integers(0, fmt.modulus - 1))
    symbols = fmt.data_from_int(n)
    assert len(symbols) == fmt.data_symbols
    assert sum(fmt.alphabet.index(s) * fmt.radix**k for k, s in enumerate(reversed(symbols))) == n
    code = fmt.code_from_int(n)
    assert code[:-1] == symbols and fmt.has_valid_check(code)


@format_ids
def test_block_is_read_big_endian_and_reduced_mod_a_pow_d(fmt):
    block = bytes(range(32))
    assert fmt.code_from_block(block) == fmt.code_from_int(int(block.hex(), 16) % fmt.modulus)
    assert fmt.code_from_block(b"\xff" * 32) == fmt.code_from_int((2**256 - 1) % fmt.modulus)
    assert fmt.code_from_block(bytearray(32)) == fmt.code_from_int(0)


def test_display_grouping():
    assert BASE32_16.display("PDNVH2W6DE8S0C1K") == "PDNV-H2W6-DE8S-0C1K"
    assert BASE32_24.display("MA3ACFQTYNANNJN97282102N") == "MA3A-CFQT-YNAN-NJN9-7282-102N"
    assert DIGITS_24.display("890403403688937890317319") == "8904 0340 3688 9378 9031 7319"
    assert display_code("890403403688937890317319", "digits-24") == "8904 0340 3688 9378 9031 7319"


def test_symbols_of_helper():
    assert symbols_of(0, CROCKFORD_BASE32, 8) == "00000000"
    assert symbols_of(32**8 - 1, CROCKFORD_BASE32, 8) == "ZZZZZZZZ"
    assert symbols_of(1234, "0123456789", 6) == "001234"


# --- check symbols (docs/spec.md section 6) -------------------------------------------------------


def test_gf32_check_follows_the_spec_loop_literally():
    def spec_check(values):
        s = 0
        for v in values:
            s = ((s << 1) ^ (0x25 if (s << 1) & 0x20 else 0)) ^ v
        return (s << 1) ^ (0x25 if (s << 1) & 0x20 else 0)

    for fmt in (BASE32_16, BASE32_24):
        for code in sample_codes(fmt):
            values = [CROCKFORD_BASE32.index(c) for c in code]
            assert values[-1] == spec_check(values[:-1])


def test_damm_table_is_the_spec_table():
    rows = """0 3 1 7 5 9 8 6 4 2
              7 0 9 2 1 5 4 8 6 3
              4 2 0 6 8 7 1 3 5 9
              1 7 5 0 9 8 3 4 2 6
              6 1 2 3 0 4 5 9 7 8
              3 6 7 4 2 0 9 5 8 1
              5 8 6 9 7 2 0 1 3 4
              8 9 4 5 3 6 2 0 1 7
              9 4 3 8 6 1 7 2 0 5
              2 5 8 1 4 3 6 7 9 0"""
    assert DAMM_TABLE == tuple(tuple(int(x) for x in row.split()) for row in rows.splitlines())


def test_check_steps_are_bijections_and_separate_every_adjacent_swap_exhaustively():
    """Exhaustive over every state and symbol pair: each step is a bijection of the state and of
    the symbol, and two adjacent different symbols in either order leave different states. With
    the later steps being bijections, this proves detection for every code of every length."""
    gf32_step = lambda s, v: gf32_mul2(s) ^ v  # noqa: E731
    damm_step = lambda s, v: DAMM_TABLE[s][v]  # noqa: E731
    for step, size in ((gf32_step, 32), (damm_step, 10)):
        for s in range(size):
            assert sorted(step(s, v) for v in range(size)) == list(range(size))
            assert sorted(step(t, s) for t in range(size)) == list(range(size))
        for s, a, b in itertools.product(range(size), repeat=3):
            if a != b:
                assert step(step(s, a), b) != step(step(s, b), a)


@format_ids
def test_every_single_substitution_and_adjacent_swap_is_detected_on_sample_codes(fmt):
    for code in sample_codes(fmt):
        assert fmt.has_valid_check(code)
        for position, original in enumerate(code):
            for symbol in fmt.alphabet:
                if symbol != original:
                    typo = code[:position] + symbol + code[position + 1 :]
                    assert not fmt.has_valid_check(typo)
        for position in range(len(code) - 1):
            a, b = code[position], code[position + 1]
            if a != b:
                swapped = code[:position] + b + a + code[position + 2 :]
                assert not fmt.has_valid_check(swapped)


def test_check_symbols_of_the_spec_vectors():
    assert check_matches("PDNV-H2W6-DE8S-0C1K", "base32-16")
    assert check_matches("MA3A-CFQT-YNAN-NJN9-7282-102N", "base32-24")
    assert check_matches("8904 0340 3688 9378 9031 7319", "digits-24")
    assert not check_matches("PDNV-H2W6-DE8S-0C1M", "base32-16")
    assert not check_matches("8904 0340 3688 9378 9031 7318", "digits-24")
    assert GF32_CHECK.check_value([]) == 0 and DAMM_CHECK.check_value([]) == 0


# --- uniformity (docs/security.md item 2) ---------------------------------------------------------


def chi_square_p_value(statistic: float, degrees: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty normal approximation)."""
    scale = 2 / (9 * degrees)
    z = ((statistic / degrees) ** (1 / 3) - (1 - scale)) / math.sqrt(scale)
    return 0.5 * math.erfc(z / math.sqrt(2))


def chi_square(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 for c in counts) / expected


def pseudo_random_blocks(count: int, seed: bytes):
    """Deterministic stand-ins for B_i (SHA-256 of a counter): the test never uses real randomness."""
    for i in range(count):
        yield hashlib.sha256(seed + i.to_bytes(8, "big")).digest()


ALPHA = 0.001


def test_chi_square_helper_has_teeth():
    # bytes mod 10 favours 0..5 by 26:25; over 10^6 samples the test must see it
    counts = [0] * 10
    for block in pseudo_random_blocks(1_000_000 // 32, b"teeth"):
        for byte in block:
            counts[byte % 10] += 1
    assert chi_square_p_value(chi_square(counts), 9) < 1e-9
    assert abs(chi_square_p_value(9.0, 9) - 0.437) < 0.01  # median-ish value of chi2(9)


@pytest.mark.parametrize("fmt", [BASE32_16, DIGITS_24], ids=lambda f: f.id)
def test_symbols_are_uniform_over_a_million_symbols(fmt):
    codes_needed = -(-1_000_000 // fmt.data_symbols)
    overall = [0] * fmt.radix
    by_position = [[0] * fmt.radix for _ in range(fmt.data_symbols)]
    check_counts = [0] * fmt.radix
    values = fmt.symbol_values
    for block in pseudo_random_blocks(codes_needed, fmt.id.encode()):
        code = fmt.code_from_block(block)  # the library's int -> symbols mapping
        for position, symbol in enumerate(code[:-1]):
            value = values[symbol]
            overall[value] += 1
            by_position[position][value] += 1
        check_counts[values[code[-1]]] += 1
    assert sum(overall) >= 1_000_000
    assert min(overall) > 0, "every symbol appears"
    assert chi_square_p_value(chi_square(overall), fmt.radix - 1) > ALPHA
    per_position = sum(chi_square(row) for row in by_position)
    assert chi_square_p_value(per_position, fmt.data_symbols * (fmt.radix - 1)) > ALPHA
    assert chi_square_p_value(chi_square(check_counts), fmt.radix - 1) > ALPHA


# --- typed input (docs/spec.md section 5; docs/security.md item 6) --------------------------------


@format_ids
def test_display_form_reads_back_exactly(fmt):
    for code in sample_codes(fmt):
        assert parse_code(fmt.display(code), fmt) == code
        assert parse_code(code, fmt.id) == code
        assert is_well_formed(fmt.display(code), fmt)


@format_ids
@deterministic(100)
@given(data=st.data())
def test_separators_anywhere_are_ignored(fmt, data):
    code = fmt.code_from_int(data.draw(st.integers(0, fmt.modulus - 1)))
    typed = "".join(data.draw(st.text(alphabet=" -", max_size=3)) + symbol for symbol in code)
    typed += data.draw(st.text(alphabet=" -", max_size=3))
    assert parse_code(typed, fmt) == code


@pytest.mark.parametrize("fmt", [BASE32_16, BASE32_24], ids=lambda f: f.id)
@deterministic(100)
@given(data=st.data())
def test_base32_case_and_look_alikes(fmt, data):
    code = fmt.code_from_int(data.draw(st.integers(0, fmt.modulus - 1)))
    look_alikes = {"0": "0Oo", "1": "1IiLl"}
    typed = "".join(
        data.draw(st.sampled_from(look_alikes.get(s, s + s.lower()))) for s in code
    )
    assert parse_code(typed, fmt) == code
    assert parse_code(fmt.display(code).lower(), fmt) == code


def test_look_alikes_by_example():
    assert parse_code("pdnv-h2w6-de8s-ocik", "base32-16") == "PDNVH2W6DE8S0C1K"
    assert parse_code("PDNV H2W6 DE8S OCLK", "base32-16") == "PDNVH2W6DE8S0C1K"
    assert parse_code("8904-0340-3688-9378-9031-7319", "digits-24") == "890403403688937890317319"


def _rejects_without_echo(text: str, fmt: Format) -> str:
    with pytest.raises(InvalidInputError) as info:
        parse_code(text, fmt)
    message = str(info.value)
    assert "\n" not in message
    assert text not in message
    compact = "".join(c for c in text if c not in " -")
    assert compact not in message and compact.upper() not in message
    return message


@pytest.mark.parametrize(
    "bad",
    ["U", "u", "*", "_", "\t", "\n", ".", "\u00a0", "\uff10", "\u0131", "\u00df", "\u017f", "\u212a", "\u00e9",
     "\u0000"],
)
@pytest.mark.parametrize("fmt", [BASE32_16, BASE32_24], ids=lambda f: f.id)
def test_base32_rejects_characters_outside_the_alphabet(fmt, bad):
    # dotless i, sharp s, long s and the Kelvin sign upper-case to ASCII in Python: still rejected
    code = fmt.display(sample_codes(fmt)[4])
    typed = code[:5] + bad + code[5:]
    message = _rejects_without_echo(typed, fmt)
    assert "character 6 " in message


@pytest.mark.parametrize("bad", ["O", "o", "I", "l", "a", "A", "+", "\u0661", "\uff11", "\t", "_"])
def test_digits_rejects_everything_but_digits(bad):
    code = DIGITS_24.display(sample_codes(DIGITS_24)[4])
    typed = code[:3] + bad + code[3:]
    message = _rejects_without_echo(typed, DIGITS_24)
    assert "character 4 " in message


@format_ids
def test_wrong_lengths_are_rejected_without_echo(fmt):
    code = sample_codes(fmt)[5]
    for typed in [code[:-1], code + fmt.alphabet[3], code[:-4], code + code, fmt.display(code)[:-2]]:
        message = _rejects_without_echo(typed, fmt)
        assert f"has {fmt.length} symbols" in message
    for empty in ("", " - "):
        with pytest.raises(InvalidInputError, match="0 were typed"):
            parse_code(empty, fmt)


@format_ids
def test_mistyped_code_parses_but_fails_the_check(fmt):
    code = sample_codes(fmt)[6]
    typo = code[:2] + next(s for s in fmt.alphabet if s != code[2]) + code[3:]
    assert parse_code(typo, fmt) == typo
    assert not check_matches(typo, fmt)
    assert not is_well_formed(typo, fmt)
    assert not is_well_formed("not a code at all", fmt)
    assert not is_well_formed("", fmt)


def test_is_well_formed_still_rejects_an_unknown_format():
    with pytest.raises(InvalidInputError):
        is_well_formed("PDNV-H2W6-DE8S-0C1K", "base32-17")


def test_parse_code_needs_text():
    with pytest.raises(TypeError):
        parse_code(b"PDNVH2W6DE8S0C1K", "base32-16")
