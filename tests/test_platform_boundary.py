"""The firmware core reaches the outside world only through the Platform (issue 8 item 10).

- No core module imports an I/O module (time, socket, os, threading, ...), nor calls
  open / print / input: everything external comes through sealtoken.core.platform.Platform.
- Every attribute the core reads on a platform is declared on Platform, with a
  docstring for methods; nothing is looked up with getattr / hasattr on a platform.
- The board platform (CPythonPlatform) implements every capability that Platform
  leaves abstract, so nothing the core calls ends in NotImplementedError on the PC.
- The same, at run time: a token whose platform is a proxy exposing ONLY the declared
  names runs a seal enrollment + DERIVE, a FIDO enrollment + hmac-secret assertion,
  CTAPHID wink, an NFCCTAP request in the background and a store compaction.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sealboard.ctaphid_link import open_emulated_hid_device
from sealboard.loopback import LoopbackConnection
from sealboard.platform import CPythonPlatform
from sealcodes import derivation
from sealcodes.backends.applet import AppletBackend
from sealcodes.backends.base import Interaction
from sealcodes.backends.fido2 import Fido2Backend
from sealcodes.enrollment import AppletOptions, Fido2Options
from sealcodes.records import Enrollment
from sealtoken.core.platform import Platform
from sealtoken.token import Token

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware" / "sealtoken"
# every module of the firmware, in every folder; core/simplatform.py is a Platform implementation
# (for tests), not part of the core
CORE = sorted(p for p in FIRMWARE.rglob("*.py") if p.relative_to(FIRMWARE).as_posix() != "core/simplatform.py")
ALLOWED_IMPORTS = {"hashlib", "struct", "sealtoken"}
# crypto/ (a Platform mixin for boards) looks for native crypto: MicroPython's cryptolib and a board's
# own module (docs/board-crypto.md); neither does I/O
CRYPTO_IMPORTS = {"cryptolib", "sealtoken_native_crypto"}
# __import__ only in core/card.py, where AppletSlot imports an applet on its first SELECT (checked below)
IO_BUILTINS = {"open", "print", "input", "exec", "eval", "__import__"}


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, (node.module or "").split(".")[0]


def _is_platform(node, aliases):
    """platform, self.platform, or a local name bound to one of those."""
    if isinstance(node, ast.Name):
        return node.id == "platform" or node.id in aliases
    return isinstance(node, ast.Attribute) and node.attr == "platform" and isinstance(node.value, ast.Name)


def _platform_uses(tree):
    """(line, name) of every attribute read on a platform, and (line, call) of getattr/hasattr on one."""
    uses, lookups = [], []
    for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Module))]:
        aliases = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if _is_platform(node.value, set()):
                    aliases.add(node.targets[0].id)
        for node in ast.walk(func):
            if isinstance(node, ast.Attribute) and _is_platform(node.value, aliases) and node.attr != "platform":
                uses.append((node.lineno, node.attr))
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr", "setattr") and node.args
                    and _is_platform(node.args[0], aliases)):
                lookups.append((node.lineno, node.func.id))
    return sorted(set(uses)), sorted(set(lookups))


def test_core_modules_import_no_io_module():
    assert len(CORE) >= 15
    bad = []
    for path in CORE:
        tree = ast.parse(path.read_text(), str(path))
        allowed = ALLOWED_IMPORTS | (CRYPTO_IMPORTS if path.relative_to(FIRMWARE).parts[0] == "crypto" else set())
        for line, module in _imports(tree):
            if module not in allowed:
                bad.append(f"{path.relative_to(FIRMWARE)}:{line} imports {module}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IO_BUILTINS
                    and not (node.func.id == "__import__" and path.relative_to(FIRMWARE).as_posix() == "core/card.py")):
                bad.append(f"{path.relative_to(FIRMWARE)}:{node.lineno} calls {node.func.id}()")
    assert not bad, "the firmware core does I/O itself:\n" + "\n".join(bad)


def test_applets_imported_by_name_are_firmware_modules():
    """The one import by name (an applet on its first SELECT) only ever loads a module of
    sealtoken/applets, which the import check above covers like every other core module."""
    token = Token(CPythonPlatform(rng_seed="boundary", page_size=1024, num_pages=2))
    lazy = [slot for slot in token.card.slots if slot.module is not None]
    assert len(lazy) >= 5
    for slot in lazy:
        assert slot.module.startswith("sealtoken.applets.") and slot.applet is None, slot.module
        path = FIRMWARE.joinpath(*slot.module.split(".")[1:]).with_suffix(".py")
        assert path in CORE, slot.module


def test_every_platform_capability_the_core_uses_is_declared():
    used = {}
    lookups = []
    for path in CORE:
        uses, found = _platform_uses(ast.parse(path.read_text(), str(path)))
        for line, name in uses:
            used.setdefault(name, []).append(f"{path.relative_to(FIRMWARE)}:{line}")
        lookups += [f"{path.relative_to(FIRMWARE)}:{line} {call}(platform, ...)" for line, call in found]
    assert not lookups, "undeclared hooks reached through getattr/hasattr:\n" + "\n".join(lookups)
    undeclared = {name: where for name, where in used.items() if not hasattr(Platform, name)}
    assert not undeclared, f"used by the core but not declared on Platform: {undeclared}"
    for name in used:
        member = getattr(Platform, name)
        if callable(member):
            assert member.__doc__ and member.__doc__.strip(), f"Platform.{name} has no docstring"
    # what the core needs, by capability: if one of these stops being used, update the list and the docs
    for name in ("new_lock", "random_bytes", "now_ms", "sleep_ms", "run_background", "wink", "flash_read",
                 "flash_write", "flash_erase", "flash_sync", "PAGE_SIZE", "NUM_PAGES", "wait_user_presence",
                 "hash", "p256_generate", "p256_ecdh", "p256_sign", "aes256_cbc_encrypt", "aes256_cbc_decrypt"):
        assert name in used, f"Platform.{name} is declared for the core but the core never uses it"


def test_the_pc_platform_implements_every_abstract_capability():
    missing = []
    for name, member in vars(Platform).items():
        if not callable(member) or name.startswith("_"):
            continue
        source = ast.parse("class _X:\n" + "\n".join("    " + line for line in
                                                        _method_source(name).splitlines()))
        abstract = any(isinstance(n, ast.Raise) and "NotImplementedError" in ast.dump(n) for n in ast.walk(source))
        if abstract and getattr(CPythonPlatform, name) is member:
            missing.append(name)
    assert not missing, f"CPythonPlatform leaves these abstract: {missing}"


def _method_source(name):
    import inspect
    import textwrap

    return textwrap.dedent(inspect.getsource(getattr(Platform, name)))


class _DeclaredOnly:
    """A platform that answers only the names Platform declares (and records any other)."""

    def __init__(self, platform):
        object.__setattr__(self, "_platform", platform)
        object.__setattr__(self, "refused", [])
        object.__setattr__(self, "used", set())

    def __getattr__(self, name):
        if not hasattr(Platform, name) or name.startswith("_"):
            self.refused.append(name)
            raise AttributeError(f"{name} is not declared on Platform")
        self.used.add(name)
        return getattr(self._platform, name)


class _Pin(Interaction):
    def request_pin(self, purpose, new=False):
        return "boundary-pin"

    def confirm(self, question):
        return True


def test_a_token_runs_on_declared_capabilities_only():
    real = CPythonPlatform(rng_seed="boundary", page_size=1024, num_pages=2)
    platform = _DeclaredOnly(real)
    token = Token(platform)
    seal = AppletBackend(LoopbackConnection(token.card))
    seal.enroll(_Pin(), AppletOptions(slot=2))
    for i in range(20):  # enough VERIFYs to fill a 1 KiB page: the store compacts
        assert len(AppletBackend(LoopbackConnection(token.card)).respond(derivation.challenge("b", i),
                                                                         Enrollment(backend="applet", slot=2), _Pin())) == 32
    assert real.erase_counts() != [0, 0]
    hid = open_emulated_hid_device(token)
    try:
        hid.wink()
        fido = Fido2Backend(hid)
        meta = fido.enroll(_Pin(), Fido2Options(uv="discouraged"))
        assert len(fido.respond(derivation.challenge("b", 0), meta, _Pin())) == 32
    finally:
        hid.close()
    # an NFCCTAP request with polling allowed runs in the platform's background job
    card = token.card
    card.power_on()
    assert card.process_apdu(bytes.fromhex("00a4040008a0000006472f0001"))[-2:] == b"\x90\x00"
    answer = card.process_apdu(bytes.fromhex("8010800001" "04" "00"))
    assert answer[-2:] == b"\x90\x00" and answer[0] == 0
    assert not platform.refused, platform.refused
    assert {"new_lock", "run_background", "wink", "flash_erase", "p256_sign"} <= platform.used
