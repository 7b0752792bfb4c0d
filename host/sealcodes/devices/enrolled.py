"""Opening the device an enrollment belongs to (`open_enrolled`): the device a command names, or the
recorded reader first, then the others; each proven by `Backend.matches` before any PIN. Nothing
else is listed, probed or imported.

A device named by the enrollment's own reader or HID path, by another reader's name, or by the
enrollment's serial costs no more than the recorded path: the reader is opened directly, and a
serial is the recorded path itself. Only a name that is none of these (another device's serial,
an HID path not recorded) is looked up among every device (`discovery.resolve`).

A card another program holds is waited for (the interaction's `busy_wait`, `device_busy` told):
when several readers may hold the set, the free ones are tried first, and the busy ones waited
for only when none of those was it. One held exclusively is not waited for.
"""

from __future__ import annotations

import contextlib
import time

from ..errors import DeviceBusyError, DeviceError, DeviceNotFoundError
from ..records import KIND_HID, KIND_PCSC, Enrollment, same_serial
from . import backend_class, hid_devices, hid_name, open_session, patience

#: a card that answers does so well within this; one that does not is tried again after the others
_FIRST_LOOK_S = 0.5


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


def _named(enrollment: Enrollment, device_spec: str, interaction=None):
    """(kind, name) of the device `--device` names, or None when it names the enrollment's own
    device by serial or provider (the recorded path). Lists or probes every device only for a name
    that is no reader and not recorded."""
    if enrollment.on_provider:
        if device_spec != enrollment.device_kind:
            raise DeviceError(f"this code set belongs to the {enrollment.device_kind}, not to {device_spec!r}")
        return None
    if device_spec == enrollment.serial or same_serial(enrollment.serial, device_spec):
        return None
    if device_spec == enrollment.device_name:
        return enrollment.device_kind, device_spec
    from ..pcsc import list_readers

    if device_spec in list_readers():
        return KIND_PCSC, device_spec
    from .discovery import resolve

    device = resolve(device_spec, interaction=interaction)
    if enrollment.backend not in device.backends:
        raise DeviceError(f"{device.name} has no {enrollment.backend} application")
    return device.kind, device.name


@contextlib.contextmanager
def open_enrolled(enrollment: Enrollment, device_spec: str | None = None, interaction=None):
    """The backend session of the device an enrollment belongs to, proven without any PIN
    (`Backend.matches`): the device named by `device_spec`, else the recorded reader first, then
    the other readers one by one. Nothing else is listed, probed or imported. A busy device is
    waited for as `interaction` says (devices.patience)."""
    backend = enrollment.backend
    wait, on_wait = patience(interaction)
    named = _named(enrollment, device_spec, interaction) if device_spec is not None else None
    if named is not None:
        kind, name = named
        with contextlib.ExitStack() as stack:
            session = open_session(stack, kind, name, backend, wait, on_wait)
            if not session.matches(enrollment):
                found = session.identity().get("serial")
                raise DeviceError(f"the device found ({name}, serial {found or 'unknown'}) is not the one "
                                  f"this set belongs to ({_where(enrollment)}); no PIN was tried")
            yield session
        return
    backend_class(backend).check_available()  # a missing library is not an absent device
    if wait is None:
        from ..pcsc import DEFAULT_BUSY_WAIT_S

        wait = DEFAULT_BUSY_WAIT_S
    deadline = time.monotonic() + wait
    held, exclusive = [], []
    for kind, name in _candidates(enrollment):
        stack = contextlib.ExitStack()
        try:
            session = _proven(stack, kind, name, enrollment, min(wait, _FIRST_LOOK_S))
        except DeviceBusyError as exc:
            (exclusive if exc.exclusive else held).append(name)
            continue
        if session is not None:
            with stack:
                yield session
            return
    for name in held:  # none of the free devices was it: wait for those another program holds
        if on_wait is not None and deadline > time.monotonic():
            on_wait(name)
        stack = contextlib.ExitStack()
        try:
            session = _proven(stack, KIND_PCSC, name, enrollment, max(0.0, deadline - time.monotonic()))
        except DeviceBusyError:
            continue
        if session is not None:
            with stack:
                yield session
            return
    if held or exclusive:
        from ..pcsc import busy_message

        name = (held or exclusive)[0]
        raise DeviceBusyError(busy_message(name, exclusive=not held, waited=wait if held else None), name,
                              exclusive=not held)
    raise DeviceNotFoundError(f"the device this set belongs to ({_where(enrollment)}) is not connected")


def _proven(stack, kind, name, enrollment, wait):
    """The session on one candidate if it holds the enrollment (left open on `stack`), else None
    (closed). DeviceBusyError when another program holds it for longer than `wait` seconds."""
    try:
        session = open_session(stack, kind, name, enrollment.backend, wait)
        matched = session.matches(enrollment)
    except DeviceBusyError:
        stack.close()
        raise
    except DeviceError:
        stack.close()
        if enrollment.on_provider:
            raise
        return None
    except BaseException:
        stack.close()
        raise
    if not matched:
        stack.close()
        if enrollment.on_provider:
            # not the enrolled device (a keyring skips it as absent)
            raise DeviceNotFoundError(f"the {kind} holds another {enrollment.backend} secret than the one this set "
                                      f"belongs to ({_where(enrollment)})")
        return None
    return session
