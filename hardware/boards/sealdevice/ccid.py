"""The CCID interface: the card's APDUs over the USB smartcard class (CCID rev 1.1).

What the host's CCID driver (pcscd's libccid) reads from the class descriptor: one slot, T=1,
automatic activation, voltage, clock, baud rate and parameters (so it sends no SetParameters or
PPS), and exchanges of whole short and extended APDUs, in messages of at most _MAX_MESSAGE bytes.
A longer APDU or response travels in several XfrBlock / DataBlock messages chained by
wLevelParameter / bChainParameter (CCID 6.1.4, 6.2.1). The slot always holds the card; the
interrupt endpoint tells the host so once, at configuration (NotifySlotChange).

Messages (10-byte header: type, dwLength LE, bSlot, bSeq, 3 bytes; every answer echoes bSeq):
  IccPowerOn 62       DataBlock 80 with the ATR, the card powered (applets deselected)
  IccPowerOff 63      SlotStatus 81, the card unpowered (session state wiped)
  GetSlotStatus 65    SlotStatus 81
  XfrBlock 6F         DataBlock 80: the response APDU; while the token computes, a DataBlock with
                      bStatus 80 (time extension) every _TIME_EXTENSION_MS; an unpowered card
                      answers bStatus 41, bError FE (ICC mute)
  Get/Reset/SetParameters 6C/6D/61   Parameters 82: T=1 as the ATR says
  IccClock 6E, Abort 72              SlotStatus 81
  Escape 6B, SetDataRateAndClockFrequency 73, Secure 69, T0APDU 6A, Mechanical 71, others:
                      refused (bStatus 40 | slot state, bError 00 "command not supported")
  a slot other than 0 bError 05; a bad wLevelParameter bError 08; dwLength over the limit bError 01;
  a message while one is being handled: bError E0 (slot busy).
"""

import struct
import time

from sealdevice.usb import (EP_IN, MAX_PACKET, XFER_BULK, XFER_INTERRUPT, InQueue, arm, endpoint_descriptor,
                            interface_descriptor, string_index)
from sealtoken.core.micro import const

_CLASS_CCID = const(0x0B)
_DESC_CCID = const(0x21)
_HEADER = const(10)
_MAX_MESSAGE = const(271)                # dwMaxCCIDMessageLength: a short APDU (261 bytes) in one message
_MAX_DATA = const(_MAX_MESSAGE - _HEADER)
_MAX_APDU = const(4105)                  # the card's largest command: 4096 data bytes + extended header
_TIME_EXTENSION_MS = const(500)          # libccid waits about 1.5 s for this ATR (BWI 1, 4 MHz)
_FEATURES = const(0x000400FE)            # auto conf/activation/voltage/clock/baud/params/PPS, extended APDU

_PC_TO_RDR_SET_PARAMETERS = const(0x61)
_PC_TO_RDR_ICC_POWER_ON = const(0x62)
_PC_TO_RDR_ICC_POWER_OFF = const(0x63)
_PC_TO_RDR_GET_SLOT_STATUS = const(0x65)
_PC_TO_RDR_SECURE = const(0x69)
_PC_TO_RDR_T0APDU = const(0x6A)
_PC_TO_RDR_ESCAPE = const(0x6B)
_PC_TO_RDR_GET_PARAMETERS = const(0x6C)
_PC_TO_RDR_RESET_PARAMETERS = const(0x6D)
_PC_TO_RDR_ICC_CLOCK = const(0x6E)
_PC_TO_RDR_XFR_BLOCK = const(0x6F)
_PC_TO_RDR_MECHANICAL = const(0x71)
_PC_TO_RDR_ABORT = const(0x72)
_PC_TO_RDR_SET_DATA_RATE = const(0x73)
_RDR_TO_PC_DATA_BLOCK = const(0x80)
_RDR_TO_PC_SLOT_STATUS = const(0x81)
_RDR_TO_PC_PARAMETERS = const(0x82)
_RDR_TO_PC_ESCAPE = const(0x83)
_RDR_TO_PC_DATA_RATE = const(0x84)
_RDR_TO_PC_NOTIFY_SLOT_CHANGE = const(0x50)

_ICC_ACTIVE = const(0x00)                # bmICCStatus: present and active
_ICC_INACTIVE = const(0x01)              # present, not powered
_ICC_ABSENT = const(0x02)
_STATUS_FAILED = const(0x40)             # bmCommandStatus 1
_STATUS_TIME_EXTENSION = const(0x80)     # bmCommandStatus 2
_ERROR_NOT_SUPPORTED = const(0x00)
_ERROR_BAD_LENGTH = const(0x01)          # errors 1..127: the offset of the bad field
_ERROR_BAD_SLOT = const(0x05)
_ERROR_BAD_LEVEL = const(0x08)
_ERROR_SLOT_BUSY = const(0xE0)
_ERROR_HW = const(0xFB)
_ERROR_ICC_MUTE = const(0xFE)

_CHAIN_NONE = const(0x00)                # the APDU begins and ends in this message
_CHAIN_BEGIN = const(0x01)
_CHAIN_END = const(0x02)
_CHAIN_MORE = const(0x03)
_CHAIN_CONTINUE = const(0x10)            # empty block: go on with the next part

# T=1 parameters as the ATR states them: TA1 13, TC1 00 (checksum LRC), guard time 0, TB3 15 (BWI 1,
# CWI 5), clock stop not allowed, TA3 FE (IFSC 254), NAD 0
_T1_PARAMETERS = b"\x13\x10\x00\x15\x00\xfe\x00"

_ANSWER_TYPE = {
    _PC_TO_RDR_ICC_POWER_ON: _RDR_TO_PC_DATA_BLOCK, _PC_TO_RDR_XFR_BLOCK: _RDR_TO_PC_DATA_BLOCK,
    _PC_TO_RDR_SECURE: _RDR_TO_PC_DATA_BLOCK, _PC_TO_RDR_GET_PARAMETERS: _RDR_TO_PC_PARAMETERS,
    _PC_TO_RDR_RESET_PARAMETERS: _RDR_TO_PC_PARAMETERS, _PC_TO_RDR_SET_PARAMETERS: _RDR_TO_PC_PARAMETERS,
    _PC_TO_RDR_ESCAPE: _RDR_TO_PC_ESCAPE, _PC_TO_RDR_SET_DATA_RATE: _RDR_TO_PC_DATA_RATE,
}


def class_descriptor():
    """The CCID class descriptor (CCID 5.1), 54 bytes."""
    return struct.pack(
        "<BBHBBIIIBIIBIIIIIBBHBB", 54, _DESC_CCID, 0x0110,
        0,              # bMaxSlotIndex: one slot
        0x07,           # bVoltageSupport: 5 V, 3 V, 1.8 V (automatic anyway)
        0x00000002,     # dwProtocols: T=1
        4000, 4000, 0,  # dwDefaultClock, dwMaximumClock (kHz), bNumClockSupported
        10752, 10752,   # dwDataRate, dwMaxDataRate (bps at 4 MHz, Fi 372, Di 1)
        0,              # bNumDataRatesSupported: no list (the host asks for none)
        254,            # dwMaxIFSD
        0, 0,           # dwSynchProtocols, dwMechanical
        _FEATURES,
        _MAX_MESSAGE,    # dwMaxCCIDMessageLength
        0xFF, 0xFF,     # bClassGetResponse, bClassEnvelope: echo the APDU's class
        0, 0,           # wLcdLayout, bPINSupport: no PIN pad
        1)              # bMaxCCIDBusySlots


def message(kind, seq, status, error, byte9, data=b""):
    return struct.pack("<BIBBBBB", kind, len(data), 0, seq, status, error, byte9) + data


class CcidInterface:
    def __init__(self, usbd, card, ep_out=0x02, ep_in=0x82, ep_notify=0x83, name="sealtoken CCID"):
        self.usbd = usbd
        self.card = card
        self.ep_out = ep_out
        self.ep_in = ep_in | EP_IN
        self.ep_notify = ep_notify | EP_IN
        self.endpoints = (self.ep_out, self.ep_in, self.ep_notify)
        self.name = name
        self._rx = bytearray(MAX_PACKET)
        self._out = InQueue(usbd, self.ep_in)
        self._notify = InQueue(usbd, self.ep_notify)
        self._reset_pending = False
        self._clear()

    def _clear(self):
        self._partial = bytearray()   # the message being received
        self._skip = 0                # bytes still to drop of a message refused as too long
        self._command = None          # a whole message waiting for the main loop
        self._busy = False
        self._seq = 0
        self._since = 0
        self._powered = False
        self._apdu = None             # a command APDU arriving in chained blocks
        self._reply = None            # a response APDU leaving in chained blocks
        self._reply_at = 0

    # --- descriptors and callbacks -----------------------------------------------------------
    def descriptor(self, number, strings):
        return (interface_descriptor(number, 3, _CLASS_CCID, 0, 0, string_index(strings, self.name))
                + class_descriptor()
                + endpoint_descriptor(self.ep_out, XFER_BULK, MAX_PACKET, 0)
                + endpoint_descriptor(self.ep_in, XFER_BULK, MAX_PACKET, 0)
                + endpoint_descriptor(self.ep_notify, XFER_INTERRUPT, 8, 32))

    def open(self):
        arm(self.usbd, self.ep_out, self._rx)
        self._out.kick()
        # the slot holds a card, and that is news to a host that just configured us
        self._notify.put(bytes((_RDR_TO_PC_NOTIFY_SLOT_CHANGE, 0x03)))

    def reset(self):
        self._out.clear()
        self._notify.clear()
        self._partial = bytearray()
        self._skip = 0
        self._command = None
        self._reset_pending = True  # the card is powered off by the main loop

    def control(self, stage, request):
        # ABORT (class request 1) is acknowledged; the abort itself needs no work here, since a
        # command is never queued behind another. GET_CLOCK_FREQUENCIES and GET_DATA_RATES: none.
        return request[0] == 0x21 and request[1] == 0x01

    def xfer(self, ep, result, n):
        if ep == self.ep_out:
            if result == 0:
                self._receive(n)
            arm(self.usbd, self.ep_out, self._rx)
        elif ep == self.ep_in:
            self._out.done()
        else:
            self._notify.done()

    def _receive(self, n):
        """One bulk OUT packet (callback): a message is complete when its header's dwLength is."""
        data = self._rx
        if self._skip:
            self._skip -= min(self._skip, n)
            return
        self._partial.extend(data[:n])
        have = len(self._partial)
        if have < _HEADER:
            if n < MAX_PACKET:  # the transfer ended inside a header: not a message
                self._partial = bytearray()
            return
        length = self._partial[1] | self._partial[2] << 8 | self._partial[3] << 16 | self._partial[4] << 24
        if length > _MAX_DATA:
            header = bytes(self._partial[:_HEADER])
            self._skip = _HEADER + length - have if _HEADER + length > have else 0
            self._partial = bytearray()
            self._out.put(self._refusal(header, _ERROR_BAD_LENGTH), True)
            return
        if have < _HEADER + length:
            return
        msg = bytes(self._partial[:_HEADER + length])
        self._partial = bytearray()
        if self._busy or self._command is not None:
            self._out.put(self._refusal(msg, _ERROR_SLOT_BUSY), True)
        else:
            self._command = msg

    # --- the main loop -------------------------------------------------------------------------
    def pump(self):
        """Handle the waiting command message, if any; False when there was none."""
        if self._reset_pending:
            self._reset_pending = False
            if self._powered:
                self.card.power_off()
            self._powered = False
            self._apdu = self._reply = None
        msg = self._command
        if msg is None:
            return False
        self._seq = msg[6]
        self._since = time.ticks_ms()
        self._busy = True        # before the slot is freed: a callback sees one or the other
        self._command = None
        try:
            answer = self._handle(msg)
        except Exception:  # a bug must not leave the host waiting: report a hardware error
            answer = self._refusal(msg, _ERROR_HW)
        self._busy = False
        self._out.put(answer, True)
        return True

    def idle(self):
        return self._command is None and not self._busy and not len(self._out)

    def tick(self, now):
        """Timer callback: ask the host for more time while a command runs (CCID 6.2.6, bmCommandStatus 2)."""
        if self._busy and time.ticks_diff(now, self._since) >= _TIME_EXTENSION_MS and not len(self._out):
            self._since = now
            self._out.put(message(_RDR_TO_PC_DATA_BLOCK, self._seq, _STATUS_TIME_EXTENSION | _ICC_ACTIVE, 1, 0))

    # --- messages ------------------------------------------------------------------------------
    def _icc(self):
        return _ICC_ACTIVE if self._powered else _ICC_INACTIVE

    def _refusal(self, msg, error):
        kind = _ANSWER_TYPE.get(msg[0], _RDR_TO_PC_SLOT_STATUS)
        icc = _ICC_ABSENT if error == _ERROR_BAD_SLOT else self._icc()
        return message(kind, msg[6], _STATUS_FAILED | icc, error, 0)

    def _handle(self, msg):
        kind, seq = msg[0], msg[6]
        if msg[5] != 0:
            return self._refusal(msg, _ERROR_BAD_SLOT)
        if kind == _PC_TO_RDR_XFR_BLOCK:
            return self._xfr_block(msg)
        if kind == _PC_TO_RDR_ICC_POWER_ON:
            atr = bytes(self.card.power_on())
            self._powered = True
            self._apdu = self._reply = None
            return message(_RDR_TO_PC_DATA_BLOCK, seq, _ICC_ACTIVE, 0, 0, atr)
        if kind == _PC_TO_RDR_ICC_POWER_OFF:
            if self._powered:
                self.card.power_off()
            self._powered = False
            self._apdu = self._reply = None
            return message(_RDR_TO_PC_SLOT_STATUS, seq, _ICC_INACTIVE, 0, 0)
        if kind in (_PC_TO_RDR_GET_SLOT_STATUS, _PC_TO_RDR_ICC_CLOCK, _PC_TO_RDR_ABORT):
            return message(_RDR_TO_PC_SLOT_STATUS, seq, self._icc(), 0, 0)
        if kind in (_PC_TO_RDR_GET_PARAMETERS, _PC_TO_RDR_RESET_PARAMETERS, _PC_TO_RDR_SET_PARAMETERS):
            return message(_RDR_TO_PC_PARAMETERS, seq, self._icc(), 0, 1, _T1_PARAMETERS)
        return self._refusal(msg, _ERROR_NOT_SUPPORTED)

    def _xfr_block(self, msg):
        seq = msg[6]
        if not self._powered:
            return message(_RDR_TO_PC_DATA_BLOCK, seq, _STATUS_FAILED | _ICC_INACTIVE, _ERROR_ICC_MUTE, 0)
        level = msg[8] | msg[9] << 8
        data = memoryview(msg)[_HEADER:]  # no copy: the card or the chain copies what it keeps
        if level == _CHAIN_CONTINUE:
            return self._next_part(seq) if self._reply is not None else self._refusal(msg, _ERROR_BAD_LEVEL)
        self._reply = None
        if level == _CHAIN_NONE:
            return self._respond(seq, data)
        if level == _CHAIN_BEGIN:
            self._apdu = bytearray(data)
        elif level in (_CHAIN_MORE, _CHAIN_END) and self._apdu is not None:
            if len(self._apdu) + len(data) > _MAX_APDU:
                self._apdu = None
                return self._refusal(msg, _ERROR_BAD_LENGTH)
            self._apdu.extend(data)
        else:
            self._apdu = None
            return self._refusal(msg, _ERROR_BAD_LEVEL)
        if level == _CHAIN_END:
            apdu, self._apdu = self._apdu, None
            return self._respond(seq, apdu)
        return message(_RDR_TO_PC_DATA_BLOCK, seq, _ICC_ACTIVE, 0, _CHAIN_CONTINUE)

    def _respond(self, seq, apdu):
        response = self.card.process_apdu(apdu)  # the card copies out the data it keeps
        if len(response) <= _MAX_DATA:
            return message(_RDR_TO_PC_DATA_BLOCK, seq, _ICC_ACTIVE, 0, _CHAIN_NONE, response)
        self._reply, self._reply_at = response, 0
        return self._next_part(seq)

    def _next_part(self, seq):
        start = self._reply_at
        part = self._reply[start:start + _MAX_DATA]
        self._reply_at = start + len(part)
        if start == 0:
            chain = _CHAIN_BEGIN
        elif self._reply_at < len(self._reply):
            chain = _CHAIN_MORE
        else:
            chain = _CHAIN_END
        if self._reply_at >= len(self._reply):
            self._reply = None
        return message(_RDR_TO_PC_DATA_BLOCK, seq, _ICC_ACTIVE, 0, chain, part)
