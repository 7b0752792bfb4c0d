"""Finding and opening devices: PC/SC readers, FIDO2 keys over USB HID, registered providers.

A device spec, as typed after `--device`, is a PC/SC reader name (e.g. `Virtual PCD 00 00`),
a device serial, an HID path, or a provider's name (`emulator`). Backends are built here from
connections; they never build connections themselves.

Nothing is listed or probed unless it has to be: a command that knows its device (a set
recorded in the profile, a reader named with --device) opens only that device and only the
backend it needs (`open_enrolled`, `open_backend`), and imports python-fido2 or yubikit only
when that backend is used. Everything is listed only for `sealcodes devices` and when the user
must choose among several devices.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING

from ..errors import DeviceBusyError, DeviceError, DeviceNotFoundError
from ..records import KIND_HID, KIND_PCSC, Enrollment
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


def _open_session(stack: contextlib.ExitStack, kind: str, name: str, backend_name: str):
    """Open one backend on one device; everything opened is closed by `stack`."""
    cls = backend_class(backend_name)
    base = BACKENDS[backend_name][2]
    if kind == KIND_PCSC:
        from ..pcsc import PcscConnection

        conn = PcscConnection(name)
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
def open_backend(device: DeviceInfo, backend_name: str):
    """Open `backend_name` on `device`; yields the backend session, closes everything after."""
    with contextlib.ExitStack() as stack:
        yield _open_session(stack, device.kind, device.name, backend_name)


def _candidates(enrollment: Enrollment):
    """(kind, name) of the devices that may hold an enrollment, the recorded one first."""
    kind = enrollment.device_kind
    if kind == KIND_PCSC:
        from ..pcsc import list_readers

        readers = list_readers()
        if enrollment.device_name in readers:
            readers.remove(enrollment.device_name)
            readers.insert(0, enrollment.device_name)
        return [(KIND_PCSC, r) for r in readers]
    if kind == KIND_HID:
        names = []
        for hid in hid_devices():
            names.append(hid_name(hid))
            hid.close()
        if enrollment.device_name in names:
            names.remove(enrollment.device_name)
            names.insert(0, enrollment.device_name)
        return [(KIND_HID, n) for n in names]
    return [(kind, kind)]


def _where(enrollment: Enrollment) -> str:
    return f"{enrollment.backend} on {enrollment.serial or enrollment.device_name or enrollment.device_kind}"


@contextlib.contextmanager
def open_enrolled(enrollment: Enrollment, device_spec: str | None = None):
    """The backend session of the device an enrollment belongs to, proven without any PIN
    (`Backend.matches`): the device named by `device_spec`, else the recorded reader first, then
    the other readers one by one. Nothing else is listed, probed or imported."""
    backend = enrollment.backend
    if device_spec is not None:
        if enrollment.on_provider and device_spec != enrollment.device_kind:
            raise DeviceError(f"this code set belongs to the {enrollment.device_kind}, not to {device_spec!r}")
        from .discovery import resolve

        device = resolve(device_spec)
        if backend not in device.backends:
            raise DeviceError(f"{device.name} has no {backend} application")
        with contextlib.ExitStack() as stack:
            session = _open_session(stack, device.kind, device.name, backend)
            if not session.matches(enrollment):
                found = session.identity().get("serial")
                raise DeviceError(f"the device found ({device.name}, serial {found or 'unknown'}) is not the one "
                                  f"this set belongs to ({_where(enrollment)}); no PIN was tried")
            yield session
        return
    backend_class(backend).check_available()  # a missing library is not an absent device
    busy = []
    for kind, name in _candidates(enrollment):
        stack = contextlib.ExitStack()
        try:
            session = _open_session(stack, kind, name, backend)
            matched = session.matches(enrollment)
        except DeviceError as exc:
            stack.close()
            if enrollment.on_provider:
                raise
            if isinstance(exc, DeviceBusyError):
                busy.append(str(exc))
            continue
        except BaseException:
            stack.close()
            raise
        if not matched:
            stack.close()
            if enrollment.on_provider:
                # not the enrolled device (a keyring skips it as absent)
                raise DeviceNotFoundError(f"the {kind} holds another {backend} secret than the one this set belongs to "
                                  f"({_where(enrollment)})")
            continue
        with stack:
            yield session
        return
    if busy:
        raise DeviceBusyError(f"the device this set belongs to ({_where(enrollment)}) was not found, and "
                              f"{busy[0]}: it may be that one (close the other program and retry)")
    raise DeviceNotFoundError(f"the device this set belongs to ({_where(enrollment)}) is not connected")
