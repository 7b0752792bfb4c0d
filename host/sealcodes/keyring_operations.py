"""Keyrings with devices: create, add, remove, open (docs/spec.md section 12, docs/backup.md).

keyring.py is the pure format; this module finds each member's device, asks it for its answer
to the member challenge, and keeps keyring documents in the profile under "keyrings" (those a
re-seed replaced under "previous_keyrings", with the epochs each made). A code set
bound to a keyring records `enrollment: "keyring:NAME"` and uses the seed S as its R.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import derivation
from . import keyring as kr
from .errors import ConfirmationError, DeviceError, DeviceNotFoundError, InvalidInputError, ProfileError
from .memory import wipe
from .numerals import ascii_int
from .profile import ProfileStore
from .records import (  # noqa: F401 (API)
    KEYRING_PREFIX,
    KIND_HID,
    KIND_PCSC,
    CodeSetEntry,
    Enrollment,
    keyring_ident,
    keyring_name_of,
    same_serial,
    utc_timestamp,
)

#: what a member's device exposes (docs/backup.md, "What a member's device exposes")
COMPROMISE_WARNING = (
    "a member's device (k of them for a k-of-n keyring), with any export, sheet or profile of its "
    "keyring, derives every set of that keyring, past epochs and future sets alike, until the member "
    "is removed"
)
#: what removal does, and what it cannot undo
REMOVAL_NOTE = (
    "removal re-seeds the keyring: a new seed and keyring id, new envelopes for the members left, and "
    "every set of the keyring rotated onto the new seed; the removed device, even with an old export or "
    "sheet, derives none of the new codes, but the codes of earlier epochs stay known to it"
)


def _notice(interaction, message):
    notice = getattr(interaction, "notice", None)
    if notice is not None:
        notice(message)


def _next_device(interaction, description):
    """Tell the interaction a new device is being asked (its PIN cache must not carry over)."""
    hook = getattr(interaction, "next_device", None)
    if hook is not None:
        hook(description)


# --- profile storage ------------------------------------------------------------------------------


def keyrings_of(profile) -> dict:
    return profile.keyrings


def load_keyring(profile, name: str) -> kr.Keyring:
    name = kr.validate_name(name)
    doc = keyrings_of(profile).get(name)
    if doc is None:
        raise ProfileError(f"no keyring {name!r} in the profile (`sealcodes keyring list`)")
    try:
        return kr.from_document(doc)
    except kr.KeyringError as exc:
        raise ProfileError(f"the profile's keyring {name!r} is corrupt: {exc}") from None


def save_keyring(profile, keyring: kr.Keyring) -> None:
    keyrings_of(profile)[keyring.name] = kr.to_document(keyring)


def sets_of_keyring(profile, name: str) -> list:
    ident = keyring_ident(name)
    return sorted(label for label, entry in profile.sets.items() if entry.enrollment == ident)


def retain_previous(profile, keyring: kr.Keyring, keep: list, plan: list) -> None:
    """Keep the document a re-seed replaces, with the epochs it made of each set (from the set's
    `since`, 0 when unknown, to its epoch before the re-seed), so that `generate --proof-from-epoch`
    can still sign for an epoch it made (a verifier left behind). Not secret: every member, the
    removed ones included, already holds it. The envelopes of the members that left are dropped
    when the members that stay were enough to open it (they were asked first), so a removed
    device with a copy of the profile made after its removal opens nothing of it."""
    if len(keep) >= keyring.threshold:
        keyring = replace(keyring, members=tuple(keep))
    epochs = {label: [entry.since or 0, entry.epoch] for label, entry, _params in plan}
    profile.previous_keyrings.setdefault(keyring.name, []).append(
        {"document": kr.to_document(keyring), "epochs": epochs})


def previous_keyring_for(profile, label: str, epoch: int) -> kr.Keyring | None:
    """The previous document (kept by a re-seed) that made `epoch` of `label`, or None."""
    label = derivation.normalize_label_text(label)
    for name, kept in profile.previous_keyrings.items():
        for item in reversed(kept):
            spans = {derivation.normalize_label_text(key): span for key, span in item["epochs"].items()}
            first, last = spans.get(label, (1, 0))
            if first <= epoch <= last:
                try:
                    return kr.from_document(item["document"])
                except kr.KeyringError as exc:
                    raise ProfileError(f"the profile's previous keyring {name!r} is corrupt: {exc}") from None
    return None


# --- asking devices -------------------------------------------------------------------------------


def describe_enrollment(metadata: dict) -> str:
    backend = metadata.get("backend", "?")
    where = metadata.get("serial") or metadata.get("device_name") or metadata.get("device_kind") or "?"
    parts = [f"{backend} on {where}"]
    if metadata.get("slot") is not None:
        parts.append(f"slot {metadata['slot']}")
    if metadata.get("credential_id"):
        parts.append(f"credential {metadata['credential_id'][:8]}")
    if backend == "fido2":
        parts.append("PIN at every use" if metadata.get("uv") else "no PIN")
    if metadata.get("device_kind") == "emulator":
        parts.append("built-in SOFTWARE emulator")
    return kr.escape_text(", ".join(parts)[:200])


def _answers(metadata: dict, challenges: list, interaction, device_spec=None) -> list:
    """The answers of the device `metadata` describes to each of `challenges`, in ONE session (one
    PIN; FIDO2: one assertion for two); DeviceNotFoundError if it is absent. The caller wipes them."""
    from .devices.enrolled import open_enrolled  # the same search `generate` uses: by serial, no PIN tried

    enrollment = Enrollment.from_json(metadata)
    with open_enrolled(enrollment, device_spec, interaction) as session:  # a busy reader is waited for visibly
        return session.respond_many(tuple(challenges), enrollment, interaction)


def _answer(metadata: dict, challenge: bytes, interaction, device_spec=None) -> bytearray:
    """The answer of the device `metadata` describes to `challenge` (DeviceNotFoundError if absent)."""
    return _answers(metadata, [challenge], interaction, device_spec)[0]


def _device_key(member: kr.Member) -> tuple:
    """A member as the same device in two documents of one keyring: a re-seed keeps ids and devices."""
    return member.member_id, tuple(sorted((key, repr(value)) for key, value in member.device.items()))


def open_members_of(keyrings: list, interaction, device_spec=None) -> list:
    """{member id: share} of each of `keyrings` (documents of one keyring before and after a re-seed,
    whose members are the same devices): each present device is asked ONCE for every keyring that
    still needs it (one PIN, one touch), in member order, until each has k shares. Absent members
    are skipped; an envelope that does not open stops everything."""
    opened = [{} for _ in keyrings]
    absent, devices = [], {}
    for keyring in keyrings:
        for member in keyring.members:
            devices.setdefault(_device_key(member), member)
    try:
        for key, member in devices.items():
            wanted = [(i, keyring.member(member.member_id)) for i, keyring in enumerate(keyrings)
                      if len(opened[i]) < keyring.threshold
                      and any(_device_key(m) == key for m in keyring.members)]
            if not wanted:
                continue
            _next_device(interaction, member.describe())
            challenges = [kr.member_challenge(keyrings[i].keyring_id, m.member_id) for i, m in wanted]
            try:
                answers = _answers(member.device, challenges, interaction, device_spec)
            except DeviceNotFoundError:
                absent.append(member.describe())
                _notice(interaction, f"{member.describe()}: not connected, skipped")
                continue
            try:
                for (i, m), answer in zip(wanted, answers):
                    opened[i][m.member_id] = kr.open_member(keyrings[i], m, answer)
            finally:
                for answer in answers:
                    wipe(answer)
    except BaseException:
        _wipe_shares(opened)
        raise
    short = next((keyring for keyring, shares in zip(keyrings, opened) if len(shares) < keyring.threshold), None)
    if short is not None:
        answered = len(opened[keyrings.index(short)])
        _wipe_shares(opened)
        raise DeviceError(
            f"keyring {short.name!r} needs {short.threshold} of its members; {answered} answered"
            + (f" (not connected: {'; '.join(absent)})" if absent else "")
        )
    return opened


def _wipe_shares(opened: list) -> None:
    for shares in opened:
        for share in shares.values():
            wipe(share)


def open_members(keyring: kr.Keyring, interaction, device_spec=None) -> dict:
    """{member id: share} from the members that are present, asked in member order until k opened.
    Absent members are skipped; an envelope that does not open stops everything."""
    return open_members_of([keyring], interaction, device_spec)[0]


def open_seeds(keyrings: list, interaction, device_spec=None) -> list:
    """S of each of `keyrings` (bytearrays the caller wipes), each device asked once (open_members_of)."""
    opened = open_members_of(keyrings, interaction, device_spec)
    seeds = []
    try:
        for keyring, shares in zip(keyrings, opened):
            seeds.append(kr.recover_seed(keyring, shares))
    except BaseException:
        for seed in seeds:
            wipe(seed)
        raise
    finally:
        _wipe_shares(opened)
    return seeds


def open_seed(keyring: kr.Keyring, interaction, device_spec=None) -> bytearray:
    """S (a bytearray the caller wipes) from k present members."""
    return open_seeds([keyring], interaction, device_spec)[0]


# --- which members are on one device ----------------------------------------------------------------


def same_device(a: dict, b: dict) -> bool:
    """Whether two members' public device fields name one physical device: the same serial (either
    spelling, docs/spec.md section 12.5), or the same device provider (the emulator is one token).
    Without a serial (a FIDO2 key over HID) nothing can tell: not the same."""
    serial_a, serial_b = a.get("serial"), b.get("serial")
    if serial_a and serial_b:
        return serial_a == serial_b or same_serial(serial_a, serial_b) or same_serial(serial_b, serial_a)
    kind = a.get("device_kind")
    return kind is not None and kind not in (KIND_PCSC, KIND_HID) and kind == b.get("device_kind")


def shared_devices(members) -> tuple:
    """The member ids that share a device, one tuple per device that holds two or more members."""
    groups = []
    for member in members:
        group = next((g for g in groups if any(same_device(member.device, other.device) for other in g)), None)
        if group is None:
            groups.append([member])
        else:
            group.append(member)
    return tuple(tuple(m.member_id for m in group) for group in groups if len(group) > 1)


def staying_on_a_leaving_device(keyring: kr.Keyring, leaving_ids) -> tuple:
    """(member that stays, member that leaves) pairs on one device: that device stays in the keyring."""
    leaving = [m for m in keyring.members if m.member_id in leaving_ids]
    return tuple((stay.member_id, gone.member_id) for stay in keyring.members if stay.member_id not in leaving_ids
                 for gone in leaving if same_device(stay.device, gone.device))


# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyringSummary:
    name: str
    threshold: int
    members: tuple  # (member id, description)
    sets: tuple  # labels bound to it
    shared: tuple = ()  # member ids on one device, a tuple per device holding several (shared_devices)


def summary(profile, keyring: kr.Keyring) -> KeyringSummary:
    return KeyringSummary(keyring.name, keyring.threshold,
                          tuple((m.member_id, describe_enrollment(m.device)) for m in keyring.members),
                          tuple(sets_of_keyring(profile, keyring.name)), shared_devices(keyring.members))


def _member_metadata(profile, spec: str) -> dict:
    ident = profile.pick_enrollment(spec)
    return profile.enrollment(ident).to_json()


def create(store: ProfileStore, name: str, device_specs: list, interaction, threshold: int = 1) -> KeyringSummary:
    """A new keyring whose members are enrolled devices (every one present: each wraps its share)."""
    name = kr.validate_name(name)
    if len(device_specs) < kr.MIN_MEMBERS:
        raise InvalidInputError(f"a keyring needs at least {kr.MIN_MEMBERS} devices (--device, once per member)")
    if not 1 <= threshold <= len(device_specs):
        raise InvalidInputError(f"--threshold must be 1..{len(device_specs)} (the number of devices)")
    with store.locked():
        profile = store.load()
        if name in keyrings_of(profile):
            raise ProfileError(f"a keyring {name!r} already exists in the profile")
        members = [_member_metadata(profile, spec) for spec in device_specs]
        seen = set()
        for metadata in members:
            key = describe_enrollment(metadata)
            if key in seen:
                raise InvalidInputError(f"{key} is named twice")
            seen.add(key)
        keyring_id = kr.new_keyring_id()
        answers = []
        try:
            for member_id, metadata in enumerate(members, start=1):
                _next_device(interaction, f"member {member_id}: {describe_enrollment(metadata)}")
                answers.append(_answer(metadata, kr.member_challenge(keyring_id, member_id), interaction))
            keyring = kr.create(name, members, answers, threshold=threshold, keyring_id=keyring_id)
        finally:
            for answer in answers:
                wipe(answer)
        save_keyring(profile, keyring)
        store.save(profile)
        return summary(profile, keyring)


def add(store: ProfileStore, name: str, device_spec: str, interaction) -> KeyringSummary:
    """One more member: k present members open their shares, the new device wraps f(new id)."""
    with store.locked():
        profile = store.load()
        keyring = load_keyring(profile, name)
        metadata = _member_metadata(profile, device_spec)
        if any(describe_enrollment(m.device) == describe_enrollment(metadata) for m in keyring.members):
            raise InvalidInputError(f"{describe_enrollment(metadata)} is already a member of {name!r}")
        opened = open_members(keyring, interaction)
        try:
            member_id = keyring.next_member_id()
            _next_device(interaction, f"new member {member_id}: {describe_enrollment(metadata)}")
            answer = _answer(metadata, kr.member_challenge(keyring.keyring_id, member_id), interaction)
            try:
                keyring = kr.add_member(keyring, opened, metadata, answer)
            finally:
                wipe(answer)
        finally:
            for share in opened.values():
                wipe(share)
        save_keyring(profile, keyring)
        store.save(profile)
        return summary(profile, keyring)


@dataclass(frozen=True)
class Removal:
    """What `remove` did: the keyring as it is now, who left, and every set it rotated."""

    summary: KeyringSummary
    removed: tuple  # (member id, description) of each member that left
    codes: tuple  # the new CodeSet of each rotated set, in label order
    records: tuple  # their verifier records, when asked (else empty)
    # (label, epoch before the re-seed, accounts) of each rotated set: what `generate LABEL
    # --verifier-record --proof-from-epoch EPOCH` needs to print its records again
    rotated_from: tuple = ()


def _present(member: kr.Member) -> bool:
    """Whether a member's device is connected (found and proven, no PIN, no touch)."""
    from .devices.enrolled import open_enrolled

    try:
        with open_enrolled(Enrollment.from_json(member.device)):
            return True
    except DeviceNotFoundError:
        return False


def _new_threshold(keyring: kr.Keyring, leaving: list, keep: list, threshold: int | None) -> int:
    """k of the re-seeded keyring: `threshold` if given, else the old one, which must still fit."""
    who = ", ".join(str(m.member_id) for m in leaving)
    if not keep:
        raise InvalidInputError(f"removing member {who} would leave keyring {keyring.name!r} with no member")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= len(keep):
            raise InvalidInputError(f"--threshold must be 1..{len(keep)} (the members left)")
        return threshold
    if keyring.threshold > len(keep):
        raise InvalidInputError(
            f"removing member {who} leaves {len(keep)} member(s) in keyring {keyring.name!r}, fewer than its "
            f"threshold {keyring.threshold}: give the new one with --threshold 1..{len(keep)}"
        )
    return keyring.threshold


def _rotation_plan(profile, name: str) -> list:
    """(label, entry, parameters at epoch + 1) of every set bound to the keyring, checked here."""
    plan = []
    for label in sets_of_keyring(profile, name):
        entry = profile.code_set(label)
        if entry.epoch >= derivation.EPOCH_MAX:
            raise InvalidInputError(f"set {label!r} is at the last epoch and cannot be rotated, so keyring "
                                    f"{name!r} cannot be re-seeded")
        current = derivation.CodeSetParams.of(label, entry.epoch, entry.format, entry.count)
        plan.append((label, entry, current.next_epoch()))
    return plan


def merge_accounts(accounts) -> dict:
    """{label: (account, ...)} with every label in NFC; two spellings of one label (NFC and NFD) are
    one set, so their accounts are merged, each once, in the order given."""
    merged = {}
    for label, names in (accounts or {}).items():
        bucket = merged.setdefault(derivation.normalize_label_text(label), {})
        for account in names:
            bucket[account] = None
    return {label: tuple(names) for label, names in merged.items()}


def _rotation_records(old_seed: bytearray, new_seed: bytearray, rotated: list, accounts: dict) -> tuple:
    """The verifier records (v2, docs/spec.md section 14) of the rotated sets, made while both seeds
    are open: each carries the new set's commitment (from `new_seed`) and the proof signed with the
    rotation key of the set it replaces (label, old epoch, from `old_seed`), so a verifier that holds
    the old set takes it from whoever could open the old keyring. One record per account of
    `accounts[label]` (the label itself when none). The caller wipes both seeds. (Later, the
    profile's copy of the old document lets `generate --proof-from-epoch` make them again.)"""
    from .verifier.record import PreviousSet, make_record  # only when records are asked

    return tuple(make_record(codes, account=account, response=new_seed,
                             previous=PreviousSet(old_seed, label, entry.epoch))
                 for label, entry, codes in rotated for account in accounts.get(label) or (None,))


def remove(store: ProfileStore, name: str, member_ids, interaction, threshold: int | None = None,
           drop_absent: bool = False, before_record=None, records: bool = False, accounts=None) -> Removal:
    """Remove members by re-seeding the keyring (docs/backup.md, "Removing a member").

    k members of the old keyring open the old seed S (the members left first; the leaving ones
    only if they are not enough); every member left answers, in one session, the challenge of the
    old keyring (its envelope must open: a device that is not the member's is refused) and that of
    a NEW keyring id, and gets an envelope of a new seed S'; every set bound to the keyring moves
    to epoch + 1 derived from S'. Every member left must be connected: with `drop_absent`
    (confirmed through `interaction`), those that are not leave too. `before_record(codes)` may
    refuse each new set (type-back). With `records`, the result carries the rotated sets'
    verifier records (section 14: each proven with the old seed; one per account of `accounts`
    {label: (account, ...)}, the label when a set has none), for the caller to print AFTER this
    returns.

    The profile is written once, at the end: the new keyring, every rotated set and the old
    document (kept, with the epochs it made, for `generate --proof-from-epoch`) together. A refusal
    or an error on the way (absent device, wrong envelope, type-back refused, Ctrl-C) leaves it as
    it was. Records are never out before the profile: a verifier is never ahead of it, and one left
    behind is brought over later with `generate LABEL --verifier-record --proof-from-epoch N`.
    """
    with store.locked():
        profile = store.load()
        keyring = load_keyring(profile, name)
        member_ids = list(dict.fromkeys(member_ids))
        try:
            leaving = [keyring.member(member_id) for member_id in member_ids]
        except kr.KeyringError as exc:
            raise InvalidInputError(str(exc)) from None
        keep = [m for m in keyring.members if m.member_id not in member_ids]
        plan = _rotation_plan(profile, name)
        accounts = merge_accounts(accounts)
        unknown = sorted(set(accounts) - {label for label, _entry, _params in plan})
        if unknown:
            raise InvalidInputError(f"{unknown[0]!r} is not a set of keyring {name!r}: no record for it")
        _new_threshold(keyring, leaving, keep, threshold)  # refused before any device is asked
        absent = [m for m in keep if not _present(m)]
        _refuse_fewer_than_k(keyring, keep, leaving, absent)
        if absent:
            listed = "; ".join(m.describe() for m in absent)
            who = ", ".join(str(m) for m in member_ids)
            if not drop_absent:
                raise DeviceError(
                    f"removing member {who} re-seeds keyring {name!r}: every member left gets a new envelope "
                    f"and must be connected (not connected: {listed}); connect it, or remove it too with "
                    "--drop-absent"
                )
            if not interaction.confirm(f"Also remove from keyring {name} the members not connected: {listed}?"):
                raise ConfirmationError("not removed: the members not connected were not confirmed for removal; "
                                        "nothing changed")
            leaving += absent
            keep = [m for m in keep if m not in absent]
        threshold = _new_threshold(keyring, leaving, keep, threshold)
        reseeded, rotated, made = _reseed(keyring, keep, leaving, plan, threshold, interaction, before_record,
                                          accounts if records else None)
        save_keyring(profile, reseeded)
        retain_previous(profile, keyring, keep, plan)
        for label, entry, codes in rotated:
            # a new seed: the set's older epochs come from the kept document now (since), its dates go on
            profile = profile.with_set(label, CodeSetEntry(entry.enrollment, codes.epoch, codes.format, codes.count,
                                                           codes.fingerprint, created=entry.created,
                                                           rotated=utc_timestamp(), since=codes.epoch))
        store.save(profile)
        return Removal(summary(profile, reseeded), tuple((m.member_id, m.describe()) for m in leaving),
                       tuple(codes for _label, _entry, codes in rotated), made,
                       tuple((label, entry.epoch, accounts.get(label) or ()) for label, entry, _codes in rotated))


def _refuse_fewer_than_k(keyring: kr.Keyring, keep: list, leaving: list, absent: list) -> None:
    """Refuses, before any PIN is asked, a removal that cannot open the old seed: fewer than k
    members (those that leave count too) are connected. `absent`: the members left that are not."""
    connected = len(keep) - len(absent)
    if connected >= keyring.threshold:
        return
    absent = absent + [m for m in leaving if not _present(m)]
    connected = len(keep) + len(leaving) - len(absent)
    if connected < keyring.threshold:
        listed = "; ".join(m.describe() for m in absent)
        raise DeviceError(f"keyring {keyring.name!r} needs {keyring.threshold} of its members to open; "
                          f"{connected} answered (not connected: {listed}): nothing changed; connect "
                          f"{keyring.threshold - connected} more of them")


def _reseed(keyring, keep, leaving, plan, threshold, interaction, before_record, accounts):
    """(re-seeded keyring, [(label, old entry, new CodeSet)], records): asks the devices, makes S',
    derives and confirms every new set, makes the records when `accounts` is not None. Writes
    nothing; every secret is wiped on the way out.

    Every member that stays answers both challenges (old id, new id) in one session and must open
    its old envelope, even when k shares are already at hand: an envelope of S' goes only to a
    device that proved it is that member (not a swapped device that reports the same serial)."""
    new_id = kr.new_keyring_id()
    opened, answers = {}, {}
    old_seed = new_seed = None
    try:
        for member in keep + leaving:  # those that leave only if the others cannot open S
            stays = member in keep
            if not stays and len(opened) >= keyring.threshold:
                continue
            _next_device(interaction, member.describe())
            challenges = [kr.member_challenge(keyring.keyring_id, member.member_id)]
            if stays:
                challenges.append(kr.member_challenge(new_id, member.member_id))
            try:
                replies = _answers(member.device, challenges, interaction)
            except DeviceNotFoundError:
                if stays:
                    raise
                _notice(interaction, f"{member.describe()}: not connected, skipped")
                continue
            if stays:
                answers[member.member_id] = replies[1]  # wiped with the others, whatever happens
            try:
                share = kr.open_member(keyring, member, replies[0])
            except kr.EnvelopeOpenError as exc:
                if not stays:
                    raise
                raise kr.EnvelopeOpenError(
                    f"{exc}: nothing changed; a member that stays must open its envelope before it gets one of "
                    f"the new seed. If this device was replaced or reset, remove member {member.member_id} as "
                    "well (give both to `keyring remove`) and add the device again with `keyring add`") from None
            finally:
                wipe(replies[0])
            if len(opened) < keyring.threshold:
                opened[member.member_id] = share
            else:
                wipe(share)
        if len(opened) < keyring.threshold:
            raise DeviceError(f"keyring {keyring.name!r} needs {keyring.threshold} of its members to open; "
                              f"{len(opened)} answered: nothing changed")
        old_seed = kr.recover_seed(keyring, opened)
        new_seed = kr.new_seed()
        reseeded = kr.reseed(keyring, [m.member_id for m in keep], answers, new_seed, new_id, threshold)
        rotated = [(label, entry, derivation.derive_set(new_seed, params)) for label, entry, params in plan]
        for label, _entry, codes in rotated:
            if before_record is not None and not before_record(codes):
                raise ConfirmationError(f"not confirmed: {label!r} was not rotated, so nothing changed; keyring "
                                        f"{keyring.name!r} and its sets stay as they were")
        records = _rotation_records(old_seed, new_seed, rotated, accounts) if accounts is not None else ()
        return reseeded, rotated, records
    finally:
        for secret in (*opened.values(), *answers.values(), old_seed, new_seed):
            if secret is not None:
                wipe(secret)


def members_for(profile, name: str, specs) -> tuple:
    """The member ids `specs` name in keyring `name`. A member number of the keyring is that member;
    an enrollment id is the member made from that enrollment (one application of a device);
    anything else names a device (serial in either spelling, reader or device name, `emulator`)
    and stands for EVERY member on that device. Refused when nothing, or members on several
    devices, match."""
    keyring = load_keyring(profile, name)
    chosen = []
    for spec in specs:
        found = _members_named(profile, keyring, spec)
        chosen += [member_id for member_id in found if member_id not in chosen]
    return tuple(chosen)


def _members_named(profile, keyring: kr.Keyring, spec: str) -> list:
    number = ascii_int(spec)  # ASCII digits only: int() would read '٢' as member 2
    if number is not None and any(m.member_id == number for m in keyring.members):
        return [number]
    if spec in profile.enrollments:
        wanted = describe_enrollment(profile.enrollment(spec).to_json())
        found = [m.member_id for m in keyring.members if describe_enrollment(m.device) == wanted]
        if found:
            return found
    named = [m for m in keyring.members
             if Enrollment.from_json(m.device).named_by(spec) or spec == describe_enrollment(m.device)
             or (m.device.get("serial") and (spec == m.device["serial"] or same_serial(m.device["serial"], spec)))]
    if not named:
        raise InvalidInputError(f"keyring {keyring.name!r} has no member {spec}, and no member on a device of that "
                                f"name or serial (`sealcodes keyring show {keyring.name}`)")
    devices = shared_devices(named) if len(named) > 1 else ((named[0].member_id,),)
    if len(named) > 1 and not (len(devices) == 1 and len(devices[0]) == len(named)):
        raise InvalidInputError(f"{spec!r} names members of {keyring.name!r} on several devices; give the member "
                                "numbers (`sealcodes keyring show`)")
    return [m.member_id for m in keyring.members if any(same_device(m.device, n.device) for n in named)
            or m in named]


def list_keyrings(store: ProfileStore) -> list:
    profile = store.load()
    return [summary(profile, load_keyring(profile, name)) for name in sorted(keyrings_of(profile))]


def show(store: ProfileStore, name: str) -> KeyringSummary:
    profile = store.load()
    return summary(profile, load_keyring(profile, name))


def export(store: ProfileStore, name: str) -> kr.Keyring:
    return load_keyring(store.load(), name)
