"""The host side of a CCID smartcard reader, and the bridge that puts it behind pcscd.

`CcidReader(link, interface)` speaks to a CCID interface (USB smartcard class, CCID rev 1.1) the
way pcscd's CCID driver (libccid) speaks to a reader that exchanges whole APDUs: it reads the
class descriptor, powers the card on (PC_to_RDR_IccPowerOn, automatic voltage), and sends each
APDU in PC_to_RDR_XfrBlock messages, chained by wLevelParameter when it is longer than the
reader's dwMaxCCIDMessageLength allows, reading the RDR_to_PC_DataBlock answers (chained by
bChainParameter: an empty XfrBlock 0x10 asks for the next part). An answer with bStatus
"time extension" restarts the wait; an answer whose bSeq is not the command's is skipped. The wait
is READ_TIMEOUT_S, about what libccid computes for this token's ATR, so a token that computes
longer without asking for more time fails here as it would behind pcscd.

`CcidCard(reader)` is the card as sealboard.vpcd.VpcdCard serves it: vpcd's power controls and
APDUs become CCID messages, so pcscd (through vsmartcard's vpcd driver), yubikit, pyscard and
sealcodes reach the board's CCID interface (`sealtoken bridge`). On a real board none of this runs:
pcscd's own CCID driver talks to the interface over USB.
"""

from __future__ import annotations

import struct

from .usblink import UsbError

HEADER = 10
PC_TO_RDR_ICC_POWER_ON = 0x62
PC_TO_RDR_ICC_POWER_OFF = 0x63
PC_TO_RDR_GET_SLOT_STATUS = 0x65
PC_TO_RDR_GET_PARAMETERS = 0x6C
PC_TO_RDR_XFR_BLOCK = 0x6F
RDR_TO_PC_DATA_BLOCK = 0x80
RDR_TO_PC_SLOT_STATUS = 0x81
RDR_TO_PC_PARAMETERS = 0x82
STATUS_FAILED = 0x40
STATUS_TIME_EXTENSION = 0x80
FEATURE_SHORT_APDU = 0x00020000
FEATURE_EXTENDED_APDU = 0x00040000
FEATURE_EXCHANGE_MASK = 0x00070000
CHAIN_BEGIN, CHAIN_END, CHAIN_MORE, CHAIN_CONTINUE = 0x01, 0x02, 0x03, 0x10
VOLTAGE_AUTO = 0x00
READ_TIMEOUT_S = 1.5
MAX_READ = 65536 + HEADER


class CcidError(UsbError):
    """The reader refused a command or answered something that is not CCID."""


class ClassDescriptor:
    """The fields of the CCID class descriptor (CCID 5.1) a host driver reads."""

    def __init__(self, raw: bytes):
        if len(raw) < 54 or raw[0] != 54 or raw[1] != 0x21:
            raise CcidError("no CCID class descriptor")
        (_, _, self.bcd_ccid, self.max_slot, self.voltages, self.protocols, self.default_clock, _, _, _,
         self.max_data_rate, self.data_rates, self.max_ifsd, _, _, self.features, self.max_message, _, _, _,
         self.pin_support, self.max_busy) = struct.unpack_from("<BBHBBIIIBIIBIIIIIBBHBB", raw)

    @property
    def apdu_level(self) -> bool:
        return (self.features & FEATURE_EXCHANGE_MASK) in (FEATURE_SHORT_APDU, FEATURE_EXTENDED_APDU)


class CcidReader:
    """One slot of a CCID interface (see the module doc)."""

    def __init__(self, link, interface, timeout: float = READ_TIMEOUT_S):
        self.link = link
        self.descriptor = ClassDescriptor(interface.extra)
        if not self.descriptor.apdu_level:
            raise CcidError("the reader does not exchange whole APDUs (TPDU or character level)")
        self.bulk_out = interface.endpoint(2, False).address
        self.bulk_in = interface.endpoint(2, True).address
        self.timeout = timeout
        self.time_extensions = 0
        self.atr = b""
        self._seq = 0

    def _exchange(self, kind: int, data: bytes = b"", byte7: int = 0, level: int = 0, refusal_ok: bool = False) -> tuple:
        """Send one command message; (message type, byte 9, data, bStatus) of its answer."""
        seq = self._seq
        self._seq = (seq + 1) & 0xFF
        self.link.write(self.bulk_out, struct.pack("<BIBBBH", kind, len(data), 0, seq, byte7, level) + data)
        while True:
            msg = self.link.read(self.bulk_in, MAX_READ, self.timeout)
            if len(msg) < HEADER:
                raise CcidError(f"a CCID answer of {len(msg)} bytes")
            answer, length, _, answer_seq, status, error, byte9 = struct.unpack_from("<BIBBBBB", msg)
            if answer_seq != seq:
                continue  # an old answer: libccid drops it too
            if status & STATUS_TIME_EXTENSION:
                self.time_extensions += 1
                continue
            if length != len(msg) - HEADER:
                raise CcidError(f"a CCID answer says {length} bytes and holds {len(msg) - HEADER}")
            if status & STATUS_FAILED and not refusal_ok:
                raise CcidError(f"the reader refused command {kind:#04x}: bStatus {status:#04x}, bError {error:#04x}")
            return answer, byte9, msg[HEADER:], status

    def power_on(self) -> bytes:
        answer, _, atr, _ = self._exchange(PC_TO_RDR_ICC_POWER_ON, byte7=VOLTAGE_AUTO)
        if answer != RDR_TO_PC_DATA_BLOCK or not atr:
            raise CcidError("the card gave no ATR")
        self.atr = atr
        return atr

    def power_off(self) -> None:
        self._exchange(PC_TO_RDR_ICC_POWER_OFF)

    def slot_status(self) -> int:
        """bStatus of GetSlotStatus: 0 card active, 1 card present and unpowered, 2 no card."""
        return self._exchange(PC_TO_RDR_GET_SLOT_STATUS, refusal_ok=True)[3] & 0x03

    def transmit(self, apdu: bytes) -> bytes:
        """One APDU, its response (data || SW1 SW2)."""
        room = self.descriptor.max_message - HEADER
        apdu = bytes(apdu)
        if len(apdu) <= room:
            answer, chain, data, _ = self._exchange(PC_TO_RDR_XFR_BLOCK, apdu)
        else:
            sent = 0
            level = CHAIN_BEGIN
            while True:
                part = apdu[sent:sent + room]
                sent += len(part)
                answer, chain, data, _ = self._exchange(PC_TO_RDR_XFR_BLOCK, part, level=level)
                if sent >= len(apdu):
                    break
                if data:
                    raise CcidError("the reader answered an unfinished command")
                level = CHAIN_END if len(apdu) - sent <= room else CHAIN_MORE
        response = bytearray(data)
        while chain in (CHAIN_BEGIN, CHAIN_MORE, CHAIN_CONTINUE):
            answer, chain, data, _ = self._exchange(PC_TO_RDR_XFR_BLOCK, level=CHAIN_CONTINUE)
            response += data
        if answer != RDR_TO_PC_DATA_BLOCK:
            raise CcidError("the reader did not answer with a DataBlock")
        return bytes(response)


class CcidCard:
    """The card in a CcidReader, shaped as sealboard.vpcd.VpcdCard serves a card."""

    def __init__(self, reader: CcidReader):
        self.reader = reader

    @property
    def atr(self) -> bytes:
        return self.reader.atr or self.reader.power_on()

    def power_on(self) -> bytes:
        return self.reader.power_on()

    def power_off(self) -> None:
        self.reader.power_off()

    def reset(self) -> bytes:
        self.reader.power_off()
        return self.reader.power_on()

    def process_apdu(self, apdu: bytes) -> bytes:
        try:
            return self.reader.transmit(apdu)
        except CcidError:
            return b"\x6f\x00"  # the card failed this command; vpcd must get an answer
