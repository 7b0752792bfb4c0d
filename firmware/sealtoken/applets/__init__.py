"""The ISO 7816 applets of the token, each imported on its first SELECT: what the card knows of them
before that (their AIDs; sealtoken.token.build_applets names their modules)."""

from sealtoken.core.micro import const

# the AIDs (the host has its own copy, tests/test_layering.py compares them)
AID_SEALCODES = const(b"\xf0SEALCODES")           # F0 53 45 41 4C 43 4F 44 45 53 (proprietary, unregistered RID)
AID_OATH = const(b"\xa0\x00\x00\x05\x27\x21\x01")
AID_OTP = const(b"\xa0\x00\x00\x05\x27\x20\x01")
AID_FIDO = const(b"\xa0\x00\x00\x06\x47\x2f\x00\x01")
AID_PIV = const(b"\xa0\x00\x00\x03\x08")          # RID + PIX prefix; SELECT by this partial AID
PIV_AID_FULL = const(b"\xa0\x00\x00\x03\x08\x00\x00\x10\x00\x01\x00")
AID_OPENPGP = const(b"\xd2\x76\x00\x01\x24\x01")  # RID D276000124, application 01; SELECT by this prefix
OPENPGP_VERSION = (3, 4)
OPENPGP_MANUFACTURER = const(b"\xff\xfe")         # "test card" range: not a registered manufacturer


def openpgp_aid(serial):
    """The OpenPGP applet's full AID: RID and application, version, manufacturer, the serial, RFU."""
    return (AID_OPENPGP + bytes((OPENPGP_VERSION[0], OPENPGP_VERSION[1])) + OPENPGP_MANUFACTURER + bytes(serial)
            + b"\x00\x00")
