"""Keyring commands: `keyring create|add|remove|list|show|export` (docs/backup.md)."""

from __future__ import annotations

import click

from .. import keyring as kr
from .. import keyring_operations as ops
from ..sheet import escape_untrusted
from .util import CliFail, CliInteraction, IntRange, TypeBack, echo_codes, interactive


def _echo_summary(summary, header=True, err=False):
    if header:
        kind = "any 1" if summary.threshold == 1 else f"any {summary.threshold}"
        click.echo(f"Keyring {summary.name}: {kind} of {len(summary.members)} members", err=err)
    for member_id, description in summary.members:
        click.echo(f"  {member_id}. {escape_untrusted(description)}", err=err)
    if summary.sets:
        click.echo("  sets: " + ", ".join(escape_untrusted(label) for label in summary.sets), err=err)
    for ids in summary.shared:
        click.echo(f"  members {_listed(ids)} are on one device", err=err)


def _listed(ids) -> str:
    ids = [str(i) for i in ids]
    return ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


def _warn_shared(summary):
    """At create and add: k counts members, not devices."""
    for ids in summary.shared:
        click.echo(f"Warning: members {_listed(ids)} of keyring {summary.name} are on one device. The threshold "
                   f"counts members, not devices: that device alone counts as {len(ids)} of the "
                   f"{summary.threshold} needed, and whoever holds it holds all {len(ids)}. To revoke it, remove the "
                   "device (`sealcodes keyring remove NAME SERIAL`: every member on it), not one member.", err=True)


@click.group(epilog=f"Warning: {ops.COMPROMISE_WARNING}; `keyring remove` re-seeds the keyring.")
def keyring():
    """One code set from any of several devices (or any k of them): create and manage keyrings."""


@keyring.command()
@click.argument("name")
@click.option("--device", "device_specs", multiple=True, required=True, metavar="D",
              help="An enrolled device (enrollment id, serial, reader name, or 'emulator'); at least twice.")
@click.option("--threshold", type=IntRange(1, 255), default=1, show_default=True,
              help="How many members must be present to open the keyring (k of n).")
@click.pass_obj
def create(ctx, name, device_specs, threshold):
    """Make a random set seed and wrap it for every device (all must be connected now)."""
    with CliInteraction() as interaction:
        summary = ops.create(ctx.store(), name, list(device_specs), interaction, threshold=threshold)
    _echo_summary(summary)
    _warn_shared(summary)
    click.echo(f"Bind sets to it with `sealcodes generate LABEL --keyring {name}`; keep `sealcodes keyring "
               f"export {name}` (or the sheet) with your paper codes.", err=True)


@keyring.command()
@click.argument("name")
@click.option("--device", "device_spec", required=True, metavar="D", help="The enrolled device to add.")
@click.pass_obj
def add(ctx, name, device_spec):
    """Add a device: k present members open the keyring, the new one gets its own envelope."""
    with CliInteraction() as interaction:
        summary = ops.add(ctx.store(), name, device_spec, interaction)
    _echo_summary(summary)
    _warn_shared(summary)
    click.echo("Export the keyring again (or print a new sheet): older exports lack the new member.", err=True)


def _check_accounts(ctx, param, pairs):
    """--account LABEL ACCOUNT pairs as {label: (account, ...)}, each account checked before any device."""
    if not pairs:
        return {}
    from .verifier import check_account_option

    from ..derivation import normalize_label_text

    accounts = {}
    for label, account in pairs:
        try:
            label = normalize_label_text(label)  # NFC and NFD spellings of one label are one set
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        accounts.setdefault(label, {})[check_account_option(ctx, param, account)] = None
    return {label: tuple(names) for label, names in accounts.items()}


@keyring.command(epilog=f"Warning: {ops.COMPROMISE_WARNING}.")
@click.argument("name")
@click.argument("members", nargs=-1, required=True, metavar="MEMBER...")
@click.option("--threshold", type=IntRange(1, 255),
              help="The threshold k of the re-seeded keyring (default: unchanged; needed when fewer than k "
                   "members would be left).")
@click.option("--drop-absent", is_flag=True,
              help="Also remove the members that are not connected (listed, and asked unless --yes).")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
@click.option("--json", "as_json", is_flag=True, help="Print the new codes of each set as one JSON line.")
@click.option("--no-confirm", is_flag=True,
              help="Record the rotated sets without typing a code of each back (non-interactive runs never ask).")
@click.option("--verifier-record", "verifier_record", is_flag=True,
              help="Print each rotated set's verifier record (one JSON line per set, no codes, with the proof "
                   "that the old keyring made it) instead of its codes, once the removal is saved.")
@click.option("--account", "accounts", nargs=2, multiple=True, metavar="LABEL ACCOUNT", callback=_check_accounts,
              help="With --verifier-record: the verifier account of set LABEL (default: the label); repeat it for "
                   "other sets, or for a set that logs in several accounts (one record each).")
@click.option("--rotate/--no-rotate", "do_rotate", default=None, hidden=True)
@click.pass_obj
def remove(ctx, name, members, threshold, drop_absent, yes, as_json, no_confirm, verifier_record, accounts,
           do_rotate):
    """Remove MEMBER from keyring NAME: its number from `keyring show`, its enrollment id, or a
    device (serial, reader name, `emulator`), which removes every member on that device.

    Removal re-seeds the keyring: k members open it, every member left proves its device by opening
    its envelope, answers a new challenge and gets an envelope of a new seed (so every member left
    must be connected), and every set of the keyring is rotated onto it (epoch + 1). The removed
    device, even with an old export or sheet, derives none of the new codes; the codes of earlier
    epochs stay known to it. Nothing changes unless all of it succeeds; the verifier records are
    printed once the removal is saved.
    """
    if do_rotate is False:
        raise CliFail("--no-rotate is gone: removal re-seeds the keyring, so its sets are always rotated")
    if accounts and not verifier_record:
        raise CliFail("--account goes with --verifier-record")
    store = ctx.store()
    profile = store.load()
    member_ids = ops.members_for(profile, name, members)
    current = ops.load_keyring(profile, name)
    sets = ops.sets_of_keyring(profile, name)
    for stays, leaves in ops.staying_on_a_leaving_device(current, member_ids):
        click.echo(f"Warning: member {stays} stays, on the same device as member {leaves}: that device keeps "
                   f"opening keyring {name} through it. To revoke the device, remove every member on it (name the "
                   "device by its serial, or give all their numbers).", err=True)
    interaction = CliInteraction(assume_yes=yes)
    question = f"Remove member {_listed(member_ids)} from keyring {name}? It re-seeds the keyring"
    question += (", and rotates " + ", ".join(sets) + "." if sets else ".")
    if not yes and not interaction.confirm(question):
        raise CliFail("not removed (confirm at a terminal, or pass --yes)")
    software = any(m.device.get("device_kind") == "emulator" for m in current.members)
    asks = not (no_confirm or verifier_record) and interactive()
    type_back = TypeBack(as_json, software_token=software) if asks else None
    with interaction:
        removal = ops.remove(store, name, member_ids, interaction, threshold=threshold, drop_absent=drop_absent,
                             before_record=type_back, records=verifier_record, accounts=accounts)
    later = _print_again(ctx, removal)
    if verifier_record:  # only now: the profile holds the new keyring (and the old one, to print them again)
        from .verifier import echo_verifier_records

        echo_verifier_records(removal.records, empty=f"no code set is bound to keyring {name}",
                              failed=f"the removal is saved; print the records with: {later}")
    elif type_back is None or not type_back.shown:
        for codes in removal.codes:
            echo_codes(codes, as_json, software_token=software)
    for _member_id, description in removal.removed:
        click.echo(f"Removed {escape_untrusted(description)}", err=True)
    _echo_summary(removal.summary, err=as_json or verifier_record)
    click.echo(f"{ops.REMOVAL_NOTE[0].upper()}{ops.REMOVAL_NOTE[1:]}.", err=True)
    if removal.summary.sets:
        rotated = ", ".join(escape_untrusted(label) for label in removal.summary.sets)
        click.echo(f"Rotated: {rotated}. Export the keyring again (or print new sheets): older exports and sheets "
                   "are obsolete.", err=True)
        if not verifier_record:
            click.echo(f"Warning: a verifier that holds {rotated} must get their new records now: until it does, "
                       "the removed member (with any old export or sheet) can replace them there with codes of its "
                       f"own. Print the records with: {later}", err=True)
    else:
        click.echo("Export the keyring again (or print a new sheet): older exports and sheets are obsolete.", err=True)


def _print_again(ctx, removal) -> str:
    """The commands that print the rotated sets' records again, proven from the epoch before the
    removal (the profile keeps the old keyring document for it), for the terminal."""
    import shlex

    profile = f" --profile {shlex.quote(ctx.profile_path)}" if ctx.profile_path else ""
    commands = []
    for label, epoch, accounts in removal.rotated_from:
        named = "".join(f" --account {shlex.quote(account)}" for account in accounts)
        commands.append(f"sealcodes{profile} generate {shlex.quote(label)} --verifier-record{named} "
                        f"--proof-from-epoch {epoch}")
    return escape_untrusted("; ".join(commands))


@keyring.command(name="list")
@click.pass_obj
def list_(ctx):
    """Every keyring of the profile with its members."""
    for summary in ops.list_keyrings(ctx.store()):
        _echo_summary(summary)


@keyring.command()
@click.argument("name")
@click.pass_obj
def show(ctx, name):
    """The members and sets of keyring NAME."""
    _echo_summary(ops.show(ctx.store(), name))


@keyring.command()
@click.argument("name")
@click.option("--text", "as_text", is_flag=True, help="The SCK1 paper form instead of JSON.")
@click.pass_obj
def export(ctx, name, as_text):
    """Print keyring NAME's envelopes (not secret: they open only with the devices) for a backup."""
    found = ops.export(ctx.store(), name)
    click.echo(kr.to_paper(found) if as_text else kr.to_json(found))


COMMANDS = (keyring,)
