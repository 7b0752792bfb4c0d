"""The one APDU layer of sealcodes: SELECT, commands with chaining, 61xx continuation, status words.

Every smartcard exchange of the host's own code goes through `SmartCardProtocol` (the shape
of yubikit's class of the same name): the applet backend, device discovery, any further
smartcard backend. A status word other than 9000 becomes `ApduError(sw)`; callers that give
some status words a meaning (63Cx: tries left) catch it and read `.sw`.
"""

from __future__ import annotations

import logging

from .connection import MAX_MORE_DATA_BYTES, MORE_DATA_MESSAGE, as_connection
from .const import (
    CLA_CHAINING,
    CLA_ISO,
    INS_GET_RESPONSE,
    INS_SELECT,
    P1_SELECT_BY_AID,
    SHORT_APDU_MAX_DATA,
    SW,
)
from .errors import DeviceError

log = logging.getLogger(__name__)

_SW_NAMES = {
    SW.WRONG_LENGTH: "wrong length",
    SW.SECURITY_STATUS_NOT_SATISFIED: "security condition not satisfied",
    SW.AUTH_METHOD_BLOCKED: "blocked",
    SW.DATA_INVALID: "no such object",
    SW.CONDITIONS_NOT_SATISFIED: "conditions not satisfied",
    SW.WRONG_DATA: "wrong data",
    SW.FILE_NOT_FOUND: "not found",
    SW.NO_SPACE: "no space",
    SW.INCORRECT_P1P2: "wrong parameters",
    SW.REFERENCED_DATA_NOT_FOUND: "referenced data not found",
    SW.FILE_EXISTS: "already exists",
    SW.INS_NOT_SUPPORTED: "instruction not supported",
    SW.CLA_NOT_SUPPORTED: "class not supported",
    SW.UNKNOWN: "internal error",
}


def sw_text(sw: int) -> str:
    """A status word for a message: '0x6A80 - wrong data'."""
    name = _SW_NAMES.get(sw)
    return f"0x{sw:04X} - {name}" if name else f"0x{sw:04X}"


class ApduError(DeviceError):
    """The card answered a command with a status word other than 9000."""

    def __init__(self, sw: int, message: str | None = None):
        super().__init__(message or f"the card answered {sw_text(sw)}")
        self.sw = sw


def encode_command(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    """One short APDU (case 1-4). Data longer than 255 bytes goes through `SmartCardProtocol`."""
    if len(data) > SHORT_APDU_MAX_DATA:
        raise ValueError("short APDU data is at most 255 bytes")
    out = bytes((cla, ins, p1, p2))
    if data:
        out += bytes((len(data),)) + bytes(data)
    if le is not None:
        out += bytes((le & 0xFF,))
    return out


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One BER-TLV: a one- or two-byte tag, a short or long (81 / 82) length."""
    head = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    n = len(value)
    if n < 0x80:
        return head + bytes([n]) + value
    if n < 0x100:
        return head + bytes([0x81, n]) + value
    return head + bytes([0x82]) + n.to_bytes(2, "big") + value


def parse_tlvs(data: bytes, what: str = "the card") -> list[tuple[int, bytes]]:
    """A BER-TLV list (tags of one or two bytes, lengths up to 82 xx xx); DeviceError naming
    `what` when the card's answer is malformed."""
    out, pos, end = [], 0, len(data)
    try:
        while pos < end:
            tag = data[pos]
            pos += 1
            if tag & 0x1F == 0x1F:
                tag = (tag << 8) | data[pos]
                pos += 1
            n = data[pos]
            pos += 1
            if n == 0x81:
                n = data[pos]
                pos += 1
            elif n == 0x82:
                n = int.from_bytes(data[pos:pos + 2], "big")
                pos += 2
            elif n > 0x82:
                raise IndexError
            if pos + n > end:
                raise IndexError
            out.append((tag, bytes(data[pos:pos + n])))
            pos += n
    except IndexError:
        raise DeviceError(f"{what}'s answer is malformed") from None
    return out


def find_tlv(tlvs: list[tuple[int, bytes]], tag: int) -> bytes | None:
    """The value of the first `tag` in a parse_tlvs() list, or None."""
    return next((value for t, value in tlvs if t == tag), None)


class SmartCardProtocol:
    """select / send over one SmartCardConnection (the caller owns and closes the connection).

    max_response: the longest answer any command of this application can have; a card that
    keeps announcing more (61xx) is stopped there. more_data_ins: the command that fetches the
    rest (GET RESPONSE; YKOATH has SEND REMAINING).
    """

    def __init__(self, connection, max_response: int = MAX_MORE_DATA_BYTES, more_data_ins: int = INS_GET_RESPONSE):
        self.connection = as_connection(connection)
        self.max_response = max_response
        self.more_data_ins = more_data_ins  # YKOATH asks for the rest with its own SEND REMAINING

    def select(self, aid: bytes) -> bytes:
        """SELECT by AID; the application's answer. ApduError(6A82) when it is not there."""
        return self.send_apdu(CLA_ISO, INS_SELECT, P1_SELECT_BY_AID, 0x00, aid, le=0, redact=False)

    def send_apdu(self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = 0,
                  redact: bool = True) -> bytes:
        """One command; its whole answer. Raises ApduError for any status word but 9000."""
        response, sw = self.transceive(cla, ins, p1, p2, data, le, redact)
        if sw != SW.OK:
            raise ApduError(sw)
        return response

    def transceive(self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = 0,
                   redact: bool = True) -> tuple[bytes, int]:
        """One command, chained in 255-byte fragments if needed, 61xx followed up to max_response
        bytes; (answer, status word). redact=True keeps data and answer out of the debug log."""
        data = bytes(data)
        while len(data) > SHORT_APDU_MAX_DATA:
            fragment, data = data[:SHORT_APDU_MAX_DATA], data[SHORT_APDU_MAX_DATA:]
            _, sw = self._exchange(encode_command(cla | CLA_CHAINING, ins, p1, p2, fragment), redact)
            if sw != SW.OK:
                return b"", sw
        response, sw = self._exchange(encode_command(cla, ins, p1, p2, data, le), redact)
        answer = bytearray(response)
        while (sw & 0xFF00) == SW.MORE_DATA:
            if len(answer) > self.max_response:
                raise DeviceError(MORE_DATA_MESSAGE)
            more, sw = self._exchange(encode_command(CLA_ISO, self.more_data_ins, 0, 0, le=sw & 0xFF), redact)
            answer += more
        if len(answer) > self.max_response:
            raise DeviceError(MORE_DATA_MESSAGE)
        return bytes(answer), sw

    def _exchange(self, apdu: bytes, redact: bool) -> tuple[bytes, int]:
        if log.isEnabledFor(logging.DEBUG):
            shown = apdu[:4].hex() + (" [data redacted]" if redact and len(apdu) > 5 else " " + apdu[4:].hex())
            log.debug("> %s", shown)
        data, sw = self.connection.send_and_receive(apdu)
        log.debug("< SW %04X (%d bytes%s)", sw, len(data), ", redacted" if redact else "")
        return data, sw
