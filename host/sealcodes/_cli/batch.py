"""`sealcodes batch enroll`: enroll a fleet of devices from a CSV file, one verifier record per person."""

from __future__ import annotations

import sys

import click

from .. import batch
from ..devices import BACKENDS
from .util import CliFail, CliInteraction
from .verifier import shown


class CliProgress(batch.BatchProgress):
    def __init__(self, wait: bool):
        self.wait = wait

    def _who(self, row, index, total):
        return f"[{index}/{total}] {shown(row.account)}  {shown(row.label)}"

    def skipped(self, row, index, total):
        click.echo(f"{self._who(row, index, total)}: already done, skipped", err=True)

    def waiting(self, row, index, total):
        device = f"the device with serial {shown(row.serial)}" if row.serial else "the device"
        if self.wait:
            click.prompt(f"{self._who(row, index, total)}: insert {device}, then press Enter", default="",
                         show_default=False, err=True)
        else:
            click.echo(f"{self._who(row, index, total)}: enrolling {device}", err=True)

    def done(self, row, index, total, fingerprint):
        click.echo(f"{self._who(row, index, total)}: done, fingerprint {fingerprint}", err=True)

    def failed(self, row, index, total, error):
        click.echo(f"{self._who(row, index, total)}: FAILED (line {row.line}): {shown(error)}", err=True)


@click.group("batch")
def batch_group():
    """Fleet operations."""


@batch_group.command("enroll")
@click.option("--csv", "csv_path", required=True, metavar="FILE",
              help="Columns account,label[,serial,format,count,pin]; one row per person.")
@click.option("--output", "output_path", required=True, metavar="FILE",
              help="JSON lines of verifier records (appended; rows already there are skipped).")
@click.option("--backend", type=click.Choice(list(BACKENDS)), help="Device application to enroll (default: best available).")
@click.option("--no-wait", is_flag=True, help="Do not wait for Enter before each row (devices already connected).")
@click.pass_obj
def enroll_command(ctx, csv_path, output_path, backend, no_wait):
    """Enroll each person's device, make their set, write their verifier record.

    Initial PINs come from the CSV's pin column, else from a hidden prompt (or stdin); they are
    never logged. A failed row is reported and skipped; rerunning skips rows already done.
    """
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read(batch.MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise CliFail(f"cannot read the CSV file: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise CliFail("the CSV file is not UTF-8 text") from None
    rows = batch.read_rows(text)
    wait = not no_wait and sys.stdin.isatty()
    result = batch.enroll_rows(ctx.store(), rows, output_path, lambda row: batch.RowInteraction(row, CliInteraction()),
                               CliProgress(wait), backend=backend)
    click.echo(f"{result.enrolled} enrolled, {result.skipped} already done, {result.failed} failed; "
               f"records in {shown(output_path)}", err=True)
    if result.failed:
        sys.exit(1)


COMMANDS = (batch_group,)
