"""PIV cards that answer GET METADATA with an error (PivApplet: 6F00 for an imported key; PIV/CAC
cards: errors of their own) can be adopted: the public key is read from the slot's certificate.
With neither metadata nor a certificate, enrollment says so plainly; a security status is not
taken for missing metadata. Our PIV applet with GET METADATA switched off (tests/piv/_without_metadata.py),
in process and through pcscd + vpcd with the installed CLI; R checked against an independent
computation from the private key the test imported."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from _support import VpcdToken, run_cli
from sealboard.loopback import LoopbackConnection
from sealboard.platform import CPythonPlatform
from sealcodes import derivation
from sealcodes.backends._yubikit import yubikit_connection
from sealcodes.backends.piv import PivBackend
from sealcodes.errors import DeviceError
from sealtoken.token import Token

from ._without_metadata import MALFORMED, without_metadata
from .test_backends import Recorder, enroll

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _independent_ecdh as independent  # noqa: E402

HERE = Path(__file__).resolve().parent
CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
PIV_PIN = "123456"


def _certificate(key):
    """A self-signed certificate for `key`, as a card's own tools would store it."""
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "imported 9D key")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))


def _put(connection, key, with_certificate):
    """Import `key` into slot 9D (and its certificate), as `ykman piv keys import` would."""
    from yubikit.piv import SLOT, PivSession

    piv = PivSession(yubikit_connection(connection))
    piv.authenticate(bytes(range(1, 9)) * 4)
    piv.put_key(SLOT.KEY_MANAGEMENT, key)
    if with_certificate:
        piv.put_certificate(SLOT.KEY_MANAGEMENT, _certificate(key))


def _card(answer, key=None, with_certificate=True):
    connection = LoopbackConnection(without_metadata(Token(CPythonPlatform(rng_seed=3)), answer).card)
    if key is not None:
        _put(connection, key, with_certificate)
    return connection


@pytest.mark.parametrize("answer", [0x6F00, 0x6A80, 0x6D00, 0x6E00, MALFORMED],
                         ids=lambda a: a if a == MALFORMED else f"{a:04X}")
@pytest.mark.parametrize("curve", sorted(CURVES))
def test_adopt_reads_the_public_key_from_the_certificate(answer, curve):
    key = ec.generate_private_key(CURVES[curve])
    backend = PivBackend(_card(answer, key))
    enrollment = enroll(backend, Recorder(), adopt=True)
    challenge = derivation.challenge("github.com/alice", 0)
    expected = independent.derive(curve, key.private_numbers().private_value, challenge)
    assert enrollment.curve == curve and enrollment.key_fingerprint == expected["key_fingerprint"]
    assert bytes(backend.respond(challenge, enrollment, Recorder())).hex() == expected["response"]
    assert [bytes(r).hex() for _, r in backend.recover_responses(challenge, Recorder())] == [expected["response"]]


def test_without_metadata_or_certificate_it_says_so_plainly():
    key = ec.generate_private_key(ec.SECP256R1())
    backend = PivBackend(_card(0x6F00, key, with_certificate=False))
    with pytest.raises(DeviceError) as refused:
        enroll(backend, Recorder(), adopt=True)
    assert str(refused.value).startswith(
        "the card does not describe PIV slot 9D (GET METADATA answered 0x6F00 - internal error) and holds no "
        "certificate there, so the slot's public key cannot be read: put the key's certificate in slot 9D")
    # a set enrolled while the certificate was there: refused before any PIN once it is gone
    watcher = Recorder()
    enrollment = enroll(PivBackend(_card(0x6F00, key)), Recorder(), adopt=True)
    with pytest.raises(DeviceError, match="cannot be read: wrong card, or its certificate was deleted; no PIN was sent"):
        backend.respond(derivation.challenge("x", 0), enrollment, watcher)
    assert watcher.asked == []
    assert list(backend.recover_responses(derivation.challenge("x", 0), watcher)) == []
    # making a key instead is offered, saying a key there would be lost; declined, nothing changes
    with pytest.raises(DeviceError, match="not confirmed"):
        enroll(backend, Recorder(confirm=False))


def test_a_security_status_is_not_taken_for_missing_metadata():
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(DeviceError, match=r"refused to describe slot 9D \(0x6982"):
        enroll(PivBackend(_card(0x6982, key)), Recorder(), adopt=True)


@pytest.fixture
def card_without_metadata(pcscd, tmp_path):
    """The same card behind pcscd + vpcd: `sealtoken serve` with GET METADATA answered 6F00."""
    token = VpcdToken(tmp_path / "state", server=[sys.executable, str(HERE / "_without_metadata.py"), "6F00"])
    token.start()
    try:
        yield token
    finally:
        token.stop()


@pytest.mark.pcsc
def test_cli_adopts_a_card_without_metadata_through_pcscd(card_without_metadata, isolated_dirs):
    from sealcodes.pcsc import PcscConnection

    reader = card_without_metadata.reader
    key = ec.generate_private_key(ec.SECP256R1())
    with PcscConnection(reader) as conn:
        _put(conn, key, with_certificate=False)
    refused = run_cli("enroll", "--device", reader, "--backend", "piv", "--adopt")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("Error: the card does not describe PIV slot 9D (GET METADATA answered 0x6F00")
    with PcscConnection(reader) as conn:
        _put(conn, key, with_certificate=True)
    adopted = run_cli("enroll", "--device", reader, "--backend", "piv", "--adopt")
    assert adopted.returncode == 0, adopted.stderr
    result = run_cli("generate", "github.com/alice", "--json", input=PIV_PIN + "\n")
    assert result.returncode == 0, result.stderr
    response = independent.derive("P-256", key.private_numbers().private_value,
                                  derivation.challenge("github.com/alice", 0))["response"]
    expected = derivation.derive(bytes.fromhex(response), "github.com/alice", 0)
    assert json.loads(result.stdout)["codes"] == list(expected.codes)
