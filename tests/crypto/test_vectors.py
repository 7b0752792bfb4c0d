"""tests/vectors/crypto-primitives.json against the pure-Python crypto under CPython, and
against `cryptography` (the independent implementation), so a wrong vector cannot hide."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec as cec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.crypto import _vector_checks as checks

VECTORS = checks.load(Path(__file__).resolve().parents[1] / "vectors" / "crypto-primitives.json")
CURVES = {"P-256": cec.SECP256R1(), "P-384": cec.SECP384R1()}


def test_ecdh_vectors():
    assert checks.check_ecdh(VECTORS) == 1147
    assert {c["result"] for c in VECTORS["ecdh"]} == {"valid", "invalid"}
    assert sum(c["result"] == "invalid" for c in VECTORS["ecdh"]) == 44


def test_ecdsa_vectors():
    assert checks.check_ecdsa(VECTORS) == 2


def test_aes_vectors():
    assert checks.check_aes(VECTORS) == 2


def test_refusals():
    assert checks.check_refusals() == 48


def test_ecdh_vectors_agree_with_cryptography():
    """Every case but the compressed points (which cryptography accepts and the firmware does not)."""
    disagree = []
    for case in VECTORS["ecdh"]:
        if "CompressedPoint" in case["flags"]:
            continue
        curve = CURVES[case["curve"]]
        key = cec.derive_private_key(int(case["private"], 16), curve)
        try:
            peer = cec.EllipticCurvePublicKey.from_encoded_point(curve, bytes.fromhex(case["public"]))
            shared = key.exchange(cec.ECDH(), peer).hex()
        except ValueError:
            shared = None
        if shared != case["shared"]:
            disagree.append(case["source"])
    assert not disagree


def test_ecdsa_vectors_agree_with_cryptography():
    for case in VECTORS["ecdsa"]:
        public = cec.EllipticCurvePublicKey.from_encoded_point(cec.SECP256R1(), bytes.fromhex(case["public"]))
        signature = encode_dss_signature(int(case["r"], 16), int(case["s"], 16))
        public.verify(signature, bytes.fromhex(case["message"]), cec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):
            public.verify(signature, bytes.fromhex(case["message"]) + b"!", cec.ECDSA(hashes.SHA256()))
        key = cec.derive_private_key(int(case["private"], 16), cec.SECP256R1())
        assert key.public_key() == public


def test_aes_vectors_agree_with_cryptography():
    for case in VECTORS["aes_cbc"]:
        enc = Cipher(algorithms.AES(bytes.fromhex(case["key"])), modes.CBC(bytes.fromhex(case["iv"]))).encryptor()
        assert (enc.update(bytes.fromhex(case["plaintext"])) + enc.finalize()).hex() == case["ciphertext"]


def test_the_vectors_name_their_sources():
    assert set(VECTORS["_source"]) == {"wycheproof", "nist", "rfc6979", "aes"}
    for group in ("ecdh", "ecdsa", "aes_cbc"):
        assert all(case["source"] for case in VECTORS[group])
    assert hashlib.sha256(b"sample").hexdigest().startswith("af2bdbe1")  # the RFC's h1 of "sample"
