"""Log lines without `import logging` on the way to a device (sealcodes.log, _cli/logs.py): a debug
line nobody can see does not load it; a warning does, and goes out; once it is loaded, lines go
where `logging` sends them; whatever loads it, the CLI's escaping handler is in place before its
first line; --debug shows sealcodes' own lines."""

from __future__ import annotations

import logging

import pytest
from _support import run_cli, run_python

ESC = "\x1b]0;owned\x07"


def test_a_line_nobody_can_see_does_not_load_logging():
    result = run_python(
        "import sys\n"
        "from sealcodes.log import DEBUG, get_logger\n"
        "log = get_logger('sealcodes.test')\n"
        "log.debug('a %s', 'debug line'); log.info('an info line')\n"
        "print(log.isEnabledFor(DEBUG), 'logging' in sys.modules)\n")
    assert result.stdout.split() == ["False", "False"]
    assert result.stderr == ""


def test_a_warning_loads_logging_and_goes_out():
    result = run_python("from sealcodes.log import get_logger\nget_logger('sealcodes.test').warning('disk %s', 'full')\n")
    assert result.stderr == "disk full\n"  # logging's last-resort handler: nobody configured it


def test_once_logging_is_loaded_lines_go_where_it_sends_them(caplog):
    from sealcodes.log import DEBUG, INFO, get_logger

    log = get_logger("sealcodes.test-levels")
    with caplog.at_level(INFO, logger="sealcodes.test-levels"):
        assert not log.isEnabledFor(DEBUG)
        log.debug("hidden %d", 1)
        log.info("shown %d", 2)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [("sealcodes.test-levels", INFO, "shown 2")]
    caplog.clear()
    with caplog.at_level(DEBUG, logger="sealcodes.test-levels"):
        assert log.isEnabledFor(DEBUG)
        log.debug("now %s", "shown")
    assert [r.getMessage() for r in caplog.records] == ["now shown"]
    assert logging.getLogger("sealcodes.test-levels").level == logging.NOTSET


def test_a_library_that_loads_logging_later_gets_the_escaping_handler():
    """Without --debug the CLI does not load logging; a client library that does (yubikit) has its
    warnings escaped, one line each, as before; sealcodes' own debug lines stay hidden."""
    result = run_python(
        "import sys\n"
        "from sealcodes._cli import logs\n"
        "logs.configure(debug=False)\n"
        "assert 'logging' not in sys.modules\n"
        "import logging\n"
        f"logging.getLogger('yubikit.piv').warning('card says %s', {ESC!r})\n"
        "logging.getLogger('sealcodes.apdu').debug('hidden')\n"
        "logs.configure(debug=False)\n"  # a second command in one process: one handler still
        "logging.getLogger('yubikit.piv').warning('again')\n"
        "assert 'def getLogger' in logging.__loader__.get_source('logging')\n")  # still a whole loader
    assert result.stderr == "yubikit.piv: card says \\x1b]0;owned\\x07\nyubikit.piv: again\n"


# a Python whose standard library comes from a finder on sys.meta_path, not from sys.path (frozen
# or embedded builds); `noop`: one more finder ahead of it, which a finder leaving the list while
# the import system goes through it would make the import system skip
_FROZEN_STDLIB = """
import sys, sysconfig
from importlib.machinery import PathFinder
STDLIB = sysconfig.get_paths()["stdlib"]
sys.path[:] = [p for p in sys.path if p != STDLIB]
sys.path_importer_cache.clear()

class StdlibFinder:
    def find_spec(self, name, path=None, target=None):
        return PathFinder.find_spec(name, [STDLIB]) if path is None else None

class Noop:
    def find_spec(self, *args):
        return None

sys.meta_path.insert(0, StdlibFinder())
if NOOP:
    sys.meta_path.insert(0, Noop())
from sealcodes._cli import logs
logs.configure(debug=False)
import logging
logging.getLogger("yubikit.piv").warning("card says %s", ESC)
assert not any(isinstance(f, logs._ConfigureWhenLoaded) for f in sys.meta_path)
"""


@pytest.mark.parametrize("noop", [False, True])
def test_logging_from_another_finder_is_configured_too(noop):
    result = run_python(_FROZEN_STDLIB.replace("NOOP", str(noop)).replace("ESC", repr(ESC)))
    assert result.stderr == "yubikit.piv: card says \\x1b]0;owned\\x07\n"


def test_debug_lines_are_escaped_and_name_their_caller():
    result = run_python(
        "from sealcodes._cli import logs\n"
        "from sealcodes.log import get_logger\n"
        "logs.configure(debug=True)\n"
        "import logging\n"
        "logging.getLogger().handlers[0].setFormatter(type(logging.getLogger().handlers[0].formatter)(\n"
        "    '%(name)s %(funcName)s: %(message)s'))\n"
        "def answer():\n"
        f"    get_logger('sealcodes.apdu').debug('reader says %s', {ESC!r})\n"
        "answer()\n")
    assert result.stderr == "sealcodes.apdu answer: reader says \\x1b]0;owned\\x07\n"


def test_debug_shows_sealcodes_lines(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", input="4711-pin\n").returncode == 0
    quiet = run_cli("generate", "log.example", "--json", "--no-confirm", input="4711-pin\n")
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = run_cli("--debug", "generate", "log.example", "--json", input="4711-pin\n")
    assert loud.returncode == 0 and loud.stdout == quiet.stdout
    assert "sealcodes.apdu: > 0020" in loud.stderr  # VERIFY, its data redacted
    assert "[data redacted]" in loud.stderr
