"""The firmware's YubiKey-OTP-compatible applet, driven by yubikit's YubiOtpSession over CCID."""

from __future__ import annotations

import hmac
import struct

import pytest
from yubikit.core.otp import CommandRejectedError, calculate_crc
from yubikit.core.smartcard import AID, ApduError, SmartCardProtocol
from yubikit.yubiotp import (
    CONFIG_SLOT,
    HmacSha1SlotConfiguration,
    HotpSlotConfiguration,
    UpdateConfiguration,
    YubiOtpSession,
)

SW_WRONG_LENGTH = 0x6700
SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_INCORRECT_P1P2 = 0x6A86

KEY = bytes(range(0xA0, 0xB4))  # 20 bytes
ACC = bytes.fromhex("010203040506")


@pytest.fixture
def session(device):
    return YubiOtpSession(device.yubikit())


def expected(key, challenge):
    return hmac.new(key, challenge, "sha1").digest()


def test_select_status_of_a_fresh_token(session):
    assert session.version >= (2, 2, 0)
    state = session.get_config_state()
    assert not state.is_configured(1) and not state.is_configured(2)


@pytest.mark.parametrize("slot", [1, 2])
def test_program_and_challenge_response(device, session, slot, transport):
    session.put_configuration(slot, HmacSha1SlotConfiguration(KEY))
    state = session.get_config_state()
    assert state.is_configured(slot) and not state.is_configured(3 - slot)
    assert not state.is_touch_triggered(slot)  # challenge-response, not a keyboard slot
    session = YubiOtpSession(device.yubikit(transport))
    for challenge in (b"\x01", b"x" * 32, b"\x00" * 31 + b"\x01", b"\xff" * 31 + b"\x00", b"y" * 63):
        assert session.calculate_hmac_sha1(slot, challenge) == expected(KEY, challenge), challenge.hex()
    # HMAC_LT64 with a full 64-byte challenge: its trailing run of equal bytes is not part of the message
    assert session.calculate_hmac_sha1(slot, b"a" * 62 + b"bb") == expected(KEY, b"a" * 62)


def test_slots_are_independent(session):
    session.put_configuration(1, HmacSha1SlotConfiguration(b"1" * 20))
    session.put_configuration(2, HmacSha1SlotConfiguration(b"2" * 20))
    assert session.calculate_hmac_sha1(1, b"c" * 32) == expected(b"1" * 20, b"c" * 32)
    assert session.calculate_hmac_sha1(2, b"c" * 32) == expected(b"2" * 20, b"c" * 32)


def test_short_key_and_long_key(session):
    # yubikit zero-pads short keys (same HMAC) and hashes keys longer than 64 bytes
    session.put_configuration(1, HmacSha1SlotConfiguration(b"short"))
    assert session.calculate_hmac_sha1(1, b"m" * 32) == expected(b"short", b"m" * 32)
    long_key = bytes(range(80))
    session.put_configuration(2, HmacSha1SlotConfiguration(long_key))
    assert session.calculate_hmac_sha1(2, b"m" * 32) == expected(long_key, b"m" * 32)


def test_without_lt64_the_whole_64_bytes_count(session):
    session.put_configuration(2, HmacSha1SlotConfiguration(KEY).lt64(False))
    challenge = b"z" * 32
    padded = challenge.ljust(64, b"\0")
    assert session.calculate_hmac_sha1(2, challenge) == expected(KEY, padded)


def test_programming_survives_power_cycle(device, session):
    session.put_configuration(2, HmacSha1SlotConfiguration(KEY))
    device.power_cycle()
    session = YubiOtpSession(device.yubikit())
    assert session.get_config_state().is_configured(2)
    assert session.calculate_hmac_sha1(2, b"p" * 32) == expected(KEY, b"p" * 32)


def test_touch_approved_and_denied(device, session):
    session.put_configuration(2, HmacSha1SlotConfiguration(KEY).require_touch(True))
    assert session.calculate_hmac_sha1(2, b"t" * 32) == expected(KEY, b"t" * 32)
    device.set_presence("deny")
    with pytest.raises(ApduError) as e:
        session.calculate_hmac_sha1(2, b"t" * 32)
    assert e.value.sw == SW_SECURITY_STATUS_NOT_SATISFIED


def test_delete_slot_and_empty_slot(session):
    session.put_configuration(2, HmacSha1SlotConfiguration(KEY))
    session.delete_slot(2)
    assert not session.get_config_state().is_configured(2)
    with pytest.raises(ApduError) as e:
        session.calculate_hmac_sha1(2, b"x" * 32)
    assert e.value.sw == SW_CONDITIONS_NOT_SATISFIED


def test_keyboard_slot_is_touch_triggered_and_not_challenge_response(session):
    session.put_configuration(1, HotpSlotConfiguration(KEY))
    state = session.get_config_state()
    assert state.is_configured(1) and state.is_touch_triggered(1)
    with pytest.raises(ApduError) as e:
        session.calculate_hmac_sha1(1, b"x" * 32)
    assert e.value.sw == SW_CONDITIONS_NOT_SATISFIED


def test_access_code_protects_the_slot(device, session):
    session.put_configuration(2, HmacSha1SlotConfiguration(KEY), acc_code=ACC)
    other = HmacSha1SlotConfiguration(b"o" * 20)
    with pytest.raises(CommandRejectedError):
        session.put_configuration(2, other)
    with pytest.raises(CommandRejectedError):
        session.put_configuration(2, other, cur_acc_code=b"\x09" * 6)
    with pytest.raises(CommandRejectedError):
        session.delete_slot(2)
    session = YubiOtpSession(device.yubikit())
    assert session.calculate_hmac_sha1(2, b"k" * 32) == expected(KEY, b"k" * 32)  # unchanged
    # the other slot is not protected by slot 2's code
    session.put_configuration(1, other)
    # with the right code: reprogram (keeping the code), then delete
    session.put_configuration(2, other, acc_code=ACC, cur_acc_code=ACC)
    assert session.calculate_hmac_sha1(2, b"k" * 32) == expected(b"o" * 20, b"k" * 32)
    session.delete_slot(2, cur_acc_code=ACC)
    assert not session.get_config_state().is_configured(2)


def test_programming_sequence(session):
    seq = session.backend._prog_seq
    session.put_configuration(1, HmacSha1SlotConfiguration(KEY))
    assert session.backend._prog_seq == seq + 1
    session.put_configuration(2, HmacSha1SlotConfiguration(KEY))
    assert session.backend._prog_seq == seq + 2
    session.delete_slot(1)
    assert session.backend._prog_seq == seq + 3
    session.delete_slot(2)  # nothing programmed any more: back to 0, which yubikit accepts
    assert session.backend._prog_seq == 0


def test_corrupt_config_is_rejected(device, session):
    config = bytearray(HmacSha1SlotConfiguration(KEY).get_config())
    config[10] ^= 0x01
    with pytest.raises(CommandRejectedError):
        session.backend.write_update(CONFIG_SLOT.CONFIG_2, bytes(config) + b"\0" * 6)
    assert not session.get_config_state().is_configured(2)


def test_config_crc_matches_yubikit():
    from sealtoken.applets.otp import crc16

    for data in (b"", b"\x00" * 50, bytes(range(50)), HmacSha1SlotConfiguration(KEY).get_config()):
        assert crc16(data) == calculate_crc(data)
    assert crc16(HmacSha1SlotConfiguration(KEY).get_config()) == 0xF0B8


def test_update_and_swap(session):
    session.put_configuration(1, HmacSha1SlotConfiguration(b"1" * 20))
    session.put_configuration(2, HotpSlotConfiguration(b"2" * 20))
    session.update_configuration(1, UpdateConfiguration().serial_api_visible(True))
    assert session.calculate_hmac_sha1(1, b"u" * 32) == expected(b"1" * 20, b"u" * 32)
    session.swap_slots()
    state = session.get_config_state()
    assert state.is_touch_triggered(1) and not state.is_touch_triggered(2)
    assert session.calculate_hmac_sha1(2, b"u" * 32) == expected(b"1" * 20, b"u" * 32)


def test_update_of_an_empty_slot_is_rejected(session):
    with pytest.raises(CommandRejectedError):
        session.update_configuration(2, UpdateConfiguration())


def test_serial_is_stable(device, session):
    serial = session.get_serial()
    assert 0 < serial < 2**32
    device.power_cycle()
    assert YubiOtpSession(device.yubikit()).get_serial() == serial


def _raw(device):
    protocol = SmartCardProtocol(device.yubikit())
    protocol.select(AID.OTP)
    return protocol


@pytest.mark.parametrize(
    "p1,data,sw",
    [
        (0x38, b"x" * 32, SW_WRONG_LENGTH),  # challenges are always padded to 64 bytes
        (0x38, b"x" * 65, SW_WRONG_LENGTH),
        (0x03, b"\0" * 57, SW_WRONG_LENGTH),  # config || access code is 58 bytes
        (0x20, b"x" * 6, SW_INCORRECT_P1P2),  # Yubico OTP challenge-response: not offered
        (0x77, b"", SW_INCORRECT_P1P2),
    ],
)
def test_malformed_commands(device, p1, data, sw):
    with pytest.raises(ApduError) as e:
        _raw(device).send_apdu(0, 0x01, p1, 0, data)
    assert e.value.sw == sw


def test_status_instruction(device):
    status = _raw(device).send_apdu(0, 0x03, 0, 0)
    assert len(status) == 6
    assert struct.unpack("<H", status[4:6])[0] == 0


def test_random_commands_never_crash_the_applet(device):
    """Mutated and random APDUs: always a proper status word, never 6F00 (an exception inside)."""
    import random

    rng = random.Random(11)  # deterministic
    session = YubiOtpSession(device.yubikit())
    session.put_configuration(1, HmacSha1SlotConfiguration(KEY))
    config = HmacSha1SlotConfiguration(KEY).get_config() + b"\0" * 6
    conn = device.connection
    conn.send_and_receive(bytes.fromhex("00a4040007a0000005272001"))
    for _ in range(1500):
        p1 = rng.choice([0x01, 0x03, 0x04, 0x05, 0x06, 0x10, 0x30, 0x38, rng.randrange(256)])
        data = bytearray(rng.choice([config, b"c" * 64, b"", b"\0" * 58]))
        for _ in range(rng.randrange(3)):
            if data and rng.randrange(2):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            else:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        ins = rng.choice([0x01, 0x01, 0x03, rng.randrange(256)])
        if ins in (0xA4, 0xC0):
            continue
        apdu = bytes((0, ins, p1, 0, len(data))) + bytes(data) if data else bytes((0, ins, p1, 0))
        _, sw = conn.send_and_receive(apdu)
        assert sw != 0x6F00, apdu.hex()
    session = YubiOtpSession(device.yubikit())
    session.put_configuration(2, HmacSha1SlotConfiguration(b"z" * 20))
    assert session.calculate_hmac_sha1(2, b"after") == expected(b"z" * 20, b"after")
