"""Finding and opening devices: PC/SC readers, FIDO2 keys over USB HID, the built-in emulator.

A device spec, as typed after `--device`, is a PC/SC reader name (e.g.
`Virtual PCD 00 00`), a device serial, an HID path, or `emulator`. Backends are
built here from connections; they never build connections themselves.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field

from .errors import DeviceError, DeviceNotFoundError

EMULATOR = "emulator"

KIND_EMULATOR = "emulator"
KIND_PCSC = "pcsc"
KIND_HID = "hid"

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

# AIDs probed to tell which applications a card has
_PROBE_AIDS = {
    "applet": "sealtoken.const:AID_SEALCODES",
    "fido2": bytes.fromhex("a0000006472f0001"),
    "ykoath": bytes.fromhex("a0000005272101"),
    "yubiotp": bytes.fromhex("a0000005272001"),
    "piv": bytes.fromhex("a000000308"),
    "openpgp": bytes.fromhex("d27600012401"),
}


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


def _aid(name):
    value = _PROBE_AIDS[name]
    if isinstance(value, str):
        module, attr = value.split(":")
        value = getattr(importlib.import_module(module), attr)
    return value


@dataclass
class Device:
    kind: str
    name: str
    backends: list = field(default_factory=list)
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


def _select(connection, aid) -> bool:
    try:
        _, sw = connection.send_and_receive(bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00")
    except DeviceError:
        return False
    return sw == 0x9000 or (sw >> 8) == 0x61


def probe_smartcard(connection) -> tuple[list, str | None]:
    """Which backends answer on this card, and our applet's serial if present."""
    found = [name for name in BACKEND_PREFERENCE if _select(connection, _aid(name))]
    serial = None
    if "applet" in found:
        with contextlib.suppress(DeviceError, ImportError):
            serial = backend_class("applet")(connection).identity().get("serial")
    return found, serial


class _EmulatorHandle:
    def __init__(self):
        from sealboard.emulator import EmulatedToken

        try:
            self.token = EmulatedToken()
        except RuntimeError as exc:
            raise DeviceError(str(exc)) from None

    def close(self):
        self.token.close()


def list_devices(include_emulator: bool = True) -> list[Device]:
    """Every device reachable now: PC/SC readers with a card, FIDO HID keys, and the emulator."""
    devices = []
    from .pcsc import PcscConnection, list_readers

    for reader in list_readers():
        try:
            with PcscConnection(reader) as conn:
                backends, serial = probe_smartcard(conn)
            devices.append(Device(KIND_PCSC, reader, backends, serial))
        except DeviceError:
            devices.append(Device(KIND_PCSC, reader, [], None, "no card"))
    for hid in _hid_devices():
        devices.append(Device(KIND_HID, hid.descriptor.path if isinstance(hid.descriptor.path, str)
                              else repr(hid.descriptor.path), ["fido2"], hid.descriptor.serial_number,
                              hid.descriptor.product_name or ""))
    if include_emulator:
        devices.append(Device(KIND_EMULATOR, EMULATOR, list(BACKEND_PREFERENCE), None,
                              "built-in software token, NOT hardware-backed"))
    for device in devices:
        if "fido2" in device.backends:
            summary = _fido2_summary(device)
            device.detail = "; ".join(x for x in (summary, device.detail) if x)
    return devices


def _fido2_summary(device: Device) -> str:
    """'fido2: hmac-secret, PIN set, rk' (what a FIDO2 enrollment needs), or why it cannot be read."""
    try:
        with open_backend(device, "fido2") as session:
            info = session.info()
    except DeviceError as exc:
        return f"fido2: not readable ({exc})"
    features = ["hmac-secret" if info["hmac_secret"] else "NO hmac-secret",
                "PIN set" if info["pin_set"] else ("no PIN" if info["pin_supported"] else "no PIN support")]
    if info["builtin_uv"]:
        features.append("built-in UV")
    if info["rk"]:
        features.append("rk")
    return "fido2: " + ", ".join(features)


def _hid_devices():
    try:
        from fido2.hid import CtapHidDevice

        return list(CtapHidDevice.list_devices())
    except Exception:  # no HID access on this machine
        return []


def resolve(spec: str | None, devices: list[Device] | None = None) -> Device:
    """The device a `--device` spec names; with no spec, the only hardware device present."""
    if spec == EMULATOR:
        return Device(KIND_EMULATOR, EMULATOR, list(BACKEND_PREFERENCE))
    devices = devices if devices is not None else list_devices(include_emulator=False)
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
        if spec in (device.name, device.serial):
            return device
    raise DeviceNotFoundError(f"no device {spec!r} found (see `sealcodes devices`)")


@contextlib.contextmanager
def open_backend(device: Device, backend_name: str):
    """Open `backend_name` on `device`; yields the backend session, closes everything after."""
    cls = backend_class(backend_name)
    _, _, base = BACKENDS[backend_name]
    with contextlib.ExitStack() as stack:
        if device.kind == KIND_EMULATOR:
            handle = _EmulatorHandle()
            stack.callback(handle.close)
            if base == "smartcard":
                conn = handle.token.connect()
                stack.callback(conn.close)
                yield cls(conn)
            else:
                from sealboard.ctaphid_link import open_emulated_hid_device

                hid = open_emulated_hid_device(handle.token.token)
                stack.callback(hid.close)
                yield cls(hid)
        elif device.kind == KIND_PCSC:
            from .pcsc import PcscConnection

            conn = PcscConnection(device.name)
            stack.callback(conn.close)
            if base == "smartcard":
                yield cls(conn)
            else:
                from fido2.pcsc import CtapPcscDevice

                yield cls(CtapPcscDevice(conn.pyscard_connection, device.name))
        elif device.kind == KIND_HID:
            if base != "ctap":
                raise DeviceError(f"{device.name} is a FIDO HID key; only the fido2 backend works there")
            hid = next((h for h in _hid_devices() if str(h.descriptor.path) == device.name), None)
            if hid is None:
                raise DeviceNotFoundError(f"the key {device.name} was removed")
            stack.callback(hid.close)
            yield cls(hid)
        else:
            raise DeviceError(f"unknown device kind {device.kind!r}")
