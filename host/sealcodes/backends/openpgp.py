"""Backend `openpgp`: the decryption key of an OpenPGP card, through an ECDH (docs/spec.md section 11).

R comes from PSO:DECIPHER with a point hashed from the challenge as the
"ephemeral public key" (sealcodes.backends.ecdh). Enrollment adopts the card's ECDH
decryption key (`adopt=True`) or generates one with the user's consent and the
admin PIN (`force=True` replaces an existing key); the profile records the public
key's fingerprint, and every use checks it before the user PIN is sent.

This backend speaks the OpenPGP Card specification 3.4 itself (SELECT, GET DATA,
GENERATE ASYMMETRIC KEY PAIR, VERIFY, PUT DATA, PSO:DECIPHER) rather than
yubikit's OpenPgpSession, which assumes a YubiKey (docs/protocols.md section 9): short APDUs
with command chaining, 61xx continuation, no Yubico-only commands, EC attributes
with or without the import-format byte. yubikit's SmartCardProtocol frames the
APDUs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..connection import as_connection
from ..errors import DeviceError, InvalidInputError, PinBlockedError, PinError
from ..memory import wipe
from . import ecdh
from ..apdu import encode_tlv, find_tlv, sw_text
from ..apdu import parse_tlvs as apdu_tlvs
from ..records import Enrollment
from ._yubikit import TouchNotice, require_yubikit, yubikit_connection
from .base import Backend, Interaction, require_challenge, take_pin

if TYPE_CHECKING:  # enrollment.py is loaded only to enroll
    from ..enrollment import OpenPgpOptions

PIN_PURPOSE = "openpgp"
ADMIN_PIN_PURPOSE = "openpgp-admin"
KEY_NAME = "DEC"
DEFAULT_CURVE = "P-256"

AID_OPENPGP = bytes.fromhex("d27600012401")
INS_GET_DATA = 0xCA
INS_PUT_DATA = 0xDA
INS_VERIFY = 0x20
INS_GENERATE = 0x47
INS_PSO = 0x2A
P1_GENERATE_NEW = 0x80
P1_GENERATE_READ = 0x81
PW1_OTHER = 0x82            # PW1 for decipher / authenticate
PW3 = 0x83
CRT_DEC = b"\xb8\x00"
DO_APPLICATION_DATA = 0x006E
DO_ALGO_DEC = 0x00C2
TAG_AID = 0x4F
TAG_DISCRETIONARY = 0x73
TAG_PW_STATUS = 0xC4
TAG_PUBLIC_KEY = 0x7F49
TAG_POINT = 0x86
ALG_ECDH = 0x12
ALG_RSA = 0x01
OIDS = {"P-256": bytes.fromhex("2a8648ce3d030107"), "P-384": bytes.fromhex("2b81040022")}

_SW_OK = 0x9000
_SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
_SW_AUTH_BLOCKED = 0x6983
_SW_WRONG_DATA = 0x6A80
_SW_REFERENCED_DATA_NOT_FOUND = 0x6A88
_MAX_RESPONSE = 4096


def parse_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """BER-TLV list; DeviceError on malformed card data."""
    return apdu_tlvs(data, "the OpenPGP card")


def _curve_of_attributes(attributes: bytes) -> str | None:
    """'P-256' / 'P-384' for ECDH attributes (import-format byte FF allowed), else None."""
    if not attributes or attributes[0] != ALG_ECDH:
        return None
    oid = attributes[1:]
    if oid[-1:] == b"\xff":
        oid = oid[:-1]
    for name, value in OIDS.items():
        if oid == value:
            return name
    return None


class OpenPgpBackend(Backend):
    name = "openpgp"

    @classmethod
    def check_available(cls) -> None:
        require_yubikit()

    def __init__(self, connection):
        """`connection`: an open sealcodes SmartCardConnection (the caller closes it)."""
        require_yubikit()
        self._connection = as_connection(connection)

    # --- plumbing ---------------------------------------------------------------------
    def _protocol(self):
        """A SmartCardProtocol with the OpenPGP application selected (short APDUs, chaining)."""
        from yubikit.core import ApplicationNotAvailableError, CommandError
        from yubikit.core.smartcard import SmartCardProtocol

        protocol = SmartCardProtocol(yubikit_connection(self._connection))
        try:
            protocol.select(AID_OPENPGP)
        except ApplicationNotAvailableError:
            raise DeviceError("this card has no OpenPGP application") from None
        except CommandError:
            raise DeviceError("the card answered the OpenPGP SELECT wrongly") from None
        return protocol

    @staticmethod
    def _send(protocol, ins, p1, p2, data=b""):
        """(answer, status word); never raises for a status word."""
        from yubikit.core import CommandError
        from yubikit.core.smartcard import ApduError

        try:
            answer = protocol.send_apdu(0, ins, p1, p2, data)
        except ApduError as e:
            return b"", e.sw
        except CommandError:
            raise DeviceError("the OpenPGP card answered wrongly") from None
        if len(answer) > _MAX_RESPONSE:
            raise DeviceError("the OpenPGP card answered with more data than any such answer holds")
        return answer, _SW_OK

    def _application_data(self, protocol) -> dict:
        """{aid, serial, algo_dec, pw1_tries, pw3_tries} from GET DATA 6E."""
        data, sw = self._send(protocol, INS_GET_DATA, 0x00, DO_APPLICATION_DATA)
        if sw != _SW_OK:
            raise DeviceError(f"the OpenPGP card refused GET DATA ({sw_text(sw)})")
        outer = parse_tlvs(data)
        inner = parse_tlvs(outer[0][1]) if outer and outer[0][0] == DO_APPLICATION_DATA else outer
        discretionary = find_tlv(inner, TAG_DISCRETIONARY)
        objects = parse_tlvs(discretionary) if discretionary is not None else inner
        aid = find_tlv(inner, TAG_AID)
        algo = find_tlv(objects, DO_ALGO_DEC)
        status = find_tlv(objects, TAG_PW_STATUS)
        if aid is None or len(aid) < 14 or algo is None or status is None or len(status) < 7:
            raise DeviceError("the OpenPGP card's application data lacks the AID, key attributes or PIN status")
        return {"serial": aid[8:14].hex().upper(), "algo_dec": algo, "pw1_tries": status[4],
                "pw3_tries": status[6]}

    def _public_key(self, protocol) -> bytes | None:
        """The decryption key's public point, or None when the card holds no such key."""
        data, sw = self._send(protocol, INS_GENERATE, P1_GENERATE_READ, 0x00, CRT_DEC)
        if sw in (_SW_REFERENCED_DATA_NOT_FOUND, _SW_WRONG_DATA, 0x6A82):
            return None
        if sw != _SW_OK:
            raise DeviceError(f"the OpenPGP card refused to read the decryption key ({sw_text(sw)})")
        outer = parse_tlvs(data)
        public = find_tlv(outer, TAG_PUBLIC_KEY)
        point = find_tlv(parse_tlvs(public), TAG_POINT) if public is not None else None
        if point is None:
            raise DeviceError("the OpenPGP card's public key answer has no EC point")
        return point

    def _verify(self, protocol, interaction, pw, purpose, what, tries_left):
        value = take_pin(interaction.request_pin(purpose))
        if not value:
            raise PinError(f"the OpenPGP {what} is needed; none was given")
        # a verified user or admin PIN must not outlive this session: the card is reset when released
        self._connection.reset_on_close()
        try:
            _, sw = self._send(protocol, INS_VERIFY, 0x00, pw, bytes(value))
        finally:
            wipe(value)
        if sw == _SW_OK:
            return
        if sw == _SW_AUTH_BLOCKED or (sw & 0xFFF0 == 0x63C0 and sw & 0x0F == 0):
            raise PinBlockedError(f"the OpenPGP {what} is blocked")
        if sw == _SW_SECURITY_STATUS_NOT_SATISFIED or sw & 0xFFF0 == 0x63C0:
            left = sw & 0x0F if sw & 0xFFF0 == 0x63C0 else max(tries_left - 1, 0)
            raise PinError(f"wrong OpenPGP {what} ({left} tries left)", left)
        if sw in (0x6700, _SW_WRONG_DATA):
            raise InvalidInputError(f"the card does not accept a {what} of that length")
        raise DeviceError(f"the OpenPGP card refused the {what} ({sw_text(sw)})")

    def _decipher(self, protocol, point, interaction) -> bytearray:
        data = encode_tlv(0xA6, encode_tlv(TAG_PUBLIC_KEY, encode_tlv(TAG_POINT, point)))
        with TouchNotice(interaction):
            answer, sw = self._send(protocol, INS_PSO, 0x80, 0x86, data)
        if sw == _SW_SECURITY_STATUS_NOT_SATISFIED:
            raise DeviceError("the card wanted the PIN or a touch that did not come (timed out or refused)")
        if sw != _SW_OK:
            raise DeviceError(f"the OpenPGP card refused PSO:DECIPHER ({sw_text(sw)})")
        return bytearray(answer)

    def _response(self, protocol, info, public, challenge, interaction, enrollment=None) -> bytearray:
        if enrollment is not None:
            curve = ecdh.require_enrolled_key(public, enrollment, "the OpenPGP decryption key")
        else:
            try:
                curve = ecdh.curve_of_public_key(public)
            except ValueError:
                raise DeviceError("the OpenPGP decryption key is not an ECDH P-256 / P-384 key") from None
        point = ecdh.request_point(curve, challenge)
        self._verify(protocol, interaction, PW1_OTHER, PIN_PURPOSE, "user PIN", info["pw1_tries"])
        shared = self._decipher(protocol, point, interaction)
        return ecdh.derive_response(curve, public, challenge, shared)

    def _ecdh_key(self, protocol):
        """(application data, public point or None); DeviceError for keys that cannot do ECDH."""
        info = self._application_data(protocol)
        public = self._public_key(protocol)
        return info, public

    # --- Backend ----------------------------------------------------------------------
    def identity(self) -> dict:
        return {"serial": self._application_data(self._protocol())["serial"]}

    def enroll(self, interaction: Interaction, options: OpenPgpOptions | None = None) -> Enrollment:
        options = options if options is not None else self.default_options()
        force, adopt, curve = options.force, options.adopt, options.curve or DEFAULT_CURVE
        if curve not in OIDS:
            raise InvalidInputError("the OpenPGP key must be P-256 or P-384")
        protocol = self._protocol()
        info, public = self._ecdh_key(protocol)
        key_curve = _curve_of_attributes(info["algo_dec"])
        if public is not None and key_curve is None:
            kind = "an RSA key" if info["algo_dec"][:1] == bytes([ALG_RSA]) else "a key of another type"
            if adopt or not force:
                raise DeviceError(f"the OpenPGP decryption key is {kind}; sealcodes needs an ECDH key (P-256 or "
                                  "P-384). --force replaces it with a new ECDH key (the old key is lost)")
        elif public is not None and not force:
            if not adopt:
                raise DeviceError("the OpenPGP card already has a decryption key: use --adopt to use it as it is, "
                                  "or --force to replace it (the old key is lost)")
        elif public is None and adopt:
            raise DeviceError("the OpenPGP card has no decryption key to adopt (enroll without --adopt to "
                              "generate one)")
        generated = False
        if public is None or force:
            what = ("replace the OpenPGP decryption key" if public is not None
                    else "generate a new OpenPGP decryption key")
            if not interaction.confirm(f"sealcodes will {what} (ECDH {curve}). Go on?"):
                raise DeviceError(f"not confirmed: did not {what}")
            public = self._generate(protocol, interaction, info, curve)
            generated = True
        try:
            key_curve = ecdh.curve_of_public_key(public).name
        except ValueError:
            raise DeviceError("the OpenPGP decryption key is not a valid P-256 / P-384 point") from None
        return Enrollment(backend=self.name, key=KEY_NAME, curve=key_curve,
                          key_fingerprint=ecdh.key_fingerprint(public), generated=generated,
                          serial=info["serial"])

    def _generate(self, protocol, interaction, info, curve) -> bytes:
        self._verify(protocol, interaction, PW3, ADMIN_PIN_PURPOSE, "admin PIN", info["pw3_tries"])
        if _curve_of_attributes(info["algo_dec"]) != curve:
            attributes = bytes([ALG_ECDH]) + OIDS[curve]
            _, sw = self._send(protocol, INS_PUT_DATA, 0x00, DO_ALGO_DEC, attributes)
            if sw == _SW_WRONG_DATA:  # some cards list EC attributes only with the import-format byte
                _, sw = self._send(protocol, INS_PUT_DATA, 0x00, DO_ALGO_DEC, attributes + b"\xff")
            if sw != _SW_OK:
                raise DeviceError(f"this OpenPGP card does not take ECDH {curve} keys ({sw_text(sw)})")
        data, sw = self._send(protocol, INS_GENERATE, P1_GENERATE_NEW, 0x00, CRT_DEC)
        if sw != _SW_OK:
            raise DeviceError(f"the OpenPGP card refused to generate the key ({sw_text(sw)})")
        public = find_tlv(parse_tlvs(data), TAG_PUBLIC_KEY)
        point = find_tlv(parse_tlvs(public), TAG_POINT) if public is not None else None
        if point is None:
            raise DeviceError("the OpenPGP card's GENERATE answer has no EC point")
        return point

    def respond(self, challenge: bytes, enrollment: Enrollment, interaction: Interaction) -> bytearray:
        challenge = require_challenge(challenge)
        protocol = self._protocol()
        info, public = self._ecdh_key(protocol)
        if public is None:
            raise DeviceError("the OpenPGP card has no decryption key: wrong card, or the key was deleted; "
                              "no PIN was sent")
        return self._response(protocol, info, public, challenge, interaction, enrollment)

    def recover_responses(self, challenge: bytes, interaction: Interaction):
        challenge = require_challenge(challenge)
        protocol = self._protocol()
        info, public = self._ecdh_key(protocol)
        if public is None or _curve_of_attributes(info["algo_dec"]) is None:
            return
        yield "OpenPGP decryption key", self._response(protocol, info, public, challenge, interaction)
