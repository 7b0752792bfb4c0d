"""`sealcodes sheet`: the printable sheet of a set, to stdout, to a printer pipe, or to a named file."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys

import click

from .. import operations, sheet as sheets
from ..devices import BACKENDS
from .util import CliFail, CliInteraction, wait_option

LP_TIMEOUT_S = 60


def _print(pdf: bytes, printer: str) -> str:
    """Send the PDF to CUPS `lp` through a pipe (no spool file of ours); returns lp's answer."""
    lp = shutil.which("lp")
    if lp is None:
        raise CliFail("`lp` (CUPS) is not installed: install cups-client, or use --pdf | lp")
    command = [lp, "-t", "sealcodes sheet"] + (["-d", printer] if printer else [])
    try:
        done = subprocess.run(command, input=pdf, capture_output=True, timeout=LP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CliFail("`lp` did not answer in time; nothing printed?") from None
    except OSError as exc:
        raise CliFail(f"cannot run `lp`: {exc.strerror}") from None
    answer = sheets.escape_untrusted(done.stdout.decode("utf-8", "replace").strip())
    if done.returncode != 0:
        why = sheets.escape_untrusted(done.stderr.decode("utf-8", "replace").strip().splitlines()[0]
                                      if done.stderr.strip() else f"exit status {done.returncode}")
        raise CliFail(f"printing failed: {why}")
    return answer


def _write_file(path: str, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise CliFail(f"cannot write {click.format_filename(path)}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise CliFail(f"cannot write {click.format_filename(path)}: {exc.strerror}") from None


@click.command()
@click.argument("label")
@click.option("--pdf", "as_pdf", is_flag=True, help="A PDF on stdout (e.g. `sealcodes sheet L --pdf | lp`).")
@click.option("--print", "printer", is_flag=False, flag_value="", default=None, metavar="[PRINTER]",
              help="Send the PDF to CUPS `lp` through a pipe (default printer, or PRINTER).")
@click.option("--output", metavar="FILE", help="Write the sheet to FILE (PDF if --pdf or FILE ends in .pdf). "
                                               "The file holds your codes in plaintext.")
@click.option("--device", "device_spec", metavar="D", help="Reader name, device serial, or 'emulator'.")
@click.option("--backend", type=click.Choice(list(BACKENDS)), help="Which enrolled device application to use.")
@wait_option
@click.pass_obj
def sheet(ctx, label, as_pdf, printer, output, device_spec, backend, busy_wait):
    """The printable sheet of LABEL's set: codes with tick boxes, fingerprint, devices, keyring.

    Text on stdout by default; nothing is written to disk unless you name a file with --output.
    """
    if printer is not None and output is not None:
        raise CliFail("give --print or --output, not both")
    kind = "pdf" if as_pdf or printer is not None or (output or "").lower().endswith(".pdf") else "text"
    if kind == "pdf" and printer is None and output is None and sys.stdout.isatty():
        raise CliFail("a PDF is binary: pipe it (`| lp`), or use --print or --output FILE")
    store = ctx.store()
    with CliInteraction(busy_wait=busy_wait) as interaction:
        codes = operations.generate(store, label, interaction, device_spec=device_spec, backend=backend)
    data = sheets.sheet_for(store.load(), codes, datetime.date.today().isoformat())
    rendered = sheets.render(data, kind)
    if printer is not None:
        answer = _print(rendered, printer)
        click.echo(f"Sent to the printer{(' ' + sheets.escape_untrusted(printer)) if printer else ''}"
                   f"{': ' + answer if answer else ''}.", err=True)
    elif output is not None:
        _write_file(output, rendered)
        click.echo(f"Warning: {click.format_filename(output)} holds your recovery codes in plaintext: print it, "
                   "then delete it (and empty any trash or backup that copied it).", err=True)
    else:
        stream = click.get_binary_stream("stdout")
        stream.write(rendered)
        stream.flush()


COMMANDS = (sheet,)
