"""The firmware's PIV applet driven by yubikit's PivSession (as ykman drives a YubiKey)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from yubikit.core.smartcard import ApduError
from yubikit.piv import (
    KEY_TYPE,
    MANAGEMENT_KEY_TYPE,
    OBJECT_ID,
    PIN_POLICY,
    SLOT,
    TOUCH_POLICY,
    InvalidPinError,
    PivSession,
)

MGMT_KEY = b"\x01\x02\x03\x04\x05\x06\x07\x08" * 4
PIN = "123456"
CURVES = {KEY_TYPE.ECCP256: ec.SECP256R1(), KEY_TYPE.ECCP384: ec.SECP384R1()}


def session(dut, transport=None):
    return PivSession(dut.yubikit(transport))


def peer_point(key_type):
    return ec.generate_private_key(CURVES[key_type])


@pytest.mark.parametrize("key_type", [KEY_TYPE.ECCP256, KEY_TYPE.ECCP384])
def test_generate_and_ecdh_with_pivsession(device, key_type):
    piv = session(device)
    assert piv.management_key_type == MANAGEMENT_KEY_TYPE.AES256
    piv.authenticate(MGMT_KEY)
    public = piv.generate_key(SLOT.KEY_MANAGEMENT, key_type)
    meta = piv.get_slot_metadata(SLOT.KEY_MANAGEMENT)
    assert meta.key_type == key_type and meta.generated
    assert meta.pin_policy == PIN_POLICY.ONCE and meta.touch_policy == TOUCH_POLICY.NEVER
    assert meta.public_key.public_numbers() == public.public_numbers()
    piv.verify_pin(PIN)
    peer = peer_point(key_type)
    assert piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key()) == peer.exchange(ec.ECDH(), public)
    # the key survives a power cycle; the PIN verification does not
    device.power_cycle()
    piv = session(device)
    assert piv.get_slot_metadata(SLOT.KEY_MANAGEMENT).public_key.public_numbers() == public.public_numbers()
    with pytest.raises(ApduError) as err:
        piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key())
    assert err.value.sw == 0x6982
    piv.verify_pin(PIN)
    assert piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key()) == peer.exchange(ec.ECDH(), public)


def test_imported_key_gives_the_ecdh_of_that_key(device, transport):
    piv = session(device, transport)
    private = ec.generate_private_key(ec.SECP256R1())
    piv.authenticate(MGMT_KEY)
    assert piv.put_key(SLOT.KEY_MANAGEMENT, private) == KEY_TYPE.ECCP256
    meta = piv.get_slot_metadata(SLOT.KEY_MANAGEMENT)
    assert not meta.generated
    assert meta.public_key.public_numbers() == private.public_key().public_numbers()
    piv.verify_pin(PIN)
    peer = peer_point(KEY_TYPE.ECCP256)
    assert piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key()) == private.exchange(ec.ECDH(), peer.public_key())


def test_management_key_is_required_and_checked(loopback):
    piv = session(loopback)
    with pytest.raises(ApduError) as err:
        piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256)
    assert err.value.sw == 0x6982
    with pytest.raises(ApduError) as err:
        piv.authenticate(b"\x00" * 32)
    assert err.value.sw == 0x6982
    with pytest.raises(ApduError):
        piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256)
    meta = piv.get_management_key_metadata()
    assert meta.default_value and meta.key_type == MANAGEMENT_KEY_TYPE.AES256


def test_rsa_and_other_slots_refused(loopback):
    piv = session(loopback)
    piv.authenticate(MGMT_KEY)
    with pytest.raises(ApduError) as err:
        piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.RSA2048)
    assert err.value.sw == 0x6A80
    with pytest.raises(ApduError) as err:
        piv.generate_key(SLOT.SIGNATURE, KEY_TYPE.ECCP256)
    assert err.value.sw == 0x6A86


def test_pin_policy_always_and_touch_policy(loopback):
    piv = session(loopback)
    piv.authenticate(MGMT_KEY)
    public = piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256, PIN_POLICY.ALWAYS, TOUCH_POLICY.ALWAYS)
    peer = peer_point(KEY_TYPE.ECCP256)
    piv.verify_pin(PIN)
    assert piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key()) == peer.exchange(ec.ECDH(), public)
    with pytest.raises(ApduError) as err:  # PIN ALWAYS: one use per VERIFY
        piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key())
    assert err.value.sw == 0x6982
    loopback.set_presence("deny")
    piv.verify_pin(PIN)
    with pytest.raises(ApduError) as err:  # touch refused
        piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key())
    assert err.value.sw == 0x6982


def test_pin_policy_never(loopback):
    piv = session(loopback)
    piv.authenticate(MGMT_KEY)
    public = piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256, PIN_POLICY.NEVER)
    peer = peer_point(KEY_TYPE.ECCP256)
    assert piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key()) == peer.exchange(ec.ECDH(), public)


def test_wrong_pin_counts_down_across_sessions(device):
    piv = session(device)
    assert piv.get_pin_attempts() == 3
    with pytest.raises(InvalidPinError) as err:
        piv.verify_pin("000000")
    assert err.value.attempts_remaining == 2
    device.power_cycle()
    piv = session(device)
    assert piv.get_pin_attempts() == 2
    assert piv.get_pin_metadata().default_value
    piv.verify_pin(PIN)
    assert piv.get_pin_attempts() == 3
    piv.change_pin(PIN, "24682468")
    with pytest.raises(InvalidPinError):
        piv.verify_pin(PIN)
    piv.verify_pin("24682468")
    assert not piv.get_pin_metadata().default_value


def test_certificate_object_round_trip(loopback):
    piv = session(loopback)
    piv.authenticate(MGMT_KEY)
    public = piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256)
    signer = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "sealcodes test")])
    import datetime

    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(signer, hashes.SHA256()))
    piv.put_certificate(SLOT.KEY_MANAGEMENT, cert)
    loopback.power_cycle()
    piv = session(loopback)
    got = piv.get_certificate(SLOT.KEY_MANAGEMENT)
    assert got.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) == \
        public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    with pytest.raises(ApduError) as err:
        piv.get_object(OBJECT_ID.SIGNATURE)
    assert err.value.sw == 0x6A82


def test_invalid_points_are_refused(loopback):
    piv = session(loopback)
    piv.authenticate(MGMT_KEY)
    piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256)
    piv.verify_pin(PIN)
    from yubikit.core import Tlv

    for point in (b"\x04" + bytes(64), b"\x04" + b"\x01" * 64, b"\x02" + bytes(32), b"\x04" + bytes(96)):
        with pytest.raises(ApduError) as err:
            piv.protocol.send_apdu(0, 0x87, 0x11, 0x9D, Tlv(0x7C, Tlv(0x82) + Tlv(0x85, point)))
        assert err.value.sw == 0x6A80
    with pytest.raises(ApduError) as err:  # algorithm of another curve
        piv.protocol.send_apdu(0, 0x87, 0x14, 0x9D, Tlv(0x7C, Tlv(0x82) + Tlv(0x85, b"\x04" + bytes(96))))
    assert err.value.sw == 0x6A86


def test_reset_with_yubikit(loopback):
    piv = session(loopback)
    piv.authenticate(MGMT_KEY)
    piv.generate_key(SLOT.KEY_MANAGEMENT, KEY_TYPE.ECCP256)
    piv.reset()
    piv = session(loopback)
    with pytest.raises(ApduError) as err:
        piv.get_slot_metadata(SLOT.KEY_MANAGEMENT)
    assert err.value.sw == 0x6A88
    assert piv.get_pin_attempts() == 3
