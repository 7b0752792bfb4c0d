"""A set made on the built-in emulator says so wherever its codes are shown, also when a new set is
typed back at a terminal without `--device emulator` (the profile's only enrollment is the emulator's)."""

from __future__ import annotations

from _support import run_cli

from .test_confirm import PtyRun

NOTICE = "Made by the built-in SOFTWARE token: not hardware-backed, for trying sealcodes only."


def _shown_codes(run):
    """The text sheet on stdout, up to its fingerprint line."""
    lines = []
    while not lines or not lines[-1].startswith("Fingerprint:"):
        line = run.process.stdout.readline().decode()
        assert line, lines
        lines.append(line.rstrip("\n"))
    return lines


def test_a_new_set_typed_back_at_a_terminal_says_software_token():
    assert run_cli("enroll", "--device", "emulator", "--backend", "fido2").returncode == 0
    run = PtyRun("generate", "site")
    shown = _shown_codes(run)
    assert shown[1] == NOTICE, shown
    number = int(run.expect(r"Type code #(\d+) from your sheet").group(1))
    run.send(shown[1 + number].split(". ", 1)[1])
    run.expect("Confirmed")
    assert run.finish()[0] == 0
    for args in (["generate", "site"], ["rotate", "site", "--no-confirm"]):  # not at a terminal: as before
        result = run_cli(*args)
        assert result.returncode == 0 and result.stdout.splitlines()[1] == NOTICE, result.stdout
