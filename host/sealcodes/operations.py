"""What the commands do, as library functions: enroll, generate, rotate, recover.

Each takes a ProfileStore, a device spec and an Interaction, and returns data; the
CLI only formats it. R (the device response) lives in a bytearray that is wiped
as soon as the codes are derived.
"""

from __future__ import annotations

import hmac

from . import derivation
from .devices import BACKEND_PREFERENCE, KIND_EMULATOR, Device, list_devices, open_backend, resolve
from .errors import (
    ConfirmationError,
    DeviceError,
    DeviceNotFoundError,
    FingerprintMismatchError,
    InvalidInputError,
    ProfileError,
    RecoveryUnsupportedError,
)
from .memory import wipe
from .profile import ProfileStore

DEFAULT_FORMAT = "base32-16"
DEFAULT_COUNT = 10

WRONG_SECRET = (
    "this device answered with a different secret than at enrollment: wrong device or slot, "
    "or (FIDO2) the PIN used differently; no codes shown"
)


def enrollment_id(backend: str, metadata: dict, device: Device) -> str:
    ident = metadata.get("serial") or device.serial or device.name
    extra = metadata.get("slot") or metadata.get("credential_name") or metadata.get("credential_id", "")[:8]
    return f"{backend}:{ident}" + (f":{extra}" if extra else "")


def enroll(store: ProfileStore, device_spec, interaction, backend: str | None = None, **options) -> tuple[str, dict]:
    """Create (or adopt) the sealed secret on a device and record the enrollment."""
    device = resolve(device_spec)
    name = backend or next((b for b in BACKEND_PREFERENCE if b in device.backends), None)
    if name is None or name not in device.backends:
        raise DeviceError(f"{device.name} has no {backend or 'usable'} application for sealcodes")
    with store.locked():
        profile = store.load()  # fail on a corrupt profile before touching the device
        with open_backend(device, name) as session:
            metadata = session.enroll(interaction, **options)
        metadata = dict(metadata, backend=name, device_kind=device.kind)
        if device.kind != KIND_EMULATOR:
            metadata.setdefault("device_name", device.name)
        ident = enrollment_id(name, metadata, device)
        profile.add_enrollment(ident, metadata)
        store.save(profile)
    return ident, metadata


def _pick_enrollment(profile, device_spec, backend=None) -> str:
    enrollments = profile.enrollments
    if not enrollments:
        raise ProfileError("no device enrolled yet: run `sealcodes enroll` first")
    if device_spec in enrollments:  # an enrollment id, as `enroll` printed it
        return device_spec
    if device_spec is not None:
        matches = [k for k, m in enrollments.items() if _device_matches(m, device_spec)]
    else:
        matches = list(enrollments)
    if backend is not None:
        matches = [k for k in matches if enrollments[k].get("backend") == backend]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ProfileError(f"no enrollment for device {device_spec!r} in the profile")
    raise ProfileError("several enrollments in the profile; choose one with --backend, or name it with "
                       "--device ENROLLMENT: " + ", ".join(matches))


def _device_matches(metadata, spec) -> bool:
    if spec == "emulator":
        return metadata.get("device_kind") == KIND_EMULATOR
    return spec in (metadata.get("serial"), metadata.get("device_name"))


def _device_for(metadata, device_spec) -> Device:
    """The connected device an enrollment belongs to, found without any PIN: by the serial the
    backend itself reports (decimal for YubiKeys, hex for our applet), else by the recorded name,
    else the only device offering that backend (the backend then proves it holds the secret)."""
    if metadata.get("device_kind") == KIND_EMULATOR:
        if device_spec not in (None, "emulator"):
            raise DeviceError("this code set belongs to the built-in emulator, not to " + repr(device_spec))
        return resolve("emulator")
    if device_spec is not None:
        return resolve(device_spec)
    backend, serial, name = metadata["backend"], metadata.get("serial"), metadata.get("device_name")
    candidates = [d for d in list_devices(include_emulator=False) if backend in d.backends]
    if serial:
        for device in candidates:
            if device.serial == serial:
                return device
        for device in candidates:
            try:
                with open_backend(device, backend) as session:
                    if session.identity().get("serial") == serial:
                        return device
            except DeviceError:
                continue
    else:
        for device in candidates:
            if device.name == name:
                return device
        if len(candidates) == 1:
            return candidates[0]
    raise DeviceNotFoundError(
        f"the device this set belongs to ({backend} on {serial or name}) is not connected"
    )


def _ask_device(metadata, device_spec, label, epoch, interaction) -> bytearray:
    device = _device_for(metadata, device_spec)
    with open_backend(device, metadata["backend"]) as session:
        expected = metadata.get("serial")
        if expected:
            found = session.identity().get("serial")
            if found != expected:
                # never try a PIN on a device the profile does not belong to
                raise DeviceError(
                    f"the device found has serial {found or 'unknown'}, but this set belongs to {expected}"
                )
        return session.respond(derivation.challenge(label, epoch), metadata, interaction)


def _derive_checked(response, label, epoch, fmt, count, expected_fp=None, expected_fmt=None):
    """Codes from R, but only after R's fingerprint matched the expected one (when given). Wipes R."""
    try:
        if expected_fp is not None:
            found = derivation.fingerprint(response, label, epoch, expected_fmt)
            if not hmac.compare_digest(found.encode(), expected_fp.encode()):
                raise FingerprintMismatchError(WRONG_SECRET)
        return derivation.derive(response, label, epoch, fmt, count)
    finally:
        wipe(response)


def _response_for(profile, ident, device_spec, label, epoch, interaction) -> bytearray:
    """R for a set: the seed S of its keyring, or its device's answer to the v1 challenge."""
    from .keyring_operations import keyring_name_of, load_keyring, open_seed

    name = keyring_name_of(ident)
    if name is not None:
        return open_seed(load_keyring(profile, name), interaction)
    metadata = profile.enrollment(ident)
    return _ask_device(metadata, device_spec, label, epoch, interaction)


def _confirmed(codes, before_record):
    """The new set becomes current only once `before_record(codes)` says yes (type-back check)."""
    if before_record is not None and not before_record(codes):
        raise ConfirmationError("not confirmed: the new set was not recorded; the previous one stays current")


def generate(store: ProfileStore, label, interaction, epoch=None, fmt=None, count=None, device_spec=None,
             backend=None, keyring=None, before_record=None):
    """Codes for `label`, checked against (or recorded in) the profile. `keyring` binds a new set to a
    keyring; `before_record(codes)` may refuse to record a new set (the codes are then not current)."""
    from .keyring_operations import keyring_ident, load_keyring

    label = derivation.normalize_label_text(label)
    with store.locked():
        profile = store.load()
        entry = profile.code_set(label)
        if entry is not None:
            if epoch is not None and epoch != entry["epoch"]:
                raise InvalidInputError(
                    f"{label!r} is at epoch {entry['epoch']} in the profile; use `sealcodes rotate` to move on, "
                    "or `sealcodes recover --fingerprint` for another epoch"
                )
            ident = entry["enrollment"]
            if keyring is not None and ident != keyring_ident(keyring):
                raise InvalidInputError(f"{label!r} is not bound to keyring {keyring!r} in the profile")
            epoch, count = entry["epoch"], count or entry["count"]
            fmt = fmt or entry["format"]
        else:
            if keyring is not None:
                load_keyring(profile, keyring)
                ident = keyring_ident(keyring)
            else:
                ident = _pick_enrollment(profile, device_spec, backend)
            epoch = 0 if epoch is None else epoch
            fmt, count = fmt or DEFAULT_FORMAT, count or DEFAULT_COUNT
        derivation.validate_parameters(label, epoch, fmt, count)
        if device_spec in profile.enrollments:  # named by enrollment id: its own device
            device_spec = None
        response = _response_for(profile, ident, device_spec, label, epoch, interaction)
        if entry is not None:
            return _derive_checked(response, label, epoch, fmt, count, entry["fingerprint"], entry["format"])
        codes = _derive_checked(response, label, epoch, fmt, count)
        _confirmed(codes, before_record)
        profile.record_set(label, ident, epoch, fmt, count, codes.fingerprint)
        store.save(profile)
        return codes


def rotate(store: ProfileStore, label, interaction, device_spec=None, fmt=None, count=None, before_record=None,
           keyring=None):
    """Move `label` to epoch + 1: every code changes; the new set is recorded (once confirmed).
    `keyring` moves the set onto that keyring (its seed makes the new codes)."""
    from .keyring_operations import keyring_ident, load_keyring

    label = derivation.normalize_label_text(label)
    with store.locked():
        profile = store.load()
        entry = profile.code_set(label)
        if entry is None:
            raise ProfileError(f"no code set {label!r} in the profile: run `sealcodes generate` first")
        ident = entry["enrollment"]
        if keyring is not None:
            load_keyring(profile, keyring)
            ident = keyring_ident(keyring)
        epoch = entry["epoch"] + 1
        fmt, count = fmt or entry["format"], count or entry["count"]
        derivation.validate_parameters(label, epoch, fmt, count)
        response = _response_for(profile, ident, device_spec, label, epoch, interaction)
        codes = _derive_checked(response, label, epoch, fmt, count)
        _confirmed(codes, before_record)
        profile.record_set(label, ident, epoch, fmt, count, codes.fingerprint)
        store.save(profile)
        return codes


def recover_with_keyring(label, fingerprint, keyring, interaction, epoch=0, fmt=DEFAULT_FORMAT, count=DEFAULT_COUNT):
    """No profile needed: S from the keyring's present members (a kr.Keyring, e.g. read from a file or
    typed from the sheet), shown only when the fingerprint matches."""
    from .keyring_operations import open_seed

    label = derivation.normalize_label_text(label)
    derivation.validate_parameters(label, epoch, fmt, count)
    wanted = derivation.parse_fingerprint(fingerprint)
    response = open_seed(keyring, interaction)
    try:
        return _derive_checked(response, label, epoch, fmt, count, wanted, fmt)
    except FingerprintMismatchError:
        raise FingerprintMismatchError(
            f"keyring {keyring.name!r} opened, but gives another fingerprint than {wanted} for this label, epoch "
            "and format: another label spelling, epoch or format?"
        ) from None


def _parse_credential_id(text):
    """A FIDO2 credential id as printed on the sheet (base64url, no padding), or InvalidInputError."""
    import base64
    import binascii

    compact = "".join(str(text).split())
    if not compact or len(compact) > 1400 or not all(c.isalnum() or c in "-_" for c in compact):
        raise InvalidInputError("a credential id is base64url text (A-Z a-z 0-9 - _), as printed on the sheet")
    try:
        raw = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInputError("the credential id is mistyped (not base64url)") from None
    if not 1 <= len(raw) <= 1023:
        raise InvalidInputError("the credential id is mistyped (wrong length)")
    return raw


def recover(label, fingerprint, interaction, epoch=0, fmt=DEFAULT_FORMAT, count=DEFAULT_COUNT, device_spec=None,
            backend=None, credential_id=None):
    """No profile: ask every secret the device could have used; show only the set whose fingerprint matches.
    `credential_id` (FIDO2, from the sheet) lets a key with a non-discoverable credential answer."""
    label = derivation.normalize_label_text(label)
    derivation.validate_parameters(label, epoch, fmt, count)
    wanted = derivation.parse_fingerprint(fingerprint)
    credential = _parse_credential_id(credential_id) if credential_id is not None else None
    device = resolve(device_spec)
    if credential is not None and backend is None:
        backend = "fido2"
    names = [backend] if backend else [b for b in BACKEND_PREFERENCE if b in device.backends]
    challenge = derivation.challenge(label, epoch)
    tried, skipped = 0, []
    for name in names:
        with open_backend(device, name) as session:
            try:
                candidates = (session.recover_responses(challenge, interaction, credential_id=credential)
                              if credential is not None else session.recover_responses(challenge, interaction))
                try:
                    for _what, response in candidates:
                        tried += 1
                        try:
                            codes = _derive_checked(response, label, epoch, fmt, count, wanted, fmt)
                        except FingerprintMismatchError:
                            continue
                        return codes
                finally:
                    # closing the generator now (not whenever it is collected) wipes the PIN it holds
                    getattr(candidates, "close", lambda: None)()
            except RecoveryUnsupportedError as exc:
                if backend:
                    raise
                skipped.append(f"{name}: {exc}")
    if tried == 0:
        raise DeviceError(f"nothing on {device.name} can be searched without a profile ("
                          + "; ".join(skipped) + ")")
    raise FingerprintMismatchError(
        f"no secret on {device.name} gives fingerprint {wanted} for this label, epoch and format "
        f"({tried} tried): another device, another label spelling, epoch or format?"
    )
