"""Code set commands: `generate`, `rotate`, `recover`."""

from __future__ import annotations

import click

from .. import operations
from ..devices import BACKENDS
from ..text import has_hidden, printable
from .util import FORMAT_CHOICE, CliInteraction, echo_codes

_device = click.option("--device", "device_spec", metavar="D", help="Reader name, device serial, or 'emulator'.")
_backend = click.option("--backend", type=click.Choice(list(BACKENDS)),
                        help="Which enrolled device application to use, when a device has several.")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a numbered sheet.")


def _verifier_options(command):
    from .verifier import check_account_option

    command = click.option("--account", metavar="A", callback=check_account_option,
                           help="Account name in the verifier record (default: the label).")(command)
    return click.option("--verifier-record", "verifier_record", is_flag=True,
                        help="Print the set's verifier record (JSON, no codes) instead of the codes.")(command)


def _show(codes, as_json, software_token, verifier_record, account):
    if verifier_record:
        from .verifier import echo_verifier_record

        echo_verifier_record(codes, account)
    else:
        echo_codes(codes, as_json, software_token=software_token)


@click.command()
@click.argument("label")
@click.option("--epoch", type=click.IntRange(0, 2**32 - 1), help="Rotation counter (default: the recorded one, or 0).")
@click.option("--format", "fmt", type=FORMAT_CHOICE, help="Code format (default: recorded, or base32-16).")
@click.option("--count", type=click.IntRange(1, 100), help="How many codes (default: recorded, or 10).")
@_json
@_device
@_backend
@_verifier_options
@click.pass_obj
def generate(ctx, label, epoch, fmt, count, as_json, device_spec, backend, verifier_record, account):
    """Show the codes for LABEL, asking the device; the first time, record the set."""
    warn_hidden(label)
    with CliInteraction() as interaction:
        codes = operations.generate(ctx.store(), label, interaction, epoch=epoch, fmt=fmt, count=count,
                                    device_spec=device_spec, backend=backend)
    _show(codes, as_json, _on_emulator(ctx, label), verifier_record, account)


@click.command()
@click.argument("label")
@click.option("--format", "fmt", type=FORMAT_CHOICE, help="Code format of the new set (default: unchanged).")
@click.option("--count", type=click.IntRange(1, 100), help="How many codes (default: unchanged).")
@_json
@_device
@_verifier_options
@click.pass_obj
def rotate(ctx, label, fmt, count, as_json, device_spec, verifier_record, account):
    """Replace LABEL's codes: epoch + 1, every code changes; shows and records the new set."""
    with CliInteraction() as interaction:
        codes = operations.rotate(ctx.store(), label, interaction, device_spec=device_spec, fmt=fmt, count=count)
    _show(codes, as_json, _on_emulator(ctx, label), verifier_record, account)


@click.command()
@click.argument("label")
@click.option("--fingerprint", required=True, metavar="XXXX-XXXX", help="The fingerprint printed on your sheet.")
@click.option("--epoch", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="base32-16", show_default=True)
@click.option("--count", type=click.IntRange(1, 100), default=10, show_default=True)
@_json
@_device
@_backend
@_verifier_options
@click.pass_obj
def recover(ctx, label, fingerprint, epoch, fmt, count, as_json, device_spec, backend, verifier_record, account):
    """Regenerate a set with no profile: only the answer matching FINGERPRINT is shown."""
    with CliInteraction() as interaction:
        codes = operations.recover(label, fingerprint, interaction, epoch=epoch, fmt=fmt, count=count,
                                   device_spec=device_spec, backend=backend)
    _show(codes, as_json, device_spec == "emulator", verifier_record, account)


def warn_hidden(label):
    if has_hidden(label):
        click.echo(f"Warning: the label {printable(label)} contains invisible or direction-changing "
                   "characters (shown escaped); make sure it is the label you mean", err=True)


def warn_hidden(label):
    if has_hidden(label):
        click.echo(f"Warning: the label {printable(label)} contains invisible or direction-changing "
                   "characters (shown escaped); make sure it is the label you mean", err=True)


def _on_emulator(ctx, label):
    try:
        profile = ctx.store().load()
        entry = profile.code_set(operations.derivation.normalize_label_text(label))
        return profile.enrollment(entry["enrollment"]).get("device_kind") == "emulator"
    except Exception:
        return False


COMMANDS = (generate, rotate, recover)
