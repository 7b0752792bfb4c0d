"""Keyring commands: `keyring create|add|remove|list|show|export` (docs/backup.md)."""

from __future__ import annotations

import click

from .. import keyring as kr
from .. import keyring_operations as ops
from ..sheet import escape_untrusted
from .util import CliFail, CliInteraction


def _echo_summary(summary, header=True):
    if header:
        kind = "any 1" if summary.threshold == 1 else f"any {summary.threshold}"
        click.echo(f"Keyring {summary.name}: {kind} of {len(summary.members)} members")
    for member_id, description in summary.members:
        click.echo(f"  {member_id}. {escape_untrusted(description)}")
    if summary.sets:
        click.echo("  sets: " + ", ".join(escape_untrusted(label) for label in summary.sets))


@click.group()
def keyring():
    """One code set from any of several devices (or any k of them): create and manage keyrings."""


@keyring.command()
@click.argument("name")
@click.option("--device", "device_specs", multiple=True, required=True, metavar="D",
              help="An enrolled device (enrollment id, serial, reader name, or 'emulator'); at least twice.")
@click.option("--threshold", type=click.IntRange(1, 255), default=1, show_default=True,
              help="How many members must be present to open the keyring (k of n).")
@click.pass_obj
def create(ctx, name, device_specs, threshold):
    """Make a random set seed and wrap it for every device (all must be connected now)."""
    with CliInteraction() as interaction:
        summary = ops.create(ctx.store(), name, list(device_specs), interaction, threshold=threshold)
    _echo_summary(summary)
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
    click.echo("Export the keyring again (or print a new sheet): older exports lack the new member.", err=True)


@keyring.command()
@click.argument("name")
@click.argument("member")
@click.option("--rotate/--no-rotate", "do_rotate", default=None,
              help="Rotate every set of the keyring afterwards (asked when interactive).")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
@click.pass_obj
def remove(ctx, name, member, do_rotate, yes):
    """Remove MEMBER (its number from `keyring show`, or its device) from keyring NAME."""
    store = ctx.store()
    profile = store.load()
    member_id = ops.member_id_for(profile, name, member)
    interaction = CliInteraction(assume_yes=yes)
    if not yes and not interaction.confirm(f"Remove member {member_id} from keyring {name}?"):
        raise CliFail("not removed (confirm at a terminal, or pass --yes)")
    summary = ops.remove(store, name, member_id)
    _echo_summary(summary)
    click.echo(f"Warning: {ops.REMOVED_WARNING}.", err=True)
    if not summary.sets:
        return
    if do_rotate is None:
        do_rotate = CliInteraction().confirm("Rotate " + ", ".join(escape_untrusted(s) for s in summary.sets) + " now?")
    if not do_rotate:
        click.echo("Rotate them later with `sealcodes rotate LABEL`.", err=True)
        return
    from .. import operations
    from .util import echo_codes

    for label in summary.sets:
        with CliInteraction() as interaction:
            codes = operations.rotate(store, label, interaction)
        echo_codes(codes)


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
