"""The firmware's YKOATH applet, driven by yubikit's OathSession (as ykman drives a YubiKey)."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path

import pytest
from yubikit.core.smartcard import AID, ApduError, SmartCardProtocol
from yubikit.oath import (
    HASH_ALGORITHM,
    OATH_TYPE,
    CredentialData,
    OathSession,
)

VECTORS = json.loads((Path(__file__).parent / "oath_vectors.json").read_text())
SHA = {"SHA1": HASH_ALGORITHM.SHA1, "SHA256": HASH_ALGORITHM.SHA256, "SHA512": HASH_ALGORITHM.SHA512}

SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
SW_DATA_INVALID = 0x6984
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_DATA = 0x6A80
SW_NO_SPACE = 0x6A84
SW_INCORRECT_P1P2 = 0x6A86
SW_FILE_EXISTS = 0x6A89


@pytest.fixture
def session(device):
    return OathSession(device.yubikit())


def totp(name, key, algorithm=HASH_ALGORITHM.SHA256, digits=6, **kw):
    return CredentialData(name, OATH_TYPE.TOTP, algorithm, key, digits=digits, **kw)


def raw_protocol(device):
    """A SmartCardProtocol with the OATH applet selected, for commands yubikit does not build."""
    protocol = SmartCardProtocol(device.yubikit(), 0xA5)
    protocol.select(AID.OATH)
    return protocol


def tlv(tag, value):
    assert len(value) < 0x80
    return bytes((tag, len(value))) + value


# --- SELECT ------------------------------------------------------------------------
def test_select_reports_version_and_stable_device_id(device):
    first = OathSession(device.yubikit())
    assert first.version >= (5, 3, 1)  # RENAME needs it
    assert not first.locked and not first.has_key
    device.power_cycle()
    second = OathSession(device.yubikit())
    assert second.device_id == first.device_id


# --- RFC vectors ----------------------------------------------------------------------
def test_hotp_rfc4226_vectors(session):
    vec = VECTORS["hotp"]
    cred = session.put_credential(
        CredentialData("rfc4226", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, vec["key_ascii"].encode(), digits=6)
    )
    assert [session.calculate_code(cred).value for _ in vec["codes"]] == vec["codes"]


def test_hotp_initial_moving_factor(session):
    vec = VECTORS["hotp"]
    cred = session.put_credential(
        CredentialData("imf", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, vec["key_ascii"].encode(), counter=5)
    )
    assert session.calculate_code(cred).value == vec["codes"][5]
    assert session.calculate_code(cred).value == vec["codes"][6]


def test_hotp_counter_survives_power_cycle(device):
    vec = VECTORS["hotp"]
    session = OathSession(device.yubikit())
    cred = session.put_credential(
        CredentialData("hotp", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, vec["key_ascii"].encode())
    )
    assert session.calculate_code(cred).value == vec["codes"][0]
    device.power_cycle()
    session = OathSession(device.yubikit())
    assert session.calculate_code(cred).value == vec["codes"][1]


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
def test_totp_rfc6238_vectors(session, algorithm):
    vec = VECTORS["totp"]
    key = vec["keys_ascii"][algorithm].encode()
    cred = session.put_credential(totp(f"rfc6238-{algorithm}", key, SHA[algorithm], digits=vec["digits"]))
    for timestamp, alg, code in vec["cases"]:
        if alg == algorithm:
            assert session.calculate_code(cred, timestamp).value == code, timestamp


# --- full responses (what the ykoath backend uses) -------------------------------------------
@pytest.mark.parametrize(
    "algorithm,key_len",
    [("sha1", 20), ("sha256", 32), ("sha256", 10), ("sha256", 64), ("sha256", 100), ("sha512", 64), ("sha512", 200)],
)
def test_calculate_full_response_is_rfc2104_hmac(session, algorithm, key_len):
    key = bytes(range(1, key_len + 1))
    session.put_credential(totp("full", key, SHA[algorithm.upper()]))
    for challenge in (b"", b"\x00" * 8, hashlib.sha256(b"c").digest(), bytes(range(64))):
        assert session.calculate(b"full", challenge) == hmac.new(key, challenge, algorithm).digest()


def test_firmware_hashes_keys_longer_than_a_block(device):
    # yubikit hashes long keys itself; another client may not: the token must follow RFC 2104 too
    key = bytes(range(100))
    protocol = raw_protocol(device)
    protocol.send_apdu(0, 0x01, 0, 0, tlv(0x71, b"long") + bytes((0x73, 0x81, 102, 0x22, 6)) + key)
    challenge = b"\x01" * 32
    response = protocol.send_apdu(0, 0xA2, 0, 0, tlv(0x71, b"long") + tlv(0x74, challenge))
    assert response[:3] == b"\x75\x21\x06"
    assert response[3:] == hmac.new(key, challenge, "sha256").digest()


def test_truncated_response(session):
    key = b"k" * 20
    session.put_credential(totp("t", key, HASH_ALGORITHM.SHA1))
    challenge = struct.pack(">q", 12345)
    digest = hmac.new(key, challenge, "sha1").digest()
    offset = digest[-1] & 0x0F
    expected = (int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF) % 10**6
    cred = [c for c in session.list_credentials() if c.id == b"t"][0]
    assert session.calculate_code(cred, 12345 * 30).value == str(expected).rjust(6, "0")


# --- list / delete / rename / overwrite ------------------------------------------------------
def test_list_delete_rename(session):
    session.put_credential(totp("a", b"1" * 20))
    session.put_credential(CredentialData("b", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, b"2" * 20))
    session.put_credential(totp("c", b"3" * 20, issuer="Example", period=60))
    listed = {c.id: c for c in session.list_credentials()}
    assert set(listed) == {b"a", b"b", b"60/Example:c"}
    assert listed[b"b"].oath_type == OATH_TYPE.HOTP
    assert listed[b"60/Example:c"].period == 60 and listed[b"60/Example:c"].issuer == "Example"

    session.delete_credential(b"a")
    assert {c.id for c in session.list_credentials()} == {b"b", b"60/Example:c"}
    with pytest.raises(ApduError) as e:
        session.delete_credential(b"a")
    assert e.value.sw == SW_DATA_INVALID

    new_id = session.rename_credential(b"60/Example:c", "d", "Other")
    assert new_id == b"60/Other:d"
    assert {c.id for c in session.list_credentials()} == {b"b", b"60/Other:d"}
    assert session.calculate(b"60/Other:d", b"x") == hmac.new(b"3" * 20, b"x", "sha256").digest()
    session.put_credential(totp("e", b"5" * 20))
    with pytest.raises(ApduError) as e:
        session.rename_credential(b"e", "b")  # the id "b" is taken (by the HOTP credential)
    assert e.value.sw == SW_FILE_EXISTS
    with pytest.raises(ApduError) as e:
        session.rename_credential(b"missing", "x")
    assert e.value.sw == SW_DATA_INVALID


def test_put_same_name_overwrites(session):
    session.put_credential(totp("same", b"old-key-old-key-old"))
    session.put_credential(totp("same", b"new-key-new-key-new"))
    assert [c.id for c in session.list_credentials()] == [b"same"]
    assert session.calculate(b"same", b"m") == hmac.new(b"new-key-new-key-new", b"m", "sha256").digest()


def test_calculate_unknown_credential(session):
    with pytest.raises(ApduError) as e:
        session.calculate(b"nope", b"x")
    assert e.value.sw == SW_DATA_INVALID


def test_no_space(session):
    for i in range(32):
        session.put_credential(totp(f"cred-{i:02d}", b"k" * 32))
    with pytest.raises(ApduError) as e:
        session.put_credential(totp("one-too-many", b"k" * 32))
    assert e.value.sw == SW_NO_SPACE
    session.delete_credential(b"cred-05")
    session.put_credential(totp("one-too-many", b"k" * 32))


def test_long_responses_in_both_framings(device, transport):
    # 20 credentials with 60-byte names: LIST and CALCULATE ALL answer > 1 kB, chained
    session = OathSession(device.yubikit(transport))
    names = [f"{i:02d}-" + "n" * 57 for i in range(20)]
    for name in names:
        session.put_credential(totp(name, name.encode()[:32], HASH_ALGORITHM.SHA1))
    assert sorted(c.name for c in session.list_credentials()) == names
    codes = session.calculate_all(1111111109)
    assert len(codes) == 20 and all(code is not None for code in codes.values())


# --- CALCULATE ALL -------------------------------------------------------------------------
def test_calculate_all_marks_hotp_and_touch(session):
    vec = VECTORS["totp"]
    session.put_credential(totp("plain", vec["keys_ascii"]["SHA1"].encode(), HASH_ALGORITHM.SHA1, digits=8))
    session.put_credential(totp("touchy", b"t" * 20), touch_required=True)
    session.put_credential(CredentialData("counter", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, b"h" * 20))
    entries = {c.name: (c, code) for c, code in session.calculate_all(1111111109).items()}
    assert entries["plain"][1].value == "07081804"
    cred, code = entries["touchy"]
    assert code is None and cred.touch_required and cred.oath_type == OATH_TYPE.TOTP
    cred, code = entries["counter"]
    assert code is None and cred.oath_type == OATH_TYPE.HOTP


# --- touch ------------------------------------------------------------------------------------
def test_touch_approved_and_denied(device, session):
    session.put_credential(totp("touch", b"t" * 32), touch_required=True)
    assert session.calculate(b"touch", b"c") == hmac.new(b"t" * 32, b"c", "sha256").digest()
    device.set_presence("deny")
    with pytest.raises(ApduError) as e:
        session.calculate(b"touch", b"c")
    assert e.value.sw == SW_SECURITY_STATUS_NOT_SATISFIED
    # credentials without touch are not affected
    session.put_credential(totp("free", b"f" * 32))
    session.calculate(b"free", b"c")


# --- access code ---------------------------------------------------------------------------------
def test_access_code_lifecycle(device):
    session = OathSession(device.yubikit())
    session.put_credential(totp("x", b"x" * 32))
    key = session.derive_key("correct horse")
    session.set_key(key)
    session.calculate(b"x", b"still unlocked in this session")

    device.power_cycle()
    session = OathSession(device.yubikit())
    assert session.locked and session.has_key
    for call in (session.list_credentials, lambda: session.calculate(b"x", b"m"),
                 lambda: session.put_credential(totp("y", b"y" * 32)), lambda: session.delete_credential(b"x")):
        with pytest.raises(ApduError) as e:
            call()
        assert e.value.sw == SW_SECURITY_STATUS_NOT_SATISFIED

    with pytest.raises(ApduError) as e:
        session.validate(session.derive_key("wrong"))
    assert e.value.sw == SW_WRONG_DATA  # ykman reads this as "wrong password"

    session = OathSession(device.yubikit())  # new SELECT, new challenge
    session.validate(key)
    assert not session.locked
    assert [c.id for c in session.list_credentials()] == [b"x"]

    session.unset_key()
    session = OathSession(device.yubikit())
    assert not session.locked and not session.has_key
    session.list_credentials()


def test_validate_answer_cannot_be_replayed(device):
    session = OathSession(device.yubikit())
    key = session.derive_key("pw")
    session.set_key(key)
    locked = OathSession(device.yubikit())
    good = hmac.new(key, locked._challenge, "sha1").digest()
    protocol = locked.protocol
    protocol.send_apdu(0, 0xA3, 0, 0, tlv(0x75, good) + tlv(0x74, b"12345678"))
    # the same answer again, without a new SELECT: no challenge is pending any more
    with pytest.raises(ApduError):
        protocol.send_apdu(0, 0xA3, 0, 0, tlv(0x75, good) + tlv(0x74, b"12345678"))


def test_set_code_with_wrong_proof_is_refused(device):
    protocol = raw_protocol(device)
    key = b"k" * 16
    bad = tlv(0x73, b"\x21" + key) + tlv(0x74, b"c" * 8) + tlv(0x75, b"\x00" * 20)
    with pytest.raises(ApduError) as e:
        protocol.send_apdu(0, 0x03, 0, 0, bad)
    assert e.value.sw == SW_WRONG_DATA
    assert not OathSession(device.yubikit()).has_key


# --- reset ------------------------------------------------------------------------------------------
def test_reset(device):
    session = OathSession(device.yubikit())
    session.put_credential(totp("gone", b"g" * 32))
    session.set_key(session.derive_key("pw"))
    old_id = session.device_id
    device.power_cycle()
    session = OathSession(device.yubikit())
    assert session.locked
    session.reset()  # allowed while locked
    assert not session.has_key and session.device_id != old_id
    assert session.list_credentials() == []
    device.power_cycle()
    session = OathSession(device.yubikit())
    assert not session.locked and session.list_credentials() == []


def test_reset_needs_dead(device):
    protocol = raw_protocol(device)
    with pytest.raises(ApduError) as e:
        protocol.send_apdu(0, 0x04, 0xDE, 0xAE)
    assert e.value.sw == SW_INCORRECT_P1P2


# --- properties and malformed input ---------------------------------------------------------------------
def test_property_increasing(device):
    protocol = raw_protocol(device)
    key = b"i" * 20
    protocol.send_apdu(0, 0x01, 0, 0, tlv(0x71, b"inc") + tlv(0x73, b"\x21\x06" + key) + b"\x78\x01")

    def calc(step):
        return protocol.send_apdu(0, 0xA2, 0, 0, tlv(0x71, b"inc") + tlv(0x74, struct.pack(">q", step)))

    assert calc(10)[3:] == hmac.new(key, struct.pack(">q", 10), "sha1").digest()
    calc(11)
    for step in (11, 3):
        with pytest.raises(ApduError) as e:
            calc(step)
        assert e.value.sw == SW_CONDITIONS_NOT_SATISFIED


def test_property_without_length_byte_then_imf(device):
    protocol = raw_protocol(device)
    vec = VECTORS["hotp"]
    data = (tlv(0x71, b"h") + tlv(0x73, b"\x11\x06" + vec["key_ascii"].encode())
            + b"\x78\x02" + tlv(0x7A, struct.pack(">I", 3)))
    protocol.send_apdu(0, 0x01, 0, 0, data)
    response = protocol.send_apdu(0, 0xA2, 0, 1, tlv(0x71, b"h") + tlv(0x74, b""))
    value = int.from_bytes(response[3:], "big") % 10**6
    assert str(value).rjust(6, "0") == vec["codes"][3]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x71",
        b"\x71\x05ab",
        tlv(0x71, b"n"),  # no key
        tlv(0x73, b"\x21\x06kkkk"),  # no name
        tlv(0x71, b"") + tlv(0x73, b"\x21\x06kkkk"),  # empty name
        tlv(0x71, b"n" * 65) + tlv(0x73, b"\x21\x06kkkk"),  # name too long
        tlv(0x71, b"n") + tlv(0x73, b"\x21\x06"),  # no key bytes
        tlv(0x71, b"n") + tlv(0x73, b"\x31\x06kkkk"),  # unknown type
        tlv(0x71, b"n") + tlv(0x73, b"\x24\x06kkkk"),  # unknown algorithm
        tlv(0x71, b"n") + tlv(0x73, b"\x21\x02kkkk"),  # digits
        tlv(0x71, b"n") + tlv(0x73, b"\x21\x06kkkk") + b"\x78\x80",  # unknown property
        tlv(0x71, b"n") + tlv(0x73, b"\x21\x06kkkk") + b"\x78",  # property without value
        tlv(0x71, b"n") + tlv(0x73, b"\x21\x06kkkk") + tlv(0x7A, b""),  # empty IMF
        tlv(0x71, b"n") + tlv(0x73, b"\x21\x06kkkk") + tlv(0x55, b"?"),  # unknown tag
        tlv(0x71, b"n") + b"\x73\x84\x00\x00\x00\x05",  # unsupported length form
    ],
)
def test_malformed_put_is_refused(device, data):
    protocol = raw_protocol(device)
    with pytest.raises(ApduError) as e:
        protocol.send_apdu(0, 0x01, 0, 0, data)
    assert e.value.sw == SW_WRONG_DATA
    assert OathSession(device.yubikit()).list_credentials() == []


def test_unknown_instruction(device):
    protocol = raw_protocol(device)
    with pytest.raises(ApduError) as e:
        protocol.send_apdu(0, 0x77, 0, 0)
    assert e.value.sw == 0x6D00


# --- robustness (docs/security.md item 16) ------------------------------------------------------------------
def test_random_commands_never_crash_the_applet(device):
    """Mutated and random APDUs: always a proper status word, never 6F00 (an exception inside)."""
    import random

    rng = random.Random(7)  # deterministic
    session = OathSession(device.yubikit())
    session.put_credential(totp("keep", b"k" * 32))
    valid = [
        tlv(0x71, b"n") + tlv(0x73, b"\x21\x06" + b"k" * 20) + b"\x78\x02" + tlv(0x7A, b"\0\0\0\1"),
        tlv(0x71, b"keep") + tlv(0x74, b"c" * 8),
        tlv(0x74, b"c" * 8),
        tlv(0x75, b"r" * 20) + tlv(0x74, b"c" * 8),
        tlv(0x73, b"\x21" + b"k" * 16) + tlv(0x74, b"c" * 8) + tlv(0x75, b"r" * 20),
        tlv(0x71, b"keep") + tlv(0x71, b"new"),
    ]
    conn = device.connection
    conn.send_and_receive(bytes.fromhex("00a4040007a0000005272101"))
    for _ in range(1500):
        ins = rng.choice([0x01, 0x02, 0x03, 0x05, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5])
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randrange(4)):
            op = rng.randrange(3)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1 and data:
                del data[rng.randrange(len(data)):]
            else:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        p2 = rng.choice([0, 1, rng.randrange(256)])
        apdu = bytes((0, ins, 0, p2, len(data))) + bytes(data) if data else bytes((0, ins, 0, p2))
        _, sw = conn.send_and_receive(apdu)
        assert sw != 0x6F00, apdu.hex()
    # still a working applet
    session = OathSession(device.yubikit())
    if session.locked:  # the fuzzer may have set an access code it cannot know
        session.reset()
    session.put_credential(totp("after", b"a" * 32))
    assert session.calculate(b"after", b"x") == hmac.new(b"a" * 32, b"x", "sha256").digest()
