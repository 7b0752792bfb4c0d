"""A sealtoken board reached through its USB interfaces (sealboard.usblink): the CTAPHID connection
that python-fido2 drives, found and described as Linux finds and describes a FIDO key.

    link = UsbLink(path); device = link.enumerate()
    key = open_board_hid_device(link, device)     # python-fido2 CtapHidDevice over the HID interface

What Linux's usbhid and python-fido2 do with a new HID interface, done here on the link: SET_IDLE 0,
the report descriptor read with GET_DESCRIPTOR (class HID report, to the interface) and
parsed by python-fido2's own parser, which accepts only the FIDO usage page and gives the report
sizes; the product name is "manufacturer product", as the kernel names a HID device.
"""

from __future__ import annotations

import struct

from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor, parse_report_descriptor

from .usblink import CLASS_HID, Device, UsbError, UsbLink

DESC_HID_REPORT = 0x22
READ_TIMEOUT_S = 10.0  # the board sends a keep-alive every ~100 ms while it works


def hid_name(device: Device) -> str:
    return " ".join(x for x in (device.manufacturer, device.product) if x)


class BoardHidConnection(CtapHidConnection):
    """python-fido2's HID connection over the interrupt endpoints of the board's HID interface."""

    def __init__(self, link: UsbLink, device: Device, report_size: int, own_link: bool = True,
                 read_timeout: float = READ_TIMEOUT_S):
        itf = device.interface(CLASS_HID)
        self.link = link
        self.ep_in = itf.endpoint(3, True).address
        self.ep_out = itf.endpoint(3, False).address
        self.report_size = report_size
        self.read_timeout = read_timeout
        self._own_link = own_link

    def write_packet(self, data: bytes) -> None:
        self.link.write(self.ep_out, bytes(data).ljust(self.report_size, b"\0"))

    def read_packet(self) -> bytes:
        return self.link.read(self.ep_in, self.report_size, self.read_timeout)

    def close(self) -> None:
        if self._own_link:
            self.link.close()


def report_descriptor(link: UsbLink, device: Device) -> bytes:
    itf = device.interface(CLASS_HID)
    hid = itf.extra
    if len(hid) < 9 or hid[1] != 0x21 or hid[6] != DESC_HID_REPORT:
        raise UsbError("the HID interface has no HID descriptor")
    (length,) = struct.unpack_from("<H", hid, 7)
    link.control(0x21, 0x0A, 0, itf.number)  # SET_IDLE 0
    return link.control(0x81, 0x06, DESC_HID_REPORT << 8, itf.number, length=length)


def open_board_hid_device(link: UsbLink, device: Device, path: str = "board", own_link: bool = True) -> CtapHidDevice:
    """python-fido2's CtapHidDevice on the board's HID interface (ValueError when it is not FIDO)."""
    size_in, size_out = parse_report_descriptor(report_descriptor(link, device))
    if size_in != size_out:
        raise UsbError("FIDO reports of different sizes")
    descriptor = HidDescriptor(path, device.vid, device.pid, size_in, size_out, hid_name(device), device.serial)
    return CtapHidDevice(descriptor, BoardHidConnection(link, device, size_in, own_link))
