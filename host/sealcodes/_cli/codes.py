"""Commands that need no device: `expand` (air-gapped derivation) and `check` (typo check)."""

from __future__ import annotations

import binascii
import sys

import click

from .. import derivation, formats
from ..errors import InvalidInputError
from ..memory import wipe
from ..numerals import is_ascii_digits
from ..operations import COUNT_RANGE, DEFAULT_COUNT, DEFAULT_EPOCH, DEFAULT_FORMAT, EPOCH_RANGE
from .secret_input import ask_code
from .util import FORMAT_CHOICE, CliFail, IntRange, echo_codes

MAX_RESPONSE_HEX = 4096


@click.command()
@click.option("--label", required=True, help="What the codes are for, e.g. github.com/alice.")
@click.option("--epoch", type=IntRange(*EPOCH_RANGE), default=DEFAULT_EPOCH, show_default=True,
              help="Rotation counter.")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default=DEFAULT_FORMAT, show_default=True)
@click.option("--count", type=IntRange(*COUNT_RANGE), default=DEFAULT_COUNT, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a numbered sheet.")
def expand(label, epoch, fmt, count, as_json):
    """Turn a device response (hex on stdin) into codes.

    For air-gapped use: take the response on one machine, make the codes on another.
    """
    raw = sys.stdin.read(MAX_RESPONSE_HEX + 1)
    if len(raw) > MAX_RESPONSE_HEX:
        raise CliFail("the response on stdin is too long (expected 16..64 bytes as hex)")
    text = "".join(raw.split())
    try:
        response = bytearray(binascii.unhexlify(text))
    except (binascii.Error, ValueError):
        raise CliFail("the response on stdin is not hex (expected 16..64 bytes as hex digits)") from None
    finally:
        del raw, text
    try:
        codes = derivation.derive(response, label, epoch, fmt, count)
    finally:
        wipe(response)
    echo_codes(codes, as_json)


def _guess_format(code):
    """base32-16 for up to 19 symbols (a mistyped 16 stays a 16), else digits-24 or base32-24."""
    compact = "".join(c for c in code if c not in " -")
    if len(compact) < 20:
        return "base32-16"
    return "digits-24" if is_ascii_digits(compact) else "base32-24"


@click.command()
@click.argument("code", required=False)
@click.option("--format", "fmt", type=FORMAT_CHOICE, help="The code's format (default: guessed from its length).")
def check(code, fmt):
    """Say whether CODE is well-formed or mistyped (exit 0 or 1). Spends no guess anywhere.

    Without CODE (or with -), the code is read from a hidden prompt, or from stdin when it is
    not a terminal, so that it stays out of shell history and the process list.
    """
    if code in (None, "-"):
        code = ask_code()
    fmt = fmt or _guess_format(code)
    try:
        ok = formats.check_matches(code, fmt)
    except InvalidInputError as exc:
        raise CliFail(f"not a {fmt} code: {exc}") from None
    if not ok:
        raise CliFail(f"mistyped: the check symbol does not match (format {fmt})")
    click.echo(f"well-formed {fmt} code")


COMMANDS = (expand, check)
