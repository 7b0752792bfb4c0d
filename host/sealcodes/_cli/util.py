"""Shared pieces of the CLI: context, interaction (PIN and touch prompts), code output."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from ..backends.base import Interaction
from ..memory import wipe
from ..profile import ProfileStore
from ..text import json_text, printable

EXIT_OK = 0
EXIT_ERROR = 1

FORMAT_CHOICE = click.Choice(["base32-16", "base32-24", "digits-24"])


class CliFail(Exception):
    """One clear line for the user, then exit."""

    def __init__(self, message, exit_code=EXIT_ERROR):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Context:
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

    def __init__(self, assume_yes=False):
        self.assume_yes = assume_yes
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
