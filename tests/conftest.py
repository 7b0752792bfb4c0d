"""Fixtures shared by the whole suite.

Every test runs with its own XDG directories, so nothing touches the user's
profile or emulator. PC/SC tests use the real pcscd with vsmartcard's vpcd
driver and a real `sealtoken serve --vpcd` process; nothing is mocked there.
Helpers live in _support.py.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from _support import VpcdToken, ensure_pcscd

# Hypothesis: the default run draws one fixed sequence of examples (derandomize), so an example that
# fails in CI fails the same way in every rerun and on every machine, instead of once in a while;
# no example database (a clean clone has none) and no deadline (2 shared CPUs time nothing). The slow
# run (`-m slow`) explores: fresh random examples on every run, a failure printed with the
# @reproduce_failure line that replays it. SEALCODES_HYPOTHESIS=fixed|explore chooses either for
# any run; `--hypothesis-profile` wins over both.
settings.register_profile("fixed", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", derandomize=False, database=None, deadline=None, print_blob=True)


def pytest_configure(config):
    """Runs before any test module is imported, so every settings() there inherits the profile."""
    if config.getoption("hypothesis_profile", None):
        return
    default = "explore" if config.getoption("markexpr", "") == "slow" else "fixed"
    settings.load_profile(os.environ.get("SEALCODES_HYPOTHESIS") or default)


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


def pytest_collection_modifyitems(config, items):
    """A test that needs pcscd carries the `pcsc` marker, so `-m "not pcsc"` runs with no pcscd."""
    unmarked = [item.nodeid for item in items
                if "pcscd" in getattr(item, "fixturenames", ()) and item.get_closest_marker("pcsc") is None]
    if unmarked:
        raise pytest.UsageError("tests using pcscd without the pcsc marker: " + ", ".join(unmarked))


@pytest.fixture(scope="session")
def _pcscd_session():
    return ensure_pcscd()


@pytest.fixture
def pcscd(request, _pcscd_session):
    """The reader name of pcscd's vpcd slot 0. Only for tests marked `pcsc` (checked here too, for
    fixtures that ask for it at run time)."""
    if request.node.get_closest_marker("pcsc") is None:
        pytest.fail(f"{request.node.nodeid} needs pcscd but is not marked pcsc")
    return _pcscd_session


@pytest.fixture
def two_tokens(pcscd, tmp_path):
    """Two of our tokens at once, in vpcd's two readers ('Virtual PCD 00 00' and '00 01'); both
    stopped whatever happens."""
    a, b = VpcdToken(tmp_path / "a", slot=0), VpcdToken(tmp_path / "b", slot=1)
    a.start()
    try:
        b.start()
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


@pytest.fixture
def vpcd_token(pcscd, tmp_path):
    """Our firmware served through pcscd + vpcd, with its flash in a fresh state dir; stopped
    whatever happens."""
    token = VpcdToken(tmp_path / "token-state")
    token.start()
    try:
        yield token
    finally:
        token.stop()
