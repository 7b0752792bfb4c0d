"""Code set commands: `generate`, `rotate`, `recover`."""

from __future__ import annotations

import click

from .. import operations
from ..devices import BACKENDS
from ..operations import COUNT_RANGE, DEFAULT_COUNT, DEFAULT_EPOCH, DEFAULT_FORMAT, EPOCH_RANGE
from .util import FORMAT_CHOICE, CliInteraction, echo_codes

_epoch_type = click.IntRange(*EPOCH_RANGE)
_count_type = click.IntRange(*COUNT_RANGE)

_device = click.option("--device", "device_spec", metavar="D", help="Reader name, device serial, or 'emulator'.")
_backend = click.option("--backend", type=click.Choice(list(BACKENDS)),
                        help="Which enrolled device application to use, when a device has several.")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a numbered sheet.")


@click.command()
@click.argument("label")
@click.option("--epoch", type=_epoch_type, help=f"Rotation counter (default: the recorded one, or {DEFAULT_EPOCH}).")
@click.option("--format", "fmt", type=FORMAT_CHOICE, help=f"Code format (default: recorded, or {DEFAULT_FORMAT}).")
@click.option("--count", type=_count_type, help=f"How many codes (default: recorded, or {DEFAULT_COUNT}).")
@_json
@_device
@_backend
@click.pass_obj
def generate(ctx, label, epoch, fmt, count, as_json, device_spec, backend):
    """Show the codes for LABEL, asking the device; the first time, record the set."""
    codes = operations.generate(ctx.store(), label, CliInteraction(), epoch=epoch, fmt=fmt, count=count,
                                device_spec=device_spec, backend=backend)
    echo_codes(codes, as_json, software_token=_on_emulator(ctx, label))


@click.command()
@click.argument("label")
@click.option("--format", "fmt", type=FORMAT_CHOICE, help="Code format of the new set (default: unchanged).")
@click.option("--count", type=_count_type, help="How many codes (default: unchanged).")
@_json
@_device
@click.pass_obj
def rotate(ctx, label, fmt, count, as_json, device_spec):
    """Replace LABEL's codes: epoch + 1, every code changes; shows and records the new set."""
    codes = operations.rotate(ctx.store(), label, CliInteraction(), device_spec=device_spec, fmt=fmt, count=count)
    echo_codes(codes, as_json, software_token=_on_emulator(ctx, label))


@click.command()
@click.argument("label")
@click.option("--fingerprint", required=True, metavar="XXXX-XXXX", help="The fingerprint printed on your sheet.")
@click.option("--epoch", type=_epoch_type, default=DEFAULT_EPOCH, show_default=True)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default=DEFAULT_FORMAT, show_default=True)
@click.option("--count", type=_count_type, default=DEFAULT_COUNT, show_default=True)
@_json
@_device
@_backend
@click.pass_obj
def recover(ctx, label, fingerprint, epoch, fmt, count, as_json, device_spec, backend):
    """Regenerate a set with no profile: only the answer matching FINGERPRINT is shown."""
    codes = operations.recover(label, fingerprint, CliInteraction(), epoch=epoch, fmt=fmt, count=count,
                               device_spec=device_spec, backend=backend)
    echo_codes(codes, as_json, software_token=device_spec == "emulator")


def _on_emulator(ctx, label):
    try:
        profile = ctx.store().load()
        entry = profile.code_set(operations.derivation.normalize_label_text(label))
        return profile.enrollment(entry.enrollment).device_kind == "emulator"
    except Exception:
        return False


COMMANDS = (generate, rotate, recover)
