"""Typing a code back before a new set becomes current: at a real pseudo-terminal (stdin and
stderr on a pty, the process its session leader), on the emulator's FIDO2 credential (no PIN)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time

from _support import console_script, run_cli


class PtyRun:
    """The installed `sealcodes` with a pty as controlling terminal; stdout stays a pipe."""

    def __init__(self, *args):
        self.master, slave = pty.openpty()

        def controlling_tty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            # Ctrl-C as at a terminal: a test run started in the background of a shell without job
            # control (`.ci/run &`) inherits SIGINT ignored, and so would the command
            signal.signal(signal.SIGINT, signal.SIG_DFL)

        self.process = subprocess.Popen([console_script("sealcodes"), *args], stdin=slave, stderr=slave,
                                        stdout=subprocess.PIPE, preexec_fn=controlling_tty, close_fds=True)
        os.close(slave)
        self.screen = ""

    def expect(self, pattern, timeout=30):
        """The first match of `pattern` in what the terminal showed, waiting for more output until
        it matches. The screen can end in the middle of a line ('Type code #1' of '#12'): a pattern
        that captures a number names the text after it."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.screen)
            if found:
                self.screen = self.screen[found.end():]
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen; screen: {self.screen!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{pattern!r} not seen before exit; screen: {self.screen!r}")
                self.screen += chunk.decode(errors="replace")

    def send(self, line):
        os.write(self.master, (line + "\n").encode())

    def codes(self):
        return json.loads(self.process.stdout.readline())

    def finish(self):
        """Wait for the exit; the rest of the terminal output is appended to .screen."""
        rest = self.process.stdout.read()
        code = self.process.wait(timeout=30)
        while select.select([self.master], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            self.screen += chunk.decode(errors="replace")
        os.close(self.master)
        return code, rest


def _enroll():
    assert run_cli("enroll", "--device", "emulator", "--backend", "fido2").returncode == 0


def _profile_sets():
    path = os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")
    with open(path) as f:
        return json.load(f)["sets"]


def _other_code(codes, number):
    return next(c for i, c in enumerate(codes, start=1) if i != number)


def test_first_generate_asks_for_a_code_and_retries_a_wrong_one():
    _enroll()
    run = PtyRun("generate", "site", "--json")
    codes = run.codes()["codes"]
    number = int(run.expect(r"Type code #(\d+) from your sheet").group(1))
    run.send(_other_code(codes, number))
    run.expect(rf"That is not code #{number}")
    run.expect(rf"Type code #{number}")
    run.send("not a code!")
    run.expect("Not a base32-16 code")
    run.send(codes[number - 1].lower().replace("-", " "))  # read as typed: case and grouping do not matter
    run.expect("Confirmed")
    status, rest = run.finish()
    assert status == 0 and rest == b""  # the codes were shown once
    assert "site" in _profile_sets()


def test_abort_records_nothing():
    _enroll()
    run = PtyRun("generate", "site", "--json")
    run.codes()
    run.expect(r"Type code #\d+")
    run.send("")
    run.expect("not confirmed")
    status, _ = run.finish()
    assert status == 1
    assert "site" not in _profile_sets()


def test_rotate_keeps_the_old_set_until_confirmed():
    _enroll()
    first = json.loads(run_cli("generate", "site", "--json").stdout)  # not a terminal: no question
    run = PtyRun("rotate", "site", "--json")
    new = run.codes()
    assert new["epoch"] == 1
    number = int(run.expect(r"Type code #(\d+) from").group(1))
    run.send(_other_code(new["codes"], number))
    run.expect("That is not code")
    run.send("")
    status, _ = run.finish()
    assert status == 1
    assert _profile_sets()["site"]["epoch"] == 0
    assert json.loads(run_cli("generate", "site", "--json").stdout) == first

    run = PtyRun("rotate", "site", "--json")
    new = run.codes()
    number = int(run.expect(r"Type code #(\d+) from").group(1))
    run.send(new["codes"][number - 1])
    run.expect("Confirmed")
    assert run.finish()[0] == 0
    assert _profile_sets()["site"]["epoch"] == 1


def test_no_confirm_at_a_terminal_does_not_ask():
    _enroll()
    run = PtyRun("generate", "site", "--json", "--no-confirm")
    run.codes()
    status, _ = run.finish()
    assert status == 0 and "Type code" not in run.screen
    assert "site" in _profile_sets()
