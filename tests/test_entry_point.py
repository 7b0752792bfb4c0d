"""The `sealcodes` command's process-wide set-up (sealcodes/__main__.py): the console script and
`python -m sealcodes` run through it; no collection while the CLI is imported, the objects that
made frozen out of later collections, and the collector on while the command runs (long commands
such as `verifier serve` included), so what the command leaves in cycles is collected."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

from _support import run_cli, run_python


def test_the_console_script_and_python_m_run_through_main_module():
    (script,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "sealcodes"]
    assert script.value == "sealcodes.__main__:main"
    for args, code in ((["--version"], 0), (["no-such-command"], 2), (["generate"], 2)):
        as_module = subprocess.run([sys.executable, "-m", "sealcodes", *args], capture_output=True, text=True,
                                   timeout=60)
        as_script = run_cli(*args)
        assert as_module.returncode == as_script.returncode == code
        assert as_module.stdout == as_script.stdout and as_module.stderr == as_script.stderr


def test_no_collection_while_the_cli_is_imported():
    lines = run_python("""
import gc, sys
during_import = []

def watch(phase, info):
    cli = sys.modules.get("sealcodes._cli")
    if phase == "start" and "click" in sys.modules and not hasattr(cli, "main"):
        during_import.append(info["generation"])

gc.callbacks.append(watch)
sys.argv = ["sealcodes", "--version"]
from sealcodes.__main__ import main
try:
    main()
except SystemExit:
    pass
print(len(during_import))
""").stdout.splitlines()
    assert lines[-1] == "0"


def test_the_collector_runs_during_the_command():
    lines = run_python("""
import gc
import sealcodes._cli as cli

def command():
    print("enabled", gc.isenabled(), "start-up frozen", gc.get_freeze_count() > 10000)
    garbage = [[]]  # made by the command, in a cycle: collected as usual
    garbage[0].append(garbage)
    del garbage
    print("collected", gc.collect() > 0)

cli.main = command
from sealcodes.__main__ import main
main()
""").stdout.splitlines()
    assert lines == ["enabled True start-up frozen True", "collected True"]
