"""Every protocol constant the host uses, in one place.

The host keeps its own copy rather than importing the firmware's (each of those lives next to
the firmware module that uses it, e.g. sealtoken.applets.seal, sealtoken.core.iso7816): the host
runs without the firmware installed and talks to devices that are not ours. The values are wire
facts (docs/applet.md, docs/protocols.md); tests/test_layering.py checks that they equal the
firmware's.
"""

from __future__ import annotations

from enum import IntEnum


class SW(IntEnum):
    """ISO 7816-4 status words the host names (61xx and 63Cx carry a count in the low bits)."""

    OK = 0x9000
    MORE_DATA = 0x6100  # 61xx: xx more bytes (00 = 256 or more), fetch with GET RESPONSE
    VERIFY_FAIL = 0x63C0  # 63Cx: verification failed, x tries left
    STILL_WORKING = 0x9100  # NFCCTAP: the request is still running
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    DATA_INVALID = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    WRONG_DATA = 0x6A80
    FILE_NOT_FOUND = 0x6A82  # also: no application with that AID
    NO_SPACE = 0x6A84
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    FILE_EXISTS = 0x6A89
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    UNKNOWN = 0x6F00


# ISO 7816-4 commands the APDU layer sends itself
CLA_ISO = 0x00
CLA_CHAINING = 0x10  # bit of CLA: more fragments of this command follow
INS_SELECT = 0xA4
P1_SELECT_BY_AID = 0x04
INS_GET_RESPONSE = 0xC0
SHORT_APDU_MAX_DATA = 255
EXTENDED_APDU_MAX_DATA = 65535

# application identifiers
AID_SEALCODES = b"\xf0SEALCODES"
AID_FIDO = b"\xa0\x00\x00\x06\x47\x2f\x00\x01"
AID_OATH = b"\xa0\x00\x00\x05\x27\x21\x01"
AID_OTP = b"\xa0\x00\x00\x05\x27\x20\x01"
AID_PIV = b"\xa0\x00\x00\x03\x08"  # NIST SP 800-73 (prefix; cards answer to it)
AID_OPENPGP = b"\xd2\x76\x00\x01\x24\x01"  # OpenPGP card spec 3.4 (RID + application)

# YKOATH (docs/protocols.md section 7): what the ykoath backend sends itself for a CALCULATE
OATH_INS_CALCULATE = 0xA2
OATH_INS_SEND_REMAINING = 0xA5  # YKOATH's own 61xx continuation (not GET RESPONSE)
OATH_TAG_NAME = 0x71  # also the salt in the SELECT answer
OATH_TAG_CHALLENGE = 0x74  # in the SELECT answer: an access code is set
OATH_TAG_RESPONSE = 0x75  # digits byte, then the full HMAC
OATH_TAG_VERSION = 0x79

# the sealcodes applet (docs/applet.md)
SEAL_INS_VERIFY_PIN = 0x20
SEAL_INS_GENERATE = 0x46
SEAL_INS_GET_INFO = 0x50
SEAL_INS_SET_PIN = 0x52
SEAL_INS_DERIVE = 0x88
SEAL_P2_GENERATE_OVERWRITE = 0x01
SEAL_PIN_MIN_LEN = 4  # bytes of UTF-8
SEAL_PIN_MAX_LEN = 63
SEAL_NUM_SLOTS = 8
SEAL_CHALLENGE_LEN = 32
SEAL_SECRET_LEN = 32
SEAL_TAG_VERSION = 0x01
SEAL_TAG_SERIAL = 0x02
SEAL_TAG_PIN_SET = 0x03
SEAL_TAG_PIN_TRIES = 0x04
SEAL_TAG_SLOTS_USED = 0x05
