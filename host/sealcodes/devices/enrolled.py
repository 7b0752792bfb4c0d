"""Opening the device an enrollment belongs to (`open_enrolled`): the device a command names, or the
recorded reader first, then the others; each proven by `Backend.matches` before any PIN. Nothing
else is listed, probed or imported."""

from __future__ import annotations

import contextlib

from ..errors import DeviceBusyError, DeviceError, DeviceNotFoundError
from ..records import KIND_HID, KIND_PCSC, Enrollment
from . import backend_class, hid_devices, hid_name, open_session


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
            session = open_session(stack, device.kind, device.name, backend)
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
            session = open_session(stack, kind, name, backend)
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
