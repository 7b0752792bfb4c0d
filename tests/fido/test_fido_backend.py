"""The fido2 backend against our firmware, over both ways a key is reached:

- hid: python-fido2's CtapHidDevice over the HID link; nothing is mocked above the 64-byte
  reports (the backend drives python-fido2, which drives sealboard.ctaphid_link, which feeds the
  firmware's CTAPHID layer);
- nfc: the firmware's card as a smartcard connection, as a PcscConnection gives it: responses go
  through the backend's own NFCCTAP requests (nfcctap.py), enrollment and recovery through
  python-fido2's CtapPcscDevice over the same card.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading

import pytest
from fido2 import cbor
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin

from sealboard.ctaphid_link import open_emulated_hid_device
from sealboard.platform import CPythonPlatform
from sealcodes.backends.base import Interaction
from sealcodes.backends.fido2 import RP_ID, Fido2Backend, b64url_decode, b64url_encode
from sealcodes.connection import SmartCardConnection
from sealcodes.enrollment import Fido2Options
from sealcodes.records import Enrollment
from sealcodes.errors import DeviceError, InvalidInputError, PinBlockedError, PinError, ProfileError
from sealtoken.token import Token

from ._recover import recover

PIN = "4711-sealcodes"
CHALLENGE = hashlib.sha256(b"challenge").digest()


class Recorder(Interaction):
    """The user: types PINs from a list, touches the key when asked."""

    def __init__(self, *pins):
        self.pins = list(pins)
        self.pin_requests = 0
        self.touches = 0

    def request_pin(self, purpose, new=False):
        assert purpose == "fido2" and not new
        self.pin_requests += 1
        if not self.pins:
            raise AssertionError("unexpected PIN request")
        return self.pins.pop(0) if len(self.pins) > 1 else self.pins[0]

    def touch_needed(self):
        self.touches += 1


class NfcCard(SmartCardConnection):
    """Our token's card in process, as a PcscConnection presents a card: the fido2 backend speaks
    NFCCTAP over it itself; `ctap_device()` is python-fido2's CtapPcscDevice over the same card."""

    name = "in-process card"

    def __init__(self, card):
        self.card = card
        self.closed = False
        card.power_on()

    @property
    def atr(self):
        return bytes(self.card.atr)

    def _transmit(self, apdu):
        if self.closed:
            raise OSError("the card was removed")
        response = self.card.process_apdu(bytes(apdu))
        return bytes(response[:-2]), (response[-2] << 8) | response[-1]

    def ctap_device(self):
        from fido2.pcsc import CtapPcscDevice

        return CtapPcscDevice(_PyscardView(self), self.name)

    def close(self):
        if not self.closed:
            self.closed = True
            self.card.power_off()


class _PyscardView:
    """The pyscard CardConnection calls CtapPcscDevice makes, on an NfcCard (no power cycle)."""

    def __init__(self, nfc):
        self.nfc = nfc

    def connect(self, *args, **kwargs):
        pass

    def disconnect(self):
        pass

    def getATR(self):
        return list(self.nfc.atr)

    def transmit(self, apdu, protocol=None):
        data, sw = self.nfc.send_and_receive(bytes(apdu))
        return list(data), sw >> 8, sw & 0xFF


def _open(token, transport):
    return open_emulated_hid_device(token) if transport == "hid" else NfcCard(token.card)


class Board:
    """One emulated token (flash in state_dir) reached through the HID link or as a card."""

    def __init__(self, state_dir=None, presence="approve", seed="board", transport="hid"):
        self.state_dir = state_dir
        self.presence = presence
        self.seed = seed
        self.transport = transport
        self.boots = 0
        self.device = None
        self.boot()

    def boot(self):
        self.platform = CPythonPlatform(state_dir=self.state_dir, presence=self.presence,
                                        rng_seed=f"{self.seed}/{self.boots}")
        self.boots += 1
        self.token = Token(self.platform)
        self.device = _open(self.token, self.transport)

    def restart(self):
        """Power cycle: a new process booting from the same flash (state_dir)."""
        self.device.close()
        self.platform.close()
        self.boot()

    def replug(self):
        """Remove and insert again: RAM state goes; the in-memory flash stays."""
        self.device.close()
        self.token.power_off()
        self.token = Token(self.platform)
        self.device = _open(self.token, self.transport)

    def backend(self):
        return Fido2Backend(self.device)

    def fido2_device(self):
        """The key as a python-fido2 CtapDevice (for the test's own requests)."""
        return self.device if self.transport == "hid" else self.device.ctap_device()

    def set_pin(self, pin=PIN):
        ClientPin(Ctap2(self.fido2_device())).set_pin(pin)

    def close(self):
        self.device.close()
        self.platform.close()


@pytest.fixture(params=["hid", "nfc"])
def board(request):
    b = Board(transport=request.param)
    yield b
    b.close()


@pytest.fixture
def pin_board(board):
    board.set_pin()
    return board


def test_info_and_identity(board):
    backend = board.backend()
    info = backend.info()
    assert info["hmac_secret"] and info["rk"] and info["pin_supported"]
    assert not info["pin_set"] and not info["builtin_uv"]
    assert 2 in info["pin_protocols"]
    assert backend.identity()["aaguid"] == info["aaguid"]
    board.set_pin()
    assert backend.info()["pin_set"] is True


def test_enroll_metadata_has_no_secrets(board):
    meta = board.backend().enroll(Recorder())
    assert meta.backend == "fido2" and meta.rp_id == RP_ID == "sealcodes:"
    assert meta.uv is False  # no PIN on the key: default is touch only
    assert meta.discoverable is True
    assert set(meta.to_json()) == {"backend", "device_kind", "rp_id", "credential_id", "public_key", "uv",
                                  "discoverable", "aaguid"}
    cose = cbor.decode(b64url_decode(meta.public_key))
    assert cose[1] == 2 and cose[3] == -7 and len(cose[-2]) == len(cose[-3]) == 32


def test_same_response_across_a_restart(tmp_path):
    board = Board(state_dir=str(tmp_path / "flash"))
    try:
        meta = board.backend().enroll(Recorder())
        first = board.backend().respond(CHALLENGE, meta, Recorder())
        assert isinstance(first, bytearray) and len(first) == 32
        board.restart()
        again = board.backend().respond(CHALLENGE, meta, Recorder())
        assert again == first
        other = board.backend().respond(hashlib.sha256(b"other").digest(), meta, Recorder())
        assert other != first
    finally:
        board.close()


def test_uv_is_default_with_a_pin_and_states_differ(pin_board):
    backend = pin_board.backend()
    user = Recorder(PIN)
    with_uv = backend.enroll(user)
    assert with_uv.uv is True and user.pin_requests == 1
    without_uv = backend.enroll(user, Fido2Options(uv="discouraged"))
    assert without_uv.uv is False
    r_uv = backend.respond(CHALLENGE, with_uv, user)
    asked = user.pin_requests
    r_plain = backend.respond(CHALLENGE, without_uv, user)
    assert user.pin_requests == asked  # no PIN for a credential enrolled without UV
    assert r_uv != r_plain
    assert backend.respond(CHALLENGE, with_uv, user) == r_uv


def test_uv_required_without_pin_is_refused(board):
    with pytest.raises(DeviceError, match="no FIDO2 PIN"):
        board.backend().enroll(Recorder(), Fido2Options(uv="required"))
    with pytest.raises(InvalidInputError):
        board.backend().enroll(Recorder(), Fido2Options(uv="sometimes"))


def test_wrong_pin_counts_down_and_blocks(pin_board):
    meta = pin_board.backend().enroll(Recorder(PIN))
    seen = []
    for attempt in range(7):
        if attempt and attempt % 3 == 0:
            pin_board.replug()  # three misses in a row need a power cycle
        with pytest.raises(PinError) as err:
            pin_board.backend().respond(CHALLENGE, meta, Recorder("wrong-pin"))
        seen.append(err.value.retries_left)
        if attempt % 3 == 2:
            assert str(err.value).startswith("too many wrong PINs in a row")
        else:
            assert str(err.value).startswith("wrong FIDO2 PIN")
        assert "wrong-pin" not in str(err.value) and PIN not in str(err.value)
        assert not isinstance(err.value, PinBlockedError)
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert "(1 attempt left)" in str(err.value)
    pin_board.replug()
    with pytest.raises(PinBlockedError, match="blocked") as err:  # the eighth miss
        pin_board.backend().respond(CHALLENGE, meta, Recorder("wrong-pin"))
    assert "wrong-pin" not in str(err.value)
    with pytest.raises(PinBlockedError, match="a reset destroys the sealed secret"):
        pin_board.backend().respond(CHALLENGE, meta, Recorder(PIN))


def test_right_pin_after_a_wrong_one(pin_board):
    backend = pin_board.backend()
    meta = backend.enroll(Recorder(PIN))
    expected = backend.respond(CHALLENGE, meta, Recorder(PIN))
    with pytest.raises(PinError, match=r"\(7 attempts left\)"):
        backend.respond(CHALLENGE, meta, Recorder("nope-nope"))
    assert backend.respond(CHALLENGE, meta, Recorder(PIN)) == expected


def test_forged_credential_id_is_rejected(board):
    backend = board.backend()
    meta = backend.enroll(Recorder())
    forged = bytearray(b64url_decode(meta.credential_id))
    forged[20] ^= 0x01
    with pytest.raises(DeviceError, match="does not hold the sealcodes credential"):
        backend.respond(CHALLENGE, meta.replace(credential_id=b64url_encode(forged)), Recorder())
    with pytest.raises(DeviceError, match="does not hold the sealcodes credential"):
        backend.respond(CHALLENGE, meta.replace(credential_id=b64url_encode(os.urandom(97))), Recorder())


def test_tampered_public_key_fails_the_signature_check(board):
    backend = board.backend()
    meta = backend.enroll(Recorder())
    other = backend.enroll(Recorder())  # a valid P-256 key, but not this credential's
    with pytest.raises(DeviceError, match="not signed by the enrolled credential"):
        backend.respond(CHALLENGE, meta.replace(public_key=other.public_key), Recorder())
    cose = cbor.decode(b64url_decode(meta.public_key))
    cose[-3] = bytes(32)  # not a point on the curve
    with pytest.raises(ProfileError, match="public key"):
        backend.respond(CHALLENGE, meta.replace(public_key=b64url_encode(cbor.encode(cose))), Recorder())


def test_uv_state_is_used_as_recorded(pin_board, tmp_path):
    backend = pin_board.backend()
    meta = backend.enroll(Recorder(PIN))
    with_uv = backend.respond(CHALLENGE, meta, Recorder(PIN))
    user = Recorder()
    flipped = backend.respond(CHALLENGE, meta.replace(uv=False), user)
    assert user.pin_requests == 0 and flipped != with_uv  # the fingerprint check catches this later

    fresh = Board(seed="no pin")  # a key without a PIN cannot give the UV secret
    try:
        meta = fresh.backend().enroll(Recorder())
        with pytest.raises(DeviceError, match="has no FIDO2 PIN"):
            fresh.backend().respond(CHALLENGE, meta.replace(uv=True), Recorder(PIN))
    finally:
        fresh.close()


def test_bad_inputs(board):
    backend = board.backend()
    meta = backend.enroll(Recorder())
    with pytest.raises(InvalidInputError):
        backend.respond(b"short", meta, Recorder())
    for broken in ({}, dict(meta.to_json(), credential_id="***"), dict(meta.to_json(), uv="yes"),
                   dict(meta.to_json(), rp_id="example.com"),
                   dict(meta.to_json(), public_key=base64.b64encode(b"junk").decode())):
        with pytest.raises(ProfileError):
            backend.respond(CHALLENGE, Enrollment.from_json(broken), Recorder())


def test_touch_prompt_and_refusals(board):
    backend = board.backend()
    meta = backend.enroll(Recorder())
    board.platform.presence = "wait"
    user = Recorder()
    timer = threading.Timer(0.3, board.platform.press)
    timer.start()
    assert len(backend.respond(CHALLENGE, meta, user)) == 32
    assert user.touches == 1
    board.platform.presence = "deny"
    with pytest.raises(DeviceError, match="refused"):
        backend.respond(CHALLENGE, meta, Recorder())


def test_touch_timeout_message(board, monkeypatch):
    backend = board.backend()
    meta = backend.enroll(Recorder())
    board.platform.presence = "timeout"
    original = board.platform.wait_user_presence
    monkeypatch.setattr(board.platform, "wait_user_presence", lambda ms, ka: original(min(ms, 300), ka))
    with pytest.raises(DeviceError, match="not touched in time"):
        backend.respond(CHALLENGE, meta, Recorder())


def test_key_removed(board):
    backend = board.backend()
    meta = backend.enroll(Recorder())
    board.device.close()
    with pytest.raises(DeviceError, match="removed or stopped answering"):
        backend.respond(CHALLENGE, meta, Recorder())


def test_a_key_that_stops_answering_is_not_called_another_key(board):
    """`matches` says no only when the key answered as another key would: a link that fails during
    the check (a key pulled out, a board too slow to answer) is reported as what it is, never as
    "holds another secret"."""
    backend = board.backend()
    meta = backend.enroll(Recorder())
    other = Board(seed="another key")
    try:
        assert other.backend().matches(meta) is False
    finally:
        other.close()
    assert backend.matches(meta) is True
    board.device.close()
    with pytest.raises(DeviceError, match="removed or stopped answering"):
        backend.matches(meta)


@pytest.mark.parametrize("answer", ["NO_CREDENTIALS", "INVALID_CREDENTIAL"])
def test_either_answer_for_an_unknown_credential_means_another_key(board, monkeypatch, answer):
    """Keys answer a credential they do not hold with CTAP2_ERR_NO_CREDENTIALS or (some)
    CTAP2_ERR_INVALID_CREDENTIAL: both are "another key" (a keyring skips it as absent), not a
    device failure."""
    from fido2.ctap import CtapError

    backend = board.backend()
    meta = backend.enroll(Recorder())

    def refuse(*args, **kwargs):
        raise CtapError(getattr(CtapError.ERR, answer))

    monkeypatch.setattr(backend._ctap, "get_assertion", refuse)  # the key's answer, on either transport
    assert backend.matches(meta) is False


def test_recover_finds_the_enrolled_uv_state(pin_board):
    backend = pin_board.backend()
    meta = backend.enroll(Recorder(PIN))  # UV (the default with a PIN)
    expected = backend.respond(CHALLENGE, meta, Recorder(PIN))

    user = Recorder(PIN)
    candidates = recover(Fido2Backend(pin_board.device), CHALLENGE, user)
    assert [c["enrollment"].uv for c in candidates] == [True, False]
    assert user.pin_requests == 1
    matching = [c for c in candidates if c["response"] == expected]
    assert len(matching) == 1
    found = matching[0]["enrollment"]
    assert found.uv is True
    assert found.credential_id == meta.credential_id
    assert found.public_key == meta.public_key  # recovered from the signatures
    # the recovered metadata works as a profile entry
    assert backend.respond(CHALLENGE, found, Recorder(PIN)) == expected

    # accept() stops at the first match: the fingerprint check of the library
    only = recover(backend, CHALLENGE, Recorder(PIN), accept=lambda r: r == expected)
    assert len(only) == 1 and only[0]["enrollment"].uv is True


def test_recover_without_pin_and_by_credential_id(board):
    backend = board.backend()
    meta = backend.enroll(Recorder(), Fido2Options(uv="discouraged"))
    expected = backend.respond(CHALLENGE, meta, Recorder())
    candidates = recover(backend, CHALLENGE, Recorder())
    assert [(c["enrollment"].uv, bytes(c["response"]) == expected) for c in candidates] == [(False, True)]
    by_id = recover(backend, CHALLENGE, Recorder(), credential_id=b64url_decode(meta.credential_id))
    assert by_id[0]["response"] == expected


def test_recover_with_nothing_enrolled(board):
    with pytest.raises(DeviceError, match="no discoverable sealcodes credential"):
        recover(board.backend(), CHALLENGE, Recorder())


# --- keys that offer less: the firmware's getInfo reshaped below the packet boundary ----------
class ReshapedInfo:
    """The real authenticator, with its getInfo answer edited (a key with fewer features)."""

    def __init__(self, authenticator, edit):
        self.authenticator = authenticator
        self.edit = edit

    def process(self, request, keepalive=None):
        response = self.authenticator.process(request, keepalive)
        if request[:1] == b"\x04" and response[:1] == b"\x00":
            info = cbor.decode(response[1:])
            self.edit(info)
            response = b"\x00" + cbor.encode(info)
        return response

    def power_off(self):
        self.authenticator.power_off()


class _Holder:
    def __init__(self, ctaphid):
        self.ctaphid = ctaphid


def _reshaped_device(board, edit):
    from sealtoken.fido.ctaphid import CtapHid

    holder = _Holder(CtapHid(ReshapedInfo(board.token.fido.authenticator, edit), board.platform))
    return open_emulated_hid_device(holder)


def test_key_without_hmac_secret(board):
    device = _reshaped_device(board, lambda info: info[2].remove("hmac-secret"))
    try:
        backend = Fido2Backend(device)
        assert backend.info()["hmac_secret"] is False
        with pytest.raises(DeviceError, match="does not support the hmac-secret extension"):
            backend.enroll(Recorder())
    finally:
        device.close()


def test_pin_protocol_one_fallback_gives_the_same_secret(pin_board):
    meta = pin_board.backend().enroll(Recorder(PIN))
    over_v2 = pin_board.backend().respond(CHALLENGE, meta, Recorder(PIN))
    pin_board.device.close()
    device = _reshaped_device(pin_board, lambda info: info.__setitem__(6, [1]))
    try:
        backend = Fido2Backend(device)
        assert backend.info()["pin_protocols"] == [1]
        assert backend.respond(CHALLENGE, meta, Recorder(PIN)) == over_v2
    finally:
        device.close()
        pin_board.device = open_emulated_hid_device(pin_board.token)


def test_key_without_room_for_discoverable_credentials(board):
    device = _reshaped_device(board, lambda info: info[4].__setitem__("rk", False))
    try:
        backend = Fido2Backend(device)
        meta = backend.enroll(Recorder())
        assert meta.discoverable is False
        expected = backend.respond(CHALLENGE, meta, Recorder())
        with pytest.raises(DeviceError, match="no discoverable sealcodes credential"):
            recover(backend, CHALLENGE, Recorder())
        found = recover(backend, CHALLENGE, Recorder(), credential_id=b64url_decode(meta.credential_id))
        assert [c["response"] for c in found] == [expected]
    finally:
        device.close()


def test_another_key_is_refused_before_any_pin(pin_board):
    """SECURITY: no PIN is ever tried on a key the profile does not belong to."""
    meta = pin_board.backend().enroll(Recorder(PIN))
    assert meta.uv is True
    other = Board(seed="another key")
    try:
        other.set_pin()
        user = Recorder(PIN)
        with pytest.raises(DeviceError, match="no PIN was tried"):
            other.backend().respond(b"\x07" * 32, meta, user)
        assert user.pin_requests == 0
        retries = ClientPin(Ctap2(other.device)).get_pin_retries()[0]
        assert retries == 8
    finally:
        other.close()


def test_backend_with_always_uv_and_a_deleted_credential(pin_board):
    """The sealcodes backend on our token after `toggleAlwaysUv` and `deleteCredential` (CTAP 2.1)."""
    from fido2.ctap2 import Config, CredentialManagement
    from fido2.ctap2.pin import PinProtocolV2

    backend = pin_board.backend()
    with_uv = backend.enroll(Recorder(PIN))
    without_uv = backend.enroll(Recorder(PIN), Fido2Options(uv="discouraged"))
    expected = backend.respond(CHALLENGE, with_uv, Recorder(PIN))
    ctap = Ctap2(pin_board.fido2_device())
    protocol = PinProtocolV2()
    token = ClientPin(ctap, protocol).get_pin_token(PIN, ClientPin.PERMISSION.AUTHENTICATOR_CFG)
    Config(ctap, protocol, token).toggle_always_uv()
    backend = pin_board.backend()
    assert backend.info()["always_uv"] is True
    # the UV set still gives its codes; the set enrolled without UV is refused (docs/fido2.md section 5)
    assert backend.respond(CHALLENGE, with_uv, Recorder(PIN)) == expected
    with pytest.raises(DeviceError):
        backend.respond(CHALLENGE, without_uv, Recorder(PIN))
    with pytest.raises(DeviceError, match="always verifies the user"):
        backend.enroll(Recorder(PIN), Fido2Options(uv="discouraged"))
    # deleting the credential through credential management ends that set for good
    token = ClientPin(ctap, protocol).get_pin_token(PIN, ClientPin.PERMISSION.CREDENTIAL_MGMT)
    CredentialManagement(ctap, protocol, token).delete_cred(
        {"type": "public-key", "id": b64url_decode(with_uv.credential_id)})
    with pytest.raises(DeviceError, match="does not hold the sealcodes credential"):
        pin_board.backend().respond(CHALLENGE, with_uv, Recorder(PIN))
