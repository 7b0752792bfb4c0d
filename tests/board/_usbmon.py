"""A capture of the host's USB traffic in Linux usbmon's binary format (pcap link type 220,
LINKTYPE_USB_LINUX_MMAPPED: a 64-byte usbmon_packet header, then the data), so that an
independent dissector (Wireshark's tshark) reads the board's descriptors and messages.

`Capture.trace` is sealboard.usblink's trace hook: each transfer becomes a submission ('S') and a
completion ('C') record, as usbmon logs them (Documentation/usb/usbmon.rst in Linux).
"""

from __future__ import annotations

import struct
import time

LINKTYPE_USB_LINUX_MMAPPED = 220
XFER_INTERRUPT, XFER_CONTROL, XFER_BULK = 1, 2, 3
_EINPROGRESS = -115
_EPIPE = -32
_BUS, _DEVICE = 1, 5


class Capture:
    def __init__(self, endpoint_kinds: dict):
        self.kinds = endpoint_kinds  # endpoint address -> 2 bulk / 3 interrupt (descriptor bmAttributes)
        self.records = []
        self._urb = 0x1000

    def _record(self, urb, kind, xfer, ep, status, length, data=b"", setup=None):
        now = time.time()
        header = struct.pack("<QBBBBHbbqiiII8siiII", urb, ord(kind), xfer, ep, _DEVICE, _BUS,
                             0 if setup is not None else ord("-"), 0 if data else ord("<" if ep & 0x80 else ">"),
                             int(now), int(now % 1 * 1e6), status, length, len(data), setup or bytes(8),
                             0, 0, 0, 0)
        self.records.append((now, header + data))

    def trace(self, what, *fields):
        self._urb += 1
        urb = self._urb
        if what == "control":
            setup, out, answer, stalled = fields
            request_type, length = setup[0], struct.unpack_from("<H", setup, 6)[0]
            ep_in = request_type & 0x80
            self._record(urb, "S", XFER_CONTROL, 0x80 if ep_in else 0x00, _EINPROGRESS, length,
                         b"" if ep_in else out, setup)
            self._record(urb, "C", XFER_CONTROL, 0x80 if ep_in else 0x00, _EPIPE if stalled else 0,
                         len(answer) if ep_in else len(out), answer if ep_in else b"")
        else:
            ep, data = fields
            xfer = XFER_BULK if self.kinds.get(ep) == 2 else XFER_INTERRUPT
            if what == "out":
                self._record(urb, "S", xfer, ep, _EINPROGRESS, len(data), data)
                self._record(urb, "C", xfer, ep, 0, len(data))
            else:
                self._record(urb, "S", xfer, ep, _EINPROGRESS, len(data))
                self._record(urb, "C", xfer, ep, 0, len(data), data)

    def write(self, path) -> None:
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_USB_LINUX_MMAPPED))
            for when, packet in self.records:
                f.write(struct.pack("<IIII", int(when), int(when % 1 * 1e6), len(packet), len(packet)))
                f.write(packet)
