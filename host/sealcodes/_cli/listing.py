"""`sealcodes list`: every code set of the profile, without any device."""

from __future__ import annotations

import shlex

import click

from ..listing import list_sets
from ..text import json_text, printable


def _when(timestamp, unknown="unknown") -> str:
    """'2025-01-31 12:34 UTC' from a recorded UTC timestamp."""
    return f"{timestamp[:10]} {timestamp[11:16]} UTC" if timestamp else unknown


def _source(listed) -> str:
    """Where the set's codes come from, in one line (device strings escaped by the caller)."""
    if listed.keyring is not None:
        if listed.threshold is None:
            return f"keyring {listed.keyring} (not in the profile)"
        return (f"keyring {listed.keyring}, any {listed.threshold} of {len(listed.members)}: "
                + "; ".join(member.summary for member in listed.members))
    if listed.backend is None:
        return f"enrollment {listed.enrollment} (not in the profile)"
    if listed.device_kind not in ("pcsc", "hid"):
        return f"{listed.backend} on the {listed.device_kind} (SOFTWARE token), enrollment {listed.enrollment}"
    device = "reader" if listed.device_kind == "pcsc" else "HID key"
    where = ", ".join(x for x in (f"serial {listed.serial}" if listed.serial else "",
                                  f"{device} {listed.device_name}" if listed.device_name else "") if x)
    return f"{listed.backend} on {where or listed.device_kind}, enrollment {listed.enrollment}"


def _as_json(listed) -> dict:
    device = None
    if listed.backend is not None:
        device = {"kind": listed.device_kind, "name": listed.device_name, "serial": listed.serial}
    members = [{"member": m.member, "backend": m.backend,
                "device": {"kind": m.device_kind, "name": m.device_name, "serial": m.serial}, "summary": m.summary}
               for m in listed.members]
    return {"label": listed.label, "epoch": listed.epoch, "format": listed.format, "count": listed.count,
            "fingerprint": listed.fingerprint, "enrollment": listed.enrollment, "backend": listed.backend,
            "device": device, "keyring": listed.keyring, "threshold": listed.threshold, "members": members,
            "created": listed.created, "rotated": listed.rotated}


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON ({\"sets\": [...]}) instead of text.")
@click.pass_obj
def list_(ctx, as_json):
    """Every code set of the profile: label, epoch, format, count, device or keyring, fingerprint,
    when it was made and last rotated. Reads the profile only: needs no device."""
    sets = list_sets(ctx.store())
    if as_json:
        click.echo(json_text({"sets": [_as_json(listed) for listed in sets]}))
        return
    if not sets:
        click.echo("No code sets in the profile yet: `sealcodes generate LABEL` makes one.", err=True)
        return
    for listed in sets:
        label = printable(listed.label)  # labels and device strings: shown escaped
        quoted = printable(shlex.quote(listed.label))
        click.echo(f"{label}  epoch {listed.epoch}, {listed.format}, {listed.count} codes, "
                   f"fingerprint {printable(listed.fingerprint)}")
        click.echo(f"  from {printable(_source(listed))}")
        never = "never" if listed.created else "unknown"
        click.echo(f"  created {_when(listed.created)}, rotated {_when(listed.rotated, never)}")
        click.echo(f"  print it again: sealcodes sheet {quoted}   new codes: sealcodes rotate {quoted}")


COMMANDS = (list_,)
