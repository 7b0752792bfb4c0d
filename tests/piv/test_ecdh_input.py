"""RFC 9380 hash_to_curve (both suites) and the ECDH derivation input (docs/spec.md section 11)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sealcodes import derivation
from sealcodes.backends import ecdh as ecdh_input
from sealcodes.backends import h2c

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _independent_ecdh as independent  # noqa: E402

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
RFC = json.loads((VECTORS / "rfc9380_h2c.json").read_text())
ECDH = json.loads((VECTORS / "ecdh-v1.json").read_text())["valid"]
SUITES = {"P256_XMD:SHA-256_SSWU_RO_": h2c.P256, "P384_XMD:SHA-384_SSWU_RO_": h2c.P384}


def _rfc_cases():
    for suite, body in RFC["suites"].items():
        for vector in body["vectors"]:
            yield pytest.param(suite, body["dst"], vector, id=f"{suite}-{vector['msg'][:8]}")


def test_both_suites_have_vectors():
    assert set(RFC["suites"]) == set(SUITES)
    assert all(len(body["vectors"]) == 5 for body in RFC["suites"].values())


@pytest.mark.parametrize("suite,dst,vector", list(_rfc_cases()))
def test_rfc9380_suite_vectors(suite, dst, vector):
    curve = SUITES[suite]
    msg, tag = vector["msg"].encode(), dst.encode()
    u0, u1 = h2c.hash_to_field(curve, msg, tag, 2)
    assert (u0, u1) == (int(vector["u0"], 16), int(vector["u1"], 16))
    assert h2c.map_to_curve_sswu(curve, u0) == (int(vector["Q0.x"], 16), int(vector["Q0.y"], 16))
    assert h2c.map_to_curve_sswu(curve, u1) == (int(vector["Q1.x"], 16), int(vector["Q1.y"], 16))
    expected = (int(vector["P.x"], 16), int(vector["P.y"], 16))
    assert h2c.hash_to_curve(curve, msg, tag) == expected
    assert h2c.on_curve(curve, expected)
    # the tests' second implementation agrees with the RFC too
    assert independent.hash_to_curve(curve.name, msg, tag) == expected


@pytest.mark.parametrize("name", sorted(RFC["expand_message_xmd"]))
def test_rfc9380_expand_message_xmd(name):
    body = RFC["expand_message_xmd"][name]
    for vector in body["vectors"]:
        args = (vector["msg"].encode(), body["dst"].encode(), vector["len_in_bytes"])
        assert h2c.expand_message_xmd(*args, body["hash"]).hex() == vector["uniform_bytes"]
        if len(body["dst"]) <= 255:
            assert independent.xmd(*args, body["hash"]).hex() == vector["uniform_bytes"]


def test_ecdh_vectors_cover_both_curves():
    assert {case["curve"] for case in ECDH} == {"P-256", "P-384"}


@pytest.mark.parametrize("case", ECDH, ids=lambda c: f"{c['curve']}-{c['label']}")
def test_ecdh_vectors_library(case):
    curve = ecdh_input.curve_named(case["curve"])
    challenge = derivation.challenge(case["label"], case["epoch"])
    assert challenge.hex() == case["challenge"]
    assert ecdh_input.dst(curve).decode() == case["dst"]
    assert ecdh_input.request_point(curve, challenge).hex() == case["point"]
    public = bytes.fromhex(case["public_key"])
    assert ecdh_input.key_fingerprint(public) == case["key_fingerprint"]
    response = ecdh_input.response_from_shared(curve, public, challenge, bytes.fromhex(case["shared_x"]))
    assert bytes(response).hex() == case["response"]
    codes = derivation.derive(bytes(response), case["label"], case["epoch"], case["format"], case["count"])
    assert codes.codes == case["codes"] and codes.fingerprint == case["fingerprint"]


@pytest.mark.parametrize("case", ECDH, ids=lambda c: f"{c['curve']}-{c['label']}")
def test_ecdh_vectors_independent(case):
    """OpenSSL does the scalar multiplication with the private key; every named value matches."""
    chal = independent.challenge(case["label"].encode("utf-8"), case["epoch"])
    assert chal.hex() == case["challenge"]
    got = independent.derive(case["curve"], int(case["private_key"], 16), chal)
    for key, value in got.items():
        assert case[key] == value, key


@pytest.mark.parametrize("case", ECDH, ids=lambda c: f"{c['curve']}-{c['label']}")
def test_vector_keys_follow_the_formula_of_the_spec(case):
    """private_key = (H(private_key_seed) mod (n - 1)) + 1, written as 2 * |Z| lower-case hex digits."""
    value = independent.private_key_from_seed(case["curve"], case["private_key_seed"])
    curve = ecdh_input.curve_named(case["curve"])
    assert case["private_key"] == format(value, f"0{2 * curve.field_len}x")
    assert 1 <= value < curve.n


def test_fresh_key_library_equals_independent():
    """A key the test makes now (not one of the vectors): both implementations give the same R."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    for curve, ec_curve in ((h2c.P256, ec.SECP256R1()), (h2c.P384, ec.SECP384R1())):
        key = ec.generate_private_key(ec_curve)
        challenge = derivation.challenge("fresh", 3)
        point = ecdh_input.request_point(curve, challenge)
        z = key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec_curve, point))
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        mine = ecdh_input.response_from_shared(curve, public, challenge, z)
        theirs = independent.derive(curve.name, key.private_numbers().private_value, challenge)
        assert bytes(mine).hex() == theirs["response"]


def test_response_rejects_wrong_sizes_and_points():
    case = ECDH[0]
    curve = h2c.P256
    public = bytes.fromhex(case["public_key"])
    challenge = bytes.fromhex(case["challenge"])
    z = bytes.fromhex(case["shared_x"])
    with pytest.raises(ValueError, match="x-coordinate"):
        ecdh_input.response_from_shared(curve, public, challenge, z[:31])
    with pytest.raises(ValueError, match="x-coordinate"):
        ecdh_input.response_from_shared(curve, public, challenge, z + b"\x00")
    broken = bytearray(public)
    broken[-1] ^= 1
    with pytest.raises(ValueError, match="not on P-256"):
        ecdh_input.response_from_shared(curve, bytes(broken), challenge, z)
    with pytest.raises(ValueError, match="uncompressed"):
        ecdh_input.response_from_shared(curve, public[:33], challenge, z)
    with pytest.raises(ValueError, match="32 bytes"):
        ecdh_input.request_point(curve, challenge[:31])
    with pytest.raises(ValueError, match="unsupported curve"):
        ecdh_input.curve_named("P-521")


def test_points_differ_per_challenge_and_curve():
    c1, c2 = derivation.challenge("a", 0), derivation.challenge("a", 1)
    assert ecdh_input.request_point(h2c.P256, c1) != ecdh_input.request_point(h2c.P256, c2)
    assert ecdh_input.request_point(h2c.P256, c1)[1:33] != ecdh_input.request_point(h2c.P384, c1)[1:33]
