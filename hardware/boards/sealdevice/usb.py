"""The composite USB device over MicroPython's runtime USB (machine.USBDevice, MicroPython >= 1.23).

    device = UsbDevice([hid, ccid], vid, pid, bcd_device, manufacturer, product, serial)
    device.start()        # the host sees the device (the built-in USB serial REPL goes away)

Each interface object gives its descriptors (`descriptor(number, strings)`, appending its own
strings), the endpoints it owns (`endpoints`), and handles `open()` (the host configured the
device), `reset()` (bus reset), `control(stage, request)` (a control request addressed to it) and
`xfer(ep, result, n)` (a transfer of one of its endpoints completed: result 0 is success, as
machine.USBDevice reports it on every release since 1.23; later ones name it XFER_SUCCESS).

How machine.USBDevice behaves, and what the code here relies on (its documentation and the
runtime driver in MicroPython's shared/tinyusb): every callback runs from MicroPython's scheduler,
between two bytecodes of the main loop, one at a time, so a callback must be short and never wait.
`submit_xfer(ep, buf)` returns False while a transfer is still queued on `ep` (or before the host
configured the device); its completion arrives later as `xfer_cb(ep, result, n)`. A transfer on an IN
endpoint is sent as packets of wMaxPacketSize; one whose length is a multiple of it ends without a
short packet, so a bulk message of that length is followed by a zero-length transfer here.
"""

import struct

import machine

from sealtoken.core.micro import const

EP_IN = const(0x80)
_DESC_INTERFACE = const(0x04)
_DESC_ENDPOINT = const(0x05)
_DESC_DEVICE = const(0x01)
_DESC_CONFIGURATION = const(0x02)
XFER_BULK = const(0x02)
XFER_INTERRUPT = const(0x03)
_REQ_RECIPIENT_MASK = const(0x1F)
_REQ_RECIPIENT_INTERFACE = const(0x01)
_REQ_RECIPIENT_ENDPOINT = const(0x02)
STAGE_SETUP = const(1)
_STAGE_DATA = const(2)
_STAGE_ACK = const(3)
MAX_PACKET = const(64)              # full-speed bulk and interrupt packets
_STRING_MAX = const(40)             # machine.USBDevice sends at most 40 characters of a string


def interface_descriptor(number, endpoints, cls, subclass, protocol, string_index):
    return struct.pack("<BBBBBBBBB", 9, _DESC_INTERFACE, number, 0, endpoints, cls, subclass, protocol,
                       string_index)


def endpoint_descriptor(address, kind, size, interval):
    return struct.pack("<BBBBHB", 7, _DESC_ENDPOINT, address, kind, size, interval)


def string_index(strings, text):
    """Append text to the string table; its index (at most _STRING_MAX ASCII characters are sent)."""
    if len(text) > _STRING_MAX:
        raise ValueError("USB strings are at most 40 characters")
    strings.append(text)
    return len(strings) - 1


class InQueue:
    """Transfers to send on one IN endpoint, one at a time and in order. `put` may be called from the
    main loop or a callback.

    Which code submits the head? A callback can run between any two bytecodes of the main loop, and
    may complete the transfer in flight, submit the next one and pop it (a host reading fast), so
    the main loop must never submit an item it looked up before such a callback: that would send a
    packet twice, and the next completion would pop one never sent. So one token (`_idle`, a list
    holding True or nothing) says who may submit: whoever takes it with `list.pop()` (one call: no
    callback runs inside it) submits the head; a submitted transfer holds the token until its
    completion (`done`) submits the next or gives it back. A submission refused before the host
    configured the device is retried from `kick` at open."""

    def __init__(self, usbd, ep, packet_size=MAX_PACKET):
        self.usbd = usbd
        self.ep = ep
        self.packet_size = packet_size
        self._queue = []
        self._idle = [True]

    def put(self, data, zlp=False):
        """Queue one transfer; zlp: end it with a zero-length packet when its length is a multiple of
        the packet size (a bulk message the host reads until a short packet)."""
        self._queue.append(data)
        if zlp and len(data) and len(data) % self.packet_size == 0:
            self._queue.append(b"")
        self.kick()

    def kick(self):
        """Submit the head unless a transfer is in flight (its completion sends the next)."""
        idle = self._idle  # read once: a bus reset (clear) may put a new list in its place meanwhile
        try:
            idle.pop()
        except IndexError:
            return
        self._submit_head(idle)

    def done(self):
        """The transfer at the head went out (or failed): send the next (the token passes on)."""
        idle = self._idle
        if self._queue:
            self._queue.pop(0)
        self._submit_head(idle)

    def _submit_head(self, idle):
        """The caller holds the token of `idle`: submit the head, or give the token back to the
        list it came from. After a bus reset (clear) that list is gone and the token is void: the
        new list holds the one token that counts."""
        if idle is not self._idle:
            return
        submitted = False
        try:
            if self._queue:
                submitted = self.usbd.submit_xfer(self.ep, self._queue[0])
        except OSError:  # the device is not active
            pass
        if not submitted:
            idle.append(True)

    def clear(self):
        """Bus reset: nothing queued, and the transfer in flight never completes."""
        self._queue = []
        self._idle = [True]

    def __len__(self):
        return len(self._queue)


def arm(usbd, ep, buf):
    """Offer buf to the host's next OUT transfer on ep (False when one is already offered)."""
    try:
        return usbd.submit_xfer(ep, buf)
    except OSError:
        return False


class UsbDevice:
    """One configuration holding the given interfaces, numbered in order, bus-powered, 100 mA."""

    def __init__(self, interfaces, vid, pid, bcd_device, manufacturer, product, serial):
        self.usbd = machine.USBDevice()
        self.interfaces = interfaces
        self.strings = [None]  # index 0: the default language (English)
        ids = [string_index(self.strings, s) for s in (manufacturer, product, serial)]
        self.desc_dev = struct.pack("<BBHBBBBHHHBBBB", 18, _DESC_DEVICE, 0x0200, 0, 0, 0, MAX_PACKET,
                                    vid, pid, bcd_device, ids[0], ids[1], ids[2], 1)
        body = bytearray()
        self._by_endpoint = {}
        for number, itf in enumerate(interfaces):
            body.extend(itf.descriptor(number, self.strings))
            for ep in itf.endpoints:
                self._by_endpoint[ep] = itf
        self.desc_cfg = struct.pack("<BBHBBBBB", 9, _DESC_CONFIGURATION, 9 + len(body), len(interfaces), 1, 0,
                                    0x80, 50) + body

    def start(self):
        usbd = self.usbd
        usbd.active(False)
        usbd.builtin_driver = usbd.BUILTIN_NONE
        usbd.config(self.desc_dev, self.desc_cfg, self.strings, self._open, self._reset, self._control,
                    self._xfer)
        usbd.active(True)

    def stop(self):
        self.usbd.active(False)

    # --- machine.USBDevice callbacks -------------------------------------------------------
    def _open(self, desc):
        number = desc[2]  # bInterfaceNumber of the interface descriptor the view starts with
        if number < len(self.interfaces):
            self.interfaces[number].open()

    def _reset(self):
        for itf in self.interfaces:
            itf.reset()

    def _control(self, stage, request):
        recipient = request[0] & _REQ_RECIPIENT_MASK
        index = request[4]
        itf = None
        if recipient == _REQ_RECIPIENT_INTERFACE and index < len(self.interfaces):
            itf = self.interfaces[index]
        elif recipient == _REQ_RECIPIENT_ENDPOINT:
            itf = self._by_endpoint.get(index)
        if itf is None:
            return False  # stall
        return itf.control(stage, request)

    def _xfer(self, ep, result, n):
        itf = self._by_endpoint.get(ep)
        if itf is not None:
            itf.xfer(ep, result, n)
