"""Verifier records v1: vectors, checked by the library and by an independent implementation."""

from __future__ import annotations

import json
import pathlib

import pytest

import _independent_verifier as independent
from sealcodes import derivation
from sealcodes.errors import InvalidInputError
from sealcodes.verifier.record import (
    HashParams,
    VerifierRecord,
    canonical_code,
    code_digest,
    make_record,
    pepper_digest,
    read_records,
)

VECTORS = json.loads((pathlib.Path(__file__).parent.parent / "vectors" / "verifier-record-v1.json").read_text())
FAST = [c for c in VECTORS["valid"] if c["hash"].get("memory_kib", 0) <= 1024]
DEFAULT_COST = [c for c in VECTORS["valid"] if c["hash"].get("memory_kib", 0) > 1024]


def _library_record(case) -> dict:
    codes = derivation.derive(bytes.fromhex(case["response"]), case["label"], case["epoch"], case["format"],
                              case["count"])
    params = HashParams.from_dict(case["hash"])
    return make_record(codes, case["account"], params, bytes.fromhex(case["salt"])).to_dict()


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["name"])
def test_library_reproduces_vectors(case):
    assert _library_record(case) == case["record"]
    # and parses them back unchanged
    assert VerifierRecord.from_dict(case["record"]).to_dict() == case["record"]


@pytest.mark.parametrize("case", FAST, ids=lambda c: c["name"])
def test_independent_implementation_reproduces_vectors(case):
    expected = independent.record(bytes.fromhex(case["response"]), case["label"], case["epoch"], case["format"],
                                  case["count"], case["account"], case["hash"], bytes.fromhex(case["salt"]))
    assert expected == case["record"]


@pytest.mark.slow
@pytest.mark.parametrize("case", DEFAULT_COST, ids=lambda c: c["name"])
def test_independent_implementation_default_cost(case):  # pure-Python Argon2id over 19 MiB: ~20 s
    test_independent_implementation_reproduces_vectors(case)


def test_vectors_cover_every_format_scheme_and_the_default_cost():
    assert {c["format"] for c in VECTORS["valid"]} == {"base32-16", "base32-24", "digits-24"}
    assert {c["hash"]["scheme"] for c in VECTORS["valid"]} == {"argon2id", "hmac-sha256"}
    assert any(c["hash"] == {"scheme": "argon2id", "memory_kib": 19456, "iterations": 2, "lanes": 1}
               for c in VECTORS["valid"])


def test_independent_argon2id_matches_rfc9106_and_cryptography():
    tag = independent.argon2id(b"\x01" * 32, b"\x02" * 16, 32, 3, 4, 32, b"\x03" * 8, b"\x04" * 12)
    assert tag.hex() == "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"  # RFC 9106 5.3
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    for memory, passes, lanes in ((8, 1, 1), (64, 2, 1), (96, 3, 3)):
        ours = Argon2id(salt=b"s" * 16, length=32, iterations=passes, lanes=lanes, memory_cost=memory).derive(b"pw")
        assert independent.argon2id(b"pw", b"s" * 16, memory, passes, lanes, 32) == ours


@pytest.mark.parametrize("case", VECTORS["typed"], ids=lambda c: c["typed"])
def test_typed_codes(case):
    assert canonical_code(case["typed"], case["format"]) == case["canonical"]
    assert independent.canonical(case["typed"], case["format"]) == case["canonical"]


def test_digest_input_includes_the_check_symbol_and_format():
    case = FAST[0]
    codes = derivation.derive(bytes.fromhex(case["response"]), case["label"], case["epoch"], case["format"],
                              case["count"])
    compact = codes.codes[0].replace("-", "")
    params = HashParams.from_dict(case["hash"])
    salt = bytes.fromhex(case["salt"])
    assert code_digest(params, salt, case["format"], compact).hex() == case["record"]["digests"][0]
    assert independent.digest_message(case["format"], compact) == (
        b"sealcodes/verifier/v1\x00" + b"\x00\x09base32-16" + b"\x00\x10" + compact.encode())


@pytest.mark.parametrize("case", VECTORS["pepper"])
def test_pepper(case):
    pepper, digest = bytes.fromhex(case["pepper"]), bytes.fromhex(case["digest"])
    assert pepper_digest(pepper, digest).hex() == case["stored"]
    assert independent.peppered(pepper, digest).hex() == case["stored"]


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["why"])
def test_invalid_records_are_refused(case):
    with pytest.raises(InvalidInputError):
        VerifierRecord.from_dict(case["record"])


def test_record_holds_no_code():
    case = FAST[0]
    codes = derivation.derive(bytes.fromhex(case["response"]), case["label"], case["epoch"], case["format"],
                              case["count"])
    text = make_record(codes, "alice", HashParams.argon2id(64, 1, 1)).to_json()
    for code in codes.codes:
        assert code not in text and code.replace("-", "") not in text


def test_fresh_salt_per_record_and_default_schemes():
    codes = derivation.derive(bytes(32), "x", 0, "base32-24", 2)
    first, second = make_record(codes), make_record(codes)
    assert first.salt != second.salt and first.digests != second.digests
    assert first.hash == HashParams.hmac_sha256() and first.account == "x"
    assert HashParams.default_for("base32-16") == HashParams.argon2id(19456, 2, 1)
    assert HashParams.default_for("digits-24").scheme == "argon2id"
    with pytest.raises(InvalidInputError, match="needs argon2id"):
        make_record(derivation.derive(bytes(32), "x", 0, "digits-24", 1), params=HashParams.hmac_sha256())


def test_read_records_json_lines_and_errors():
    one = json.dumps(VECTORS["valid"][0]["record"])
    two = json.dumps(VECTORS["valid"][2]["record"])
    assert len(read_records(one)) == 1
    assert len(read_records(json.dumps(VECTORS["valid"][0]["record"], indent=2))) == 1
    assert [r.label for r in read_records(one + "\n\n" + two + "\n")] == ["github.com/alice", "vpn"]
    with pytest.raises(InvalidInputError, match="line 2"):
        read_records(one + "\n{not json\n")
    with pytest.raises(InvalidInputError):
        read_records("   ")
