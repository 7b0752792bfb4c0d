"""The built-in emulator as a sealcodes device provider.

sealcodes finds providers through the `sealcodes.device_providers` entry point group (see
pyproject.toml) and knows nothing else about them; this module knows nothing of sealcodes.
The contract (docs/architecture.md, "Device providers"):

    provider.name          what `--device` calls it, and the device kind recorded in profiles
    provider.detail        one line shown by `sealcodes devices`
    provider.applications  the device applications it offers (sealcodes backend names)
    provider.open()        -> a handle, used once and closed:
        handle.smartcard() -> link: atr, name, send_and_receive(apdu) -> (data, sw), close()
        handle.ctap()      -> a python-fido2 CtapDevice
        handle.close()
    provider.present()     optional: False keeps it out of `sealcodes devices` (nothing to show)
    provider.serial        optional: the device's serial, as the other devices show theirs

BoardProvider ("board") is a sealtoken board whose USB bus is the Unix socket named by
$SEALBOARD_USB (the board package under MicroPython's unix port, as the tests run it): its HID
interface, found and opened as Linux and python-fido2 open a FIDO key. Its smartcard applets are
reached through pcscd (`sealtoken bridge`), as a real board's are through pcscd's CCID driver.
"""

from __future__ import annotations

import os


class EmulatorProvider:
    name = "emulator"
    detail = "built-in software token, NOT hardware-backed"
    applications = ("applet", "fido2", "ykoath", "yubiotp", "piv", "openpgp")

    def open(self):
        return _EmulatorHandle()


class _EmulatorHandle:
    def __init__(self):
        from .emulator import EmulatedToken

        self._token = EmulatedToken()
        self._closers = []

    def smartcard(self):
        link = self._token.connect()
        self._closers.append(link.close)
        return link

    def ctap(self):
        from .ctaphid_link import open_emulated_hid_device

        device = open_emulated_hid_device(self._token.token)
        self._closers.append(device.close)
        return device

    def close(self):
        while self._closers:
            self._closers.pop()()
        self._token.close()


PROVIDER = EmulatorProvider()

BOARD_SOCKET_ENV = "SEALBOARD_USB"


class BoardProvider:
    name = "board"
    applications = ("fido2",)

    def __init__(self):
        self._identity = None

    @staticmethod
    def socket_path():
        return os.environ.get(BOARD_SOCKET_ENV) or None

    def present(self):
        path = self.socket_path()
        return path is not None and os.path.exists(path)

    def _identify(self):
        """(detail, serial) read from the board's descriptors, once per process."""
        if self._identity is None and not self.present():
            return (f"no board: ${BOARD_SOCKET_ENV} names no socket", None)
        if self._identity is None:
            from .usblink import UsbError, UsbLink

            try:
                link = UsbLink(self.socket_path(), timeout=5.0)
                try:
                    device = link.enumerate()
                finally:
                    link.close()
            except (UsbError, OSError) as exc:
                self._identity = (f"sealtoken board at ${BOARD_SOCKET_ENV}: not answering ({exc})", None)
            else:
                self._identity = (f"USB {device.vid:04x}:{device.pid:04x} {device.manufacturer} {device.product}",
                                  device.serial)
        return self._identity

    @property
    def detail(self):
        return self._identify()[0]

    @property
    def serial(self):
        return self._identify()[1]

    def open(self):
        path = self.socket_path()
        if path is None:
            raise OSError(f"no board: set {BOARD_SOCKET_ENV} to the socket of its USB bus")
        return _BoardHandle(path)


class _BoardHandle:
    def __init__(self, path):
        self._path = path
        self._device = None

    def smartcard(self):
        raise OSError("the board's smartcard applets are reached through pcscd (sealtoken bridge)")

    def ctap(self):
        from .usbboard import open_board_hid_device
        from .usblink import UsbLink

        link = UsbLink(self._path)
        try:
            self._device = open_board_hid_device(link, link.enumerate())
        except BaseException:
            link.close()
            raise
        return self._device

    def close(self):
        if self._device is not None:
            self._device.close()
            self._device = None


BOARD_PROVIDER = BoardProvider()
