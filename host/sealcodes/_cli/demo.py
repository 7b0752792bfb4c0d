"""`sealcodes demo`: the whole flow on the built-in emulated token, no hardware needed."""

from __future__ import annotations

import os

import click

from .. import formats, operations
from ..backends.base import Interaction
from ..profile import ProfileStore
from .util import echo_codes

DEMO_LABEL = "demo.example/alice"
DEMO_PIN = "246810"


class _DemoInteraction(Interaction):
    def request_pin(self, purpose, new=False):
        return bytearray(DEMO_PIN.encode())

    def confirm(self, message):
        return True


def _step(text):
    click.echo("")
    click.secho(f"== {text}", bold=True)


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo token and profile (printed paths) instead of deleting them.")
def demo(keep):
    """Run enroll, generate, regenerate, rotate and check on the built-in emulated token.

    The emulated token is SOFTWARE: its secret is a file on this disk. It shows how
    sealcodes works; it is not hardware-backed and not for real accounts.
    """
    import tempfile

    workdir = tempfile.mkdtemp(prefix="sealcodes-demo-")
    previous = os.environ.get("SEALCODES_EMULATOR_DIR")
    os.environ["SEALCODES_EMULATOR_DIR"] = os.path.join(workdir, "token")
    store = ProfileStore(os.path.join(workdir, "profile.json"))
    interaction = _DemoInteraction()
    try:
        click.secho("sealcodes demo on the built-in emulated token (SOFTWARE, NOT hardware-backed)", bold=True)
        _step(f"Enroll: set the demo PIN {DEMO_PIN} and seal a secret in slot 1 of a fresh emulated token")
        result = operations.enroll(store, "emulator", interaction, backend="applet", slot=1)
        click.echo(f"enrolled {result.enrollment_id}")

        _step(f"Generate codes for {DEMO_LABEL} (the token computes an HMAC; the host derives codes)")
        first = operations.generate(store, DEMO_LABEL, interaction, device_spec="emulator")
        echo_codes(first, software_token=True)

        _step("Generate again: the same token gives the same codes; nothing was stored but the fingerprint")
        again = operations.generate(store, DEMO_LABEL, interaction, device_spec="emulator")
        same = list(again.codes) == list(first.codes)
        click.echo("same codes: " + ("yes" if same else "NO (this is a bug)"))

        _step("Rotate: epoch 0 -> 1, every code changes")
        rotated = operations.rotate(store, DEMO_LABEL, interaction, device_spec="emulator")
        echo_codes(rotated, software_token=True)

        _step("Check typed codes: a correct one, and one with a typo")
        good = rotated.codes[0]
        typo = _with_typo(good)
        for text in (good.lower(), typo):
            verdict = "well-formed" if formats.is_well_formed(text, rotated.format) else "mistyped (check symbol)"
            click.echo(f"  {text}: {verdict}")
        if not same:
            raise click.ClickException("demo failed: regenerated codes differ")
    finally:
        if previous is None:
            os.environ.pop("SEALCODES_EMULATOR_DIR", None)
        else:
            os.environ["SEALCODES_EMULATOR_DIR"] = previous
        if keep:
            click.echo(f"\nDemo token and profile kept in {workdir}", err=True)
        else:
            _remove_tree(workdir)
    click.echo("\nDemo finished. Use `sealcodes enroll` with a real key for real accounts.")


def _with_typo(code):
    """The same code with one symbol replaced (a human typo the check symbol catches)."""
    for i, char in enumerate(code):
        if char.isalnum():
            replacement = "7" if char != "7" else "8"
            return code[:i] + replacement + code[i + 1:]
    return code


def _remove_tree(path):
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(path)


COMMANDS = (demo,)
