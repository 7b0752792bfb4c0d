"""Verifier records v2 (docs/spec.md section 14): the rotation key, commitment and proof, checked
against tests/vectors/verifier-record-v2.json by the library and by the second implementation
(tests/_independent_verifier.py, whose Ed25519 is tests/_independent_ed25519.py, plain Python)."""

from __future__ import annotations

import json
import pathlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import _independent_ed25519 as ed25519
import _independent_verifier as independent
from sealcodes import derivation
from sealcodes.errors import InvalidInputError
from sealcodes.verifier.record import HashParams, PreviousSet, VerifierRecord, make_record
from sealcodes.verifier.rotation import commitment, proof_message, rotation_key, verify_proof

VECTORS = json.loads((pathlib.Path(__file__).parent.parent / "vectors" / "verifier-record-v2.json").read_text())
VALID = VECTORS["valid"]


def _previous(case):
    p = case.get("previous")
    return None if p is None else PreviousSet(bytearray.fromhex(p["response"]), p["label"], p["epoch"])


@pytest.mark.parametrize("case", VALID, ids=lambda c: c["name"])
def test_library_reproduces_vectors(case):
    response = bytes.fromhex(case["response"])
    key = rotation_key(response, case["label"], case["epoch"])
    assert bytes(key).hex() == case["rotation_key"]
    assert commitment(key).hex() == case["commitment"] == case["record"]["commitment"]
    codes = derivation.derive(response, case["label"], case["epoch"], case["format"], case["count"])
    record = make_record(codes, case["account"], HashParams.from_dict(case["hash"]), bytes.fromhex(case["salt"]),
                         response=bytearray(response), previous=_previous(case))
    assert record.to_dict() == case["record"]
    assert VerifierRecord.from_dict(case["record"]).to_dict() == case["record"]
    if record.proof is not None:
        assert proof_message(record, record.proof.label, record.proof.epoch).hex() == case["proof_message"]
        assert verify_proof(bytes.fromhex(case["previous"]["commitment"]), record)


@pytest.mark.parametrize("case", VALID, ids=lambda c: c["name"])
def test_independent_implementation_reproduces_vectors(case):
    response = bytes.fromhex(case["response"])
    assert independent.rotation_key(response, case["label"], case["epoch"]).hex() == case["rotation_key"]
    assert independent.commitment(response, case["label"], case["epoch"]).hex() == case["commitment"]
    previous = None
    if "previous" in case:
        p = case["previous"]
        previous = {"response": bytes.fromhex(p["response"]), "label": p["label"], "epoch": p["epoch"]}
        assert independent.commitment(previous["response"], p["label"], p["epoch"]).hex() == p["commitment"]
    made = independent.record_v2(response, case["label"], case["epoch"], case["format"], case["count"],
                                 case["account"], case["hash"], bytes.fromhex(case["salt"]), previous)
    assert made == case["record"]
    if previous is not None:
        assert independent.proof_message(made, p["label"], p["epoch"]).hex() == case["proof_message"]


@pytest.mark.parametrize("check", VECTORS["checks"], ids=lambda c: c["why"])
def test_proof_checks_agree_in_both_implementations(check):
    stored = bytes.fromhex(check["commitment"])
    assert independent.proof_holds(stored, check["record"]) is check["holds"]
    try:
        record = VerifierRecord.from_dict(check["record"])
    except InvalidInputError:
        assert not check["holds"]
        return
    assert verify_proof(stored, record) is check["holds"]


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["why"])
def test_invalid_records_are_refused_by_both(case):
    with pytest.raises(InvalidInputError):
        VerifierRecord.from_dict(case["record"])
    assert not independent.v2_fields_valid(case["record"])


@pytest.mark.parametrize("case", VECTORS["invalid_text"], ids=lambda c: c["why"])
def test_invalid_json_texts_are_refused(case):
    with pytest.raises(InvalidInputError, match="twice"):
        VerifierRecord.from_json(case["text"])


def test_every_valid_vector_is_valid_for_the_independent_reader():
    assert all(independent.v2_fields_valid(case["record"]) for case in VALID)


@pytest.mark.parametrize("vector", ed25519.RFC8032_VECTORS, ids=("TEST 1", "TEST 2", "TEST 3"))
def test_independent_ed25519_against_rfc8032_and_openssl(vector):
    seed, public, message, signature = (bytes.fromhex(x) for x in vector)
    assert ed25519.public_key(seed) == public and ed25519.sign(seed, message) == signature
    assert ed25519.verify(public, message, signature)
    key = Ed25519PrivateKey.from_private_bytes(seed)
    assert key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == public
    assert key.sign(message) == signature
    bad = bytearray(signature)
    bad[0] ^= 1
    assert not ed25519.verify(public, message, bytes(bad))


def test_the_rotation_key_is_apart_from_every_code_and_the_fingerprint():
    """K uses its own HKDF label: it equals no code block, no fingerprint block, and changes with
    the label and the epoch (spec section 14.1)."""
    response = bytes(range(32))
    key = bytes(rotation_key(response, "github.com/alice", 5))
    prk = derivation.hkdf_extract(derivation.VERSION_TAG, response)
    label = derivation.normalize_label("github.com/alice")
    blocks = {bytes(derivation.hkdf_expand(prk, derivation.code_info(label, 5, fmt, i), 32))
              for fmt in ("base32-16", "base32-24", "digits-24") for i in range(100)}
    blocks |= {bytes(derivation.hkdf_expand(prk, derivation.fingerprint_info(label, 5, fmt), 32))
               for fmt in ("base32-16", "base32-24", "digits-24")}
    assert key not in blocks
    assert key != bytes(rotation_key(response, "github.com/alice", 6))
    assert key != bytes(rotation_key(response, "github.com/alicf", 5))
    assert key != bytes(rotation_key(bytes(range(1, 33)), "github.com/alice", 5))


def test_a_proof_binds_every_field_of_the_new_record():
    """Changing any one field of a signed record (or the hash cost) breaks the proof."""
    import dataclasses

    old, new = bytearray(b"\x01" * 32), bytearray(b"\x02" * 32)
    params = HashParams.argon2id(64, 1, 1)
    first = make_record(derivation.derive(old, "site", 0, "base32-16", 2), "alice", params, response=old)
    rotated = make_record(derivation.derive(new, "site", 1, "base32-16", 2), "alice", params, response=new,
                          previous=PreviousSet(old, "site", 0))
    assert verify_proof(first.commitment, rotated)
    changes = {"account": "alicf", "label": "sitf", "epoch": 2, "format": "digits-24", "count": 3,
               "fingerprint": "0000-0000", "hash": HashParams.argon2id(128, 1, 1), "salt": bytes(16),
               "digests": (bytes(32), rotated.digests[1]), "commitment": bytes(32)}
    for field, value in changes.items():
        assert not verify_proof(first.commitment, dataclasses.replace(rotated, **{field: value})), field


def test_a_proof_needs_the_new_sets_response():
    with pytest.raises(InvalidInputError):
        make_record(derivation.derive(bytes(32), "site", 1, "base32-16", 2), "alice", HashParams.argon2id(64, 1, 1),
                    previous=PreviousSet(bytearray(32), "site", 0))


def test_libsodium_and_the_python_check_of_a_commitment_agree():
    """With PyNaCl (server extra) a commitment is checked by libsodium; without it, by Python. Both
    must give the rule of spec 14.2 on every kind of point: keys, random bytes, small-order points,
    keys plus a small-order point (mixed order), non-canonical encodings."""
    import os

    import _independent_ed25519 as ed
    from sealcodes.verifier.rotation import _libsodium_says_valid, _python_refusal

    import nacl.bindings  # noqa: F401 (the test extra installs PyNaCl: this test is about it)
    keys = [Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            for _ in range(100)]
    torsion = [bytes.fromhex(h) for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85")]
    mixed = [ed.encode_point(ed._add(ed.decode_point(k), ed.decode_point(t)))
             for k in keys[:10] for t in torsion if ed.decode_point(t) is not None]
    non_canonical = []
    for y in range(0, 19):  # y + p still fits 255 bits for these small y
        value = y + ed.P
        non_canonical += [value.to_bytes(32, "little"), (value | 1 << 255).to_bytes(32, "little")]
    samples = keys + torsion + mixed + non_canonical + [os.urandom(32) for _ in range(300)]
    for sample in samples:
        assert _libsodium_says_valid(sample) is (_python_refusal(sample) is None), sample.hex()
        assert ed.is_prime_order_key(sample) is (_python_refusal(sample) is None), sample.hex()
    assert sum(_python_refusal(s) is None for s in samples) >= 100  # the keys, at least
