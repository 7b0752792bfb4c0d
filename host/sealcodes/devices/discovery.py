"""Discovery: which devices are reachable and which applications each has (one SELECT per
application), and the device a `--device` spec names. Loaded only when devices are listed or
named: a command whose set is in the profile opens its device without it (devices/__init__.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ..const import AID_FIDO, AID_OATH, AID_OPENPGP, AID_OTP, AID_PIV, AID_SEALCODES
from ..errors import DeviceError, DeviceNotFoundError
from ..records import KIND_HID, KIND_PCSC, same_serial
from . import BACKEND_PREFERENCE, backend_class, hid_devices, hid_name, open_backend, providers

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

    def describe(self) -> str:
        parts = [self.name, f"[{self.kind}]"]
        if self.serial:
            parts.append(f"serial {self.serial}")
        parts.append("backends: " + (", ".join(self.backends) or "none usable"))
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


def _pcsc_device(reader: str) -> DeviceInfo:
    from ..pcsc import PcscConnection

    try:
        with PcscConnection(reader) as conn:
            backends, serial = probe_smartcard(conn)
    except DeviceError:
        return DeviceInfo(KIND_PCSC, reader, (), None, "no card")
    return DeviceInfo(KIND_PCSC, reader, tuple(backends), serial)


def _provider_device(provider) -> DeviceInfo:
    return DeviceInfo(provider.name, provider.name, tuple(provider.applications), None, provider.detail)


def list_devices(include_providers: bool = True, details: bool = False) -> list[DeviceInfo]:
    """Every device reachable now: PC/SC readers (each card probed), FIDO HID keys, providers.
    details=True also reads what each FIDO2 application offers (for `sealcodes devices`)."""
    from ..pcsc import list_readers

    devices = [_pcsc_device(reader) for reader in list_readers()]
    for hid in hid_devices():
        serial = hid.descriptor.serial_number or None
        devices.append(DeviceInfo(KIND_HID, hid_name(hid), ("fido2",), serial, hid.descriptor.product_name or ""))
        hid.close()
    if include_providers:
        devices.extend(_provider_device(p) for p in providers.all_providers())
    if details:
        devices = [_with_fido2_summary(d) if "fido2" in d.backends else d for d in devices]
    return devices


def _with_fido2_summary(device: DeviceInfo) -> DeviceInfo:
    """'fido2: hmac-secret, PIN set, rk' (what a FIDO2 enrollment needs), or why it cannot be read."""
    try:
        with open_backend(device, "fido2") as session:
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


def resolve(spec: str | None, devices: list | None = None) -> DeviceInfo:
    """The device a `--device` spec names; with no spec, the only hardware device present.

    A provider's name or a reader's name opens nothing else; a serial, an HID path or no spec
    at all lists the devices (the user did not say which one).
    """
    if devices is None and spec:
        provider = providers.get(spec)
        if provider is not None:
            return _provider_device(provider)
        from ..pcsc import list_readers

        if spec in list_readers():
            return _pcsc_device(spec)
    devices = devices if devices is not None else list_devices(include_providers=False)
    if spec is None:
        usable = [d for d in devices if d.backends]
        if len(usable) == 1:
            return usable[0]
        if not usable:
            raise DeviceNotFoundError(
                "no device found (use --device emulator for the built-in software token)"
            )
        raise DeviceNotFoundError(
            "several devices found; choose one with --device: " + ", ".join(d.name for d in usable)
        )
    for device in devices:
        if spec == device.name or same_serial(spec, device.serial):
            return device
    raise DeviceNotFoundError(f"no device {spec!r} found (see `sealcodes devices`)")
