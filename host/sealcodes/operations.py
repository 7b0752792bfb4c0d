"""What the commands do, as library functions: enroll, generate, rotate, recover.

Each takes a ProfileStore, a device spec and an Interaction, and returns records; the CLI only
formats them. R (the device response) lives in a bytearray that is wiped as soon as the codes
are derived. A command whose set is in the profile opens only the device it was made on.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from . import derivation, formats
from .devices import BACKEND_PREFERENCE, backend_class, open_backend
from .devices.enrolled import open_enrolled
from .errors import (
    ConfirmationError,
    DeviceError,
    FingerprintMismatchError,
    InvalidInputError,
    ProfileError,
    RecoveryUnsupportedError,
)
from .memory import wipe
from .profile import ProfileStore
from .records import CodeSetEntry, Enrollment, keyring_ident, keyring_name_of, utc_timestamp

if TYPE_CHECKING:  # loaded only to enroll, and to list or name devices
    from .devices.discovery import DeviceInfo
    from .enrollment import EnrollResult

# the defaults of every command, in one place (the CLI shows and uses these)
DEFAULT_FORMAT = formats.DEFAULT_FORMAT_ID
DEFAULT_COUNT = derivation.DEFAULT_COUNT
DEFAULT_EPOCH = derivation.EPOCH_MIN
EPOCH_RANGE = (derivation.EPOCH_MIN, derivation.EPOCH_MAX)
COUNT_RANGE = (derivation.COUNT_MIN, derivation.COUNT_MAX)


def wrong_secret_message(hint: str) -> str:
    return f"this device answered with a different secret than at enrollment ({hint}); no codes shown"


def enrollment_id(enrollment: Enrollment, device: DeviceInfo) -> str:
    ident = enrollment.serial or device.serial or device.name
    extra = enrollment.slot or enrollment.credential_name or (enrollment.credential_id or "")[:8]
    return f"{enrollment.backend}:{ident}" + (f":{extra}" if extra else "")


def enroll(store: ProfileStore, device_spec, interaction, backend: str | None = None, **options) -> EnrollResult:
    """Create (or adopt) the sealed secret on a device and record the enrollment.

    `options` are the backend's enrollment options (enrollment.py); one it does not use is
    refused before the device is touched."""
    from .devices.discovery import resolve
    from .enrollment import EnrollResult, make_options

    device = resolve(device_spec, interaction=interaction)
    name = backend or next((b for b in BACKEND_PREFERENCE if b in device.backends), None)
    if name is None or name not in device.backends:
        raise DeviceError(f"{device.name} has no {backend or 'usable'} application for sealcodes")
    backend_class(name)  # an unknown or unavailable backend fails here, before the device is opened
    opts = make_options(name, options)
    with store.locked():
        profile = store.load()  # fail on a corrupt profile before touching the device
        with open_backend(device, name, interaction) as session:
            enrollment = session.enroll(interaction, opts)
        enrollment = enrollment.replace(
            device_kind=device.kind,
            device_name=None if device.kind not in ("pcsc", "hid") else device.name,
            serial=enrollment.serial or device.serial,
        )
        ident = enrollment_id(enrollment, device)
        orphaned = tuple(profile.labels_of(ident)) if ident in profile.enrollments else ()
        store.save(profile.with_enrollment(ident, enrollment))
    return EnrollResult(ident, enrollment, orphaned)


def _ask_device(enrollment: Enrollment, device_spec, params, interaction) -> tuple:
    """(R, what could explain a wrong secret) from the enrollment's own device."""
    with open_enrolled(enrollment, device_spec, interaction) as session:
        return (session.respond(derivation.challenge_of(params), enrollment, interaction),
                session.wrong_secret_hint())


def _check_fingerprint(response, params, expected_fp, hint="") -> None:
    """R gives the fingerprint recorded for the set whose parameters are `params`."""
    found = derivation.fingerprint_of(response, params)
    if not hmac.compare_digest(found.encode(), expected_fp.encode()):
        raise FingerprintMismatchError(wrong_secret_message(hint))


def _derive_checked(response, params, expected_fp=None, expected=None, hint="", recorder=None, previous=None):
    """Codes from R, but only after R's fingerprint matched the expected one (when given; `expected`:
    the parameters it was recorded with, default `params`). Wipes R.

    `recorder(codes, R, previous)` (a verifier.record.RecordMaker) makes the set's verifier record
    while R is at hand; `previous` is the set a rotation replaces (its R signs the new record)."""
    try:
        if expected_fp is not None:
            _check_fingerprint(response, expected or params, expected_fp, hint)
        codes = derivation.derive_set(response, params)
        if recorder is not None:
            recorder(codes, response, previous)
        return codes
    finally:
        wipe(response)


def _response_for(profile, ident, device_spec, params, interaction) -> bytearray:
    """R for a set: the seed S of its keyring, or its device's answer to the v1 challenge."""
    name = keyring_name_of(ident)
    if name is not None:
        from .keyring_operations import load_keyring, open_seed  # cryptography: only for keyrings

        return open_seed(load_keyring(profile, name), interaction), "a keyring member's secret was replaced"
    return _ask_device(profile.enrollment(ident), device_spec, params, interaction)


def _confirmed(codes, before_record):
    """The new set becomes current only once `before_record(codes)` says yes (type-back check)."""
    if before_record is not None and not before_record(codes):
        raise ConfirmationError("not confirmed: the new set was not recorded; the previous one stays current")


def generate(store: ProfileStore, label, interaction, epoch=None, fmt=None, count=None, device_spec=None,
             backend=None, keyring=None, before_record=None, recorder=None, proof_epoch=None):
    """Codes for `label`, checked against (or recorded in) the profile. `keyring` binds a new set to a
    keyring; `before_record(codes)` may refuse to record a new set (the codes are then not current);
    `recorder` makes the set's verifier record (v2: with its rotation commitment). `proof_epoch`
    (with a recorder, for a set in the profile) adds the proof made with that older epoch's rotation
    key: for a verifier still at that epoch (a rotation whose record never reached it)."""
    # what was given (or the defaults), checked once, here; a recorded set's values come from the profile
    params = derivation.CodeSetParams.of(label, DEFAULT_EPOCH if epoch is None else epoch, fmt or DEFAULT_FORMAT,
                                         count or DEFAULT_COUNT)
    label = params.label
    with store.locked():
        profile = store.load()
        entry = profile.code_set(label)
        previous = None  # the document of a re-seeded keyring that made epoch proof_epoch, kept in the profile
        if proof_epoch is not None:
            if recorder is None:
                raise InvalidInputError("a proof from an older epoch goes with a verifier record")
            if entry is None or not derivation.validate_epoch(proof_epoch) < entry.epoch:
                raise InvalidInputError(f"the proof must come from an older epoch of a set in the profile"
                                        + (f" (below {entry.epoch})" if entry is not None else ""))
            if entry.since is not None and proof_epoch < entry.since:
                from .keyring_operations import previous_keyring_for

                previous = previous_keyring_for(profile, label, proof_epoch)
                if previous is None:
                    raise InvalidInputError(
                        f"epoch {proof_epoch} of {label!r} was made by another device or keyring seed (the set "
                        f"moved at epoch {entry.since}): its proof cannot be made any more; an administrator can "
                        "replace the set on the verifier (`verifier import --force`)")
        if entry is not None:
            if epoch is not None and epoch != entry.epoch:
                raise InvalidInputError(
                    f"{label!r} is at epoch {entry.epoch} in the profile; use `sealcodes rotate` to move on, "
                    "or `sealcodes recover --fingerprint` for another epoch"
                )
            ident = entry.enrollment
            if keyring is not None and ident != keyring_ident(keyring):
                raise InvalidInputError(f"{label!r} is not bound to keyring {keyring!r} in the profile")
            params = params.with_checked(entry.epoch, None if fmt else entry.format, None if count else entry.count)
        else:
            if keyring is not None:
                from .keyring_operations import load_keyring

                load_keyring(profile, keyring)
                ident = keyring_ident(keyring)
            else:
                ident = profile.pick_enrollment(device_spec, backend)
        if device_spec in profile.enrollments:  # named by enrollment id: its own device
            device_spec = None
        recorded = params.with_checked(entry.epoch, entry.format) if entry is not None else None
        if proof_epoch is not None:  # the old epoch's fingerprint is not recorded: the verifier checks
            return _derive_proven(profile, ident, ident, device_spec, params.with_checked(proof_epoch), params,
                                  interaction, recorder, lambda old, hint: None, (entry.fingerprint, recorded),
                                  previous_keyring=previous)
        response, hint = _response_for(profile, ident, device_spec, params, interaction)
        if entry is not None:
            return _derive_checked(response, params, entry.fingerprint, recorded, hint, recorder=recorder)
        codes = _derive_checked(response, params, recorder=recorder)
        _confirmed(codes, before_record)
        store.save(profile.with_set(label, CodeSetEntry(ident, params.epoch, params.format, params.count,
                                                        codes.fingerprint, created=utc_timestamp(),
                                                        since=params.epoch)))
        return codes


def rotate(store: ProfileStore, label, interaction, device_spec=None, fmt=None, count=None, before_record=None,
           keyring=None, recorder=None):
    """Move `label` to epoch + 1: every code changes; the new set is recorded (once confirmed).
    `keyring` moves the set onto that keyring (its seed makes the new codes). `recorder` makes the
    new set's verifier record with the proof of the current set (docs/spec.md section 14): the
    device (or keyring) is asked for both epochs, with one PIN."""
    # what was given, checked once, here; the set's own values come from the profile
    given = derivation.CodeSetParams.of(label, DEFAULT_EPOCH, fmt or DEFAULT_FORMAT, count or DEFAULT_COUNT)
    label = given.label
    with store.locked():
        profile = store.load()
        entry = profile.code_set(label)
        if entry is None:
            raise ProfileError(f"no code set {label!r} in the profile: run `sealcodes generate` first")
        ident = entry.enrollment
        if keyring is not None:
            from .keyring_operations import load_keyring

            load_keyring(profile, keyring)
            ident = keyring_ident(keyring)
        current = given.with_checked(entry.epoch, entry.format, entry.count)
        params = given.with_checked(entry.epoch, None if fmt else entry.format,
                                    None if count else entry.count).next_epoch()
        if recorder is None:
            response, _ = _response_for(profile, ident, device_spec, params, interaction)
            codes = _derive_checked(response, params)
        else:  # the current set's R must give the fingerprint the profile recorded, then it signs
            codes = _derive_proven(
                profile, entry.enrollment, ident, device_spec, current, params, interaction, recorder,
                lambda old, hint: _check_fingerprint(old, current, entry.fingerprint, hint))
        _confirmed(codes, before_record)
        store.save(profile.with_set(label, CodeSetEntry(ident, params.epoch, params.format, params.count,
                                                        codes.fingerprint, created=entry.created,
                                                        rotated=utc_timestamp(),
                                                        since=entry.since if ident == entry.enrollment
                                                        else params.epoch)))
        return codes


def _derive_proven(profile, old_ident, new_ident, device_spec, old, params, interaction, recorder, check_old,
                   expected=None, previous_keyring=None):
    """The codes and verifier record of the set `params`, signed with the rotation key of the set
    `old` of `old_ident` (docs/spec.md section 14), or of `previous_keyring` (a keyring document a
    re-seed replaced) when given. `check_old(R_old, hint)` proves R_old before it signs; `expected`
    = (fingerprint, the parameters it was recorded with) checks the new set's R too."""
    from .verifier.record import PreviousSet

    response, previous, hint = _two_responses(profile, old_ident, new_ident, device_spec, old, params, interaction,
                                              check_old, previous_keyring)
    try:
        expected_fp, expected_params = expected or (None, None)
        return _derive_checked(response, params, expected_fp, expected_params, hint, recorder=recorder,
                               previous=PreviousSet(previous, old.label, old.epoch))
    finally:
        wipe(response)
        wipe(previous)


def _two_responses(profile, old_ident, new_ident, device_spec, old_params, params, interaction, check_old,
                   previous_keyring=None):
    """(R of the new set, R of the old one, what could explain a wrong secret); `check_old(R_old,
    hint)` has passed. The same device answers both challenges in one session (one PIN; FIDO2: one
    assertion); the same keyring opens once (its seed is both sets' R); a set moving onto a keyring
    asks its current device first, and the keyring only once that answer is proven. The old R of
    an epoch a re-seeded keyring made is the seed of its `previous_keyring` document: with the
    keyring the set is on now, each member device answers for both documents at once. Every answer
    is wiped on every failure."""
    answers = []
    try:
        if previous_keyring is not None:
            from .keyring_operations import load_keyring, open_seeds

            name = keyring_name_of(new_ident)
            hint = "a keyring member's secret was replaced"
            if name is not None:
                answers = open_seeds([load_keyring(profile, name), previous_keyring], interaction)
            else:  # the set has moved onto a device since
                answers = open_seeds([previous_keyring], interaction)
                new, hint = _response_for(profile, new_ident, device_spec, params, interaction)
                answers.insert(0, new)
        elif old_ident == new_ident and keyring_name_of(new_ident) is not None:
            seed, hint = _response_for(profile, new_ident, device_spec, params, interaction)
            answers = [seed, bytearray(seed)]
        elif old_ident == new_ident:
            enrollment = profile.enrollment(new_ident)
            with open_enrolled(enrollment, device_spec, interaction) as session:
                answers = session.respond_many(
                    (derivation.challenge_of(params), derivation.challenge_of(old_params)), enrollment, interaction)
                hint = session.wrong_secret_hint()
        else:
            old, hint = _response_for(profile, old_ident, device_spec, old_params, interaction)
            answers = [old]
            check_old(old, hint)
            new, _ = _response_for(profile, new_ident, None, params, interaction)
            return new, old, hint
        check_old(answers[1], hint)
        return answers[0], answers[1], hint
    except BaseException:
        for answer in answers:
            wipe(answer)
        raise


def recover_with_keyring(label, fingerprint, keyring, interaction, epoch=DEFAULT_EPOCH, fmt=DEFAULT_FORMAT,
                         count=DEFAULT_COUNT, recorder=None):
    """No profile needed: S from the keyring's present members (a kr.Keyring, e.g. read from a file or
    typed from the sheet), shown only when the fingerprint matches."""
    from .keyring_operations import open_seed

    params = derivation.CodeSetParams.of(label, epoch, fmt, count)
    wanted = derivation.parse_fingerprint(fingerprint)
    response = open_seed(keyring, interaction)
    try:
        return _derive_checked(response, params, wanted, recorder=recorder)
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
    if not compact or len(compact) > 1400 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in compact):
        raise InvalidInputError("a credential id is base64url text (A-Z a-z 0-9 - _), as printed on the sheet")
    try:
        raw = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInputError("the credential id is mistyped (not base64url)") from None
    if not 1 <= len(raw) <= 1023:
        raise InvalidInputError("the credential id is mistyped (wrong length)")
    return raw


def recover(label, fingerprint, interaction, epoch=DEFAULT_EPOCH, fmt=DEFAULT_FORMAT, count=DEFAULT_COUNT, device_spec=None,
            backend=None, credential_id=None, recorder=None):
    """No profile: ask every secret the device could have used; show only the set whose fingerprint matches.
    `credential_id` (FIDO2, from the sheet) lets a key with a non-discoverable credential answer."""
    params = derivation.CodeSetParams.of(label, epoch, fmt, count)
    wanted = derivation.parse_fingerprint(fingerprint)
    credential = _parse_credential_id(credential_id) if credential_id is not None else None
    from .devices.discovery import resolve

    device = resolve(device_spec, interaction=interaction)
    if credential is not None and backend is None:
        backend = "fido2"
    names = [backend] if backend else [b for b in BACKEND_PREFERENCE if b in device.backends]
    challenge = derivation.challenge_of(params)
    tried, skipped = 0, []
    for name in names:
        with open_backend(device, name, interaction) as session:
            try:
                candidates = (session.recover_responses(challenge, interaction, credential_id=credential)
                              if credential is not None else session.recover_responses(challenge, interaction))
                try:
                    for _what, response in candidates:
                        tried += 1
                        try:
                            codes = _derive_checked(response, params, wanted, recorder=recorder)
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
