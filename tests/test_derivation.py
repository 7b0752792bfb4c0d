"""The v1 derivation (docs/spec.md sections 1-4, 8; docs/security.md items 3, 4, 8, 10).

Golden vectors: the three reference vectors published with the v1 specification (copied below verbatim) and tests/vectors/
derivation-v1.json, each checked against the library and against tests/_independent_v1.py.
Primitives: RFC 4231 (HMAC-SHA-256) and RFC 5869 (HKDF-SHA-256) vectors.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import _independent_v1 as independent
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st

from sealcodes import derivation
from sealcodes.derivation import (
    CHALLENGE_TAG,
    CODE_TAG,
    FINGERPRINT_TAG,
    VERSION_TAG,
    CodeSet,
    challenge,
    challenge_input,
    code_info,
    derive,
    fingerprint,
    fingerprint_info,
    hkdf_expand,
    hkdf_extract,
    normalize_label,
    normalize_label_text,
    parse_fingerprint,
    validate_count,
    validate_epoch,
    validate_parameters,
    validate_response,
    wipe,
)
from sealcodes.errors import InvalidInputError
from sealcodes.formats import BASE32_16, BASE32_24, FORMATS, get_format, parse_code


def deterministic(examples: int):
    """Hypothesis settings for this suite: `examples` examples, of the fixed sequence the default
    run draws (the profile of conftest.py: no database, no deadline)."""
    return settings(max_examples=examples)


VECTORS = Path(__file__).parent / "vectors"
MAX_EPOCH = 2**32 - 1

# The published v1 reference vectors, verbatim. Never edit these lines.
SPEC_SECTION_7 = """\
{"response": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "label": "github.com/alice", "epoch": 0, "format": "base32-16", "count": 10, "challenge": "00c1b0db377b73a973cb453105301f3e5eb0ca5dcf9c9b24b8af330960c4a65f", "codes": ["PDNV-H2W6-DE8S-0C1K", "WF4W-TNVD-DJMR-WD2N", "XZMZ-RBD7-N5CF-4M4H", "9G1Y-W802-C1X4-MV7F", "T20S-VVC1-5GXK-VNEP", "505E-66J2-E8VF-ZH0Z", "XE5M-2PBJ-V8SB-3HSQ", "WCDH-3GVE-E8YR-4EZX", "H542-ZPS0-P05M-XTAH", "EV6H-1HRT-BJ34-XE34"], "fingerprint": "47JR-PGW1"}
{"response": "0000000000000000000000000000000000000000", "label": "bank", "epoch": 4294967295, "format": "digits-24", "count": 3, "challenge": "a1036ce5b7e0e8f268044971924f91de40a2369482f1e1162b91e1a625bd982f", "codes": ["8904 0340 3688 9378 9031 7319", "0808 7887 2832 5864 0949 3998", "2136 2010 5789 6017 7321 5104"], "fingerprint": "JZNN-1DJC"}
{"response": "27be0485dba5eda2d1b4be6c1332e5e045eb19b7ed2f9599d3dcef08c552973d", "label": "vpn", "epoch": 7, "format": "base32-24", "count": 2, "challenge": "c8932fbf0aab5927d5f0d9938ea2c506b9c2a25ef69b3a97b38d7142351ee1bb", "codes": ["MA3A-CFQT-YNAN-NJN9-7282-102N", "ABZ3-YAES-GWSJ-MFA8-FJ6J-1WM9"], "fingerprint": "ZGQN-JTBZ"}
"""
SPEC_LINES = SPEC_SECTION_7.splitlines()


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


DERIVATION_V1 = load("derivation-v1.json")
VALID = DERIVATION_V1["valid"]
INVALID = DERIVATION_V1["invalid"]
by_name = pytest.mark.parametrize("case", VALID, ids=lambda case: case["name"])
invalid_by_name = pytest.mark.parametrize("case", INVALID, ids=lambda case: case["name"])


def case_arguments(case: dict) -> tuple:
    """(response, label, epoch, format, count) of a vector, in the order derive() takes them."""
    return bytes.fromhex(case["response"]), case["label"], case["epoch"], case["format"], case["count"]


def derive_case(case: dict) -> CodeSet:
    return derive(*case_arguments(case))


# --- docs/spec.md section 8 -----------------------------------------------------------------------


@pytest.mark.parametrize("line", SPEC_LINES, ids=["spec-7-1", "spec-7-2", "spec-7-3"])
def test_spec_section_7_vectors_byte_for_byte(line):
    vector = json.loads(line)
    code_set = derive_case(vector)
    assert challenge(vector["label"], vector["epoch"]).hex() == vector["challenge"]
    assert code_set.codes == vector["codes"]
    assert code_set.fingerprint == vector["fingerprint"]
    assert (code_set.label, code_set.epoch, code_set.format, code_set.count) == (
        vector["label"], vector["epoch"], vector["format"], vector["count"]
    )
    assert json.dumps(vector) == line  # the parsed vector is exactly the line above
    independent_out = independent.generate(*case_arguments(vector))
    assert independent_out == {key: vector[key] for key in ("challenge", "codes", "fingerprint")}


def test_spec_section_7_lines_are_in_the_vector_file_verbatim():
    text = (VECTORS / "derivation-v1.json").read_text(encoding="utf-8")
    for number, line in enumerate(SPEC_LINES, start=1):
        assert f'{{"name": "spec-section-7-{number}", ' + line[1:] in text


# --- tests/vectors/derivation-v1.json -------------------------------------------------------------


@by_name
def test_vector_file_valid_cases_with_the_library(case):
    code_set = derive_case(case)
    assert challenge(case["label"], case["epoch"]).hex() == case["challenge"]
    assert code_set.codes == case["codes"]
    assert code_set.fingerprint == case["fingerprint"]
    assert code_set.label == unicodedata.normalize("NFC", case["label"])
    assert fingerprint(bytes.fromhex(case["response"]), case["label"], case["epoch"], case["format"]) == (
        case["fingerprint"]
    )


@by_name
def test_vector_file_valid_cases_with_the_independent_implementation(case):
    out = independent.generate(*case_arguments(case))
    assert out == {"challenge": case["challenge"], "codes": case["codes"], "fingerprint": case["fingerprint"]}


VALIDATORS = {
    "label": lambda case: normalize_label(case["label"]),
    "epoch": lambda case: validate_epoch(case["epoch"]),
    "count": lambda case: validate_count(case["count"]),
    "response": lambda case: validate_response(bytes.fromhex(case["response"])),
    "format": lambda case: get_format(case["format"]),
}


@invalid_by_name
def test_vector_file_invalid_cases_are_rejected_for_the_right_reason(case):
    with pytest.raises(InvalidInputError) as info:
        derive_case(case)
    message = str(info.value)
    assert "\n" not in message
    assert case["response"] not in message or not case["response"]
    if len(case["label"]) >= 3:
        assert case["label"] not in message
    for kind, validate in VALIDATORS.items():
        if kind == case["error"]:
            with pytest.raises(InvalidInputError):
                validate(case)
        else:
            validate(case)  # only the named parameter is at fault
    if case["error"] in ("label", "epoch"):
        with pytest.raises(InvalidInputError):
            challenge(case["label"], case["epoch"])
    if case["error"] != "response":
        with pytest.raises(InvalidInputError):
            validate_parameters(case["label"], case["epoch"], case["format"], case["count"])
    with pytest.raises(independent.Rejected) as rejected:
        independent.generate(*case_arguments(case))
    assert rejected.value.kind == case["error"]


def test_vector_file_equivalent_labels_give_identical_outputs():
    cases = {case["name"]: case for case in VALID}
    for group in DERIVATION_V1["equivalent_labels"]:
        members = [cases[name] for name in group]
        assert len({case["label"] for case in members}) == len(members), "labels differ as text"
        assert len({unicodedata.normalize("NFC", case["label"]) for case in members}) == 1
        outputs = {json.dumps([case[key] for key in ("challenge", "codes", "fingerprint")]) for case in members}
        assert len(outputs) == 1


def test_vector_file_covers_what_the_spec_asks_for():
    label_sizes = {len(normalize_label(case["label"])) for case in VALID}
    assert {1, 128} <= label_sizes
    assert any(len(normalize_label(c["label"])) == 128 and not c["label"].isascii() for c in VALID)
    assert any(len(c["label"].encode()) > 128 for c in VALID), "an NFD label longer than 128 bytes before NFC"
    assert {case["format"] for case in VALID} == set(FORMATS)
    assert {16, 20, 32, 64} <= {len(case["response"]) // 2 for case in VALID}
    assert {0, MAX_EPOCH} <= {case["epoch"] for case in VALID}
    for fmt in FORMATS:
        assert {1, 100} <= {case["count"] for case in VALID if case["format"] == fmt}
    assert len(VALID) >= 30
    assert {case["error"] for case in INVALID} == {"label", "epoch", "count", "response", "format"}
    values = {(case["error"], json.dumps(case[case["error"]])) for case in INVALID}
    assert {("epoch", "-1"), ("epoch", str(2**32)), ("count", "0"), ("count", "101")} <= values
    assert {15, 65} <= {len(case["response"]) // 2 for case in INVALID if case["error"] == "response"}
    label_sizes = {len(case["label"].encode()) for case in INVALID if case["error"] == "label"}
    assert {0, 129} <= label_sizes


# --- primitives: RFC 4231 and RFC 5869 ------------------------------------------------------------


@pytest.mark.parametrize("case", load("rfc4231.json")["cases"], ids=lambda c: f"rfc4231-{c['test_case']}")
def test_hmac_sha256_rfc4231(case):
    key, data, expected = (bytes.fromhex(case[k]) for k in ("key", "data", "hmac_sha256"))
    size = case.get("truncated_to_bytes", 32)
    # the library's HMAC route is HKDF-Extract: HMAC(key=salt, msg=ikm)
    assert bytes(hkdf_extract(key, data))[:size] == expected
    assert independent.hmac_sha256(key, data)[:size] == expected


@pytest.mark.parametrize("case", load("rfc5869.json")["cases"], ids=lambda c: f"rfc5869-{c['test_case']}")
def test_hkdf_sha256_rfc5869(case):
    ikm, salt, info, prk, okm = (bytes.fromhex(case[k]) for k in ("ikm", "salt", "info", "prk", "okm"))
    assert hkdf_extract(salt, ikm) == prk
    assert hkdf_expand(prk, info, case["length"]) == okm
    assert independent.hkdf_extract(salt, ikm) == prk
    assert independent.hkdf_expand(prk, info, case["length"]) == okm


@deterministic(60)
@given(prk=st.binary(min_size=32, max_size=64), info=st.binary(max_size=80), length=st.integers(1, 200))
def test_hkdf_expand_agrees_with_cryptography(prk, info, length):
    expected = HKDFExpand(hashes.SHA256(), length, info).derive(prk)
    assert hkdf_expand(prk, info, length) == expected
    assert hkdf_expand(bytearray(prk), info, length) == expected


def test_hkdf_expand_length_limits():
    for bad in (0, 255 * 32 + 1):
        with pytest.raises(ValueError):
            hkdf_expand(bytes(32), b"", bad)
    assert len(hkdf_expand(bytes(32), b"", 255 * 32)) == 255 * 32


# --- labels ---------------------------------------------------------------------------------------


def test_label_is_nfc_utf8():
    assert normalize_label("github.com/alice") == b"github.com/alice"
    assert normalize_label("cafe\u0301") == normalize_label("caf\u00e9") == "caf\u00e9".encode()
    assert normalize_label("\u212b") == "\u00c5".encode()
    assert normalize_label("a") == b"a"
    assert normalize_label("a b") == b"a b"  # inner white space is fine
    assert normalize_label("a\u200db") == "a\u200db".encode()  # format characters (Cf) are not Cc


def test_label_text_is_the_nfc_form_that_is_stored_and_compared():
    assert normalize_label_text("cafe\u0301") == "caf\u00e9"
    assert normalize_label_text("\u212bngstr\u00f6m") == "\u00c5ngstr\u00f6m"
    assert derive(bytes(32), "cafe\u0301", 0).label == normalize_label_text("cafe\u0301")
    for bad in ("", " x", "x\n", "x" * 129):
        with pytest.raises(InvalidInputError):
            normalize_label_text(bad)


def test_validate_parameters_accepts_valid_sets():
    for case in VALID:
        validate_parameters(case["label"], case["epoch"], case["format"], case["count"])


def test_typed_fingerprints_are_read_like_codes():
    assert parse_fingerprint("47JR-PGW1") == "47JR-PGW1"
    assert parse_fingerprint("47jrpgwl") == "47JR-PGW1"
    assert parse_fingerprint(" 47jr pgwi ") == "47JR-PGW1"
    assert parse_fingerprint("oooo-0000") == "0000-0000"
    for bad in ("47JR-PGW", "47JR-PGW1X", "47JR-PGWU", "47JR_PGW1", ""):
        with pytest.raises(InvalidInputError, match="fingerprint") as info:
            parse_fingerprint(bad)
        assert bad not in str(info.value) or not bad


def test_label_length_is_counted_after_nfc_in_bytes():
    assert len(normalize_label("x" * 128)) == 128
    assert len(normalize_label("\u00e9" * 64)) == 128
    assert len(normalize_label("e\u0301" * 64)) == 128  # 192 bytes as typed, 128 in NFC
    assert len(normalize_label("\U0001f511" * 32)) == 128
    for too_long in ("x" * 129, "\u00e9" * 64 + "x", "\U0001f511" * 32 + "x", "e\u0301" * 65):
        with pytest.raises(InvalidInputError, match="at most 128"):
            normalize_label(too_long)


@pytest.mark.parametrize("char", [chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]])
def test_every_control_character_is_rejected_anywhere(char):
    for label in (f"a{char}b", f"{char}ab", f"ab{char}"):
        with pytest.raises(InvalidInputError, match="control character") as info:
            normalize_label(label)
        assert f"U+{ord(char):04X}" in str(info.value)


def test_white_space_at_either_end_is_rejected_never_stripped():
    white_space = " \u00a0\u1680\u2000\u2007\u200a\u2028\u2029\u202f\u205f\u3000"
    for space in white_space:
        with pytest.raises(InvalidInputError, match="starts with white space"):
            normalize_label(space + "bank")
        with pytest.raises(InvalidInputError, match="ends with white space"):
            normalize_label("bank" + space)
        inner = "my" + space + "bank"
        assert normalize_label(inner) == unicodedata.normalize("NFC", inner).encode()  # U+2000 -> U+2002


def test_isspace_is_exactly_unicode_white_space_outside_cc():
    """The library uses str.isspace(); the spec says Unicode White_Space. Equal once Cc is excluded."""
    for code_point in range(0x110000):
        char = chr(code_point)
        if unicodedata.category(char) != "Cc":
            assert char.isspace() == (code_point in independent.WHITE_SPACE), hex(code_point)


def test_bad_labels_name_the_problem_not_the_label():
    with pytest.raises(InvalidInputError, match="label is empty"):
        normalize_label("")
    with pytest.raises(InvalidInputError, match="lone surrogate") as info:
        normalize_label("secret-label\ud800")
    assert "secret-label" not in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        normalize_label("secret-label\x07")
    assert "secret-label" not in str(info.value)
    with pytest.raises(TypeError):
        normalize_label(b"bank")


# --- epoch, count, response -----------------------------------------------------------------------


def test_epoch_count_response_limits():
    assert validate_epoch(0) == 0 and validate_epoch(MAX_EPOCH) == MAX_EPOCH
    assert validate_count(1) == 1 and validate_count(100) == 100
    for bad in (-1, 2**32, -(2**40)):
        with pytest.raises(InvalidInputError, match="epoch"):
            validate_epoch(bad)
    for bad in (0, 101, -1):
        with pytest.raises(InvalidInputError, match="count"):
            validate_count(bad)
    for size in (0, 1, 15, 65, 128):
        with pytest.raises(InvalidInputError, match=f"has {size} bytes"):
            validate_response(bytes(size))
    for size in (16, 20, 32, 64):
        validate_response(bytes(size))
        validate_response(bytearray(size))
        validate_response(memoryview(bytes(size)))


def test_wrong_types_are_programming_errors():
    for bad in (True, 1.0, "1", None):
        with pytest.raises(TypeError):
            validate_epoch(bad)
        with pytest.raises(TypeError):
            validate_count(bad)
    for bad in ("00" * 32, None, [0] * 32):
        with pytest.raises(TypeError):
            validate_response(bad)


def test_default_format_and_count():
    code_set = derive(bytes(32), "bank", 0)
    assert code_set.format == "base32-16" and code_set.count == 10
    assert code_set.numbered()[0] == (1, code_set.codes[0])
    assert get_format(code_set.format) is BASE32_16


# --- domain separation and independence (docs/security.md item 3) ---------------------------------


def test_fixed_domain_labels_are_always_present():
    assert VERSION_TAG == b"sealcodes/v1"
    assert challenge_input(b"bank", 7) == b"sealcodes/v1/challenge\x00\x00\x04bank\x00\x00\x00\x07"
    assert code_info(b"bank", 7, "digits-24", 3) == (
        b"sealcodes/v1/code\x00\x00\x04bank\x00\x00\x00\x07\x00\x09digits-24\x00\x00\x00\x03"
    )
    assert fingerprint_info(b"bank", 7, "digits-24") == (
        b"sealcodes/v1/fingerprint\x00\x00\x04bank\x00\x00\x00\x07\x00\x09digits-24"
    )
    assert CHALLENGE_TAG.startswith(VERSION_TAG) and CODE_TAG.startswith(VERSION_TAG)
    assert FINGERPRINT_TAG.startswith(VERSION_TAG)
    assert challenge("bank", 7) == hashlib.sha256(challenge_input(b"bank", 7)).digest()


def test_challenge_depends_only_on_label_and_epoch():
    base = challenge("github.com/alice", 0)
    assert len(base) == 32
    assert challenge("github.com/alice", 1) != base
    assert challenge("github.com/alic", 0) != base
    assert challenge("cafe\u0301", 5) == challenge("caf\u00e9", 5)


labels = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=20
)
responses = st.binary(min_size=16, max_size=64)
epochs = st.integers(0, MAX_EPOCH)
format_ids = st.sampled_from(list(FORMATS))


def code_number(code_set: CodeSet, index: int) -> int:
    """The integer n behind code `index` of a set (its data symbols read back)."""
    fmt = get_format(code_set.format)
    compact = parse_code(code_set.codes[index], fmt)
    return sum(fmt.symbol_values[s] * fmt.radix**k for k, s in enumerate(reversed(compact[:-1])))


@deterministic(40)
@given(response=responses, label=labels, epoch=epochs, fmt=format_ids, data=st.data())
def test_changing_any_one_input_changes_the_code(response, label, epoch, fmt, data):
    base = derive(response, label, epoch, fmt, 2)
    other_label = data.draw(labels.filter(lambda x: normalize_label(x) != normalize_label(label)))
    other_epoch = data.draw(epochs.filter(lambda x: x != epoch))
    other_response = data.draw(responses.filter(lambda x: x != response))
    assert derive(response, other_label, epoch, fmt, 1).codes[0] != base.codes[0]
    assert derive(response, label, other_epoch, fmt, 1).codes[0] != base.codes[0]
    assert derive(other_response, label, epoch, fmt, 1).codes[0] != base.codes[0]
    assert base.codes[1] != base.codes[0]  # index
    for key in ("label", "epoch", "response"):
        changed = dict(response=response, label=label, epoch=epoch, fmt=fmt)
        changed[key] = {"label": other_label, "epoch": other_epoch, "response": other_response}[key]
        assert fingerprint(**changed) != base.fingerprint


@deterministic(40)
@given(response=responses, label=labels, epoch=epochs)
def test_format_is_part_of_the_derivation(response, label, epoch):
    """Without the format in info_i, a base32-16 code would be the last 15 symbols of the
    base32-24 one (n mod 32^15); and fingerprints of one label and epoch would coincide."""
    short = derive(response, label, epoch, "base32-16", 1)
    long = derive(response, label, epoch, "base32-24", 1)
    digits = derive(response, label, epoch, "digits-24", 1)
    assert code_number(long, 0) % BASE32_16.modulus != code_number(short, 0)
    assert parse_code(long.codes[0], BASE32_24)[8:23] != parse_code(short.codes[0], BASE32_16)[:15]
    assert len({short.fingerprint, long.fingerprint, digits.fingerprint}) == 3


def test_every_code_of_a_large_set_is_different():
    for fmt in FORMATS:
        code_set = derive(bytes(range(32)), "github.com/alice", 0, fmt, 100)
        assert len(set(code_set.codes)) == 100


@deterministic(25)
@given(response=responses, label=labels, epoch=epochs, fmt=format_ids, count=st.integers(1, 99))
def test_asking_for_more_codes_never_changes_the_first_ones(response, label, epoch, fmt, count):
    fewer = derive(response, label, epoch, fmt, count)
    more = derive(response, label, epoch, fmt, 100)
    assert more.codes[:count] == fewer.codes
    assert more.fingerprint == fewer.fingerprint  # count is not part of the fingerprint


def test_derived_codes_read_back_and_pass_their_check():
    for fmt in FORMATS.values():
        for code in derive(bytes(range(20)), "bank", 3, fmt, 20).codes:
            assert fmt.has_valid_check(parse_code(code, fmt))
            assert fmt.display(parse_code(code, fmt)) == code


# --- secrets (docs/security.md items 8 and 10) ----------------------------------------------------


def test_prk_and_blocks_are_wiped_after_use(monkeypatch):
    handed_out = []

    def recording(function):
        def wrapper(*args):
            result = function(*args)
            handed_out.append(result)
            return result

        return wrapper

    monkeypatch.setattr(derivation, "hkdf_extract", recording(derivation.hkdf_extract))
    monkeypatch.setattr(derivation, "hkdf_expand", recording(derivation.hkdf_expand))
    derive(bytes(range(32)), "bank", 0, "base32-24", 5)
    fingerprint(bytes(range(32)), "bank", 0)
    assert len(handed_out) == 1 + 5 + 1 + 1 + 1  # PRK, B_1..B_5, F, then PRK and F again
    for secret in handed_out:
        assert isinstance(secret, bytearray) and secret == bytearray(len(secret))


def test_the_callers_response_is_not_modified():
    response = bytearray(range(32))
    derive(response, "bank", 0)
    assert response == bytearray(range(32))
    assert derive(response, "bank", 0) == derive(bytes(response), "bank", 0)
    assert derive(memoryview(response), "bank", 0).codes == derive(bytes(response), "bank", 0).codes
    wipe(response)
    assert response == bytearray(32)


def test_codes_never_appear_in_a_repr():
    code_set = derive(bytes(range(32)), "github.com/alice", 0)
    text = repr(code_set) + str(code_set)
    assert "47JR-PGW1" in text
    for code in code_set.codes:
        assert code not in text and parse_code(code, BASE32_16) not in text


def test_no_secret_in_errors_about_the_other_parameters():
    response = bytes(range(0x40, 0x60))
    for kwargs in (dict(epoch=-1), dict(count=0), dict(fmt="nope"), dict(label=" x")):
        call = dict(response=response, label="bank", epoch=0, fmt="base32-16", count=10) | kwargs
        with pytest.raises(InvalidInputError) as info:
            derive(**call)
        assert response.hex() not in str(info.value)
        assert response.decode("latin-1") not in str(info.value)


def test_library_never_prints(capsys):
    derive(bytes(32), "bank", 0, "digits-24", 100)
    with pytest.raises(InvalidInputError):
        derive(bytes(32), "", 0)
    assert capsys.readouterr() == ("", "")


def test_library_modules_do_not_import_click():
    program = (
        "import sys, sealcodes.derivation, sealcodes.formats; "
        "sys.exit(1 if 'click' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", program], check=False).returncode == 0


# --- the worked example of docs/spec.md -----------------------------------------------------------

WORKED_EXAMPLE = {
    "challenge input": "7365616c636f6465732f76312f6368616c6c656e6765" "00" "0010"
    "6769746875622e636f6d2f616c696365" "00000000",
    "PRK": "f416524416c08549f7a73ea66f8d013297fd8d2361366e1cb1b04020bfefaf0e",
    "info_0": "7365616c636f6465732f76312f636f6465" "00" "0010" "6769746875622e636f6d2f616c696365" "00000000"
    "0009" "6261736533322d3136" "00000000",
    "B_0": "ac65967933442631c2dde65cd3fb592af306857f8d0f359b5dc45c335c8c8181",
    "n": "26477834372489834955137",
    "fingerprint info": "7365616c636f6465732f76312f66696e6765727072696e74" "00" "0010"
    "6769746875622e636f6d2f616c696365" "00000000" "0009" "6261736533322d3136",
    "F": "b4c30b886d6cad1fb3c0e5a0c07a4c726d7deb7b638b12b9d776a921e58b4381",
    "f": "145585030017",
}


def test_worked_example_intermediate_values():
    label, response = normalize_label("github.com/alice"), bytes(range(32))
    prk = hkdf_extract(VERSION_TAG, response)
    info_0 = code_info(label, 0, "base32-16", 0)
    block = hkdf_expand(prk, info_0, 32)
    f_info = fingerprint_info(label, 0, "base32-16")
    f_block = hkdf_expand(prk, f_info, 32)
    assert challenge_input(label, 0).hex() == WORKED_EXAMPLE["challenge input"]
    assert prk.hex() == WORKED_EXAMPLE["PRK"]
    assert info_0.hex() == WORKED_EXAMPLE["info_0"]
    assert block.hex() == WORKED_EXAMPLE["B_0"]
    assert str(int(block.hex(), 16) % 32**15) == WORKED_EXAMPLE["n"]
    assert BASE32_16.code_from_block(block) == "PDNVH2W6DE8S0C1K"
    assert f_info.hex() == WORKED_EXAMPLE["fingerprint info"]
    assert f_block.hex() == WORKED_EXAMPLE["F"]
    assert str(int(f_block.hex(), 16) % 32**8) == WORKED_EXAMPLE["f"]


def test_worked_example_in_the_docs_matches():
    docs = (Path(__file__).parent.parent / "docs" / "spec.md").read_text(encoding="utf-8")
    table = docs.replace("` `", "")  # long hex values are split in pieces there
    for name, value in WORKED_EXAMPLE.items():
        assert value in table, name
