"""Fixtures shared by the whole suite.

Every test runs with its own XDG directories, so nothing touches the user's
profile or emulator. PC/SC tests use the real pcscd with vsmartcard's vpcd
driver and a real `sealtoken serve --vpcd` process; nothing is mocked there.
"""

from __future__ import annotations

import os
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


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Own XDG config/data dirs and emulator dir for every test."""
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "data").mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("SEALCODES_PROFILE", raising=False)
    monkeypatch.delenv("SEALCODES_EMULATOR_DIR", raising=False)
    return home


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


@pytest.fixture(scope="session")
def pcscd():
    """pcscd with the vpcd driver, started if needed (as scripts/start-pcscd.sh does)."""
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


class VpcdToken:
    """A `sealtoken serve --vpcd` process: our firmware as a card in reader 'Virtual PCD 00 00'."""

    def __init__(self, state_dir: Path, presence="approve"):
        self.state_dir = state_dir
        self.presence = presence
        self.reader = VPCD_READER
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [console_script("sealtoken"), "serve", "--vpcd", f"127.0.0.1:{VPCD_PORT}",
             "--state", str(self.state_dir), "--presence", self.presence],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while not _card_present(self.reader):
            if self.process.poll() is not None:
                raise RuntimeError("sealtoken serve exited: " + self.process.stderr.read().decode(errors="replace"))
            if time.monotonic() > deadline:
                raise RuntimeError("the virtual card did not appear in " + self.reader)
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        deadline = time.monotonic() + 10
        while _card_present(self.reader) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture
def vpcd_token(pcscd, tmp_path):
    """Our firmware served through pcscd + vpcd, with its flash in a fresh state dir."""
    token = VpcdToken(tmp_path / "token-state")
    token.start()
    yield token
    token.stop()


def run_cli(*args, input=None, env=None, timeout=60):
    """Run the installed `sealcodes` console script; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([console_script("sealcodes"), *args], input=input, capture_output=True, text=True,
                          env=full_env, timeout=timeout)
