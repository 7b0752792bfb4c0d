"""Imports flow one way (docs/architecture.md): CLI -> library -> backend -> connection, and the
bridges (hardware/) and firmware below the host, never importing it. Checked on the source
(AST), so a lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from _support import ROOT

PACKAGES = {"sealcodes": ROOT / "host" / "sealcodes", "sealtoken": ROOT / "firmware" / "sealtoken",
            "sealboard": ROOT / "hardware" / "sealboard"}

# host layers, lowest first; a module may import its own layer or lower ones
BASE, CONNECTION, BACKEND, LIBRARY, CLI = range(5)
_BASE_MODULES = {"errors", "memory", "const", "records", "enrollment", "log", "numerals"}  # data and helpers every layer uses
_CONNECTION_MODULES = {"connection", "pcsc", "apdu"}
_LAYER_NAMES = {BASE: "base", CONNECTION: "connection", BACKEND: "backend", LIBRARY: "library", CLI: "CLI"}


def host_layer(module: str) -> int:
    """Layer of a module `sealcodes.x.y`."""
    parts = module.split(".")[1:] or ["__init__"]
    if parts[0] in ("_cli", "__main__"):  # __main__: the console script's process-wide set-up
        return CLI
    if parts[0] == "backends":
        return BACKEND
    if parts[0] in _CONNECTION_MODULES:
        return CONNECTION
    if parts[0] in _BASE_MODULES or parts[0] == "__init__":
        return BASE
    return LIBRARY  # operations, devices, profile, derivation, formats, and what is added later


def _module_name(package: str, path: Path, root: Path | None = None) -> str:
    rel = path.relative_to(root or PACKAGES[package]).with_suffix("")
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(package: str, path: Path, root: Path | None = None):
    """(line, absolute module name) for every import in a source file."""
    module = _module_name(package, path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            yield node.lineno, target
            if node.module is None or node.level and not node.module:
                for alias in node.names:  # `from . import x` imports the module x
                    yield node.lineno, f"{target}.{alias.name}"


def _sources(package):
    return sorted(PACKAGES[package].rglob("*.py"))


def violations_in(package: str, path: Path, root: Path | None = None) -> list:
    found = []
    module = _module_name(package, path, root)
    for line, target in imports_of(package, path, root):
        where = f"{path.name}:{line} ({module}) imports {target}"
        top = target.split(".")[0]
        if package in ("sealtoken", "sealboard") and top == "sealcodes":
            found.append(f"{where}: firmware and bridges never import the host")
        if package == "sealtoken" and top == "sealboard":
            found.append(f"{where}: the firmware does not know how it is connected")
        if package == "sealcodes" and top in ("sealtoken", "sealboard"):
            found.append(f"{where}: the host reaches firmware and bridges only through providers")
        if package == "sealcodes" and host_layer(module) < CLI and top == "click":
            found.append(f"{where}: only the CLI imports click")
        if package == "sealcodes" and top == "sealcodes":
            mine, theirs = host_layer(module), host_layer(target)
            if theirs > mine:
                found.append(f"{where}: the {_LAYER_NAMES[mine]} layer must not import the "
                             f"{_LAYER_NAMES[theirs]} layer")
    return found


def _violations():
    return [v for package in PACKAGES for path in _sources(package) for v in violations_in(package, path)]


def test_imports_flow_one_way():
    assert _violations() == []


def test_the_board_package_imports_neither_the_host_nor_the_bridges():
    """hardware/boards (MicroPython on the board: sealdevice and the board files) stands on the firmware
    alone; the models of machine and rp2 it is tested with are in tests/, never beside it."""
    found = []
    files = sorted((ROOT / "hardware" / "boards").rglob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in ("sealcodes", "sealboard")]
    assert found == []
    assert not [p for p in files if p.name in ("machine.py", "rp2.py")]


def test_the_checker_sees_violations(tmp_path):
    """The checker itself: relative imports resolve, and each kind of wrong import is caught."""
    assert host_layer("sealcodes._cli.codeset") == CLI
    assert host_layer("sealcodes.backends.fido2") == BACKEND
    assert host_layer("sealcodes.devices.providers") == LIBRARY
    assert host_layer("sealcodes.pcsc") == CONNECTION
    root = tmp_path / "sealcodes"
    (root / "backends").mkdir(parents=True)
    bad = root / "backends" / "bad.py"
    bad.write_text("import click\nfrom ..operations import generate\nfrom sealboard import provider\n"
                   "from .. import apdu\nfrom .base import Backend\n")
    found = violations_in("sealcodes", bad, root)
    assert len(found) == 3, found
    assert any("only the CLI imports click" in v for v in found)
    assert any("backend layer must not import the library layer" in v for v in found)
    assert any("only through providers" in v for v in found)
    (root / "connection.py").write_text("def f():\n    from .backends import applet\n")
    assert "connection layer must not import the backend" in violations_in("sealcodes", root / "connection.py",
                                                                          root)[0]
    bridge = tmp_path / "sealboard" / "loop.py"
    bridge.parent.mkdir()
    bridge.write_text("from sealcodes.errors import DeviceError\n")
    assert violations_in("sealboard", bridge, tmp_path / "sealboard")


def test_host_imports_without_firmware_or_bridges():
    """The library and CLI import (and `--help` runs) with sealtoken and sealboard unimportable."""
    code = (
        "import sys\n"
        "sys.modules['sealtoken'] = None; sys.modules['sealboard'] = None\n"
        "import sealcodes._cli, sealcodes.operations, sealcodes.devices, sealcodes.apdu\n"
        "import sealcodes.backends.applet, sealcodes.backends.fido2\n"
        "try:\n"
        "    sealcodes._cli.main(['--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_help_imports_no_device_library():
    """`sealcodes --help` loads neither python-fido2, yubikit nor pyscard."""
    code = (
        "import sys, sealcodes._cli as c\n"
        "try:\n"
        "    c.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fido2', 'yubikit', 'smartcard', 'ykman'))\n"
        "print(bad, file=sys.stderr)\n"
        "assert not bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", [
    "AID_SEALCODES", "AID_FIDO", "AID_OATH", "AID_OTP",
    "SEAL_INS_VERIFY_PIN", "SEAL_INS_GENERATE", "SEAL_INS_GET_INFO", "SEAL_INS_SET_PIN", "SEAL_INS_DERIVE",
    "SEAL_P2_GENERATE_OVERWRITE", "SEAL_PIN_MIN_LEN", "SEAL_PIN_MAX_LEN", "SEAL_NUM_SLOTS",
    "SEAL_CHALLENGE_LEN", "SEAL_SECRET_LEN", "SEAL_TAG_VERSION", "SEAL_TAG_SERIAL", "SEAL_TAG_PIN_SET",
    "SEAL_TAG_PIN_TRIES", "SEAL_TAG_SLOTS_USED", "CLA_ISO", "P1_SELECT_BY_AID",
    "OATH_INS_CALCULATE", "OATH_INS_SEND_REMAINING", "OATH_TAG_NAME", "OATH_TAG_CHALLENGE", "OATH_TAG_RESPONSE",
    "OATH_TAG_VERSION",
])
def test_host_constants_equal_the_firmware(name):
    from sealcodes import const as host

    assert getattr(host, name) == firmware_constant(name)


def test_host_status_words_equal_the_firmware():
    from sealcodes.const import SW

    pairs = {SW.OK: "SW_OK", SW.MORE_DATA: "SW_BYTES_REMAINING_00", SW.VERIFY_FAIL: "SW_VERIFY_FAIL_00",
             SW.STILL_WORKING: "SW_FIDO_UPDATE"}
    for sw in SW:
        fw_name = pairs.get(sw, f"SW_{sw.name}")
        assert firmware_constant(fw_name) == sw, sw.name


# the firmware's protocol constants live next to what uses them (docs/architecture.md, "Constants")
FIRMWARE_CONSTANT_MODULES = ("sealtoken.core.iso7816", "sealtoken.core.card", "sealtoken.applets",
                             "sealtoken.applets.seal", "sealtoken.applets.oath", "sealtoken.applets.fido")


def firmware_constant(name):
    """The firmware's value of a protocol constant: exactly one of its constant homes defines it (assigns
    it, rather than importing it from another)."""
    import importlib

    found = []
    for module in map(importlib.import_module, FIRMWARE_CONSTANT_MODULES):
        tree = ast.parse(Path(module.__file__).read_text())
        assigned = {target.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
        if name in assigned:
            found.append(getattr(module, name))
    assert len(found) == 1, f"{name} is defined in {len(found)} of {FIRMWARE_CONSTANT_MODULES}"
    return found[0]


POSIX_ONLY = {"fcntl", "resource", "termios", "pwd", "grp", "posix"}


def test_host_imports_no_posix_only_module_at_import_time():
    """The host library and CLI import on Windows: no POSIX-only module is imported at module level
    (inside a function, behind a fallback, is fine). The client libraries choose their own platform
    code. The profile store's file locking is made portable on its own branch and is left out here
    until it lands."""
    found = []
    for path in _sources("sealcodes"):
        if _module_name("sealcodes", path) == "sealcodes.profile":
            continue
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in POSIX_ONLY]
    assert found == []


def _type_checking_lines(path: Path) -> set:
    """Lines inside `if TYPE_CHECKING:` blocks: imports for annotations only, never run."""
    lines = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def _host_import_graph() -> dict:
    """Module -> the host modules it imports at run time (lazy imports included, imports for type
    annotations only left out), over existing files only."""
    modules = {_module_name("sealcodes", path): path for path in _sources("sealcodes")}
    graph = {}
    for module, path in modules.items():
        typing_only = _type_checking_lines(path)
        graph[module] = {target for line, target in imports_of("sealcodes", path)
                         if target in modules and target != module and line not in typing_only}
    return graph


def import_cycles(graph: dict) -> list:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_import_cycles_among_host_modules():
    """No two host modules import each other, directly or through others (lazy imports count: a
    cycle hidden inside a function is still two modules that cannot be understood apart)."""
    assert import_cycles(_host_import_graph()) == []


def private_imports(package: str, path: Path, root: Path | None = None) -> list:
    """`from X import _name` where X is another module: a private name used across modules."""
    module = _module_name(package, path, root)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno} ({module}) imports {alias.name}")
    return found


def test_no_private_name_is_imported_across_host_modules():
    assert [v for path in _sources("sealcodes") for v in private_imports("sealcodes", path)] == []


def test_the_cycle_and_private_checks_see_violations(tmp_path):
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    root = tmp_path / "sealcodes"
    root.mkdir()
    (root / "x.py").write_text("def f():\n    from .y import _helper, public\n")
    assert private_imports("sealcodes", root / "x.py", root) == ["x.py:2 (sealcodes.x) imports _helper"]
