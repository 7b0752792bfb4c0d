"""Keyring v1 vectors (tests/vectors/keyring-v1.json) against the library and an independent implementation."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from sealcodes import derivation
from sealcodes import keyring as kr

from . import _independent_keyring as ind
from _independent_v1 import generate as independent_generate

VECTORS = json.loads((Path(__file__).resolve().parent.parent / "vectors" / "keyring-v1.json").read_text())
VALID = VECTORS["valid"]


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_independent_implementation_reproduces_every_value(case):
    keyring_id, k = bytes.fromhex(case["id"]), case["threshold"]
    seed = bytes.fromhex(case["seed"])
    coefficients = [bytes.fromhex(c) for c in case["coefficients"]]
    assert len(coefficients) == k - 1
    for member in case["members"]:
        m = member["member"]
        answer = bytes.fromhex(member["answer"])
        assert ind.challenge(keyring_id, m).hex() == member["challenge"]
        assert ind.aad(keyring_id, m, k).hex() == member["aad"]
        assert ind.kek(answer, keyring_id, m, k).hex() == member["kek"]
        assert ind.share(seed, coefficients, m).hex() == member["share"]
        sealed = ind.gcm_encrypt(bytes.fromhex(member["kek"]), bytes.fromhex(member["nonce"]),
                                 bytes.fromhex(member["share"]), bytes.fromhex(member["aad"]))
        assert sealed.hex() == member["envelope"]
    document = json.loads(case["document"])
    assert ind.canonical(document) == case["document"]
    assert ind.paper(case["document"]) == case["paper"]
    assert ind.unpaper(case["paper"]) == document
    answers = {m["member"]: bytes.fromhex(m["answer"]) for m in case["members"]}
    # every k-subset of the members gives S
    for subset in itertools.combinations(answers, k):
        assert ind.open_keyring(document, {m: answers[m] for m in subset}) == seed
    c = case["codes"]
    expected = independent_generate(seed, c["label"], c["epoch"], c["format"], c["count"])
    assert list(expected["codes"]) == c["codes"] and expected["fingerprint"] == c["fingerprint"]


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_library_reproduces_every_value(case):
    keyring_id, k = bytes.fromhex(case["id"]), case["threshold"]
    keyring = kr.from_json(case["document"])
    assert kr.to_json(keyring) == case["document"]
    assert kr.to_paper(keyring) == case["paper"]
    assert kr.from_paper(case["paper"]) == keyring
    coefficients = iter(bytes.fromhex(c) for c in case["coefficients"])
    seed = bytearray.fromhex(case["seed"])
    shares = kr.split(seed, [m["member"] for m in case["members"]], k, random_bytes=lambda n: next(coefficients))
    answers = {}
    for member in case["members"]:
        m = member["member"]
        answers[m] = bytes.fromhex(member["answer"])
        assert kr.member_challenge(keyring_id, m).hex() == member["challenge"]
        assert bytes(shares[m]).hex() == member["share"]
        _, sealed = kr.seal_member(keyring_id, m, k, shares[m], answers[m], nonce=bytes.fromhex(member["nonce"]))
        assert sealed.hex() == member["envelope"]
    for subset in itertools.combinations(answers, k):
        opened = {m: kr.open_member(keyring, keyring.member(m), answers[m]) for m in subset}
        assert bytes(kr.recover_seed(keyring, opened)).hex() == case["seed"]
    c = case["codes"]
    codes = derivation.derive(seed, c["label"], c["epoch"], c["format"], c["count"])
    assert list(codes.codes) == c["codes"] and codes.fingerprint == c["fingerprint"]


@pytest.mark.parametrize("bad", VECTORS["invalid"], ids=[b["why"] for b in VECTORS["invalid"]])
def test_invalid_envelopes_refused_by_both(bad):
    case = next(c for c in VALID if c["name"] == bad["case"])
    keyring_id = bytes.fromhex(case["id"])
    k = bad.get("threshold", case["threshold"])
    answer = bytes.fromhex(bad["answer"])
    key = ind.kek(answer, keyring_id, bad["member"], k)
    assert ind.gcm_decrypt(key, bytes.fromhex(bad["nonce"]), bytes.fromhex(bad["envelope"]),
                           ind.aad(keyring_id, bad["member"], k)) is None
    keyring = kr.Keyring(keyring_id, case["name"], k,
                         (kr.Member(bad["member"], {"backend": "applet"}, bytes.fromhex(bad["nonce"]),
                                    bytes.fromhex(bad["envelope"])),))
    with pytest.raises(kr.EnvelopeOpenError):
        kr.open_member(keyring, keyring.members[0], answer)


def test_member_challenge_is_never_a_code_challenge():
    case = VALID[0]
    challenges = {m["challenge"] for c in VALID for m in c["members"]}
    # the domain labels differ from the first distinct byte on: "sealcodes/k..." vs "sealcodes/v..."
    assert kr.CHALLENGE_TAG[:10] == derivation.CHALLENGE_TAG[:10] and kr.CHALLENGE_TAG[10:11] != derivation.CHALLENGE_TAG[10:11]
    assert derivation.challenge(case["codes"]["label"], 0).hex() not in challenges


# --- edge cases of the document and the paper form (docs/spec.md sections 12.5, 12.6) ------------

CASES_BY_NAME = {c["name"]: c for c in VALID}


def test_every_valid_document_reads_back_to_itself_in_both():
    for case in VALID:
        assert ind.canonical(ind.read_document(case["document"])) == case["document"]
        assert kr.to_json(kr.from_json(case["document"])) == case["document"]


@pytest.mark.parametrize("case", VECTORS["documents"], ids=[c["name"] for c in VECTORS["documents"]])
def test_documents_are_written_back_the_same_by_both(case):
    keys = CASES_BY_NAME[case["answers_of"]]
    answers = {m["member"]: bytes.fromhex(m["answer"]) for m in keys["members"]}
    # the independent implementation: read, canonical form, paper form, and it still opens
    document = ind.read_document(case["input"])
    assert ind.canonical(document) == case["canonical"]
    assert ind.paper(case["canonical"]) == case["paper"]
    assert ind.open_keyring(document, answers) == bytes.fromhex(keys["seed"])
    # the library
    keyring = kr.from_json(case["input"])
    assert kr.to_json(keyring) == case["canonical"] and kr.to_paper(keyring) == case["paper"]
    assert kr.to_json(kr.from_paper(case["paper"])) == case["canonical"]
    first = keyring.members[0]
    share = kr.open_member(keyring, first, answers[first.member_id])
    opened = {first.member_id: share}
    for member in keyring.members[1:keyring.threshold]:
        opened[member.member_id] = kr.open_member(keyring, member, answers[member.member_id])
    assert bytes(kr.recover_seed(keyring, opened)).hex() == keys["seed"]


@pytest.mark.parametrize("case", VECTORS["papers"], ids=[c["why"] for c in VECTORS["papers"]])
def test_typed_paper_forms_read_the_same_by_both(case):
    if case["document"] is None:
        with pytest.raises(ind.Refused):
            ind.read_paper(case["typed"])
        with pytest.raises(kr.KeyringError):
            kr.from_paper(case["typed"])
    else:
        assert ind.canonical(ind.read_paper(case["typed"])) == case["document"]
        assert kr.to_json(kr.from_paper(case["typed"])) == case["document"]
        assert kr.to_json(kr.load_any(case["typed"])) == case["document"]


@pytest.mark.parametrize("case", VECTORS["invalid_documents"], ids=[c["why"] for c in VECTORS["invalid_documents"]])
def test_invalid_documents_refused_by_both(case):
    with pytest.raises(ind.Refused):
        ind.read_document(case["input"])
    with pytest.raises(kr.KeyringError) as refused:
        kr.from_json(case["input"])
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("case", VECTORS["serials"], ids=[f"{c['recorded']}-{c['reported']}" for c in VECTORS["serials"]])
def test_serial_spellings_name_the_same_device_in_both(case):
    from sealcodes.records import same_serial

    assert same_serial(case["recorded"], case["reported"]) is case["same"]
    assert ind.same_serial(case["recorded"], case["reported"]) is case["same"]


def test_edge_cases_cover_what_the_spec_names():
    """NFD text, both serial spellings, every escape kind, member order, lower-case and multi-line
    paper forms, padding bits: each is in the vectors (so a second implementation meets it)."""
    canonical = "".join(c["canonical"] for c in VECTORS["documents"])
    for needle in ("e\\u0301", "\\ud83d\\udd11", "\\u2028", "\\u0000", "\\u007f", "\\b", "\\f", "\\t", "\\n", "\\r",
                   '\\"', "\\\\", "1/2", '"serial":"1587658974"', '"serial":"5EA1C0DE"', '"touch":null'):
        assert needle in canonical, needle
    whys = " ".join(c["why"] for c in VECTORS["papers"])
    for needle in ("lower case", "several lines", "look-alikes", "padding bits", "a padding bit set"):
        assert needle in whys
    assert any("out-of-order" in c["name"] for c in VECTORS["documents"])
