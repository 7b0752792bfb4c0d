"""The `sealcodes` command's process-wide set-up (sealcodes/__main__.py): the console script and
`python -m sealcodes` run through it; no collection while the CLI is imported, start-up's objects
frozen out of later collections, the collector on while the command runs (long commands such as
`verifier serve` included), and what is left frozen at exit."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

from _support import run_cli


def test_the_console_script_and_python_m_run_through_main_module():
    (script,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "sealcodes"]
    assert script.value == "sealcodes.__main__:main"
    as_module = subprocess.run([sys.executable, "-m", "sealcodes", "--version"], capture_output=True, text=True,
                               timeout=60)
    assert as_module.returncode == 0 and as_module.stdout == run_cli("--version").stdout != ""


def test_garbage_collection_around_a_command():
    code = """
import atexit, gc, sys
seen = {}
# registered before the command's own handler, so it runs after it
atexit.register(lambda: print("at exit", gc.get_freeze_count() >= seen["frozen"] + 90))
import sealcodes._cli as cli

def command():
    seen["frozen"] = gc.get_freeze_count()
    print("during the command", gc.isenabled(), seen["frozen"] > 10000)
    seen["kept"] = [[] for _ in range(100)]  # made by the command, alive until exit (tracked: lists)
    garbage = [[]]  # made by the command: collected as usual
    garbage[0].append(garbage)
    del garbage
    print("collected", gc.collect() > 0)

cli.main = command
gc.enable()
from sealcodes.__main__ import main
main()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["during the command True True", "collected True", "at exit True"]
