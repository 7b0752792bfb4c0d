"""Host backends `piv` and `openpgp` against our token in process: enrollment, R, key checks, errors.

R is checked against an independent computation (tests/_independent_ecdh.py, OpenSSL ECDH) from
the card's private key, which the test makes and imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sealboard.loopback import LoopbackConnection
from sealboard.platform import CPythonPlatform
from sealcodes import derivation
from sealcodes.backends.base import Interaction
from sealcodes.backends.openpgp import OpenPgpBackend
from sealcodes.backends.piv import PivBackend
from sealcodes.backends._yubikit import yubikit_connection
from sealcodes.errors import DeviceError, PinError
from sealtoken.token import Token

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _independent_ecdh as independent  # noqa: E402

PINS = {"piv": "123456", "openpgp": "123456", "openpgp-admin": "12345678"}
CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}


class Recorder(Interaction):
    """Gives PINs from a table and records every request; confirms when told to."""

    def __init__(self, pins=None, confirm=True):
        self.pins = dict(PINS if pins is None else pins)
        self.asked = []
        self._confirm = confirm

    def request_pin(self, purpose, new=False):
        self.asked.append(purpose)
        return self.pins[purpose]

    def confirm(self, message):
        return self._confirm


class Card:
    def __init__(self, seed=1):
        self.token = Token(CPythonPlatform(rng_seed=seed))
        self.connection = LoopbackConnection(self.token.card)

    def import_piv(self, key):
        from yubikit.piv import SLOT, PivSession

        piv = PivSession(yubikit_connection(self.connection))
        piv.authenticate(bytes(range(1, 9)) * 4)
        piv.put_key(SLOT.KEY_MANAGEMENT, key)

    def import_openpgp(self, key):
        from yubikit.openpgp import KEY_REF, OpenPgpSession

        pgp = OpenPgpSession(yubikit_connection(self.connection))
        pgp.verify_admin("12345678")
        pgp.put_key(KEY_REF.DEC, key)


BACKENDS = {"piv": (PivBackend, "import_piv"), "openpgp": (OpenPgpBackend, "import_openpgp")}


def enroll(backend, interaction, **options):
    """Enroll with the backend's own options record (enrollment.PivOptions / OpenPgpOptions)."""
    from sealcodes.enrollment import make_options

    return backend.enroll(interaction, make_options(backend.name, options))


@pytest.mark.parametrize("curve", sorted(CURVES))
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_adopted_key_gives_the_independent_r(name, curve):
    cls, importer = BACKENDS[name]
    card = Card()
    key = ec.generate_private_key(CURVES[curve])
    getattr(card, importer)(key)
    backend = cls(card.connection)
    enrollment = enroll(backend, Recorder(), adopt=True)
    assert enrollment.curve == curve and enrollment.generated is False
    challenge = derivation.challenge("github.com/alice", 2)
    response = backend.respond(challenge, enrollment, Recorder())
    expected = independent.derive(curve, key.private_numbers().private_value, challenge)
    assert bytes(response).hex() == expected["response"]
    assert enrollment.key_fingerprint == expected["key_fingerprint"]
    # recover finds the same R without the profile
    found = list(backend.recover_responses(challenge, Recorder()))
    assert [bytes(r) for _, r in found] == [bytes(response)]


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_generated_key_is_stable_and_bound_to_the_card(name):
    cls, importer = BACKENDS[name]
    card = Card()
    backend = cls(card.connection)
    asked = Recorder()
    enrollment = enroll(backend, asked)
    assert enrollment.generated is True
    challenge = derivation.challenge("vpn", 0)
    first = bytes(backend.respond(challenge, enrollment, Recorder()))
    card.connection.close()
    card.connection = LoopbackConnection(card.token.card)  # power cycle
    assert bytes(cls(card.connection).respond(challenge, enrollment, Recorder())) == first
    # the key replaced behind our back: clear error, and no PIN is sent
    getattr(card, importer)(ec.generate_private_key(ec.SECP256R1()))
    watcher = Recorder()
    with pytest.raises(DeviceError, match="not the enrolled one.*no PIN was sent"):
        cls(card.connection).respond(challenge, enrollment, watcher)
    assert watcher.asked == []
    # another card entirely
    other = Card(seed=2)
    enroll(cls(other.connection), Recorder())
    with pytest.raises(DeviceError, match="not the enrolled one"):
        cls(other.connection).respond(challenge, enrollment, watcher)
    assert watcher.asked == []


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_existing_key_needs_adopt_or_force(name):
    cls, _ = BACKENDS[name]
    card = Card()
    backend = cls(card.connection)
    first = enroll(backend, Recorder())
    with pytest.raises(DeviceError, match="--adopt"):
        enroll(backend, Recorder())
    assert enroll(backend, Recorder(), adopt=True).key_fingerprint == first.key_fingerprint
    replaced = enroll(backend, Recorder(), force=True)
    assert replaced.key_fingerprint != first.key_fingerprint
    with pytest.raises(DeviceError, match="not confirmed"):
        enroll(backend, Recorder(confirm=False), force=True)
    empty = cls(Card(seed=5).connection)
    with pytest.raises(DeviceError, match="no .*key to adopt"):
        enroll(empty, Recorder(), adopt=True)
    with pytest.raises(DeviceError, match="not confirmed"):
        enroll(empty, Recorder(confirm=False))


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_wrong_pin_is_a_clear_error_with_tries_left(name):
    cls, _ = BACKENDS[name]
    card = Card()
    backend = cls(card.connection)
    enrollment = enroll(backend, Recorder())
    pins = dict(PINS, **{name: "000000"})
    with pytest.raises(PinError, match="tries left") as err:
        backend.respond(derivation.challenge("x", 0), enrollment, Recorder(pins))
    assert err.value.retries_left == 2
    assert "000000" not in str(err.value)


def test_piv_rsa_key_gets_a_clear_message(monkeypatch):
    """A card whose slot 9D holds RSA (the firmware answers GET METADATA as such a card does)."""
    from sealtoken.applets.piv import PivApplet
    from sealtoken.core.iso7816 import tlv

    def rsa_metadata(self, command):
        if command.p2 == 0x9D:
            return (tlv(0x01, b"\x07") + tlv(0x02, b"\x02\x01") + tlv(0x03, b"\x01")
                    + tlv(0x04, tlv(0x81, b"\xc1" * 256) + tlv(0x82, b"\x01\x00\x01")))
        return original(self, command)

    original = PivApplet._metadata
    monkeypatch.setattr(PivApplet, "_metadata", rsa_metadata)
    card = Card()
    watcher = Recorder()
    with pytest.raises(DeviceError, match="RSA key.*needs an ECC key"):
        enroll(PivBackend(card.connection), watcher, adopt=True)
    with pytest.raises(DeviceError, match="RSA key.*no PIN was sent"):
        PivBackend(card.connection).respond(derivation.challenge("x", 0), {"key_fingerprint": "0" * 64}, watcher)
    assert watcher.asked == []


def test_openpgp_rsa_key_gets_a_clear_message(monkeypatch):
    from sealtoken.applets.openpgp import OpenPgpApplet

    card = Card()
    card.import_openpgp(ec.generate_private_key(ec.SECP256R1()))
    # from here on the card reports RSA-2048 attributes for its decryption key
    monkeypatch.setattr(OpenPgpApplet, "_algo_dec", lambda self: b"\x01\x08\x00\x00\x20\x00")
    with pytest.raises(DeviceError, match="RSA key; sealcodes needs an ECDH key"):
        enroll(OpenPgpBackend(card.connection), Recorder(), adopt=True)


def test_piv_card_without_metadata_uses_the_certificate(monkeypatch):
    """Cards without slot metadata: the public key is kept in (and read from) the slot's certificate."""
    from sealtoken.core.applet import ApduError
    from sealtoken.applets.piv import PivApplet

    original = PivApplet._metadata

    def no_slot_metadata(self, command):
        if command.p2 == 0x9D:
            raise ApduError(0x6D00)
        return original(self, command)

    monkeypatch.setattr(PivApplet, "_metadata", no_slot_metadata)
    card = Card()
    backend = PivBackend(card.connection)
    enrollment = enroll(backend, Recorder())
    challenge = derivation.challenge("cert", 1)
    first = bytes(backend.respond(challenge, enrollment, Recorder()))
    assert bytes(PivBackend(card.connection).respond(challenge, enrollment, Recorder())) == first
    assert len(first) == 32


def test_piv_pin_policy_never_sends_no_pin():
    from yubikit.piv import KEY_TYPE, PIN_POLICY, SLOT, PivSession

    card = Card()
    piv = PivSession(yubikit_connection(card.connection))
    piv.authenticate(bytes(range(1, 9)) * 4)
    piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256, PIN_POLICY.NEVER)
    backend = PivBackend(card.connection)
    enrollment = enroll(backend, Recorder(), adopt=True)
    watcher = Recorder()
    assert len(backend.respond(derivation.challenge("x", 0), enrollment, watcher)) == 32
    assert watcher.asked == []


def test_openpgp_backend_works_with_a_card_not_built_for_yubikit(monkeypatch):
    """A strict OpenPGP 3.4 card: no Yubico GET VERSION (6D00), EC attributes only with the
    import-format byte FF (plain ones refused with 6A80). yubikit's OpenPgpSession fails on it;
    the backend, speaking the card specification, enrolls, answers and recovers."""
    from sealtoken.core.applet import ApduError
    from sealtoken.applets.openpgp import OpenPgpApplet
    from yubikit.openpgp import OpenPgpSession

    original_process, original_put = OpenPgpApplet.process, OpenPgpApplet._put_data

    def strict_process(self, command):
        if command.ins == 0xF1:
            raise ApduError(0x6D00)
        return original_process(self, command)

    def strict_put(self, command):
        if command.p1p2 == 0xC2 and command.data[-1:] != b"\xff":
            raise ApduError(0x6A80)
        return original_put(self, command)

    monkeypatch.setattr(OpenPgpApplet, "process", strict_process)
    monkeypatch.setattr(OpenPgpApplet, "_put_data", strict_put)
    card = Card()
    with pytest.raises(Exception):
        OpenPgpSession(yubikit_connection(card.connection))
    backend = OpenPgpBackend(card.connection)
    enrollment = enroll(backend, Recorder(), curve="P-384")
    assert enrollment.curve == "P-384"
    challenge = derivation.challenge("strict", 0)
    r = bytes(backend.respond(challenge, enrollment, Recorder()))
    assert [bytes(x) for _, x in backend.recover_responses(challenge, Recorder())] == [r]
