"""The firmware's CTAPHID layer as a python-fido2 HID connection, without /dev/uhid.

`FirmwareHidConnection(token)` implements `fido2.hid.base.CtapHidConnection`:
`write_packet` hands one 64-byte output report to the token, `read_packet`
returns the next input report. `open_emulated_hid_device(token)` wraps it in
python-fido2's own `CtapHidDevice`, which then drives our CTAPHID layer packet
by packet exactly as it drives a USB key (it does CTAPHID_INIT itself).

Like a USB interface, each token has one port: a thread that owns the
firmware's CTAPHID handler and feeds it the reports in arrival order. While a
CBOR request waits for a touch, the handler sends KEEPALIVE reports at once and
polls the port for reports written meanwhile, so CANCEL (python-fido2 writes it
when its `event` is set or on Ctrl-C) interrupts the wait. As with hidraw,
every open connection reads every input report.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref

from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

log = logging.getLogger(__name__)

EMULATOR_HID_PATH = "sealtoken-emulator"
# pid.codes test VID/PID, as in udev/70-sealcodes.rules for development boards
SEALTOKEN_VID = 0x1209
SEALTOKEN_PID = 0x0001
PRODUCT_NAME = "sealtoken (emulated)"
REPORT_SIZE = 64
DEFAULT_READ_TIMEOUT_S = 10.0  # the firmware sends a keepalive every ~100 ms while busy
_TICK_S = 0.1


class _HidPort:
    """The USB interface of one token: one firmware thread, reports fanned out to readers."""

    def __init__(self, token):
        self.ctaphid = token.ctaphid
        self._inbox: queue.Queue = queue.Queue()
        self._readers: list = []
        self._lock = threading.Lock()
        self._stopping = False
        self.ctaphid.attach(self._deliver, self._poll)
        self._thread = threading.Thread(target=self._run, name="sealtoken-ctaphid", daemon=True)
        self._thread.start()

    # called from the firmware thread --------------------------------------------
    def _deliver(self, packet):
        with self._lock:
            readers = list(self._readers)
        for reader in readers:
            reader._incoming.put(bytes(packet))

    def _poll(self):
        try:
            packet = self._inbox.get_nowait()
        except queue.Empty:
            return None
        if packet is None:  # the last connection closed mid-request: give up the request
            self._stopping = True
            self.ctaphid.cancel()
            return None
        return packet

    def _run(self):
        while not self._stopping:
            try:
                packet = self._inbox.get(timeout=_TICK_S)
            except queue.Empty:
                out = self.ctaphid.tick()
            else:
                if packet is None:
                    break
                try:
                    out = self.ctaphid.handle_packet(packet)
                except Exception:  # a firmware bug must not kill the port silently
                    # named, traceback only at debug level: a trace could carry request data
                    log.warning("the emulated token's CTAPHID layer failed on a packet")
                    log.debug("CTAPHID failure", exc_info=True)
                    out = []
            for reply in out:
                self._deliver(reply)
        self.ctaphid.attach(None, None)

    # called from client threads ---------------------------------------------------
    def add_reader(self, reader):
        with self._lock:
            self._readers.append(reader)

    def remove_reader(self, reader) -> bool:
        """Drop a reader; True when it was the last one."""
        with self._lock:
            if reader in self._readers:
                self._readers.remove(reader)
            return not self._readers

    def submit(self, packet):
        self._inbox.put(packet)

    def stop(self):
        self._inbox.put(None)
        self._thread.join(timeout=5)

    @property
    def alive(self):
        return self._thread.is_alive() and not self._stopping


_ports: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ports_lock = threading.Lock()


def _open_port(token, reader):
    with _ports_lock:
        port = _ports.get(token)
        if port is None or not port.alive:
            port = _HidPort(token)
            _ports[token] = port
        port.add_reader(reader)
        return port


def _close_port(token, port, reader):
    with _ports_lock:
        if port.remove_reader(reader):
            if _ports.get(token) is port:
                del _ports[token]
            port.stop()


class FirmwareHidConnection(CtapHidConnection):
    """A python-fido2 HID connection into the CTAPHID layer of an in-process token."""

    def __init__(self, token, read_timeout: float = DEFAULT_READ_TIMEOUT_S):
        self.read_timeout = read_timeout
        self._incoming: queue.Queue = queue.Queue()
        self._token = token
        self._closed = False
        self._port = _open_port(token, self)

    def write_packet(self, data: bytes) -> None:
        if self._closed:
            raise OSError("the connection to the emulated token is closed")
        self._port.submit(bytes(data))

    def read_packet(self, timeout: float | None = None) -> bytes:
        """The next input report; OSError when none comes within the timeout."""
        if self._closed:
            raise OSError("the connection to the emulated token is closed")
        try:
            return self._incoming.get(timeout=self.read_timeout if timeout is None else timeout)
        except queue.Empty:
            raise OSError("the emulated token did not answer") from None

    def pending(self) -> int:
        """How many input reports are waiting (for tests of the raw protocol)."""
        return self._incoming.qsize()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _close_port(self._token, self._port, self)


def _serial_of(token):
    serial = getattr(token, "serial", None)
    if callable(serial):
        serial = serial()
    if isinstance(serial, (bytes, bytearray)):
        return bytes(serial).hex()
    return None if serial is None else str(serial)


def emulated_hid_descriptor(token) -> HidDescriptor:
    return HidDescriptor(EMULATOR_HID_PATH, SEALTOKEN_VID, SEALTOKEN_PID, REPORT_SIZE, REPORT_SIZE,
                         PRODUCT_NAME, _serial_of(token))


def open_emulated_hid_device(token, read_timeout: float = DEFAULT_READ_TIMEOUT_S) -> CtapHidDevice:
    """python-fido2's CtapHidDevice over our firmware (closing it closes the connection)."""
    connection = FirmwareHidConnection(token, read_timeout=read_timeout)
    try:
        return CtapHidDevice(emulated_hid_descriptor(token), connection)
    except BaseException:
        connection.close()
        raise
