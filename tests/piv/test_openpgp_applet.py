"""The firmware's OpenPGP applet driven by yubikit's OpenPgpSession (as ykman drives a YubiKey)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from yubikit.core import InvalidPinError
from yubikit.core.smartcard import ApduError
from yubikit.openpgp import KEY_REF, KEY_STATUS, OID, EcAttributes, OpenPgpSession

USER_PIN = "123456"
ADMIN_PIN = "12345678"
CURVES = {OID.SECP256R1: ec.SECP256R1(), OID.SECP384R1: ec.SECP384R1()}


def session(dut, transport=None):
    return OpenPgpSession(dut.yubikit(transport))


@pytest.mark.parametrize("oid", [OID.SECP256R1, OID.SECP384R1], ids=["P-256", "P-384"])
def test_generate_and_decipher_with_openpgpsession(device, oid):
    pgp = session(device)
    pgp.verify_admin(ADMIN_PIN)
    public = pgp.generate_ec_key(KEY_REF.DEC, oid)
    attrs = pgp.get_algorithm_attributes(KEY_REF.DEC)
    assert isinstance(attrs, EcAttributes) and attrs.algorithm_id == 0x12 and attrs.oid == oid
    assert pgp.get_key_information()[KEY_REF.DEC] == KEY_STATUS.GENERATED
    pgp.verify_pin(USER_PIN, extended=True)
    peer = ec.generate_private_key(CURVES[oid])
    assert pgp.decrypt(peer.public_key()) == peer.exchange(ec.ECDH(), public)
    device.power_cycle()
    pgp = session(device)
    assert pgp.get_public_key(KEY_REF.DEC).public_numbers() == public.public_numbers()
    with pytest.raises(ApduError) as err:  # PW1 forgotten at power off
        pgp.decrypt(peer.public_key())
    assert err.value.sw == 0x6982
    pgp.verify_pin(USER_PIN, extended=True)
    assert pgp.decrypt(peer.public_key()) == peer.exchange(ec.ECDH(), public)


def test_imported_key_deciphers_with_that_key(device, transport):
    pgp = session(device, transport)
    private = ec.generate_private_key(ec.SECP256R1())
    pgp.verify_admin(ADMIN_PIN)
    pgp.put_key(KEY_REF.DEC, private)
    assert pgp.get_key_information()[KEY_REF.DEC] == KEY_STATUS.IMPORTED
    assert pgp.get_public_key(KEY_REF.DEC).public_numbers() == private.public_key().public_numbers()
    pgp.verify_pin(USER_PIN, extended=True)
    peer = ec.generate_private_key(ec.SECP256R1())
    assert pgp.decrypt(peer.public_key()) == private.exchange(ec.ECDH(), peer.public_key())


def test_decipher_needs_pw1_mode_82(loopback):
    pgp = session(loopback)
    pgp.verify_admin(ADMIN_PIN)
    pgp.generate_ec_key(KEY_REF.DEC, OID.SECP256R1)
    peer = ec.generate_private_key(ec.SECP256R1())
    pgp.verify_pin(USER_PIN, extended=False)  # 81: signing only
    with pytest.raises(ApduError) as err:
        pgp.decrypt(peer.public_key())
    assert err.value.sw == 0x6982


def test_generate_needs_admin_pin(loopback):
    pgp = session(loopback)
    pgp.verify_pin(USER_PIN, extended=True)
    with pytest.raises(ApduError) as err:
        pgp.generate_ec_key(KEY_REF.DEC, OID.SECP256R1)
    assert err.value.sw == 0x6982


def test_wrong_pins_count_down_and_block(device):
    pgp = session(device)
    with pytest.raises(InvalidPinError) as err:
        pgp.verify_pin("000000", extended=True)
    assert err.value.attempts_remaining == 2
    device.power_cycle()
    pgp = session(device)
    assert pgp.get_pin_status().attempts_user == 2
    pgp.verify_pin(USER_PIN, extended=True)
    assert pgp.get_pin_status().attempts_user == 3
    for _ in range(3):
        with pytest.raises(InvalidPinError):
            pgp.verify_admin("00000000")
    with pytest.raises(InvalidPinError) as err:
        pgp.verify_admin(ADMIN_PIN)  # blocked: the right PIN does not help
    assert err.value.attempts_remaining == 0


def test_change_pin_and_admin_reset_of_pw1(loopback):
    pgp = session(loopback)
    pgp.change_pin(USER_PIN, "24682468")
    with pytest.raises(InvalidPinError):
        pgp.verify_pin(USER_PIN)
    pgp.verify_pin("24682468")
    pgp.verify_admin(ADMIN_PIN)
    pgp.reset_pin("13571357")
    pgp.verify_pin("13571357", extended=True)


def test_reset_with_yubikit_removes_the_key(loopback):
    pgp = session(loopback)
    pgp.verify_admin(ADMIN_PIN)
    pgp.generate_ec_key(KEY_REF.DEC, OID.SECP256R1)
    pgp.change_pin(USER_PIN, "99999999")
    pgp.reset()
    pgp = session(loopback)
    assert pgp.get_key_information()[KEY_REF.DEC] == KEY_STATUS.NONE
    pgp.verify_pin(USER_PIN, extended=True)


def test_invalid_points_and_malformed_decipher(loopback):
    pgp = session(loopback)
    pgp.verify_admin(ADMIN_PIN)
    pgp.generate_ec_key(KEY_REF.DEC, OID.SECP256R1)
    pgp.verify_pin(USER_PIN, extended=True)
    from yubikit.core import Tlv

    for data in (Tlv(0xA6, Tlv(0x7F49, Tlv(0x86, b"\x04" + bytes(64)))),
                 Tlv(0xA6, Tlv(0x7F49, Tlv(0x86, b"\x04" + b"\x05" * 96))),
                 Tlv(0xA6, Tlv(0x7F49, b"")), b"\xa6\x05\x7f\x49", b""):
        with pytest.raises(ApduError) as err:
            pgp.protocol.send_apdu(0, 0x2A, 0x80, 0x86, data)
        assert err.value.sw == 0x6A80
    with pytest.raises(ApduError) as err:  # only the decryption key exists
        pgp.protocol.send_apdu(0, 0x47, 0x81, 0x00, b"\xb6\x00")
    assert err.value.sw == 0x6A88
