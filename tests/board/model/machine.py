"""A model of MicroPython's `machine` module, for running the board package under the unix port.

It shadows the unix port's own `machine` (an extensible built-in: a file of that name on sys.path
wins). What it models, written from the documentation of machine.USBDevice, machine.Timer,
machine.Pin and machine.idle, and from what MicroPython's runtime USB driver does
(shared/tinyusb/mp_usbd_runtime.c) where the documentation is silent:

- USBDevice (MicroPython >= 1.23): a singleton; config() takes the device and configuration
  descriptors (checked here: lengths, wTotalLength, bNumInterfaces, endpoint addresses), the
  string table and the four callbacks; active(); submit_xfer() returns False before the host
  configured the device or while a transfer is queued on that endpoint (until its xfer_cb has run,
  as TinyUSB keeps an endpoint busy until its task handles the completion and calls xfer_cb), and
  raises OSError(EINVAL) while inactive; stall(). The standard requests to the device
  (GET_DESCRIPTOR of the device, configuration and strings, SET_ADDRESS, SET_CONFIGURATION,
  GET_CONFIGURATION, GET_STATUS) and to endpoints are answered here, as TinyUSB does; SET_CONFIGURATION calls open_itf_cb once per
  interface with a memoryview of its descriptors; every other request of an open interface or
  endpoint goes to control_xfer_cb by stage (1 SETUP, 2 DATA, 3 ACK; False stalls, True goes on,
  a buffer at SETUP is the data stage, cut to wLength). xfer_cb(ep, 0, n) reports a completed
  transfer (0 is XFER_SUCCESS); an OUT transfer completes on a short packet or a full buffer; an
  IN transfer is sent as packets of wMaxPacketSize, a zero-length one as one empty packet. A bus
  reset (or the host going away) calls reset_cb, and transfers queued before it never complete.
- the scheduler: every callback (USB, timers) runs on the main thread through
  micropython.schedule, one after the other, between two bytecodes of whatever the main thread
  runs, as on a board. A "hardware" thread (the USB bus, the timers) only queues them. The main
  thread may be inside a `with lock` of the model then: the callbacks never wait for that lock.
- the host: one at a time; a host that closed its end before another connected is gone first.
- Timer (soft timers), Pin (the LED's changes are appended to the file $SEALBOARD_MODEL_LED when
  set), idle() (sleeps 1 ms: a USB frame).

The bus is a Unix socket at $SEALBOARD_MODEL_USB; the host side (sealboard.usblink) connects to it
as plugging the device in. Both ways, each frame is a 2-byte big-endian length, then:
    host -> device  01 SETUP(8) [OUT data] | 02 ep packet | 03 (bus reset)
    device -> host  81 status(0 ack, 1 stall) [IN data] | 82 ep packet
An exception in a callback is printed with "USB MODEL: callback failed" and counted in
CALLBACK_ERRORS (MicroPython prints those too, and stalls the transfer).
"""

import _thread
import micropython
import os
import select
import socket
import struct
import sys
import time

_FRAME_SETUP = 0x01
_FRAME_OUT = 0x02
_FRAME_RESET = 0x03
_FRAME_CONTROL = 0x81
_FRAME_IN = 0x82
_EINVAL = 22
_RECV_SIZE = 256  # what the model reads at once: its own heap use stays small
XFER_SUCCESS = 0
XFER_FAILED = 1
CALLBACK_ERRORS = [0]

_hardware = None


def _hw():
    global _hardware
    if _hardware is None:
        _hardware = _Hardware()
    return _hardware


def _report(exc):
    CALLBACK_ERRORS[0] += 1
    print("USB MODEL: callback failed", file=sys.stderr)
    sys.print_exception(exc, sys.stderr)


class _Hardware:
    """The thread that plays the USB controller and the timer interrupts."""

    def __init__(self):
        self.lock = _thread.allocate_lock()
        self.events = []
        self.scheduled = False
        self.timers = []
        self.usb = None
        _thread.start_new_thread(self._run, ())

    def post_locked(self, fn, arg):
        self.events.append((fn, arg))

    def post(self, fn, arg):
        with self.lock:
            self.events.append((fn, arg))

    def _drain(self, _):
        self.scheduled = False
        while True:
            # this runs between two bytecodes of the main thread, which may be inside a `with
            # self.lock` of its own (submit_xfer, post): waiting for the lock would wait forever.
            # Not taken: the hardware thread schedules this again next frame.
            if not self.lock.acquire(0):
                return
            try:
                if not self.events:
                    return
                fn, arg = self.events.pop(0)
            finally:
                self.lock.release()
            try:
                fn(arg)
            except Exception as exc:  # noqa: BLE001 (as MicroPython: print it, go on)
                _report(exc)

    def _run(self):
        while True:
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 (the hardware never stops: say it, go on)
                _report(exc)
                time.sleep_ms(1)

    def _step(self):
        usb = self.usb
        if usb is not None:
            usb._service(1)
        else:
            time.sleep_ms(1)
        now = time.ticks_ms()
        for timer in list(self.timers):
            if time.ticks_diff(now, timer._due) >= 0:
                timer._due = time.ticks_add(now, timer._period)
                if timer._oneshot:
                    self.timers.remove(timer)
                self.post(timer._fire, None)
        with self.lock:
            need = bool(self.events) and not self.scheduled
            if need:
                self.scheduled = True
        if need:
            while True:
                try:
                    micropython.schedule(self._drain, None)
                    break
                except RuntimeError:  # the scheduler's queue is full: try again next frame
                    time.sleep_ms(1)


def idle():
    time.sleep_ms(1)


def unique_id():
    return b"\xe6\x60\x58\x38\x83\x2f\x6d\x2b"


class Pin:
    IN = 0
    OUT = 1

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._value = 0
        self._log = os.getenv("SEALBOARD_MODEL_LED") if id == "LED" else None
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self._value
        v = 1 if v else 0
        if v != self._value and self._log:
            with open(self._log, "ab") as f:
                f.write(b"1" if v else b"0")
        self._value = v
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(1 - self._value)


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kwargs):
        self._callback = None
        if kwargs:
            self.init(**kwargs)

    def init(self, mode=PERIODIC, period=-1, freq=None, callback=None):
        if freq is not None:
            period = 1000 // freq
        self._period = max(1, period)
        self._oneshot = mode == Timer.ONE_SHOT
        self._callback = callback
        self._due = time.ticks_add(time.ticks_ms(), self._period)
        hw = _hw()
        if self not in hw.timers:
            hw.timers.append(self)

    def deinit(self):
        hw = _hw()
        if self in hw.timers:
            hw.timers.remove(self)

    def _fire(self, _):
        if self._callback is not None:
            self._callback(self)


class _Builtin:
    def __init__(self):
        self.itf_max = 0
        self.ep_max = 0
        self.str_max = 4
        self.desc_dev = b""
        self.desc_cfg = b""


_BUILTIN_NONE = _Builtin()
_BUILTIN_DEFAULT = _Builtin()  # the USB serial REPL: its descriptors are not modelled
# MicroPython's own strings, used where desc_strs has none (rp2: "MicroPython", "Board in FS mode", the
# flash chip's unique id)
_BUILTIN_STRINGS = {1: "MicroPython", 2: "Board in FS mode", 3: "e6605838832f6d2b"}


def _check_config(desc_dev, desc_cfg):
    """The configuration's endpoints {address: (type, wMaxPacketSize)} and interfaces [(number, start, end)];
    ValueError for what a host would refuse."""
    if len(desc_dev) != 18 or desc_dev[0] != 18 or desc_dev[1] != 1:
        raise ValueError("bad device descriptor")
    if len(desc_cfg) < 9 or desc_cfg[0] != 9 or desc_cfg[1] != 2:
        raise ValueError("bad configuration descriptor")
    total, count = struct.unpack_from("<HB", desc_cfg, 2)
    if total != len(desc_cfg):
        raise ValueError("wTotalLength is not the configuration's length")
    endpoints = {}
    interfaces = []
    pos = desc_cfg[0]
    while pos < len(desc_cfg):
        length, kind = desc_cfg[pos], desc_cfg[pos + 1]
        if length < 2 or pos + length > len(desc_cfg):
            raise ValueError("descriptor overruns the configuration")
        if kind == 4:
            if desc_cfg[pos + 3] == 0:
                if interfaces:
                    interfaces[-1][2] = pos
                interfaces.append([desc_cfg[pos + 2], pos, len(desc_cfg)])
        elif kind == 5:
            address = desc_cfg[pos + 2]
            if address in endpoints or address & 0x0F == 0:
                raise ValueError("endpoint address used twice, or 0")
            endpoints[address] = (desc_cfg[pos + 3] & 3, struct.unpack_from("<H", desc_cfg, pos + 4)[0])
        pos += length
    if len(interfaces) != count or [i[0] for i in interfaces] != list(range(count)):
        raise ValueError("bNumInterfaces does not match interfaces 0..n-1")
    return endpoints, interfaces


def USBDevice():
    return _usb_device()


_singleton = []


def _usb_device():
    if not _singleton:
        _singleton.append(_USBDevice())
    return _singleton[0]


class _USBDevice:
    BUILTIN_NONE = _BUILTIN_NONE
    BUILTIN_DEFAULT = _BUILTIN_DEFAULT
    XFER_SUCCESS = XFER_SUCCESS
    XFER_FAILED = XFER_FAILED

    def __init__(self):
        self._active = False
        self.builtin_driver = _BUILTIN_NONE
        self._cfg = None
        self._listener = None
        self._client = None
        self._poller = select.poll()
        self._inbuf = bytearray()
        self._reset_state()

    def _reset_state(self):
        self._configured = False
        self._generation = getattr(self, "_generation", 0) + 1
        self._armed = {}      # OUT ep -> [buffer, bytes filled]
        self._pending = {}    # OUT ep -> packets the host sent that no transfer took yet (NAKed)
        # endpoints with a transfer submitted whose xfer_cb has not run yet: TinyUSB keeps an
        # endpoint busy until its task handles the completion, and calls xfer_cb right then, so
        # no new transfer (nor host data into its buffer) can come in between
        self._busy = set()
        self._stalled = set()

    # --- the documented API ------------------------------------------------------------------
    def config(self, desc_dev, desc_cfg, desc_strs=None, open_itf_cb=None, reset_cb=None, control_xfer_cb=None,
               xfer_cb=None):
        if self._active:
            raise OSError(_EINVAL)
        if self.builtin_driver is not _BUILTIN_NONE:
            raise NotImplementedError("the model has no built-in USB drivers")
        endpoints, interfaces = _check_config(bytes(desc_dev), bytes(desc_cfg))
        self._cfg = (desc_dev, desc_cfg, desc_strs, open_itf_cb, reset_cb, control_xfer_cb, xfer_cb, endpoints,
                     interfaces)

    def active(self, *value):
        if not value:
            return self._active
        if value[0] and not self._active:
            if self._cfg is None:
                raise OSError(_EINVAL)
            self._active = True
            self._listen()
            _hw().usb = self
        elif not value[0] and self._active:
            self._active = False
            self._drop_client()
        return None

    def remote_wakeup(self):
        return False

    def stall(self, ep, *stall):
        if not self._active:
            raise OSError(_EINVAL)
        was = ep in self._stalled
        if stall:
            if stall[0]:
                self._stalled.add(ep)
            else:
                self._stalled.discard(ep)
        return was

    def submit_xfer(self, ep, buffer):
        if not self._active:
            raise OSError(_EINVAL)
        if ep & 0x7F == 0:
            raise ValueError("endpoint 0 takes control transfers only")
        endpoints = self._cfg[7]
        if not self._configured or ep not in endpoints or self._client is None:
            return False
        size = endpoints[ep][1]
        if ep & 0x80:
            if ep in self._busy:
                return False
            data = bytes(buffer)
            self._busy.add(ep)
            if not data:
                self._send(_FRAME_IN, bytes((ep,)))
            for at in range(0, len(data), size):
                self._send(_FRAME_IN, bytes((ep,)) + data[at:at + size])
            _hw().post(self._complete, (self._generation, ep, XFER_SUCCESS, len(data)))
            return True
        if not isinstance(buffer, (bytearray, memoryview)):
            raise TypeError("an OUT transfer needs a writable buffer")
        hw = _hw()
        with hw.lock:
            if ep in self._busy:
                return False
            self._busy.add(ep)
            self._armed[ep] = [buffer, 0]
            self._deliver_locked(ep)
        return True

    # --- the host side of the socket -----------------------------------------------------------
    def _listen(self):
        if self._listener is not None:
            return
        path = os.getenv("SEALBOARD_MODEL_USB")
        if not path:
            raise OSError(_EINVAL)
        try:
            os.remove(path)
        except OSError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(struct.pack("<H", socket.AF_UNIX) + path.encode() + b"\0")
        sock.listen(1)
        self._listener = sock
        self._poller.register(sock, select.POLLIN)

    def _drop_client(self):
        client = self._client
        if client is not None:
            self._client = None
            self._poller.unregister(client)
            client.close()
            self._inbuf = bytearray()
            _hw().post(self._bus_reset, None)

    def _send(self, kind, payload):
        client = self._client
        if client is None:
            return
        try:
            client.write(struct.pack(">HB", len(payload) + 1, kind) + payload)
        except OSError:
            pass  # the host went away: the hardware thread sees it

    def _service(self, timeout_ms):
        """The hardware thread: accept the host, read its frames."""
        for obj, _ in self._poller.poll(timeout_ms):
            if obj is self._listener:
                self._accept()
            elif obj is self._client:
                self._read_client()

    def _accept(self):
        client, _ = self._listener.accept()
        if self._client is not None:
            # a host that let go just before this one connected (a program that closes its link and
            # opens another): its going comes first, as unplugging comes before plugging in
            self._drain_client()
        if self._client is not None or not self._active:
            client.close()  # a second host while one is attached: refused
            return
        self._client = client
        self._poller.register(client, select.POLLIN)

    def _drain_client(self):
        """Read everything the attached host has sent so far, up to its going away if it went."""
        client = self._client
        waiting = select.poll()
        waiting.register(client, select.POLLIN)
        while self._client is client and waiting.poll(0):
            self._read_client()

    def _read_client(self):
        try:
            chunk = self._client.recv(_RECV_SIZE)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop_client()
            return
        self._inbuf.extend(chunk)
        while len(self._inbuf) >= 2:
            n = struct.unpack_from(">H", self._inbuf, 0)[0]
            if len(self._inbuf) < 2 + n:
                break
            frame = bytes(self._inbuf[2:2 + n])
            self._inbuf = self._inbuf[2 + n:]
            self._frame(frame)

    def _frame(self, frame):
        kind = frame[0]
        hw = _hw()
        if kind == _FRAME_SETUP and len(frame) >= 9:
            hw.post(self._control, frame[1:])
        elif kind == _FRAME_OUT and len(frame) >= 2:
            with hw.lock:
                self._pending.setdefault(frame[1], []).append(frame[2:])
                self._deliver_locked(frame[1])
        elif kind == _FRAME_RESET:
            hw.post(self._bus_reset, None)

    def _deliver_locked(self, ep):
        """Host packets into the armed OUT transfer of ep (the hardware lock is held)."""
        armed = self._armed.get(ep)
        queue = self._pending.get(ep)
        size = self._cfg[7].get(ep, (0, 64))[1]
        while armed is not None and queue:
            packet = queue.pop(0)
            buf, filled = armed
            n = min(len(packet), len(buf) - filled)
            buf[filled:filled + n] = packet[:n]
            filled += n
            armed[1] = filled
            if n < len(packet) or len(packet) < size or filled == len(buf):
                del self._armed[ep]
                result = XFER_FAILED if n < len(packet) else XFER_SUCCESS  # more than the buffer holds
                _hw().post_locked(self._complete, (self._generation, ep, result, filled))
                armed = None

    # --- run on the main thread (scheduled) ---------------------------------------------------
    def _complete(self, arg):
        generation, ep, result, n = arg
        if generation != self._generation:
            return  # queued before a bus reset: never completes
        with _hw().lock:
            self._busy.discard(ep)
        callback = self._cfg[6]
        if callback is not None:
            callback(ep, result, n)

    def _bus_reset(self, _):
        hw = _hw()
        with hw.lock:
            self._reset_state()
        callback = self._cfg[4] if self._cfg else None
        if callback is not None:
            callback()

    def _reply(self, stall, data=b""):
        self._send(_FRAME_CONTROL, bytes((1 if stall else 0,)) + bytes(data))

    def _control(self, frame):
        try:
            self._control_stages(frame)
        except Exception as exc:  # noqa: BLE001 (MicroPython stalls the transfer)
            _report(exc)
            self._reply(True)

    def _control_stages(self, frame):
        setup = bytes(frame[:8])
        out_data = frame[8:]
        request_type, request, value, index, length = struct.unpack("<BBHHH", setup)
        recipient = request_type & 0x1F
        kind = (request_type >> 5) & 3
        device_to_host = request_type & 0x80
        if kind == 0 and recipient == 0:
            self._standard_device(request, value, length)
            return
        if kind == 0 and recipient == 2 and request in (0, 1, 3):
            ep = index & 0xFF
            if request == 0:
                self._reply(False, b"\x01\x00" if ep in self._stalled else b"\x00\x00")
                return
            if request == 1:
                self._stalled.discard(ep)
            else:
                self._stalled.add(ep)
            self._reply(False)
            return
        if kind == 2 or not self._configured:
            self._reply(True)  # vendor requests: never for Python (tud_vendor_control_xfer_cb)
            return
        callback = self._cfg[5]
        view = memoryview(bytearray(setup))
        result = callback(1, view) if callback is not None else False
        if result is False or result is None:
            if kind == 0 and recipient == 1 and request in (0, 10, 11):
                # TinyUSB answers GET_STATUS, GET_INTERFACE and SET_INTERFACE itself
                self._reply(False, b"\x00\x00" if request == 0 else (b"\x00" if request == 10 else b""))
            else:
                self._reply(True)
            return
        data = b""
        if result is not True:
            if device_to_host:
                data = bytes(result)[:length]
            else:
                n = min(len(result), len(out_data))
                result[:n] = out_data[:n]
            callback(2, view)
        callback(3, view)
        self._reply(False, data)

    def _standard_device(self, request, value, length):
        desc_dev, desc_cfg, strings = self._cfg[0], self._cfg[1], self._cfg[2]
        if request == 6:  # GET_DESCRIPTOR
            kind, index = value >> 8, value & 0xFF
            data = None
            if kind == 1:
                data = bytes(desc_dev)
            elif kind == 2:
                data = bytes(desc_cfg)
            elif kind == 3:
                data = self._string(strings, index)
            if data is None:
                self._reply(True)
            else:
                self._reply(False, data[:length])
        elif request == 5:  # SET_ADDRESS
            self._reply(False)
        elif request == 9:  # SET_CONFIGURATION
            if value not in (0, 1):
                self._reply(True)
                return
            was = self._configured
            self._configured = value == 1
            self._reply(False)
            if self._configured and not was and self._cfg[3] is not None:
                view = memoryview(desc_cfg)
                for _, start, end in self._cfg[8]:
                    self._cfg[3](view[start:end])
        elif request == 8:  # GET_CONFIGURATION
            self._reply(False, bytes((1 if self._configured else 0,)))
        elif request == 0:  # GET_STATUS: bus powered, no remote wakeup
            self._reply(False, b"\x00\x00")
        else:
            self._reply(True)

    def _string(self, strings, index):
        text = None
        if strings is not None:
            try:
                text = strings[index]
            except (IndexError, KeyError):
                text = None
        if index == 0:
            return bytes(text) if text is not None else b"\x04\x03\x09\x04"
        if text is None:
            text = _BUILTIN_STRINGS.get(index)
        if text is None:
            return None
        if isinstance(text, str):
            text = text.encode()
        text = text[:40]  # MICROPY_HW_USB_DESC_STR_MAX
        out = bytearray((2 + 2 * len(text), 3))
        for c in text:
            out.append(c)
            out.append(0)
        return bytes(out)
