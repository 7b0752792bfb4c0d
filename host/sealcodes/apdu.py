"""The one APDU layer of sealcodes: SELECT, commands with chaining, 61xx continuation, status words.

Every smartcard exchange of the host's own code goes through `SmartCardProtocol` (the shape
of yubikit's class of the same name): the applet backend, device discovery, any further
smartcard backend. A status word other than 9000 becomes `ApduError(sw)`; callers that give
some status words a meaning (63Cx: tries left) catch it and read `.sw`.
"""

from __future__ import annotations

from .connection import MAX_MORE_DATA_BYTES, MORE_DATA_MESSAGE, TRANSPORT_USB, as_connection
from .const import (
    CLA_CHAINING,
    CLA_ISO,
    EXTENDED_APDU_MAX_DATA,
    INS_GET_RESPONSE,
    INS_SELECT,
    P1_SELECT_BY_AID,
    SHORT_APDU_MAX_DATA,
    SW,
)
from .errors import DeviceError
from .log import DEBUG, get_logger

log = get_logger(__name__)

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


def encode_extended_command(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    """One extended-length APDU (ISO 7816-4, 5.1): Lc in 3 bytes (00 hi lo), Le in 2 after data or in
    3 without (0000 meaning 65536). A command with neither is the same as its short form."""
    if len(data) > EXTENDED_APDU_MAX_DATA:
        raise ValueError("extended APDU data is at most 65535 bytes")
    out = bytes((cla, ins, p1, p2))
    if data:
        out += b"\x00" + len(data).to_bytes(2, "big") + bytes(data)
    if le is not None:
        out += (b"" if data else b"\x00") + (le & 0xFFFF).to_bytes(2, "big")
    return out


def atr_allows_extended_length(atr: bytes) -> bool:
    """Whether a card's ATR says it takes extended Lc/Le (ISO 7816-4, 8.1.1.2.7: the third
    software function byte of the card capabilities, compact-TLV tag 7, bit b7). A card that
    does not say so gets short APDUs with chaining, as ISO 7816 requires every card to take."""
    historical = _historical_bytes(bytes(atr))
    if not historical or historical[0] not in (0x00, 0x80):  # only these categories hold compact-TLV
        return False
    objects = historical[1:-3] if historical[0] == 0x00 else historical[1:]  # 00: 3 status bytes close it
    pos = 0
    while pos < len(objects):
        tag, length = objects[pos] >> 4, objects[pos] & 0x0F
        value = objects[pos + 1:pos + 1 + length]
        if len(value) < length:
            return False
        if tag == 0x7 and length >= 3:
            return bool(value[2] & 0x40)
        pos += 1 + length
    return False


def _historical_bytes(atr: bytes) -> bytes:
    """The historical bytes of an ATR (ISO 7816-3, 8.2): after TS, T0 and the interface bytes that
    T0 and each TDi announce; empty when the ATR is too short for what it announces."""
    if len(atr) < 2:
        return b""
    count, indicator, pos = atr[1] & 0x0F, atr[1] >> 4, 2
    while True:
        present = bin(indicator & 0x07).count("1")  # TAi, TBi, TCi
        pos += present
        if not indicator & 0x08:  # no TDi: the interface bytes end here
            break
        if pos >= len(atr):
            return b""
        indicator = atr[pos] >> 4
        pos += 1
    historical = atr[pos:pos + count]
    return historical if len(historical) == count else b""


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
        #: send each command as one extended-length APDU instead of short fragments and 256-byte
        #: answers (use_extended_length)
        self.extended = False

    def use_extended_length(self) -> bool:
        """Extended APDUs from now on if the card's ATR says it takes them and the link is a direct
        one (a USB CCID device such as our token or a YubiKey, by yubikit's rule: ATR[1] = Fx).
        Behind an NFC reader the reader builds the ATR from the card's and may carry only short
        APDUs, so they stay short there, as yubikit and python-fido2 keep them. Whether the reader
        carries them after all is for the caller to find out with a command that changes nothing
        (NfcCtap2 uses getInfo): a refused one is not sent again here."""
        connection = self.connection
        self.extended = connection.transport == TRANSPORT_USB and atr_allows_extended_length(connection.atr)
        return self.extended

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
        """One command (one extended APDU, or chained in 255-byte fragments if needed), 61xx
        followed up to max_response bytes; (answer, status word). redact=True keeps data and
        answer out of the debug log."""
        data = bytes(data)
        if self.extended and len(data) <= EXTENDED_APDU_MAX_DATA:
            response, sw = self._exchange(encode_extended_command(cla, ins, p1, p2, data, le), redact)
            return self._rest_of(response, sw, redact)
        while len(data) > SHORT_APDU_MAX_DATA:
            fragment, data = data[:SHORT_APDU_MAX_DATA], data[SHORT_APDU_MAX_DATA:]
            _, sw = self._exchange(encode_command(cla | CLA_CHAINING, ins, p1, p2, fragment), redact)
            if sw != SW.OK:
                return b"", sw
        response, sw = self._exchange(encode_command(cla, ins, p1, p2, data, le), redact)
        return self._rest_of(response, sw, redact)

    def _rest_of(self, response: bytes, sw: int, redact: bool) -> tuple[bytes, int]:
        """The whole answer: 61xx followed with GET RESPONSE (or SEND REMAINING) up to max_response."""
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
        if log.isEnabledFor(DEBUG):
            shown = apdu[:4].hex() + (" [data redacted]" if redact and len(apdu) > 5 else " " + apdu[4:].hex())
            log.debug("> %s", shown)
        data, sw = self.connection.send_and_receive(apdu)
        log.debug("< SW %04X (%d bytes%s)", sw, len(data), ", redacted" if redact else "")
        return data, sw
