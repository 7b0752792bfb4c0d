"""Code set commands: `generate`, `rotate`, `recover`."""

from __future__ import annotations

import click

import sys

from .. import operations
from ..devices import BACKENDS
from ..operations import COUNT_RANGE, DEFAULT_COUNT, DEFAULT_EPOCH, DEFAULT_FORMAT, EPOCH_RANGE
from ..text import has_hidden, printable
from .util import (FORMAT_CHOICE, CliFail, CliInteraction, IntRange, TypeBack, echo_codes, interactive,
                   wait_option)

_epoch_type = IntRange(*EPOCH_RANGE)
_count_type = IntRange(*COUNT_RANGE)

_device = click.option("--device", "device_spec", metavar="D", help="Reader name, device serial, or 'emulator'.")
_backend = click.option("--backend", type=click.Choice(list(BACKENDS)),
                        help="Which enrolled device application to use, when a device has several.")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a numbered sheet.")
_no_confirm = click.option("--no-confirm", is_flag=True,
                           help="Record a new set without typing one code back (non-interactive runs never ask).")
_keyring = click.option("--keyring", "keyring_name", metavar="NAME",
                        help="Bind the set to a keyring: any member device (k for a k-of-n keyring) regenerates it.")


def _check_accounts(ctx, param, values):
    if not values:
        return ()
    from .verifier import check_account_option  # only when --account is given: generate stays light

    return tuple(dict.fromkeys(check_account_option(ctx, param, value) for value in values))


def _verifier_options(command):
    command = click.option("--account", "accounts", metavar="A", multiple=True, callback=_check_accounts,
                           help="Account name in the verifier record (default: the label); repeat it for a "
                                "set that logs in several accounts: one record each.")(command)
    return click.option("--verifier-record", "verifier_record", is_flag=True,
                        help="Print the set's verifier record (JSON, no codes) instead of the codes.")(command)


class RecordOutput:
    """--verifier-record: makes the records while the device's answer is at hand, and prints them
    BEFORE a new set is recorded in the profile (as the type-back check would), so a record that
    could not be written never leaves the profile a step ahead of the verifier."""

    def __init__(self, accounts):
        from ..verifier.record import RecordMaker

        self.maker = RecordMaker(accounts)
        self.printed = False

    def before_record(self, codes) -> bool:
        self.print()
        return True

    def print(self) -> None:
        if not self.printed:
            from .verifier import echo_verifier_records

            echo_verifier_records(self.maker.records)
            self.printed = True


def _show(codes, as_json, software_token, output):
    if output is not None:
        output.print()
    else:
        echo_codes(codes, as_json, software_token=software_token)


@click.command()
@click.argument("label")
@click.option("--epoch", type=_epoch_type, help=f"Rotation counter (default: the recorded one, or {DEFAULT_EPOCH}).")
@click.option("--format", "fmt", type=FORMAT_CHOICE, help=f"Code format (default: recorded, or {DEFAULT_FORMAT}).")
@click.option("--count", type=_count_type, help=f"How many codes (default: recorded, or {DEFAULT_COUNT}).")
@_json
@_device
@_backend
@_keyring
@_no_confirm
@_verifier_options
@click.option("--proof-from-epoch", "proof_epoch", type=_epoch_type, metavar="N",
              help="With --verifier-record: sign the record with the rotation key of epoch N of this set, for a "
                   "verifier still at epoch N (a rotation whose record never reached it).")
@wait_option
@click.pass_obj
def generate(ctx, label, epoch, fmt, count, as_json, device_spec, backend, keyring_name, no_confirm, verifier_record,
             accounts, proof_epoch, busy_wait):
    """Show the codes for LABEL, asking the device; the first time, record the set.

    A new set is recorded only after you type back one of its codes (skipped with --no-confirm,
    with --verifier-record, and when not run at a terminal).
    """
    warn_hidden(label)
    if proof_epoch is not None and not verifier_record:
        raise CliFail("--proof-from-epoch goes with --verifier-record")
    software = _on_emulator(ctx, label, device_spec, backend, keyring_name)
    asks = not (no_confirm or verifier_record) and interactive()
    type_back = TypeBack(as_json, software_token=software) if asks else None
    output = RecordOutput(accounts) if verifier_record else None
    with CliInteraction(busy_wait=busy_wait) as interaction:
        codes = operations.generate(ctx.store(), label, interaction, epoch=epoch, fmt=fmt, count=count,
                                    device_spec=device_spec, backend=backend, keyring=keyring_name,
                                    before_record=output.before_record if output else type_back,
                                    recorder=output.maker if output else None, proof_epoch=proof_epoch)
    if type_back is None or not type_back.shown:
        _show(codes, as_json, software, output)


@click.command()
@click.argument("label")
@click.option("--format", "fmt", type=FORMAT_CHOICE, help="Code format of the new set (default: unchanged).")
@click.option("--count", type=_count_type, help="How many codes (default: unchanged).")
@_json
@_device
@click.option("--keyring", "keyring_name", metavar="NAME",
              help="Move the set onto this keyring: the new codes come from the keyring's seed.")
@_no_confirm
@_verifier_options
@wait_option
@click.pass_obj
def rotate(ctx, label, fmt, count, as_json, device_spec, keyring_name, no_confirm, verifier_record, accounts,
           busy_wait):
    """Replace LABEL's codes: epoch + 1, every code changes; shows and records the new set.

    The new set becomes current once you type back one of its codes (skipped with --no-confirm,
    with --verifier-record, and when not run at a terminal); until then the old set stays current.
    With --verifier-record the record carries the proof that the current set's device made it, and
    is printed before the profile moves on.
    """
    software = _on_emulator(ctx, label)
    asks = not (no_confirm or verifier_record) and interactive()
    type_back = TypeBack(as_json, software_token=software) if asks else None
    output = RecordOutput(accounts) if verifier_record else None
    with CliInteraction(busy_wait=busy_wait) as interaction:
        codes = operations.rotate(ctx.store(), label, interaction, device_spec=device_spec, fmt=fmt,
                                  count=count, before_record=output.before_record if output else type_back,
                                  keyring=keyring_name, recorder=output.maker if output else None)
    if type_back is None or not type_back.shown:
        _show(codes, as_json, software, output)


@click.command()
@click.argument("label")
@click.option("--fingerprint", required=True, metavar="XXXX-XXXX", help="The fingerprint printed on your sheet.")
@click.option("--epoch", type=_epoch_type, default=DEFAULT_EPOCH, show_default=True)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default=DEFAULT_FORMAT, show_default=True)
@click.option("--count", type=_count_type, default=DEFAULT_COUNT, show_default=True)
@_json
@_device
@_backend
@click.option("--keyring", "keyring_name", metavar="NAME", help="Open this keyring of the profile.")
@click.option("--credential-id", metavar="ID",
              help="FIDO2: the credential id printed on the sheet (for a key that could not store a "
                   "discoverable credential).")
@click.option("--keyring-file", metavar="FILE",
              help="A keyring exported with `sealcodes keyring export` (JSON, or the SCK1 text of the sheet; "
                   "- reads stdin): no profile needed.")
@_verifier_options
@wait_option
@click.pass_obj
def recover(ctx, label, fingerprint, epoch, fmt, count, as_json, device_spec, backend, keyring_name, credential_id,
            keyring_file, verifier_record, accounts, busy_wait):
    """Regenerate a set with no profile: only the answer matching FINGERPRINT is shown."""
    if keyring_name is not None or keyring_file is not None:
        if keyring_name is not None and keyring_file is not None:
            raise CliFail("give --keyring or --keyring-file, not both")
        from ..keyring_operations import load_keyring

        keyring = (load_keyring(ctx.store().load(), keyring_name) if keyring_name is not None
                   else read_keyring_file(keyring_file))
        output = RecordOutput(accounts) if verifier_record else None
        with CliInteraction(busy_wait=busy_wait) as interaction:
            codes = operations.recover_with_keyring(label, fingerprint, keyring, interaction, epoch=epoch,
                                                    fmt=fmt, count=count, recorder=output and output.maker)
        software = any(m.device.get("device_kind") == "emulator" for m in keyring.members)
        _show(codes, as_json, software, output)
        return
    output = RecordOutput(accounts) if verifier_record else None
    with CliInteraction(busy_wait=busy_wait) as interaction:
        codes = operations.recover(label, fingerprint, interaction, epoch=epoch, fmt=fmt, count=count,
                                   device_spec=device_spec, backend=backend, credential_id=credential_id,
                                   recorder=output and output.maker)
    _show(codes, as_json, device_spec == "emulator", output)


def read_keyring_file(path):
    """A keyring document from FILE (or stdin for -), capped in size; JSON or the sheet's SCK1 text."""
    from .. import keyring as kr

    limit = kr.UTF8_MAX_BYTES * kr.MAX_PAPER_CHARS  # the readers count characters; this caps the bytes
    try:
        if path == "-":
            # up to an empty line: PINs for the members may follow on the same stdin
            if sys.stdin.isatty():
                click.echo("Type or paste the keyring text from the sheet, then an empty line:", err=True)
            # read line by line from the descriptor (secret_input.read_line): a buffered read would
            # swallow the PIN lines that follow
            from .secret_input import read_line

            lines, size = [], 0
            while size <= limit:
                line = read_line("keyring text", limit)
                if line is None or not bytes(line).strip():
                    break
                lines.append(bytes(line) + b"\n")
                size += len(line) + 1
            raw = b"".join(lines)
        else:
            with open(path, "rb") as f:
                raw = f.read(limit + 1)
    except OSError as exc:
        raise CliFail(f"cannot read the keyring file: {exc.strerror}") from None
    if len(raw) > limit:
        raise CliFail("the keyring file is too large")
    return kr.load_any(raw)


def warn_hidden(label):
    if has_hidden(label):
        click.echo(f"Warning: the label {printable(label)} contains invisible or direction-changing "
                   "characters (shown escaped); make sure it is the label you mean", err=True)


def _on_emulator(ctx, label, device_spec=None, backend=None, keyring_name=None):
    """Whether the set's codes come from the built-in emulator (a SOFTWARE token): the enrollment
    or keyring the profile records for it, or for a new set the one `generate` is going to use."""
    try:
        import unicodedata

        from ..records import keyring_ident, keyring_name_of

        profile = ctx.store().load()
        # a lookup (profile labels are NFC), not a check: the operation checks the label, once
        entry = profile.code_set(unicodedata.normalize("NFC", label))
        if entry is not None:
            ident = entry.enrollment
        elif keyring_name is not None:
            ident = keyring_ident(keyring_name)
        else:
            ident = profile.pick_enrollment(device_spec, backend)
        name = keyring_name_of(ident)
        if name is not None:
            from ..keyring_operations import load_keyring

            return any(m.device.get("device_kind") == "emulator" for m in load_keyring(profile, name).members)
        return profile.enrollment(ident).device_kind == "emulator"
    except Exception:  # generate itself says what is wrong with the profile or the label
        return device_spec == "emulator"


COMMANDS = (generate, rotate, recover)
