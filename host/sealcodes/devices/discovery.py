"""Discovery: which devices are reachable and which applications each has (one SELECT per
application), and the device a `--device` spec names. Loaded only when devices are listed or
named: a command whose set is in the profile opens its device without it (devices/__init__.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ..const import AID_FIDO, AID_OATH, AID_OPENPGP, AID_OTP, AID_PIV, AID_SEALCODES
from ..errors import DeviceBusyError, DeviceError, DeviceNotFoundError
from ..records import KIND_HID, KIND_PCSC, same_serial
from . import BACKEND_PREFERENCE, backend_class, hid_devices, hid_name, open_backend, patience, providers

#: listing waits this long for a card another program holds, then shows it as busy and goes on
LIST_BUSY_WAIT_S = 1.5
BUSY_TEXT = "busy (in use by another program)"

# AIDs probed to tell which applications a card has
PROBE_AIDS = {"applet": AID_SEALCODES, "fido2": AID_FIDO, "ykoath": AID_OATH, "yubiotp": AID_OTP,
              "piv": AID_PIV, "openpgp": AID_OPENPGP}


@dataclass(frozen=True)
class DeviceInfo:
    """A device as discovery sees it: no secrets, nothing opened."""

    kind: str
    name: str
    backends: tuple = ()
    serial: str | None = None
    detail: str = ""
    busy: bool = False  # another program holds it: nothing could be asked

    def describe(self) -> str:
        parts = [self.name, f"[{self.kind}]"]
        if self.serial:
            parts.append(f"serial {self.serial}")
        parts.append(BUSY_TEXT if self.busy else "backends: " + (", ".join(self.backends) or "none usable"))
        if self.detail:
            parts.append(self.detail)
        return "  ".join(parts)


def probe_smartcard(connection) -> tuple[list, str | None]:
    """Which backends answer on this card (one SELECT each), and its serial if one tells it."""
    from ..apdu import ApduError, SmartCardProtocol

    protocol = SmartCardProtocol(connection)
    found, serial = [], None
    for name in BACKEND_PREFERENCE:
        try:
            answer = protocol.select(PROBE_AIDS[name])
        except ApduError:
            continue
        except DeviceError:
            break  # the card went away
        found.append(name)
        if name == "applet":
            from ..backends.applet import parse_info

            with contextlib.suppress(DeviceError):
                serial = parse_info(answer)["serial"]
    if serial is None and "yubiotp" in found:
        with contextlib.suppress(DeviceError):
            serial = backend_class("yubiotp")(connection).identity().get("serial")
    return found, serial


def _pcsc_device(reader: str, wait: float = LIST_BUSY_WAIT_S, on_wait=None, busy_fails=False) -> DeviceInfo:
    """The card in `reader`, probed; a card another program holds is shown busy (or, with
    `busy_fails`, DeviceBusyError after `wait` seconds, `on_wait(reader)` told)."""
    from ..pcsc import PcscConnection

    try:
        with PcscConnection(reader, wait=wait, on_wait=None if on_wait is None else (lambda: on_wait(reader))) as conn:
            backends, serial = probe_smartcard(conn)
    except DeviceBusyError:
        if busy_fails:
            raise
        return DeviceInfo(KIND_PCSC, reader, busy=True)
    except DeviceError:
        return DeviceInfo(KIND_PCSC, reader, (), None, "no card")
    return DeviceInfo(KIND_PCSC, reader, tuple(backends), serial)


def _provider_device(provider) -> DeviceInfo:
    return DeviceInfo(provider.name, provider.name, tuple(provider.applications), getattr(provider, "serial", None),
                      provider.detail)


def _present(provider) -> bool:
    """A provider may say it has nothing to show now (`present()` False): it is not listed then."""
    present = getattr(provider, "present", None)
    return present is None or bool(present())


def list_devices(include_providers: bool = True, details: bool = False) -> list[DeviceInfo]:
    """Every device reachable now: PC/SC readers (each card probed; one another program holds is
    listed busy after LIST_BUSY_WAIT_S), FIDO HID keys, providers. details=True also reads what each
    FIDO2 application offers (for `sealcodes devices`)."""
    from ..pcsc import list_readers

    devices = [_pcsc_device(reader) for reader in list_readers()]
    for hid in hid_devices():
        serial = hid.descriptor.serial_number or None
        devices.append(DeviceInfo(KIND_HID, hid_name(hid), ("fido2",), serial, hid.descriptor.product_name or ""))
        hid.close()
    if include_providers:
        devices.extend(_provider_device(p) for p in providers.all_providers() if _present(p))
    if details:
        devices = [_with_fido2_summary(d) if "fido2" in d.backends else d for d in devices]
    return devices


def _with_fido2_summary(device: DeviceInfo) -> DeviceInfo:
    """'fido2: hmac-secret, PIN set, rk' (what a FIDO2 enrollment needs), or why it cannot be read."""
    try:
        with open_backend(device, "fido2", wait=LIST_BUSY_WAIT_S) as session:
            info = session.info()
    except DeviceError as exc:
        summary = f"fido2: not readable ({exc})"
    else:
        features = ["hmac-secret" if info["hmac_secret"] else "NO hmac-secret",
                    "PIN set" if info["pin_set"] else ("no PIN" if info["pin_supported"] else "no PIN support")]
        if info["builtin_uv"]:
            features.append("built-in UV")
        if info["rk"]:
            features.append("rk")
        summary = "fido2: " + ", ".join(features)
    detail = "; ".join(x for x in (summary, device.detail) if x)
    return DeviceInfo(device.kind, device.name, device.backends, device.serial, detail)


def resolve(spec: str | None, devices: list | None = None, interaction=None) -> DeviceInfo:
    """The device a `--device` spec names; with no spec, the only hardware device present.

    A provider's name or a reader's name opens nothing else; a serial, an HID path or no spec
    at all lists the devices (the user did not say which one). A card another program holds is
    waited for as `interaction` says (devices.patience), when it is the one meant.
    """
    wait, on_wait = patience(interaction)
    if wait is None:
        from ..pcsc import DEFAULT_BUSY_WAIT_S

        wait = DEFAULT_BUSY_WAIT_S
    if devices is None and spec:
        provider = providers.get(spec)
        if provider is not None:
            return _provider_device(provider)
        from ..pcsc import list_readers

        if spec in list_readers():
            return _pcsc_device(spec, wait, on_wait, busy_fails=True)
    devices = devices if devices is not None else list_devices(include_providers=False)
    busy = [d for d in devices if d.busy]
    if spec is None:
        usable = [d for d in devices if d.backends]
        if len(usable) + len(busy) == 1:
            # the only device, held by another program: wait for it as for a named one
            return usable[0] if usable else _pcsc_device(busy[0].name, wait, on_wait, busy_fails=True)
        if not usable and not busy:
            raise DeviceNotFoundError(
                "no device found (use --device emulator for the built-in software token)"
            )
        raise DeviceNotFoundError(
            "several devices found; choose one with --device: "
            + ", ".join(d.name + (" (busy)" if d.busy else "") for d in usable + busy)
        )
    for device in devices:
        if spec == device.name or same_serial(spec, device.serial):
            return device
    unasked = f"; {', '.join(repr(d.name) for d in busy)} could not be asked ({BUSY_TEXT})" if busy else ""
    raise DeviceNotFoundError(f"no device {spec!r} found (see `sealcodes devices`){unasked}")
