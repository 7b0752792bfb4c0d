"""The `sealcodes` command line. The only place that prints, prompts or imports click."""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import SealcodesError
from ..log import get_logger
from ..memory import disable_core_dumps
from ..text import printable
from . import logs
from .util import EXIT_ERROR, CliFail, Context

log = get_logger("sealcodes")

#: command name -> the module of this package that defines it (in its COMMANDS). A command's module
#: is imported only when that command runs (or for --help): `generate` never loads the verifier,
#: batch or keyring code and what they import (tests/test_cli_imports.py).
COMMAND_MODULES = {
    "batch": "batch", "check": "codes", "demo": "demo", "devices": "device", "enroll": "device",
    "expand": "codes", "generate": "codeset", "keyring": "keyring", "list": "listing", "recover": "codeset",
    "rotate": "codeset", "sheet": "sheet", "verifier": "verifier",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx, name):
        module_name = COMMAND_MODULES.get(name)
        if module_name is None:
            return None
        module = importlib.import_module(f"{__name__}.{module_name}")
        return next(command for command in module.COMMANDS if command.name == name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sealcodes")
@click.option("--profile", "profile_path", envvar="SEALCODES_PROFILE", metavar="PATH",
              help="Profile file (default: $XDG_CONFIG_HOME/sealcodes/profile.json on Linux; "
                   "~/Library/Application Support/sealcodes/profile.json on macOS; "
                   "%APPDATA%\\sealcodes\\profile.json on Windows).")
@click.option("--debug", is_flag=True, help="Log what happens (never secrets) to stderr.")
@click.pass_context
def cli(ctx, profile_path, debug):
    """Recovery codes derived from a secret sealed in your security key or smartcard.

    The device computes an HMAC over (label, epoch); sealcodes turns the answer into
    codes by a fixed public derivation. Nothing secret is ever written to disk.
    """
    logs.configure(debug)
    ctx.obj = Context(profile_path=profile_path, debug=debug)


def main(argv=None):
    disable_core_dumps()
    try:
        cli.main(args=argv, prog_name="sealcodes", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.message = printable(exc.message)  # it may quote what was typed on the command line
        exc.show()
        sys.exit(exc.exit_code)
    except CliFail as exc:
        click.echo(f"Error: {printable(exc)}", err=True)
        sys.exit(exc.exit_code)
    except SealcodesError as exc:
        # messages quote device strings, labels and profile content: never raw on the terminal
        click.echo(f"Error: {printable(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # never a traceback for users; the type says where to look
        log.debug("unexpected failure", exc_info=True)
        click.echo(f"Error: unexpected failure ({type(exc).__name__}); run with --debug for details", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(0)
