"""The host's end of a USB device whose bus is a socket: the board package (hardware/boards) run by
MicroPython's unix port with a model of machine.USBDevice, as the tests run it.

What a host's USB stack does, reduced to what our two interfaces need: enumeration (the device
and configuration descriptors, the strings, SET_CONFIGURATION), control transfers, and bulk and
interrupt transfers cut into packets of the endpoint's wMaxPacketSize. A read ends at a short
packet or when the buffer is full (one HID report is one full packet; a CCID message ends with a
short or empty packet); a write sends no zero-length packet after a multiple of the packet size
(as libusb does by default: a CCID device finds the end of a message from its header).

The socket protocol (docs/protocols.md, "USB over a socket"), each frame a 2-byte big-endian
length, then:
    host -> device   01 SETUP(8) [OUT data stage]   02 endpoint packet   03 (bus reset)
    device -> host   81 status (00 ack, 01 stall) [IN data stage]   82 endpoint packet
One host at a time, as on one USB port: the device refuses a second connection.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass

FRAME_SETUP = 0x01
FRAME_OUT = 0x02
FRAME_RESET = 0x03
FRAME_CONTROL = 0x81
FRAME_IN = 0x82

DESC_DEVICE = 1
DESC_CONFIGURATION = 2
DESC_STRING = 3
DESC_INTERFACE = 4
DESC_ENDPOINT = 5
LANGID_EN_US = 0x0409
CLASS_HID = 0x03
CLASS_CCID = 0x0B
DEFAULT_TIMEOUT_S = 10.0


class UsbError(OSError):
    """The device went away, stalled a request or did not answer in time."""


@dataclass(frozen=True)
class Endpoint:
    address: int
    kind: int          # 2 bulk, 3 interrupt
    max_packet: int
    interval: int


@dataclass(frozen=True)
class Interface:
    number: int
    cls: int
    subclass: int
    protocol: int
    name: str | None
    endpoints: tuple
    extra: bytes       # class-specific descriptors between the interface and its endpoints

    def endpoint(self, kind: int, direction_in: bool) -> Endpoint:
        for ep in self.endpoints:
            if ep.kind == kind and bool(ep.address & 0x80) == direction_in:
                return ep
        raise UsbError(f"interface {self.number} has no such endpoint")


@dataclass(frozen=True)
class Device:
    """What enumeration read: the descriptors as sent, and the fields a host shows."""

    vid: int
    pid: int
    bcd_device: int
    manufacturer: str | None
    product: str | None
    serial: str | None
    device_descriptor: bytes
    configuration: bytes
    interfaces: tuple

    def interface(self, cls: int) -> Interface:
        for itf in self.interfaces:
            if itf.cls == cls:
                return itf
        raise UsbError(f"the device has no interface of class {cls:#04x}")


def parse_configuration(config: bytes) -> list[tuple]:
    """(interface descriptor, class-specific bytes, endpoint descriptors) per interface."""
    found, pos = [], config[0]
    while pos + 2 <= len(config):
        length, kind = config[pos], config[pos + 1]
        if length < 2 or pos + length > len(config):
            raise UsbError("malformed configuration descriptor")
        body = bytes(config[pos:pos + length])
        if kind == DESC_INTERFACE:
            found.append([body, b"", []])
        elif kind == DESC_ENDPOINT and found:
            found[-1][2].append(body)
        elif found:
            found[-1][1] += body
        pos += length
    return [tuple(f) for f in found]


class UsbLink:
    """One host connection to a device on a socket (a Unix socket path)."""

    def __init__(self, path: str, timeout: float = DEFAULT_TIMEOUT_S, trace=None):
        self.path = path
        self.timeout = timeout
        # trace("control", setup, data out, data in, stalled) / ("out" | "in", endpoint, data): every
        # transfer, for captures
        self.trace = trace
        self._sock = _connect(path, timeout)
        self._send_lock = threading.Lock()
        self._control_lock = threading.Lock()
        self._control_replies: queue.Queue = queue.Queue()
        self._packets: dict[int, queue.Queue] = {}
        self._packets_lock = threading.Lock()
        self._max_packet: dict[int, int] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read_frames, name="usblink", daemon=True)
        self._reader.start()

    # --- frames ------------------------------------------------------------------------------
    def _send(self, kind: int, payload: bytes) -> None:
        frame = struct.pack(">HB", len(payload) + 1, kind) + payload
        with self._send_lock:
            try:
                self._sock.sendall(frame)
            except OSError as exc:
                raise UsbError(f"the device went away ({exc.strerror or exc})") from None

    def _queue(self, ep: int) -> queue.Queue:
        with self._packets_lock:
            return self._packets.setdefault(ep, queue.Queue())

    def _read_frames(self) -> None:
        buf = bytearray()
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 2:
                    (n,) = struct.unpack_from(">H", buf)
                    if len(buf) < 2 + n:
                        break
                    frame, buf = bytes(buf[2:2 + n]), buf[2 + n:]
                    if frame[0] == FRAME_CONTROL:
                        self._control_replies.put(frame[1:])
                    elif frame[0] == FRAME_IN and len(frame) >= 2:
                        self._queue(frame[1]).put(frame[2:])
        except OSError:
            pass
        self._control_replies.put(None)
        with self._packets_lock:
            for q in self._packets.values():
                q.put(None)
            self._closed = True

    # --- transfers ---------------------------------------------------------------------------
    def control(self, request_type: int, request: int, value: int, index: int, data=b"", length: int = 0) -> bytes:
        """One control transfer: `data` to the device, or up to `length` bytes from it."""
        device_to_host = bool(request_type & 0x80)
        setup = struct.pack("<BBHHH", request_type, request, value, index, length if device_to_host else len(data))
        with self._control_lock:
            self._send(FRAME_SETUP, setup + (b"" if device_to_host else bytes(data)))
            try:
                reply = self._control_replies.get(timeout=self.timeout)
            except queue.Empty:
                raise UsbError("the device did not answer a control request") from None
        if reply is None:
            raise UsbError("the device went away")
        if self.trace:
            self.trace("control", setup, bytes(data), reply[1:], bool(reply[0]))
        if reply[0]:
            raise UsbError(f"the device stalled request {request:#04x} (value {value:#06x}, index {index})")
        return reply[1:]

    def write(self, ep: int, data: bytes) -> None:
        size = self._max_packet.get(ep, 64)
        data = bytes(data)
        for at in range(0, max(len(data), 1), size):
            self._send(FRAME_OUT, bytes((ep,)) + data[at:at + size])
        if self.trace:
            self.trace("out", ep, data)

    def read(self, ep: int, length: int, timeout: float | None = None) -> bytes:
        """One IN transfer of at most `length` bytes: packets until a short one or the buffer is full."""
        size = self._max_packet.get(ep, 64)
        q = self._queue(ep)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = bytearray()
        while True:
            try:
                packet = q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                if data:
                    continue  # a transfer once begun is finished by the device
                raise UsbError(f"nothing from endpoint {ep:#04x} in time") from None
            if packet is None:
                q.put(None)
                raise UsbError("the device went away")
            data += packet
            if len(packet) < size or len(data) >= length:
                break
        if self.trace:
            self.trace("in", ep, bytes(data))
        return bytes(data[:length])

    def reset(self) -> None:
        """A bus reset: the device forgets its configuration."""
        self._send(FRAME_RESET, b"")

    # --- enumeration -------------------------------------------------------------------------
    def _descriptor(self, kind: int, index: int, length: int, langid: int = 0) -> bytes:
        return self.control(0x80, 0x06, kind << 8 | index, langid, length=length)

    def string(self, index: int) -> str | None:
        if not index:
            return None
        data = self._descriptor(DESC_STRING, index, 255, LANGID_EN_US)
        if len(data) < 2 or data[1] != DESC_STRING:
            raise UsbError("malformed string descriptor")
        return data[2:data[0]].decode("utf-16-le")

    def enumerate(self) -> Device:
        """What a host does when the device is plugged in; the device is configured after it."""
        head = self._descriptor(DESC_DEVICE, 0, 8)
        device = self._descriptor(DESC_DEVICE, 0, head[0])
        (_, _, _, _, _, _, _, vid, pid, bcd, i_manufacturer, i_product, i_serial, configurations) = \
            struct.unpack("<BBHBBBBHHHBBBB", device)
        if configurations < 1:
            raise UsbError("the device has no configuration")
        config = self._descriptor(DESC_CONFIGURATION, 0, 9)
        (total,) = struct.unpack_from("<H", config, 2)
        config = self._descriptor(DESC_CONFIGURATION, 0, total)
        languages = self._descriptor(DESC_STRING, 0, 255)
        if LANGID_EN_US not in [struct.unpack_from("<H", languages, i)[0] for i in range(2, len(languages) - 1, 2)]:
            raise UsbError("the device has no English strings")
        interfaces = []
        for itf, extra, endpoints in parse_configuration(config):
            eps = []
            for ep in endpoints:
                address, kind, size, interval = struct.unpack_from("<BBHB", ep, 2)
                self._max_packet[address] = size
                eps.append(Endpoint(address, kind & 3, size, interval))
            interfaces.append(Interface(itf[2], itf[5], itf[6], itf[7], self.string(itf[8]), tuple(eps), extra))
        found = Device(vid, pid, bcd, self.string(i_manufacturer), self.string(i_product), self.string(i_serial),
                       bytes(device), bytes(config), tuple(interfaces))
        self.control(0x00, 0x09, config[5], 0)  # SET_CONFIGURATION
        return found

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def _connect(path: str, timeout: float) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise UsbError(f"no device at {path} ({exc.strerror or exc})") from None
            time.sleep(0.05)
