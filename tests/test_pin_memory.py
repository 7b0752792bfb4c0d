"""PINs live in bytearrays that are wiped after use: prompt -> bytearray -> backend -> wipe.

The CLI runs in this process (its real `main`, the built-in emulated token, a real pipe or
pseudo-terminal as stdin), so the very buffers it hands to the backend can be inspected after the
command returns.
"""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from _support import console_script
from sealcodes._cli import main
from sealcodes._cli.util import CliInteraction
from sealcodes.backends.applet import AppletBackend

PIN = "correct horse"


def _stdin_pipe(monkeypatch, text):
    read_fd, write_fd = os.pipe()
    os.write(write_fd, text.encode())
    os.close(write_fd)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.FileIO(read_fd, "rb")))


def _run(monkeypatch, capsys, *argv, stdin=""):
    _stdin_pipe(monkeypatch, stdin)
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture
def spied(monkeypatch):
    """Every PIN buffer the CLI hands out, the CLI's own kept copies, and what the backend VERIFYs with."""
    record = {"handed": [], "kept": [], "verified_with": [], "values": []}
    request_pin = CliInteraction.request_pin
    verify = AppletBackend._verify

    def spy_request(self, purpose, new=False):
        pin = request_pin(self, purpose, new)
        record["handed"].append(pin)
        record["values"].append(bytes(pin))
        record["kept"].extend(self._pins.values())
        return pin

    def spy_verify(self, pin):
        record["verified_with"].append(pin)
        return verify(self, pin)

    monkeypatch.setattr(CliInteraction, "request_pin", spy_request)
    monkeypatch.setattr(AppletBackend, "_verify", spy_verify)
    return record


def _all_wiped(buffers):
    return all(isinstance(b, bytearray) and len(b) > 0 and not any(b) for b in buffers)


def test_pin_buffers_are_wiped_after_enroll_and_generate(monkeypatch, capsys, spied):
    code, out, err = _run(monkeypatch, capsys, "enroll", "--device", "emulator", stdin=PIN + "\n")
    assert code == 0, err
    code, out, err = _run(monkeypatch, capsys, "generate", "wipe.example", "--json", stdin=PIN + "\n")
    assert code == 0, err
    assert len(json.loads(out)["codes"]) == 10
    assert spied["values"] and all(v == PIN.encode() for v in spied["values"])  # the real PIN went out
    # the backend verified with the very buffer the CLI handed it ...
    assert spied["verified_with"] and all(any(p is h for h in spied["handed"]) for p in spied["verified_with"])
    # ... and after the command, it and the CLI's own kept copy are zeros
    assert _all_wiped(spied["handed"]) and _all_wiped(spied["kept"])


def test_pin_buffers_are_wiped_after_a_failure(monkeypatch, capsys, spied):
    assert _run(monkeypatch, capsys, "enroll", "--device", "emulator", stdin=PIN + "\n")[0] == 0
    code, out, err = _run(monkeypatch, capsys, "generate", "wipe.example", stdin="wrong pin\n")
    assert code == 1 and "wrong PIN" in err and "wrong pin" not in err + out
    assert _all_wiped(spied["handed"]) and _all_wiped(spied["kept"])


def test_recover_wipes_the_pin_used_for_every_slot(monkeypatch, capsys, spied):
    for slot in ("1", "2"):
        assert _run(monkeypatch, capsys, "enroll", "--device", "emulator", "--slot", slot, stdin=PIN + "\n")[0] == 0
    code, out, err = _run(monkeypatch, capsys, "recover", "wipe.example", "--fingerprint", "0000-0000",
                          "--device", "emulator", stdin=PIN + "\n")
    assert code == 1 and "fingerprint" in err
    assert len(spied["verified_with"]) == 2 + 2  # one VERIFY per enroll, then one per slot searched
    assert _all_wiped(spied["handed"]) and _all_wiped(spied["kept"])


def _read_until(fd, needle, timeout=30):
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"waited for {needle!r}, got {seen!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        seen += chunk
    return seen


def test_pin_prompt_on_a_terminal_is_hidden_and_confirmed(isolated_dirs):
    """Through a pseudo-terminal: the new PIN is asked twice on stderr, never echoed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([console_script("sealcodes"), "enroll", "--device", "emulator"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    try:
        prompts = _read_until(proc.stderr.fileno(), b"New token PIN: ")
        time.sleep(0.2)  # the prompt is out; echo is off once the read starts
        os.write(master, PIN.encode() + b"\n")
        prompts += _read_until(proc.stderr.fileno(), b"Repeat for confirmation: ")
        time.sleep(0.2)
        os.write(master, PIN.encode() + b"\n")
        assert proc.wait(timeout=60) == 0
        echoed = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            echoed += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest = proc.stderr.read()
    out = proc.stdout.read()
    proc.stderr.close()
    proc.stdout.close()
    assert PIN.encode() not in echoed + prompts + rest + out
    assert b"Enrolled applet:" in out


def test_mismatched_confirmation_is_refused(isolated_dirs):
    master, slave = pty.openpty()
    proc = subprocess.Popen([console_script("sealcodes"), "enroll", "--device", "emulator"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    try:
        _read_until(proc.stderr.fileno(), b"New token PIN: ")
        time.sleep(0.2)
        os.write(master, b"first-pin\n")
        _read_until(proc.stderr.fileno(), b"Repeat for confirmation: ")
        time.sleep(0.2)
        os.write(master, b"other-pin\n")
        assert proc.wait(timeout=60) == 1
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    proc.stderr.close()
    proc.stdout.close()
    assert b"differ" in err and b"first-pin" not in err and b"other-pin" not in err
    assert not (isolated_dirs / "config" / "sealcodes" / "profile.json").exists()


def test_recover_that_finds_its_set_early_wipes_the_pin_at_once(monkeypatch, capsys, spied, isolated_dirs):
    """recover stops at the first matching slot; the backend's PIN buffer is wiped right then."""
    for slot in ("1", "2"):
        assert _run(monkeypatch, capsys, "enroll", "--device", "emulator", "--slot", slot, stdin=PIN + "\n")[0] == 0
    profile = json.loads((isolated_dirs / "config" / "sealcodes" / "profile.json").read_text())
    first_slot = next(i for i in profile["enrollments"] if i.endswith(":1"))
    code, out, err = _run(monkeypatch, capsys, "generate", "early.example", "--json", "--device", first_slot,
                          stdin=PIN + "\n")
    assert code == 0, err
    fingerprint = json.loads(out)["fingerprint"]
    from sealcodes import operations

    seen_open = []
    derive_checked = operations._derive_checked

    def spy_derive_checked(*args, **kwargs):
        result = derive_checked(*args, **kwargs)
        seen_open.extend(p for p in spied["verified_with"][-1:] if any(p))
        return result

    monkeypatch.setattr(operations, "_derive_checked", spy_derive_checked)
    code, out, err = _run(monkeypatch, capsys, "recover", "early.example", "--fingerprint", fingerprint,
                          "--device", "emulator", "--json", stdin=PIN + "\n")
    assert code == 0, err
    assert seen_open  # the PIN was live while slot 1 matched ...
    assert _all_wiped(spied["handed"]) and _all_wiped(spied["kept"])  # ... and is zeros now
