"""The edge cases of verifier records v1 (docs/spec.md section 13) in
tests/vectors/verifier-record-v1.json, each checked by the library and by the independent
implementation: the exact JSON line, NFD label and account brought to NFC by a verifier, pepper
ids, and every record a verifier must refuse (the original `invalid` cases included)."""

from __future__ import annotations

import json
import pathlib

import pytest

import _independent_verifier as independent
from _independent_v1 import Rejected
from sealcodes import derivation
from sealcodes.errors import InvalidInputError
from sealcodes.verifier.record import HashParams, VerifierRecord, make_record, pepper_id

VECTORS = json.loads((pathlib.Path(__file__).parent.parent / "vectors" / "verifier-record-v1.json").read_text())
VALID = {case["name"]: case for case in VECTORS["valid"]}


@pytest.mark.parametrize("case", VECTORS["lines"], ids=lambda c: c["case"])
def test_the_line_sealcodes_prints(case):
    valid = VALID[case["case"]]
    assert independent.line(valid["record"]) == case["line"]
    assert "\n" not in case["line"] and case["line"].isascii()
    codes = derivation.derive(bytes.fromhex(valid["response"]), valid["label"], valid["epoch"], valid["format"],
                              valid["count"])
    record = make_record(codes, valid["account"], HashParams.from_dict(valid["hash"]), bytes.fromhex(valid["salt"]))
    assert record.to_json() == case["line"]
    assert json.loads(case["line"]) == valid["record"]


@pytest.mark.parametrize("case", VECTORS["imports"], ids=lambda c: c["why"])
def test_a_verifier_stores_label_and_account_in_nfc(case):
    assert case["record"] != case["stored"]
    assert independent.read_record(case["record"]) == case["stored"]
    assert VerifierRecord.from_dict(case["record"]).to_dict() == case["stored"]


@pytest.mark.parametrize("case", VECTORS["pepper_ids"], ids=lambda c: c["id"])
def test_pepper_id(case):
    pepper = bytes.fromhex(case["pepper"])
    assert len(case["id"]) == 16 and case["id"] == case["id"].lower()
    assert pepper_id(pepper) == case["id"] == independent.pepper_id(pepper)


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["why"])
def test_invalid_records_refused_by_both(case):
    with pytest.raises(Rejected):
        independent.read_record(case["record"])
    with pytest.raises(InvalidInputError):
        VerifierRecord.from_dict(case["record"])


def test_every_valid_record_is_read_unchanged_by_both():
    for case in VECTORS["valid"]:
        assert independent.read_record(case["record"]) == case["record"]
        assert VerifierRecord.from_dict(case["record"]).to_dict() == case["record"]
