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
"""

from __future__ import annotations


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
