"""Shared pieces of the CLI: context, interaction (PIN and touch prompts), code output."""

from __future__ import annotations

import hmac
import sys
from dataclasses import dataclass

import click

from ..backends.base import Interaction
from ..formats import FORMATS
from ..errors import InvalidInputError
from ..memory import wipe
from ..numerals import ascii_decimal, ascii_int
from ..profile import ProfileStore
from ..text import json_text, printable
from .fail import EXIT_ERROR, EXIT_OK, CliFail  # noqa: F401 (the CLI modules take them from here)

FORMAT_CHOICE = click.Choice(list(FORMATS))


class _AsciiNumber:
    """A click number type read by `read` (numerals: ASCII digits only, like every number sealcodes
    reads): click's own takes whatever int() and float() take: '١٢' is 12, ' 3' is 3, '1_0' is 10,
    and 'nan' (which every range check lets through), 'inf' and '1e3' are floats."""

    read = staticmethod(ascii_int)
    spelled = "digits 0-9"

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            number = self.read(value)
            if number is None:
                self.fail(f"{printable(value)!r} is not a number ({self.spelled})", param, ctx)
            value = number
        return super().convert(value, param, ctx)


class IntRange(_AsciiNumber, click.IntRange):
    """click.IntRange of ASCII digits."""


class FloatRange(_AsciiNumber, click.FloatRange):
    """click.FloatRange of ASCII digits and one '.'."""

    read = staticmethod(ascii_decimal)
    spelled = "digits 0-9 and one '.'"


def wait_option(command):
    """--wait SECONDS: how long a command waits for a device another program holds."""
    from ..pcsc import DEFAULT_BUSY_WAIT_S

    return click.option("--wait", "busy_wait", type=FloatRange(0, 3600), metavar="SECONDS",
                        help=f"How long to wait for a device another program holds, e.g. GnuPG's scdaemon "
                             f"(default: {DEFAULT_BUSY_WAIT_S:g}).")(command)


@dataclass
class Context:
    """The global options of one `sealcodes` invocation."""

    profile_path: str | None
    debug: bool

    def store(self) -> ProfileStore:
        return ProfileStore(self.profile_path)


class CliInteraction(Interaction):
    """PINs from a hidden prompt, or one line each from stdin when it is not a terminal.

    Use it as a context manager: a PIN is typed once per command and purpose, kept in a bytearray,
    and every backend gets its own copy (which the backend wipes); the kept one is wiped when the
    command ends, whatever happens.
    """

    def __init__(self, assume_yes=False, busy_wait=None):
        self.assume_yes = assume_yes
        self.busy_wait = busy_wait  # --wait: None is the connection's default
        self._pins = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for pin in self._pins.values():
            wipe(pin)
        self._pins.clear()

    def request_pin(self, purpose, new=False):
        from .secret_input import ask_pin

        if purpose not in self._pins:
            what = {"applet": "token PIN", "fido2": "FIDO2 PIN", "ykoath": "OATH access code", "piv": "PIV PIN",
                    "openpgp": "OpenPGP user PIN", "openpgp-admin": "OpenPGP admin PIN"}.get(purpose, "PIN")
            self._pins[purpose] = ask_pin(what, new)
        return bytearray(self._pins[purpose])

    def touch_needed(self):
        click.echo("Touch your security key...", err=True)

    def notice(self, message):
        click.echo(printable(message), err=True)  # it may quote device strings

    def device_busy(self, name):
        click.echo(f"waiting for {printable(name)} (in use by another program)...", err=True)

    def next_device(self, description):
        """A keyring asks its members one after another: PINs of one device never go to the next."""
        self.close()
        click.echo(f"Asking {description}", err=True)

    def confirm(self, message):
        if self.assume_yes:
            return True
        if not sys.stdin.isatty():
            return False
        return click.confirm(printable(message), default=False, err=True)


def echo_codes(codes, as_json=False, software_token=False):
    """The numbered code sheet (or JSON) on stdout; never anywhere else."""
    if as_json:
        click.echo(json_text({
            "label": codes.label,
            "epoch": codes.epoch,
            "format": codes.format,
            "fingerprint": codes.fingerprint,
            "codes": list(codes.codes),
        }))
        return
    # a label may hold bidi overrides or invisible characters (valid in v1): shown escaped
    click.echo(f"Recovery codes for {printable(codes.label)}  (epoch {codes.epoch}, {codes.format})")
    if software_token:
        click.echo("Made by the built-in SOFTWARE token: not hardware-backed, for trying sealcodes only.")
    width = len(str(len(codes.codes)))
    for number, code in enumerate(codes.codes, start=1):
        click.echo(f"  {number:>{width}}. {code}")
    click.echo(f"Fingerprint: {codes.fingerprint}")


def interactive() -> bool:
    """A person at a terminal (stdin and stderr): only then is a new set typed back."""
    return sys.stdin.isatty() and sys.stderr.isatty()


class TypeBack:
    """`before_record` for generate/rotate: show the new codes, then ask for one chosen at random
    ("type code #7 from your sheet"); a wrong answer may be retried, an empty one aborts."""

    def __init__(self, as_json=False, software_token=False):
        self.as_json = as_json
        self.software_token = software_token
        self.shown = False

    def __call__(self, codes) -> bool:
        from .. import formats

        echo_codes(codes, self.as_json, self.software_token)
        sys.stdout.flush()  # the codes are on screen (or in the pipe) before the question
        self.shown = True
        import secrets  # only for a new set's type-back check

        number = secrets.randbelow(len(codes.codes)) + 1
        expected = formats.parse_code(codes.codes[number - 1], codes.format)
        click.echo("Write the codes down (or print them with `sealcodes sheet`) before going on.", err=True)
        while True:
            typed = click.prompt(f"Type code #{number} from your sheet (empty line: abort)", default="",
                                 show_default=False, err=True)
            if not typed.strip():
                return False
            try:
                ok = hmac.compare_digest(formats.parse_code(typed, codes.format).encode(), expected.encode())
            except InvalidInputError as exc:
                click.echo(f"Not a {codes.format} code ({exc}); try again.", err=True)
                continue
            finally:
                del typed
            if ok:
                click.echo("Confirmed: this set is now the current one.", err=True)
                return True
            click.echo(f"That is not code #{number}. Try again, or an empty line to abort.", err=True)
