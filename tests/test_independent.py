"""The second implementations in tests/ (`_independent*.py`) stay independent: they import nothing of
sealcodes, not even through another test module, so a mistake in the library cannot pass the
vectors twice. Checked on the source (AST: an import inside a function counts too) and by loading
them in a fresh interpreter."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from _support import ROOT, run_python

TESTS = ROOT / "tests"
SECOND_IMPLEMENTATIONS = sorted(TESTS.rglob("_independent*.py"))
#: besides the standard library: OpenSSL's primitives (AES-GCM, ECDH, HKDF), never sealcodes
THIRD_PARTY = {"cryptography"}


def foreign_imports(source: str) -> list:
    """(line, module) of every import that is neither the standard library, an allowed third-party
    package, nor another second implementation."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: only another second implementation of the same folder
                names = [node.module] if node.module else [alias.name for alias in node.names]
                found += [(node.lineno, "." + n) for n in names if not n.startswith("_independent")]
                continue
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if not (top in sys.stdlib_module_names or top in THIRD_PARTY or top.startswith("_independent")):
                found.append((node.lineno, name))
    return found


def test_every_second_implementation_is_checked():
    names = {path.name for path in SECOND_IMPLEMENTATIONS}
    assert {"_independent_v1.py", "_independent_ecdh.py", "_independent_verifier.py",
            "_independent_keyring.py", "_independent_json.py"} <= names


def test_they_import_nothing_of_sealcodes():
    problems = {str(path.relative_to(ROOT)): foreign_imports(path.read_text()) for path in SECOND_IMPLEMENTATIONS}
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_check_has_teeth():
    assert foreign_imports("def f():\n    from sealcodes import keyring\n") == [(2, "sealcodes")]
    assert foreign_imports("import sealcodes.derivation as d\n") == [(1, "sealcodes.derivation")]
    assert foreign_imports("from _support import run_cli\n") == [(1, "_support")]  # _support imports sealcodes
    assert foreign_imports("from . import _make_vectors\n") == [(1, "._make_vectors")]
    assert foreign_imports("import hashlib\nfrom cryptography.hazmat.primitives import hashes\n"
                           "from . import _independent_json\n") == []


def test_loaded_in_a_fresh_interpreter_sealcodes_stays_out():
    folders = sorted({str(path.parent) for path in SECOND_IMPLEMENTATIONS})
    modules = [path.stem for path in SECOND_IMPLEMENTATIONS]
    run_python(
        "import sys\n"
        f"sys.path[:0] = {folders!r}\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'sealcodes' or m.startswith('sealcodes.'))\n"
        "assert not loaded, loaded\n"
    )
