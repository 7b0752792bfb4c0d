"""The CTAP2 requests of a response (getInfo, clientPin, getAssertion) over a smartcard connection
(NFCCTAP, as a FIDO key behind PC/SC speaks it), through sealcodes' own APDU layer.

python-fido2's `Ctap2` needs its whole WebAuthn layer loaded, which costs more than the device
exchange itself; `generate` needs three requests and python-fido2's CBOR codec only. Requests
and answers have the shapes python-fido2's `Ctap2` gives (same method signatures, same
attribute names), so assertion.py works over either. Everything else (enrollment, recovery,
credential management) stays with python-fido2.

Framing (CTAP 2.1, 11.3): SELECT the FIDO AID; each request is `80 10 80 00 Lc cmd || CBOR`,
chained in short APDUs, or one extended APDU on a direct link whose card's ATR allows them
(getInfo, which changes nothing on the key, finds out whether they get through); P1 80 lets
the key answer 9100 while it works (or waits for a touch), with the status byte as data, and
the host polls with `80 11 00 00`; 61xx is fetched with GET RESPONSE. The answer is the CTAP
status byte, then CBOR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from fido2 import cbor
from fido2.ctap import STATUS, CtapError

from ...apdu import ApduError, SmartCardProtocol, sw_text
from ...connection import MAX_STILL_WORKING_S, as_connection
from ...const import AID_FIDO, SW
from ...errors import DeviceError
from ...log import get_logger

log = get_logger(__name__)

CLA_NFCCTAP = 0x80
INS_NFCCTAP_MSG = 0x10
INS_NFCCTAP_GETRESPONSE = 0x11
P1_GETRESPONSE_ALLOWED = 0x80
P1_CANCEL = 0x11  # NFCCTAP_GETRESPONSE with P1 11: cancel the request in progress
SW_STILL_WORKING = 0x9100
MAX_RESPONSE = 8 * 1024  # no answer of these requests comes near

CMD_GET_ASSERTION = 0x02
CMD_GET_INFO = 0x04
CMD_CLIENT_PIN = 0x06


def _params(*values) -> dict:
    """CTAP parameters 1..n; None is left out."""
    return {i: v for i, v in enumerate(values, 1) if v is not None}


class Aaguid(bytes):
    """16 bytes, shown as a UUID (as python-fido2 shows it)."""

    def __str__(self):
        h = self.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# answers of a device are records, not values: no __eq__ / __hash__ (Info holds a dict, which
# a generated __hash__ could not hash anyway), and each method not generated is start-up time saved
@dataclass(frozen=True, eq=False)
class Info:
    """The getInfo fields sealcodes reads, named as python-fido2's `Info` names them."""

    versions: tuple = ()
    extensions: tuple = ()
    aaguid: bytes = bytes(16)
    options: Mapping[str, Any] = field(default_factory=dict)
    pin_uv_protocols: tuple = ()
    min_pin_length: int = 4

    @classmethod
    def from_answer(cls, answer: Mapping) -> "Info":
        options = answer.get(4, {})
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise ValueError("malformed options")
        versions, extensions = tuple(answer.get(1, ())), tuple(answer.get(2, ()))
        protocols = tuple(int(p) for p in answer.get(6, ()))
        aaguid = answer.get(3, bytes(16))
        if not isinstance(aaguid, bytes) or len(aaguid) != 16:
            raise ValueError("malformed aaguid")
        return cls(versions, extensions, Aaguid(aaguid), dict(options), protocols, int(answer.get(0x0D, 4)))


class AuthenticatorData(bytes):
    """authData of an assertion (CTAP 2.1, 6.1 / WebAuthn 6.1): rpIdHash, flags, signCount, and
    the extension outputs when the ED flag is set. bytes() of it is what the key signed."""

    FLAG_AT = 0x40
    FLAG_ED = 0x80

    def __new__(cls, data: bytes):
        self = super().__new__(cls, data)
        if len(data) < 37:
            raise ValueError("authData too short")
        self.rp_id_hash = bytes(data[:32])
        self.flags = data[32]
        self.counter = int.from_bytes(data[33:37], "big")
        self.extensions = None
        if self.flags & cls.FLAG_AT:
            raise ValueError("attested credential data in an assertion")
        if self.flags & cls.FLAG_ED:
            extensions, rest = cbor.decode_from(data[37:])
            if rest or not isinstance(extensions, Mapping):
                raise ValueError("malformed extension outputs")
            self.extensions = extensions
        elif len(data) != 37:
            raise ValueError("trailing bytes after authData")
        return self


@dataclass(frozen=True, eq=False)
class AssertionResponse:
    """A getAssertion answer (CTAP 2.1, 6.2.2), named as python-fido2's AssertionResponse."""

    credential: Mapping | None
    auth_data: AuthenticatorData
    signature: bytes
    number_of_credentials: int | None = None

    @classmethod
    def from_answer(cls, answer: Mapping) -> "AssertionResponse":
        credential, auth_data, signature = answer.get(1), answer.get(2), answer.get(3)
        if not isinstance(auth_data, bytes) or not isinstance(signature, bytes):
            raise ValueError("malformed assertion")
        if credential is not None and not (isinstance(credential, Mapping) and isinstance(credential.get("id"), bytes)):
            raise ValueError("malformed credential")
        count = answer.get(5)
        return cls(credential, AuthenticatorData(auth_data), signature, count if isinstance(count, int) else None)


class NfcCtap2:
    """The FIDO application of a card on a smartcard connection (the caller closes it)."""

    def __init__(self, connection):
        self._protocol = SmartCardProtocol(as_connection(connection), MAX_RESPONSE)
        try:
            self._protocol.select(AID_FIDO)
        except ApduError as e:
            raise DeviceError(f"no FIDO application on this card ({sw_text(e.sw)})") from None
        # "FIDO_2_0" or "U2F_V2" as a rule; as python-fido2 does, getInfo has the last word
        self.info = Info.from_answer(self._first_request())

    def _first_request(self) -> Mapping:
        """getInfo: one APDU per request from now on if the link carries extended APDUs. getInfo
        changes nothing on the key, so it is the one request ever sent twice: whatever goes wrong
        with the extended one (6700 or another status word, an exchange a reader cannot carry, a
        malformed or refused answer), it is sent again in short APDUs, whose answer counts."""
        if self._protocol.use_extended_length():
            try:
                answer, sw = self._protocol.transceive(CLA_NFCCTAP, INS_NFCCTAP_MSG, 0, 0, bytes((CMD_GET_INFO,)))
                return self._decode(answer, sw)  # P1 00: getInfo needs no polling
            except Exception:  # whatever it was, the short request's answer has the last word
                log.debug("extended APDUs do not get through: short ones from now on")
                self._protocol.extended = False
        return self.send_cbor(CMD_GET_INFO)

    def send_cbor(self, command: int, data: Mapping | None = None, *, on_keepalive=None) -> Mapping:
        request = bytes((command,)) + (cbor.encode(data) if data is not None else b"")
        answer, sw = self._protocol.transceive(CLA_NFCCTAP, INS_NFCCTAP_MSG, P1_GETRESPONSE_ALLOWED, 0, request)
        if sw == SW_STILL_WORKING:
            answer, sw = self._poll(answer, on_keepalive)
        return self._decode(answer, sw)

    @staticmethod
    def _decode(answer: bytes, sw: int) -> Mapping:
        if sw != SW.OK:
            raise DeviceError(f"the key refused the CTAP request ({sw_text(sw)})")
        if not answer:
            raise ValueError("empty CTAP answer")
        if answer[0] != 0:
            raise CtapError(answer[0])
        if len(answer) == 1:
            return {}
        decoded, rest = cbor.decode_from(answer[1:])
        if rest or not isinstance(decoded, Mapping):
            raise ValueError("malformed CTAP answer")
        if cbor.encode(decoded) != answer[1:]:  # canonical CBOR only, as python-fido2 requires
            raise ValueError("non-canonical CBOR from the key")
        return decoded

    def _poll(self, answer, on_keepalive):
        """While the key answers 9100 (working, or waiting for a touch): report its status, ask
        again. A request given up (timeout, Ctrl-C, a link error) is cancelled on the key, as
        python-fido2 does, so the key does not go on waiting for a touch."""
        deadline, last = time.monotonic() + MAX_STILL_WORKING_S, None
        sw = SW_STILL_WORKING
        try:
            while sw == SW_STILL_WORKING:
                if time.monotonic() > deadline:
                    raise DeviceError("the key kept working on the request without answering")
                if on_keepalive is not None and answer and answer[0] != last:
                    last = answer[0]
                    try:
                        on_keepalive(STATUS(last))
                    except ValueError:  # an unknown status byte: nothing to tell the user
                        pass
                time.sleep(0.1)
                answer, sw = self._protocol.transceive(CLA_NFCCTAP, INS_NFCCTAP_GETRESPONSE, 0, 0)
        except BaseException:
            try:
                self._protocol.transceive(CLA_NFCCTAP, INS_NFCCTAP_GETRESPONSE, P1_CANCEL, 0)
            except Exception:  # the key is gone: nothing left to cancel
                pass
            raise
        return answer, sw

    def get_info(self) -> Info:
        return Info.from_answer(self.send_cbor(CMD_GET_INFO))

    def client_pin(self, pin_uv_protocol, sub_cmd, key_agreement=None, pin_uv_param=None, new_pin_enc=None,
                   pin_hash_enc=None, permissions=None, permissions_rpid=None, *, on_keepalive=None) -> Mapping:
        return self.send_cbor(CMD_CLIENT_PIN, _params(pin_uv_protocol, sub_cmd, key_agreement, pin_uv_param,
                                                      new_pin_enc, pin_hash_enc, None, None, permissions,
                                                      permissions_rpid), on_keepalive=on_keepalive)

    def get_assertion(self, rp_id, client_data_hash, allow_list=None, extensions=None, options=None,
                      pin_uv_param=None, pin_uv_protocol=None, *, on_keepalive=None) -> AssertionResponse:
        answer = self.send_cbor(CMD_GET_ASSERTION, _params(rp_id, client_data_hash, allow_list, extensions, options,
                                                           pin_uv_param, pin_uv_protocol), on_keepalive=on_keepalive)
        return AssertionResponse.from_answer(answer)
