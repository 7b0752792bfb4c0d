// Run the firmware tests (tests/firmware/test_*.py) under real MicroPython.
//
//   node tests/micropython/run.mjs [--slow] [--heapsize BYTES] [-k SUBSTRING] [test_file.py ...]
//
// MicroPython is the WebAssembly port from npm (@micropython/micropython-webassembly-pyscript,
// declared in the repo's package.json: run `npm ci` in the repo root). The script copies
// the firmware/sealtoken tree (its .py files, folders kept) to /lib/sealtoken, tests/firmware/test_*.py to /tests/firmware and
// tests/vectors/*.json to /tests/vectors in the in-memory file system, then a tiny runner
// imports each test module and calls every function whose name starts with "test_" (sorted
// by name). Tests named in the module's SLOW_TESTS list (what the tests' `slow` decorator
// records next to pytest.mark.slow) are skipped unless --slow is given.
//
// Output: one line per test ("PASS" / "FAIL" / "SKIP"), tracebacks of failures, then
// "SUMMARY passed=N failed=N skipped=N". Exit code 0 when everything ran and passed,
// 1 on any failure (or when no test ran), 2 when MicroPython cannot be loaded.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const mpModule = path.join(root, "node_modules", "@micropython", "micropython-webassembly-pyscript", "micropython.mjs");

const args = process.argv.slice(2);
let slow = false;
let heapsize = 1024 * 1024;  // the npm package default; the firmware must fit small boards
let filter = "";
const only = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--slow") slow = true;
  else if (a === "--heapsize") heapsize = parseInt(args[++i], 10);
  else if (a === "-k") filter = args[++i] || "";
  else if (a === "-h" || a === "--help") {
    console.log("usage: node tests/micropython/run.mjs [--slow] [--heapsize BYTES] [-k SUBSTRING] [test_file.py ...]");
    process.exit(0);
  } else only.push(path.basename(a));
}

if (!fs.existsSync(mpModule)) {
  console.error(`MicroPython (WebAssembly) is not installed: ${mpModule} is missing.\n` +
    `Run "npm ci" (or "npm install") in ${root}.`);
  process.exit(2);
}

const { loadMicroPython } = await import(pathToFileURL(mpModule).href);
let failedOutput = false;
const mp = await loadMicroPython({
  heapsize,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => { failedOutput = true; process.stderr.write(line + "\n"); },
});

function mkdirs(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}

function copyDir(src, dst, accept) {
  mkdirs(dst);
  const names = fs.readdirSync(src).filter(accept).sort();
  for (const name of names) {
    mp.FS.writeFile(dst + "/" + name, fs.readFileSync(path.join(src, name)));
  }
  return names;
}

function copyTree(src, dst) {
  copyDir(src, dst, (n) => n.endsWith(".py"));
  for (const name of fs.readdirSync(src).sort()) {
    if (fs.statSync(path.join(src, name)).isDirectory() && name !== "__pycache__") {
      copyTree(path.join(src, name), dst + "/" + name);
    }
  }
}

copyTree(path.join(root, "firmware", "sealtoken"), "/lib/sealtoken");
const vectors = path.join(root, "tests", "vectors");
if (fs.existsSync(vectors)) copyDir(vectors, "/tests/vectors", (n) => n.endsWith(".json"));
let tests = copyDir(path.join(root, "tests", "firmware"), "/tests/firmware",
  (n) => n.startsWith("test_") && n.endsWith(".py"));
if (only.length) tests = tests.filter((n) => only.includes(n));
if (!tests.length) {
  console.error("no firmware test files found");
  process.exit(1);
}

const runner = `
import sys, gc, time
sys.path.insert(0, "/tests/firmware")
if "/lib" not in sys.path:
    sys.path.append("/lib")
try:
    import io
except ImportError:
    io = None

def _trace(e):
    if io is None:
        return repr(e)
    buf = io.StringIO()
    sys.print_exception(e, buf)
    return buf.getvalue()

_passed = 0
_failed = 0
_skipped = 0
_failures = []
for _modname in ${JSON.stringify(tests.map((t) => t.slice(0, -3)))}:
    try:
        _mod = __import__(_modname)
    except Exception as e:
        _failed += 1
        _failures.append((_modname + " (import)", _trace(e)))
        print("FAIL", _modname, "(import error)")
        continue
    _names = sorted(n for n in dir(_mod) if n.startswith("test_") and callable(getattr(_mod, n)))
    for _name in _names:
        _id = _modname + "::" + _name
        if ${JSON.stringify(filter)} and ${JSON.stringify(filter)} not in _id:
            continue
        _fn = getattr(_mod, _name)
        if _name in getattr(_mod, "SLOW_TESTS", ()) and not ${slow ? "True" : "False"}:
            _skipped += 1
            print("SKIP", _id, "(slow)")
            continue
        gc.collect()
        _t0 = time.ticks_ms()
        try:
            _fn()
        except Exception as e:
            _failed += 1
            _failures.append((_id, _trace(e)))
            print("FAIL", _id)
            continue
        _passed += 1
        print("PASS", _id, "(%d ms)" % time.ticks_diff(time.ticks_ms(), _t0))
    del _mod
    gc.collect()

for _id, _tb in _failures:
    print("=" * 70)
    print("FAIL", _id)
    print(_tb)
print("SUMMARY passed=%d failed=%d skipped=%d (%s)" % (_passed, _failed, _skipped, sys.implementation._machine if hasattr(sys.implementation, "_machine") else sys.implementation.name))
_MP_OK = _failed == 0 and _passed > 0
`;

let ok = false;
try {
  mp.runPython(runner);
  ok = mp.globals.get("_MP_OK") === true;
} catch (e) {
  console.error("MicroPython runner crashed: " + (e && e.message ? e.message : e));
  ok = false;
}
process.exit(ok ? 0 : 1);
