"""A reader another program holds never hangs sealcodes. Through the real pcscd + vpcd + `sealtoken
serve`; the other program is a separate process talking to pcscd with pyscard, as GnuPG's scdaemon
does: holding a transaction (SCardBeginTransaction; with `pcsc-shared`, around each command), or the
card itself (SCARD_SHARE_EXCLUSIVE, scdaemon's default)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from _support import console_script, run_cli
from sealcodes.devices.discovery import LIST_BUSY_WAIT_S

pytestmark = pytest.mark.pcsc

PIN = "busy-reader-pin"
LABEL = "busy.example/alice"

# the other program: holds the card until it reads a line, then lets go
_HOLDER = r"""
import sys
from smartcard import scard
mode = sys.argv[2]
rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
share = scard.SCARD_SHARE_EXCLUSIVE if mode == "exclusive" else scard.SCARD_SHARE_SHARED
rv, card, proto = scard.SCardConnect(ctx, sys.argv[1], share, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
assert rv == 0, hex(rv & 0xFFFFFFFF)
if mode == "transaction":
    assert scard.SCardBeginTransaction(card) == 0
print("holding", flush=True)
sys.stdin.readline()
if mode == "transaction":
    scard.SCardEndTransaction(card, scard.SCARD_LEAVE_CARD)
scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
print("released", flush=True)
sys.stdin.readline()
"""


class Holder:
    """Another PC/SC client holding one reader ('transaction' or 'exclusive') until release()."""

    def __init__(self, reader, mode):
        self.process = subprocess.Popen([sys.executable, "-c", _HOLDER, reader, mode], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "holding"

    @property
    def holding(self) -> bool:
        return self.process.poll() is None

    def release(self):
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "released"
        self.released = True

    def stop(self):
        # let go properly: a client killed inside its transaction leaves vpcd's reader unable to see
        # the next card (pcscd's reset of it fails), whatever else happened
        if self.holding and not getattr(self, "released", False):
            self.release()
        self.process.kill()
        self.process.wait()


@pytest.fixture
def holder():
    held = []

    def hold(reader, mode):
        held.append(Holder(reader, mode))
        return held[-1]

    yield hold
    for h in held:
        h.stop()


@pytest.fixture
def recorded(vpcd_token, isolated_dirs):
    """Our token enrolled (applet, slot 1) with one set recorded; returns (token, codes JSON)."""
    assert run_cli("enroll", "--device", vpcd_token.reader, input=PIN + "\n").returncode == 0
    first = run_cli("generate", LABEL, "--json", input=PIN + "\n")
    assert first.returncode == 0, first.stderr
    return vpcd_token, json.loads(first.stdout)


def _profile(isolated_dirs):
    return (isolated_dirs / "config" / "sealcodes" / "profile.json").read_text()


@pytest.mark.parametrize("mode", ["transaction", "exclusive"])
def test_devices_shows_a_held_reader_busy_and_goes_on(two_tokens, holder, mode):
    free, held = two_tokens
    other = holder(held.reader, mode)
    started = time.monotonic()
    result = run_cli("devices", timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    # issue 20: busy "within about 2 s". The listing's own bound is LIST_BUSY_WAIT_S per held reader;
    # the whole command must end far before a generous limit (a bound against hanging, not a benchmark:
    # a held transaction made it wait forever before)
    assert LIST_BUSY_WAIT_S <= 2
    assert elapsed < 10, f"devices took {elapsed:.1f} s with {held.reader} held ({mode})"
    lines = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    assert lines[held.reader] == f"{held.reader}  [pcsc]  busy (in use by another program)"
    assert "backends: applet" in lines[free.reader]  # the other reader was probed as usual
    assert "gpgconf --kill scdaemon" in result.stderr and "pcsc-shared" in result.stderr
    # it did not wait for the other program: that one still holds the card
    assert other.holding
    other.release()
    again = run_cli("devices", timeout=30)
    assert "busy" not in again.stdout and "backends: applet" in again.stdout


@pytest.mark.parametrize("command", ["generate", "rotate", "recover"])
def test_a_held_card_is_waited_for_visibly_then_given_up(recorded, holder, isolated_dirs, command):
    token, first = recorded
    before = _profile(isolated_dirs)
    other = holder(token.reader, "transaction")
    args = {"generate": ["generate", LABEL],
            "rotate": ["rotate", LABEL],
            "recover": ["--profile", str(isolated_dirs / "none.json"), "recover", LABEL, "--fingerprint",
                        first["fingerprint"], "--device", token.reader]}[command]
    result = run_cli(*args, "--json", "--wait", "1.5", input=PIN + "\n", timeout=30)
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    waiting, error = result.stderr.splitlines()
    assert waiting == f"waiting for {token.reader} (in use by another program)..."
    assert error.startswith(f"Error: the card in '{token.reader}' is in use by another program (waited 1.5 s)")
    assert "`gpgconf --kill scdaemon`" in error and "`pcsc-shared`" in error
    assert _profile(isolated_dirs) == before
    assert other.holding


def test_generate_goes_on_once_the_other_program_lets_go(recorded, holder):
    token, first = recorded
    other = holder(token.reader, "transaction")
    run = subprocess.Popen([console_script("sealcodes"), "generate", LABEL, "--json", "--wait", "60"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run.stdin.write(PIN + "\n")
        run.stdin.flush()
        assert run.stderr.readline().strip() == f"waiting for {token.reader} (in use by another program)..."
        other.release()
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert json.loads(out)["codes"] == first["codes"]


def test_an_exclusive_holder_is_told_at_once(recorded, holder):
    token, _ = recorded
    other = holder(token.reader, "exclusive")
    for args in (["generate", LABEL], ["--profile", "/nonexistent/p.json", "recover", LABEL, "--fingerprint",
                                       "AAAA-AAAA", "--device", token.reader]):
        result = run_cli(*args, "--wait", "600", input=PIN + "\n", timeout=30)
        assert result.returncode == 1
        assert "waiting" not in result.stderr  # nothing to wait for: pcscd said so at once
        (error,) = result.stderr.splitlines()
        assert error.startswith(f"Error: the card in '{token.reader}' is in exclusive use by another program.")
        assert "`gpgconf --kill scdaemon`" in error and "`pcsc-shared`" in error
    assert other.holding
