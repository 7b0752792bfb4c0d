"""Finding and opening devices: PC/SC readers, FIDO2 keys over USB HID, registered providers.

A device spec, as typed after `--device`, is a PC/SC reader name (e.g. `Virtual PCD 00 00`),
a device serial, an HID path, or a provider's name (`emulator`). Backends are built here from
connections; they never build connections themselves.

Nothing is listed or probed unless it has to be: a command that knows its device (a set
recorded in the profile, a reader named with --device) opens only that device and only the
backend it needs (`enrolled.open_enrolled`, `open_backend`), and imports python-fido2 or yubikit only
when that backend is used. Everything is listed only for `sealcodes devices` and when the user
must choose among several devices.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING

from ..errors import DeviceError, DeviceNotFoundError
from ..records import KIND_HID, KIND_PCSC
from . import providers

if TYPE_CHECKING:  # discovery.py is loaded only when devices are listed or named
    from .discovery import DeviceInfo

# backend name -> (module, class, what it is built on)
BACKENDS = {
    "applet": ("sealcodes.backends.applet", "AppletBackend", "smartcard"),
    "fido2": ("sealcodes.backends.fido2", "Fido2Backend", "ctap"),
    "ykoath": ("sealcodes.backends.ykoath", "YkoathBackend", "smartcard"),
    "yubiotp": ("sealcodes.backends.yubiotp", "YubiOtpBackend", "smartcard"),
    "piv": ("sealcodes.backends.piv", "PivBackend", "smartcard"),
    "openpgp": ("sealcodes.backends.openpgp", "OpenPgpBackend", "smartcard"),
}
BACKEND_PREFERENCE = ("applet", "fido2", "ykoath", "yubiotp", "piv", "openpgp")
_YUBIKIT_BACKENDS = ("ykoath", "yubiotp", "piv", "openpgp")


def backend_class(name: str):
    try:
        module, cls, _ = BACKENDS[name]
    except KeyError:
        raise DeviceError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})") from None
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        hint = " (install sealcodes[yubikey])" if name in _YUBIKIT_BACKENDS else ""
        raise DeviceError(f"the {name} backend is not available: {exc.name} missing{hint}") from None


def hid_devices():
    try:
        from fido2.hid import CtapHidDevice

        return list(CtapHidDevice.list_devices())
    except Exception:  # no HID access on this machine
        return []


def hid_name(hid) -> str:
    path = hid.descriptor.path
    return path if isinstance(path, str) else repr(path)


# --- opening ---------------------------------------------------------------------------------
def _open_provider(name):
    provider = providers.get(name)
    if provider is None:
        raise DeviceNotFoundError(f"no device provider {name!r} is installed")
    try:
        return provider.open()
    except (OSError, RuntimeError) as exc:
        raise DeviceError(str(exc)) from None


def patience(interaction=None) -> tuple:
    """(seconds, on_wait(name)): how long a command waits for a device another program holds, and
    whom it tells that it waits (the interaction's `busy_wait` and `device_busy`; None, None: the
    connection's default, told to nobody)."""
    if interaction is None:
        return None, None
    return getattr(interaction, "busy_wait", None), getattr(interaction, "device_busy", None)


def open_session(stack: contextlib.ExitStack, kind: str, name: str, backend_name: str, wait=None, on_wait=None):
    """Open one backend on one device; everything opened is closed by `stack`. A PC/SC card another
    program holds is waited for `wait` seconds (None: pcsc.DEFAULT_BUSY_WAIT_S), `on_wait(name)`
    told once the wait is noticeable; DeviceBusyError after that."""
    cls = backend_class(backend_name)
    base = BACKENDS[backend_name][2]
    if kind == KIND_PCSC:
        from ..pcsc import DEFAULT_BUSY_WAIT_S, PcscConnection

        conn = PcscConnection(name, wait=DEFAULT_BUSY_WAIT_S if wait is None else wait,
                              on_wait=None if on_wait is None else (lambda: on_wait(name)))
        stack.callback(conn.close)
        return cls(conn)  # the fido2 backend speaks CTAP over the connection itself (nfcctap.py)
    if kind == KIND_HID:
        if base != "ctap":
            raise DeviceError(f"{name} is a FIDO HID key; only the fido2 backend works there")
        hid = None
        for candidate in hid_devices():
            if hid is None and hid_name(candidate) == name:
                hid = candidate
            else:
                candidate.close()
        if hid is None:
            raise DeviceNotFoundError(f"the key {name} was removed")
        stack.callback(hid.close)
        return cls(hid)
    handle = _open_provider(kind)
    stack.callback(handle.close)
    try:
        return cls(handle.smartcard() if base == "smartcard" else handle.ctap())
    except OSError as exc:
        raise DeviceError(str(exc) or "the device stopped answering") from None


@contextlib.contextmanager
def open_backend(device: DeviceInfo, backend_name: str, interaction=None, wait=None):
    """Open `backend_name` on `device`; yields the backend session, closes everything after. A busy
    device is waited for as `interaction` says (`patience`), or `wait` seconds, told to nobody."""
    waits, on_wait = patience(interaction) if wait is None else (wait, None)
    with contextlib.ExitStack() as stack:
        yield open_session(stack, device.kind, device.name, backend_name, waits, on_wait)
