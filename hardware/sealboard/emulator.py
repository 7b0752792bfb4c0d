"""The built-in emulated token: our firmware in this process, state on disk.

It is a software token: its secrets live in files under the user's data
directory, protected only by file permissions. It exists so that anyone can try
sealcodes (and run the tests) without hardware; it is NOT hardware-backed.
"""

from __future__ import annotations

import fcntl
import os

from sealtoken.token import Token

from .loopback import LoopbackConnection
from .platform import CPythonPlatform

EMULATOR_NAME = "emulator"


def default_state_dir():
    """$SEALCODES_EMULATOR_DIR, else $XDG_DATA_HOME/sealcodes/emulator."""
    explicit = os.environ.get("SEALCODES_EMULATOR_DIR")
    if explicit:
        return explicit
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "sealcodes", "emulator")


class EmulatedToken:
    """One emulated token, locked against concurrent use of the same state directory."""

    def __init__(self, state_dir=None, presence="approve", rng_seed=None):
        self.state_dir = state_dir or default_state_dir()
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self._lock_fd = os.open(os.path.join(self.state_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(f"the emulated token in {self.state_dir} is in use by another process") from None
        self.platform = CPythonPlatform(state_dir=self.state_dir, presence=presence, rng_seed=rng_seed)
        self.token = Token(self.platform)

    def connect(self) -> LoopbackConnection:
        return LoopbackConnection(self.token.card, name=EMULATOR_NAME)

    def close(self):
        self.platform.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
