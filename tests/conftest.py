"""Fixtures shared by the whole suite.

Every test runs with its own XDG directories, so nothing touches the user's
profile or emulator. PC/SC tests use the real pcscd with vsmartcard's vpcd
driver and a real `sealtoken serve --vpcd` process; nothing is mocked there.
Helpers live in _support.py.
"""

from __future__ import annotations

import pytest

from _support import VpcdToken, ensure_pcscd


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


@pytest.fixture(scope="session")
def pcscd():
    return ensure_pcscd()


@pytest.fixture
def vpcd_token(pcscd, tmp_path):
    """Our firmware served through pcscd + vpcd, with its flash in a fresh state dir."""
    token = VpcdToken(tmp_path / "token-state")
    token.start()
    yield token
    token.stop()
