"""The firmware tests (tests/firmware) also pass under real MicroPython.

Runs tests/micropython/run.mjs with Node: MicroPython's WebAssembly port from npm
(`npm ci` in the repo root installs it, see package.json). A missing node or
missing node_modules is a failure with instructions, not a skip: MicroPython
compatibility is a requirement of firmware/ (docs/architecture.md).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "micropython" / "run.mjs"
MP_PACKAGE = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"

pytestmark = pytest.mark.micropython


def _expected_tests() -> set[str]:
    """module::function of every non-slow test function in tests/firmware."""
    names = set()
    for path in sorted((ROOT / "tests" / "firmware").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                decorators = {ast.unparse(d) for d in node.decorator_list}
                if not decorators & {"slow", "pytest.mark.slow"}:
                    names.add(f"{path.stem}::{node.name}")
    return names


def test_firmware_tests_pass_under_micropython():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js >= 18) is required to run the firmware tests under MicroPython: "
                    "install nodejs, then run `npm ci` in " + str(ROOT))
    if not MP_PACKAGE.exists():
        pytest.fail(f"MicroPython WebAssembly is not installed ({MP_PACKAGE} missing): run `npm ci` in {ROOT}")
    result = subprocess.run([node, str(RUNNER)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    out = result.stdout + result.stderr
    summary = re.search(r"^SUMMARY passed=(\d+) failed=(\d+) skipped=(\d+)", result.stdout, re.M)
    assert summary is not None, "no summary from the MicroPython runner:\n" + out[-4000:]
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert result.returncode == 0 and failed == 0, "firmware tests failed under MicroPython:\n" + out[-8000:]
    ran = set(re.findall(r"^PASS (\S+)", result.stdout, re.M))
    missing = _expected_tests() - ran
    assert not missing, "not run under MicroPython: " + ", ".join(sorted(missing))
    assert passed == len(ran) > 0
