"""Reading PINs and codes: from a hidden terminal prompt, or one capped line of stdin.

A PIN goes straight from the terminal or stdin into a bytearray, byte by byte (no str, no
buffered copy), and is wiped by whoever ends up holding it. Everything read from stdin is
capped: a line longer than any PIN or code is refused with one clear error, never read whole.
"""

from __future__ import annotations

import hmac
import os
import sys

import click

from ..memory import wipe
from .fail import CliFail

# No PIN of any backend is longer than 63 UTF-8 bytes (FIDO2, our applet); the OATH access code is
# free text but a line past this is not a PIN anybody types.
MAX_PIN_LINE_BYTES = 256
# The longest code format (base32-24 with separators) is 29 characters; leave room for spaces.
MAX_CODE_LINE_BYTES = 256


def _stdin_fd():
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # an in-memory stdin (tests driving click's CliRunner)


def _read_byte(fd) -> bytes:
    if fd is not None:
        return os.read(fd, 1)
    return sys.stdin.buffer.read(1)


def read_line(what: str, limit: int) -> bytearray | None:
    """One line of stdin (without its line end) into a bytearray; None at end of input.

    Read one byte at a time from the file descriptor, so nothing past the line is consumed and no
    copy of it stays in a buffer. More than `limit` bytes: CliFail, the rest is not read.
    """
    fd = _stdin_fd()
    line = bytearray()
    while True:
        byte = _read_byte(fd)
        if not byte:
            if not line:
                return None
            break
        if byte == b"\n":
            break
        if len(line) >= limit:
            wipe(line)
            raise CliFail(f"the {what} line on stdin is longer than {limit} bytes; refused")
        line += byte
    if line.endswith(b"\r"):
        line.pop()
    return line


def _read_hidden_posix(fd, prompt, limit) -> bytearray | None:
    import termios

    old = termios.tcgetattr(fd)
    new = list(old)
    new[3] &= ~(termios.ECHO | termios.ECHONL)
    # Echo goes off before the prompt appears, and nothing typed is flushed (TCSANOW, not
    # TCSAFLUSH): a PIN typed or pasted right after the prompt is neither shown nor lost.
    termios.tcsetattr(fd, termios.TCSANOW, new)
    click.echo(f"{prompt}: ", err=True, nl=False)
    try:
        line = bytearray()
        while True:
            byte = os.read(fd, 1)  # canonical mode: the terminal does the line editing
            if not byte:
                if not line:
                    return None
                break
            if byte in (b"\n", b"\r"):
                break
            if len(line) >= limit:
                wipe(line)
                raise CliFail(f"the PIN is longer than {limit} bytes; refused")
            line += byte
        return line
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, old)
        click.echo("", err=True)


def _read_hidden_windows(limit) -> bytearray | None:
    import msvcrt

    line = bytearray()
    while True:
        char = msvcrt.getwch()
        if char in ("\r", "\n"):
            break
        if char == "\x03":
            raise KeyboardInterrupt
        if char == "\x1a" and not line:  # Ctrl-Z: end of input
            return None
        if char == "\x08":
            while line and (line[-1] & 0xC0) == 0x80:  # drop a whole UTF-8 sequence
                line.pop()
            if line:
                line.pop()
            continue
        if len(line) >= limit:
            wipe(line)
            raise CliFail(f"the PIN is longer than {limit} bytes; refused")
        line += char.encode("utf-8")
    click.echo("", err=True)
    return line


def prompt_hidden(prompt: str, limit: int = MAX_PIN_LINE_BYTES) -> bytearray | None:
    """Ask on stderr and read one line from the terminal without echo; None at end of input."""
    fd = None if os.name == "nt" else _stdin_fd()
    if fd is not None:
        return _read_hidden_posix(fd, prompt, limit)
    click.echo(f"{prompt}: ", err=True, nl=False)
    if os.name == "nt":
        return _read_hidden_windows(limit)
    return read_line("PIN", limit)


def ask_pin(what: str, new: bool = False) -> bytearray:
    """A PIN as UTF-8 in a bytearray: hidden prompt (twice for a new one) or one line of stdin."""
    if not sys.stdin.isatty():
        pin = read_line(what, MAX_PIN_LINE_BYTES)
        if pin is None:
            raise CliFail(f"a {what} is needed but stdin is empty")
        return pin
    pin = prompt_hidden(("New " if new else "") + what)
    if pin is None:
        raise click.exceptions.Abort()
    if new:
        again = prompt_hidden("Repeat for confirmation")
        try:
            if again is None or not hmac.compare_digest(pin, again):
                wipe(pin)
                raise CliFail("the two entries differ; nothing was changed")
        finally:
            if again is not None:
                wipe(again)
    return pin


def ask_code() -> str:
    """A recovery code for `check`: hidden prompt, or one capped line of stdin."""
    if sys.stdin.isatty():
        raw = prompt_hidden("Code", MAX_CODE_LINE_BYTES)
    else:
        raw = read_line("code", MAX_CODE_LINE_BYTES)
    if raw is None:
        raise CliFail("no code given (stdin is empty)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CliFail("the code is not UTF-8 text") from None
    finally:
        wipe(raw)
