"""Device commands: `devices` lists what is connected, `enroll` seals a secret on one."""

from __future__ import annotations

import click

from .. import operations
from ..devices import BACKENDS
from ..devices.discovery import list_devices
from ..text import printable
from .util import CliInteraction, IntRange, wait_option


@click.command()
def devices():
    """List connected devices (PC/SC readers, FIDO2 keys, the built-in emulator), one per line."""
    listed = list_devices(details=True)
    for device in listed:
        click.echo(printable(device.describe()))  # reader names, USB strings, serials: device data
    if any(device.busy for device in listed):
        click.echo("Note: a busy reader's card is held by another program. With a YubiKey that is usually "
                   "GnuPG's scdaemon: `gpgconf --kill scdaemon`, or `pcsc-shared` in ~/.gnupg/scdaemon.conf.",
                   err=True)


@click.command()
@click.option("--device", "device_spec", metavar="D", help="Reader name, device serial, or 'emulator'.")
@click.option("--backend", type=click.Choice(list(BACKENDS)), help="Device application to use (default: best available).")
@click.option("--slot", type=IntRange(1, 8), help="Slot on the token (applet: 1-8, yubiotp: 1 or 2).")
@click.option("--uv", type=click.Choice(["required", "discouraged"]), help="FIDO2: user verification (PIN) at every use.")
@click.option("--touch", is_flag=True, help="ykoath, yubiotp: require a touch for every use.")
@click.option("--adopt", is_flag=True, help="yubiotp: use a slot that is already programmed, without touching it; "
              "piv, openpgp: use the ECC key already on the card.")
@click.option("--curve", type=click.Choice(["P-256", "P-384"]), help="piv, openpgp: curve of a key made on the card "
              "(default P-256).")
@click.option("--force", is_flag=True, help="Overwrite an existing secret without asking.")
@wait_option
@click.pass_obj
def enroll(ctx, device_spec, backend, slot, uv, touch, adopt, curve, force, busy_wait):
    """Seal a new secret on a device (or adopt one) and record it in the profile."""
    # only what the user gave: a backend refuses an option it does not use
    options = {"slot": slot, "uv": uv, "touch": touch or None, "adopt": adopt or None, "force": force or None,
               "curve": curve}
    with CliInteraction(assume_yes=force, busy_wait=busy_wait) as interaction:
        result = operations.enroll(ctx.store(), device_spec, interaction, backend=backend, **options)
    enrollment = result.enrollment
    click.echo(f"Enrolled {printable(result.enrollment_id)} ({enrollment.backend}).")
    if result.orphaned:
        click.echo(f"Note: {printable(result.enrollment_id)} was enrolled before; its new secret no longer gives the codes of "
                   f"{len(result.orphaned)} set(s): {', '.join(printable(o) for o in result.orphaned)}. Their printed codes still work "
                   "where they were registered; `sealcodes rotate LABEL` makes a new set from the new secret.",
                   err=True)
    if enrollment.backend == "fido2" and enrollment.discoverable is False:
        click.echo("Note: this key could not store a discoverable credential. Its credential id is only in "
                   "the profile: keep a copy of the profile (it holds no secrets), or `recover` cannot "
                   "find your sets without it.", err=True)
    if enrollment.device_kind == "emulator":
        click.echo("Note: the built-in emulator is a SOFTWARE token, not hardware-backed.", err=True)


COMMANDS = (devices, enroll)
