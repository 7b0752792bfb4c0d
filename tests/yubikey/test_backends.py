"""The ykoath and yubiotp backends end to end against the firmware.

R is always checked against an HMAC this test computes itself from the key it
provisioned: either by feeding the backend's key generator, or by programming
the device directly with yubikit before the backend adopts it.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import threading
import time

import pytest
from yubikit.oath import HASH_ALGORITHM, OATH_TYPE, CredentialData, OathSession
from yubikit.yubiotp import HmacSha1SlotConfiguration, HotpSlotConfiguration, YubiOtpSession

from sealcodes.backends import ykoath, yubiotp
from sealcodes.backends.base import Interaction
from sealcodes.backends.ykoath import YkoathBackend
from sealcodes.backends.yubiotp import YubiOtpBackend
from sealcodes.errors import DeviceError, InvalidInputError, PinError, SealcodesError
from sealcodes.enrollment import make_options
from sealcodes.records import Enrollment

CHALLENGE = hashlib.sha256(b"sealcodes test challenge").digest()
OATH_KEY = bytes(range(0x40, 0x60))  # 32 bytes
OTP_KEY = bytes(range(0x10, 0x24))  # 20 bytes


class Recorder(Interaction):
    """An Interaction that answers from a script and records what it was asked."""

    def __init__(self, pin=None, confirm=False):
        self.pin = pin
        self.answer = confirm
        self.pins = []
        self.confirms = []
        self.touches = 0

    def request_pin(self, purpose, new=False):
        self.pins.append(purpose)
        if self.pin is None:
            return super().request_pin(purpose, new)
        return self.pin

    def confirm(self, message):
        self.confirms.append(message)
        return self.answer

    def touch_needed(self):
        self.touches += 1


@pytest.fixture
def known_keys(monkeypatch):
    """The backends' key generators hand out keys this test knows."""
    monkeypatch.setattr(ykoath, "_new_key", lambda n: bytearray(OATH_KEY[:n]))
    monkeypatch.setattr(yubiotp, "_new_key", lambda n: bytearray(OTP_KEY[:n]))


def options(backend, **given):
    """The backend's enrollment options record, as the library makes it from the CLI's options."""
    return make_options(backend.name, given)


def _no_secret_in(message, *secrets):
    for secret in secrets:
        assert secret.hex() not in message.lower()
        assert secret.hex().upper() not in message


# =================================================================================
# ykoath
# =================================================================================
def test_ykoath_enroll_and_respond(device, known_keys):
    backend = YkoathBackend(device.connection)
    ui = Recorder()
    meta = backend.enroll(ui)
    assert meta.backend == "ykoath" and meta.credential_name == "sealcodes" and meta.touch is False
    assert meta.serial == str(YubiOtpSession(device.yubikit()).get_serial())
    assert all(not isinstance(v, (bytes, bytearray)) for v in meta.to_json().values())
    r = backend.respond(CHALLENGE, meta, ui)
    assert isinstance(r, bytearray) and len(r) == 32
    assert bytes(r) == hmac.new(OATH_KEY, CHALLENGE, "sha256").digest()
    assert ui.pins == [] and ui.confirms == []

    # a new session (new process) answers the same
    device.power_cycle()
    again = YkoathBackend(device.connection)
    assert again.identity() == {"serial": meta.serial}
    assert again.respond(CHALLENGE, meta, ui) == r


def test_ykoath_credential_is_totp_sha256(device, known_keys):
    YkoathBackend(device.connection).enroll(Recorder())
    session = OathSession(device.yubikit())
    (cred,) = session.list_credentials()
    assert cred.id == b"sealcodes" and cred.oath_type == OATH_TYPE.TOTP


def test_ykoath_leaves_other_credentials_alone_and_refuses_overwrite(device, known_keys, monkeypatch):
    session = OathSession(device.yubikit())
    session.put_credential(CredentialData("mail", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1, b"m" * 20))
    session.put_credential(CredentialData("vpn", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, b"v" * 20))
    before = session.calculate(b"mail", b"t")

    backend = YkoathBackend(device.connection)
    meta = backend.enroll(Recorder())
    with pytest.raises(DeviceError, match="already holds .*sealcodes.*force"):
        YkoathBackend(device.connection).enroll(Recorder())
    r1 = backend.respond(CHALLENGE, meta, Recorder())

    other_key = bytes(32 - i for i in range(32))
    monkeypatch.setattr(ykoath, "_new_key", lambda n: bytearray(other_key))
    replaced = YkoathBackend(device.connection)
    replaced.enroll(Recorder(), options(replaced, force=True))
    r2 = replaced.respond(CHALLENGE, meta, Recorder())
    assert r2 != r1 and bytes(r2) == hmac.new(other_key, CHALLENGE, "sha256").digest()

    session = OathSession(device.yubikit())
    assert sorted(c.id for c in session.list_credentials()) == [b"mail", b"sealcodes", b"vpn"]
    assert session.calculate(b"mail", b"t") == before


def test_ykoath_key_buffer_is_wiped(device, monkeypatch):
    handed_out = []

    def new_key(n):
        handed_out.append(bytearray(OATH_KEY[:n]))
        return handed_out[-1]

    monkeypatch.setattr(ykoath, "_new_key", new_key)
    YkoathBackend(device.connection).enroll(Recorder())
    assert handed_out == [bytearray(32)]


def test_ykoath_access_code(device, known_keys):
    session = OathSession(device.yubikit())
    session.set_key(session.derive_key("open sesame"))
    device.power_cycle()

    with pytest.raises(PinError, match="wrong OATH access code") as e:
        YkoathBackend(device.connection).enroll(Recorder(pin="open barley"))
    _no_secret_in(str(e.value), b"open barley", b"open sesame")
    with pytest.raises(PinError, match="none was given"):
        YkoathBackend(device.connection).enroll(Recorder(pin=""))

    ui = Recorder(pin="open sesame")
    backend = YkoathBackend(device.connection)
    meta = backend.enroll(ui)
    assert ui.pins == ["ykoath"]
    device.power_cycle()
    ui = Recorder(pin="open sesame")
    r = YkoathBackend(device.connection).respond(CHALLENGE, meta, ui)
    assert bytes(r) == hmac.new(OATH_KEY, CHALLENGE, "sha256").digest()
    assert ui.pins == ["ykoath"]
    # recovery without a profile: the access code is asked (and sent) once as well
    device.power_cycle()
    ui = Recorder(pin="open sesame")
    answers = list(YkoathBackend(device.connection).recover_responses(CHALLENGE, ui))
    assert [bytes(r) for _, r in answers] == [hmac.new(OATH_KEY, CHALLENGE, "sha256").digest()]
    assert ui.pins == ["ykoath"]


def test_ykoath_touch(device, known_keys):
    backend = YkoathBackend(device.connection)
    meta = backend.enroll(Recorder(), options(backend, touch=True))
    assert meta.touch is True
    assert OathSession(device.yubikit()).calculate_all()  # lists it...
    cred = next(iter(OathSession(device.yubikit()).calculate_all()))
    assert cred.touch_required  # ...as a touch credential

    r = YkoathBackend(device.connection).respond(CHALLENGE, meta, Recorder())
    assert bytes(r) == hmac.new(OATH_KEY, CHALLENGE, "sha256").digest()
    device.set_presence("deny")
    with pytest.raises(DeviceError, match="touch"):
        YkoathBackend(device.connection).respond(CHALLENGE, meta, Recorder())


def test_ykoath_touch_notice_when_the_device_waits(device, known_keys):
    if device.kind != "loopback":
        pytest.skip("needs a hand on the in-process token")
    meta = YkoathBackend(device.connection).enroll(Recorder(), options(YkoathBackend, touch=True))
    device.set_presence("wait")
    threading.Timer(0.8, device.platform.press).start()
    ui = Recorder()
    started = time.monotonic()
    r = YkoathBackend(device.connection).respond(CHALLENGE, meta, ui)
    assert time.monotonic() - started >= 0.7
    assert ui.touches == 1
    assert bytes(r) == hmac.new(OATH_KEY, CHALLENGE, "sha256").digest()


def test_ykoath_without_credential(device):
    with pytest.raises(DeviceError, match="no OATH credential named 'sealcodes'"):
        YkoathBackend(device.connection).respond(CHALLENGE, Enrollment(backend="ykoath", credential_name="sealcodes"),
                                                 Recorder())


def test_ykoath_wrong_response_length_is_a_clear_error(device):
    # a "sealcodes" credential made by hand with SHA-1: the device answers 20 bytes, not 32
    session = OathSession(device.yubikit())
    session.put_credential(CredentialData("sealcodes", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1, b"s" * 20))
    with pytest.raises(DeviceError, match="20 bytes instead of 32") as e:
        YkoathBackend(device.connection).respond(CHALLENGE, Enrollment(backend="ykoath", credential_name="sealcodes"), Recorder())
    _no_secret_in(str(e.value), hmac.new(b"s" * 20, CHALLENGE, "sha1").digest())


def test_ykoath_challenge_length(device):
    with pytest.raises(InvalidInputError):
        YkoathBackend(device.connection).respond(b"short", Enrollment(backend="ykoath", credential_name="sealcodes"), Recorder())


def test_ykoath_unknown_option(device):
    with pytest.raises(InvalidInputError, match="slot"):
        YkoathBackend(device.connection).enroll(Recorder(), options(YkoathBackend, slot=2))


# =================================================================================
# yubiotp
# =================================================================================
def test_yubiotp_enroll_needs_confirmation(device, known_keys):
    ui = Recorder(confirm=False)
    with pytest.raises(SealcodesError, match="cancelled"):
        YubiOtpBackend(device.connection).enroll(ui)
    assert len(ui.confirms) == 1
    assert "slot 2" in ui.confirms[0] and "overwritten" in ui.confirms[0]
    assert not YubiOtpSession(device.yubikit()).get_config_state().is_configured(2)

    ui = Recorder(confirm=True)
    backend = YubiOtpBackend(device.connection)
    meta = backend.enroll(ui)
    assert meta.backend == "yubiotp" and meta.slot == 2 and meta.touch is False
    assert meta.serial == str(YubiOtpSession(device.yubikit()).get_serial())
    r = backend.respond(CHALLENGE, meta, ui)
    assert isinstance(r, bytearray) and bytes(r) == hmac.new(OTP_KEY, CHALLENGE, "sha1").digest()


def test_yubiotp_force_slot_1_leaves_slot_2(device, known_keys):
    otp = YubiOtpSession(device.yubikit())
    otp.put_configuration(2, HmacSha1SlotConfiguration(b"2" * 20))
    ui = Recorder()
    meta = YubiOtpBackend(device.connection).enroll(ui, options(YubiOtpBackend, slot=1, force=True))
    assert ui.confirms == [] and meta.slot == 1
    device.power_cycle()
    r = YubiOtpBackend(device.connection).respond(CHALLENGE, meta, Recorder())
    assert bytes(r) == hmac.new(OTP_KEY, CHALLENGE, "sha1").digest()
    otp = YubiOtpSession(device.yubikit())
    assert otp.calculate_hmac_sha1(2, CHALLENGE) == hmac.new(b"2" * 20, CHALLENGE, "sha1").digest()


def test_yubiotp_confirmation_names_programmed_slot(device, known_keys):
    YubiOtpSession(device.yubikit()).put_configuration(2, HmacSha1SlotConfiguration(b"x" * 20))
    ui = Recorder(confirm=False)
    with pytest.raises(SealcodesError):
        YubiOtpBackend(device.connection).enroll(ui)
    assert "slot 2" in ui.confirms[0] and "current content will be overwritten" in ui.confirms[0]
    otp = YubiOtpSession(device.yubikit())
    assert otp.calculate_hmac_sha1(2, CHALLENGE) == hmac.new(b"x" * 20, CHALLENGE, "sha1").digest()


def test_yubiotp_adopt(device):
    # the user programmed the slot before (as `ykman otp chalresp` does); adopting never writes
    otp = YubiOtpSession(device.yubikit())
    otp.put_configuration(2, HmacSha1SlotConfiguration(OTP_KEY))
    seq = otp.backend._prog_seq
    ui = Recorder()
    backend = YubiOtpBackend(device.connection)
    meta = backend.enroll(ui, options(backend, adopt=True))
    assert ui.confirms == [] and meta.adopted is True and meta.touch is None
    assert bytes(backend.respond(CHALLENGE, meta, ui)) == hmac.new(OTP_KEY, CHALLENGE, "sha1").digest()
    assert YubiOtpSession(device.yubikit()).backend._prog_seq == seq


def test_yubiotp_adopt_refuses_empty_and_keyboard_slots(device):
    with pytest.raises(DeviceError, match="empty"):
        YubiOtpBackend(device.connection).enroll(Recorder(), options(YubiOtpBackend, adopt=True))
    YubiOtpSession(device.yubikit()).put_configuration(1, HotpSlotConfiguration(b"h" * 20))
    with pytest.raises(DeviceError, match="touch-triggered"):
        YubiOtpBackend(device.connection).enroll(Recorder(), options(YubiOtpBackend, slot=1, adopt=True))


def test_yubiotp_touch(device, known_keys):
    meta = YubiOtpBackend(device.connection).enroll(Recorder(), options(YubiOtpBackend, force=True, touch=True))
    assert meta.touch is True
    r = YubiOtpBackend(device.connection).respond(CHALLENGE, meta, Recorder())
    assert bytes(r) == hmac.new(OTP_KEY, CHALLENGE, "sha1").digest()
    device.set_presence("deny")
    with pytest.raises(DeviceError, match="touch"):
        YubiOtpBackend(device.connection).respond(CHALLENGE, meta, Recorder())


def test_yubiotp_protected_slot(device, known_keys):
    code = bytes.fromhex("a1a2a3a4a5a6")
    YubiOtpSession(device.yubikit()).put_configuration(2, HmacSha1SlotConfiguration(b"p" * 20), acc_code=code)
    with pytest.raises(DeviceError, match="access code") as e:
        YubiOtpBackend(device.connection).enroll(Recorder(), options(YubiOtpBackend, force=True))
    _no_secret_in(str(e.value), code)
    meta = YubiOtpBackend(device.connection).enroll(Recorder(), options(YubiOtpBackend, force=True, access_code=code))
    r = YubiOtpBackend(device.connection).respond(CHALLENGE, meta, Recorder())
    assert bytes(r) == hmac.new(OTP_KEY, CHALLENGE, "sha1").digest()


def test_yubiotp_empty_slot_respond(device):
    with pytest.raises(DeviceError, match="slot 2 is not programmed"):
        YubiOtpBackend(device.connection).respond(CHALLENGE, Enrollment(backend="yubiotp", slot=2), Recorder())


@pytest.mark.parametrize("slot", [0, 3, "2", True])
def test_yubiotp_bad_slot(device, slot):
    with pytest.raises(InvalidInputError):
        YubiOtpBackend(device.connection).enroll(Recorder(), options(YubiOtpBackend, slot=slot, force=True))


def test_yubiotp_challenge_length(device):
    with pytest.raises(InvalidInputError):
        YubiOtpBackend(device.connection).respond(b"x" * 64, Enrollment(backend="yubiotp", slot=2), Recorder())


# =================================================================================
# an untrusted device, and a missing yubikit
# =================================================================================
class Tamper:
    """A connection that changes the device's answers to one instruction."""

    def __init__(self, inner, ins, change):
        self.inner = inner
        self.ins = ins
        self.change = change
        self.transport = inner.transport
        self.atr = inner.atr

    def send_and_receive(self, apdu):
        data, sw = self.inner.send_and_receive(apdu)
        if apdu[1] == self.ins:
            data, sw = self.change(data, sw)
        return data, sw

    def close(self):
        pass


@pytest.mark.parametrize(
    "change",
    [
        lambda d, sw: (d[:-1], sw),  # truncated
        lambda d, sw: (d + b"\0", sw),  # oversized
        lambda d, sw: (d[:3], sw),
        lambda d, sw: (b"", sw),
        lambda d, sw: (b"\x76" + d[1:], sw),  # wrong tag
        lambda d, sw: (b"", 0x6F00),
        lambda d, sw: (b"", 0x6A80),
    ],
)
def test_ykoath_untrusted_answers(device, known_keys, change):
    meta = YkoathBackend(device.connection).enroll(Recorder())
    tampered = Tamper(device.connection, 0xA2, change)
    with pytest.raises(DeviceError):
        YkoathBackend(tampered).respond(CHALLENGE, meta, Recorder())


@pytest.mark.parametrize(
    "change",
    [
        lambda d, sw: (d[:-1], sw),
        lambda d, sw: (d + b"\0", sw),
        lambda d, sw: (b"", sw),
        lambda d, sw: (b"", 0x6F00),
    ],
)
def test_yubiotp_untrusted_answers(device, known_keys, change):
    meta = YubiOtpBackend(device.connection).enroll(Recorder(), options(YubiOtpBackend, force=True))
    tampered = _TamperP1(device.connection, 0x38, change)
    with pytest.raises(DeviceError, match="slot 2"):
        YubiOtpBackend(tampered).respond(CHALLENGE, meta, Recorder())


class _TamperP1(Tamper):
    def send_and_receive(self, apdu):
        data, sw = self.inner.send_and_receive(apdu)
        if apdu[1] == 0x01 and apdu[2] == self.ins:
            data, sw = self.change(data, sw)
        return data, sw


def test_untrusted_select(device):
    tampered = Tamper(device.connection, 0xA4, lambda d, sw: (b"\x79\x05\x01", sw))
    with pytest.raises(DeviceError):
        YkoathBackend(tampered).respond(CHALLENGE, Enrollment(backend="ykoath", credential_name="sealcodes"), Recorder())
    with pytest.raises(DeviceError):
        YubiOtpBackend(tampered).respond(CHALLENGE, Enrollment(backend="yubiotp", slot=2), Recorder())


def test_missing_yubikit_is_a_clear_error(device, known_keys, monkeypatch):
    """Without yubikit, enrollment says how to install it; the everyday CALCULATE (no access code)
    is sent by sealcodes' own APDU layer and gives the same answer."""
    meta = YkoathBackend(device.connection).enroll(Recorder())
    device.power_cycle()
    with_yubikit = YkoathBackend(device.connection).respond(CHALLENGE, meta, Recorder())
    assert with_yubikit == hmac.new(OATH_KEY, CHALLENGE, "sha256").digest()
    for name in [m for m in sys.modules if m == "yubikit" or m.startswith("yubikit.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "yubikit", None)
    device.power_cycle()
    assert YkoathBackend(device.connection).respond(CHALLENGE, meta, Recorder()) == with_yubikit
    with pytest.raises(DeviceError, match=r"sealcodes\[yubikey\]"):
        YkoathBackend(device.connection).enroll(Recorder(), options(YkoathBackend, force=True))


def test_ykoath_other_device_gets_no_access_code(device, known_keys):
    """The enrolled OATH device id is checked before any access code is used (an answer made
    from the access code would let another device guess it offline)."""
    session = OathSession(device.yubikit())
    session.set_key(session.derive_key("open sesame"))
    device.power_cycle()
    meta = YkoathBackend(device.connection).enroll(Recorder(pin="open sesame"))
    meta = meta.replace(serial=None)  # a key that hides its serial: the device id is all there is
    other = meta.replace(device_id="AAAAAAAAAAAAAAAAAAAAAA")
    device.power_cycle()
    ui = Recorder(pin="open sesame")
    with pytest.raises(DeviceError, match="no access code was tried"):
        YkoathBackend(device.connection).respond(CHALLENGE, other, ui)
    assert ui.pins == []
    assert bytes(YkoathBackend(device.connection).respond(CHALLENGE, meta, ui)) == \
        hmac.new(OATH_KEY, CHALLENGE, "sha256").digest()
