"""The HID interface that carries CTAPHID (FIDO2 over USB, CTAP 2.1 section 11.2).

One interface of class HID, no boot protocol, FIDO usage page 0xF1D0 with 64-byte input and output
reports, an interrupt IN and an interrupt OUT endpoint polled every 5 ms. The framing, channels,
keep-alive and cancel are the firmware's (sealtoken.fido.ctaphid); this module moves its reports:

- each output report from the host goes into a short inbox (callback), and the main loop hands
  it to `CtapHid.handle_packet` (`pump`); while the inbox is full the OUT endpoint is not offered
  again, so the host waits rather than losing a report;
- while a CBOR request runs, CtapHid sends its KEEPALIVE (UPNEEDED) reports itself and polls the
  inbox for CANCEL through the hooks attached here; while it only computes, `tick` (a timer
  callback, every ~100 ms) sends the PROCESSING keep-alive CTAP asks for.

A USB bus reset ends a running request (cancel) and forgets channels (CtapHid.power_off, from the
main loop: never firmware code from a callback while the main loop may be inside it).
"""

import struct
import time

from sealdevice.usb import (EP_IN, MAX_PACKET, STAGE_SETUP, XFER_INTERRUPT, InQueue, arm, endpoint_descriptor,
                            interface_descriptor, string_index)
from sealtoken.core.micro import const

_CLASS_HID = const(0x03)
_DESC_HID = const(0x21)
_DESC_REPORT = const(0x22)
_REQ_GET_DESCRIPTOR = const(0x06)
_REQ_SET_IDLE = const(0x0A)
_REQUEST_STANDARD_INTERFACE_IN = const(0x81)
_REQUEST_CLASS_INTERFACE_OUT = const(0x21)
_POLL_INTERVAL_MS = const(5)
_TICK_MS = const(100)
_INBOX_LIMIT = const(16)        # reports held for the main loop before the host is made to wait
_SIDE_QUEUE_LIMIT = const(8)    # keep-alives and busy errors dropped beyond this many unsent reports

# FIDO Alliance usage page 0xF1D0, usage CTAPHID (1): 64-byte input (usage 0x20) and output (0x21) reports
REPORT_DESCRIPTOR = bytes((
    0x06, 0xD0, 0xF1,        # Usage Page (FIDO Alliance)
    0x09, 0x01,              # Usage (CTAPHID)
    0xA1, 0x01,              # Collection (Application)
    0x09, 0x20,              #   Usage (Input Report Data)
    0x15, 0x00,              #   Logical Minimum (0)
    0x26, 0xFF, 0x00,        #   Logical Maximum (255)
    0x75, 0x08,              #   Report Size (8)
    0x95, MAX_PACKET,        #   Report Count (64)
    0x81, 0x02,              #   Input (Data, Variable, Absolute)
    0x09, 0x21,              #   Usage (Output Report Data)
    0x15, 0x00,              #   Logical Minimum (0)
    0x26, 0xFF, 0x00,        #   Logical Maximum (255)
    0x75, 0x08,              #   Report Size (8)
    0x95, MAX_PACKET,        #   Report Count (64)
    0x91, 0x02,              #   Output (Data, Variable, Absolute)
    0xC0,                    # End Collection
))


class CtapHidInterface:
    def __init__(self, usbd, ctaphid, platform, ep_out=0x01, ep_in=0x81, name="sealtoken FIDO2"):
        self.usbd = usbd
        self.ctaphid = ctaphid
        self.platform = platform
        self.ep_out = ep_out
        self.ep_in = ep_in | EP_IN
        self.endpoints = (self.ep_out, self.ep_in)
        self.name = name
        self._rx = bytearray(MAX_PACKET)
        self._inbox = []
        self._out = InQueue(usbd, self.ep_in)
        self._reset_pending = False
        self._last_tick = time.ticks_ms()
        self._hid_descriptor = struct.pack("<BBHBBBH", 9, _DESC_HID, 0x0111, 0, 1, _DESC_REPORT,
                                           len(REPORT_DESCRIPTOR))
        ctaphid.attach(self._send_side, self._poll)

    # --- descriptors and callbacks -----------------------------------------------------------
    def descriptor(self, number, strings):
        return (interface_descriptor(number, 2, _CLASS_HID, 0, 0, string_index(strings, self.name))
                + self._hid_descriptor
                + endpoint_descriptor(self.ep_in, XFER_INTERRUPT, MAX_PACKET, _POLL_INTERVAL_MS)
                + endpoint_descriptor(self.ep_out, XFER_INTERRUPT, MAX_PACKET, _POLL_INTERVAL_MS))

    def open(self):
        arm(self.usbd, self.ep_out, self._rx)
        self._out.kick()

    def reset(self):
        self._inbox = []
        self._out.clear()
        self._reset_pending = True
        self.ctaphid.cancel()  # only sets a flag the running request reads at its next keep-alive

    def control(self, stage, request):
        if stage != STAGE_SETUP:
            return True
        if request[0] == _REQUEST_STANDARD_INTERFACE_IN and request[1] == _REQ_GET_DESCRIPTOR:
            kind = request[3]  # high byte of wValue
            if kind == _DESC_REPORT:
                return REPORT_DESCRIPTOR
            if kind == _DESC_HID:
                return self._hid_descriptor
            return False
        if request[0] == _REQUEST_CLASS_INTERFACE_OUT and request[1] == _REQ_SET_IDLE:
            return True  # reports are sent only when there is something to say
        return False

    def xfer(self, ep, result, n):
        if ep == self.ep_out:
            if result == 0 and n:
                self._inbox.append(bytes(self._rx[:n]))
            if len(self._inbox) < _INBOX_LIMIT:
                arm(self.usbd, self.ep_out, self._rx)
        else:
            self._out.done()

    # --- the main loop -------------------------------------------------------------------------
    def pump(self):
        """Hand one waiting report to CTAPHID and queue its answers; False when there was none."""
        if self._reset_pending:
            self._reset_pending = False
            self.ctaphid.power_off()
        packet = self._poll()
        if packet is not None:
            replies = self.ctaphid.handle_packet(packet)
        elif time.ticks_diff(time.ticks_ms(), self._last_tick) >= _TICK_MS:
            self._last_tick = time.ticks_ms()
            replies = self.ctaphid.tick()  # MSG_TIMEOUT for a message the host left unfinished
        else:
            return False
        for reply in replies:
            self._out.put(reply)
        return packet is not None

    def idle(self):
        """True when nothing waits to be sent or handled."""
        return not self._inbox and not len(self._out)

    def tick(self):
        """Timer callback: the PROCESSING keep-alive while a request computes (not while it waits
        for a touch: the firmware sends UPNEEDED then)."""
        if self.ctaphid.busy and not self.platform.waiting_for_touch and not len(self._out):
            packet = self.ctaphid.keepalive_packet()
            if packet is not None:
                self._out.put(packet)

    # --- CtapHid's hooks while a request runs ----------------------------------------------
    def _send_side(self, packet):
        if len(self._out) < _SIDE_QUEUE_LIMIT:
            self._out.put(bytes(packet))

    def _poll(self):
        try:
            packet = self._inbox.pop(0)
        except IndexError:  # empty (a bus reset may have emptied it just now)
            return None
        arm(self.usbd, self.ep_out, self._rx)
        return packet
