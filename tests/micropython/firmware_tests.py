"""Run the firmware tests (tests/firmware/test_*.py) under real MicroPython (not a pytest module).

    micropython -X heapsize=BYTES firmware_tests.py FIRMWARE_DIR TESTS_DIR [--slow] [-k SUBSTRING] [test_x.py ...]

FIRMWARE_DIR holds the sealtoken package (as .py or .mpy); TESTS_DIR the test modules. Every
function whose name starts with "test_" runs (sorted by name), except those in the module's
SLOW_TESTS list (what the tests' `slow` decorator records) unless --slow is given. Between two
tests the collector runs; a module is dropped once its tests ran, so each test has the heap the
firmware and its own module leave, as under `-X heapsize` on the unix port.

Output: one line per test ("PASS id (N ms, N bytes in use after)" / "FAIL id" / "SKIP id (slow)"), the tracebacks of the
failures, then "SUMMARY passed=N failed=N skipped=N (machine)" and, last, "HEAP total=N" (the heap's
size: gc.mem_free() + gc.mem_alloc() at the end). Exit status 1 on any failure or when no test ran.
"""

import gc
import sys
import time

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


def _arguments(argv):
    slow = False
    only = []
    word = ""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--slow":
            slow = True
        elif a == "-k":
            i += 1
            word = argv[i]
        else:
            only.append(a.split("/")[-1])
        i += 1
    return slow, word, only


def _module_names(tests_dir, only):
    import os
    names = sorted(n[:-3] for n in os.listdir(tests_dir) if n.startswith("test_") and n.endswith(".py"))
    if only:
        names = [n for n in names if n + ".py" in only]
    return names


def run(firmware_dir, tests_dir, argv):
    slow, word, only = _arguments(argv)
    sys.path.insert(0, tests_dir)
    sys.path.insert(0, firmware_dir)
    gc.collect()  # and after every test: each starts with the garbage of the one before collected
    passed = failed = skipped = 0
    failures = []
    for modname in _module_names(tests_dir, only):
        try:
            module = __import__(modname)
        except Exception as e:
            failed += 1
            failures.append((modname + " (import)", _trace(e)))
            print("FAIL", modname, "(import error)")
            continue
        names = sorted(n for n in dir(module) if n.startswith("test_") and callable(getattr(module, n)))
        slow_tests = getattr(module, "SLOW_TESTS", ())
        for name in names:
            test_id = modname + "::" + name
            if word and word not in test_id:
                continue
            if name in slow_tests and not slow:
                skipped += 1
                print("SKIP", test_id, "(slow)")
                continue
            start = time.ticks_ms()
            try:
                getattr(module, name)()
            except Exception as e:  # MemoryError included: a test that does not fit fails
                failed += 1
                failures.append((test_id, _trace(e)))
                print("FAIL", test_id)
                continue
            passed += 1
            elapsed = time.ticks_diff(time.ticks_ms(), start)
            gc.collect()
            print("PASS", test_id, "(%d ms, %d bytes in use after)" % (elapsed, gc.mem_alloc()))
        module = None
        del sys.modules[modname]
    for test_id, trace in failures:
        print("=" * 70)
        print("FAIL", test_id)
        print(trace)
    machine = getattr(sys.implementation, "_machine", sys.implementation.name)
    print("SUMMARY passed=%d failed=%d skipped=%d (%s)" % (passed, failed, skipped, machine))
    gc.collect()
    print("HEAP total=%d" % (gc.mem_free() + gc.mem_alloc()))
    return failed == 0 and passed > 0


if __name__ == "__main__":
    if not run(sys.argv[1], sys.argv[2], sys.argv[3:]):
        sys.exit(1)
