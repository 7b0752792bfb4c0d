"""The benchmark scripts still run against the library as it is (two had stopped working when the
backends took typed options, and nothing noticed). Tiny sizes: this checks they run and print
their tables, not what they measure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script, *args, timeout=180):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_bench_ecdh_runs():
    out = _run("bench_ecdh.py", "--rounds", "1")
    for row in ("applet respond (baseline)", "piv respond (P-256)", "openpgp respond (P-384)"):
        assert row in out


def test_bench_keyring_runs():
    out = _run("bench_keyring.py", "--rounds", "1")
    assert "open 2-of-3 keyring + derive" in out and "sheet as PDF" in out


def test_bench_store_runs():
    out = _run("bench_store.py", "--ops", "20")
    assert "seal generate (VERIFY+DERIVE) lifetime" in out and "FIDO generate (2 assertions) lifetime" in out


@pytest.mark.pcsc
def test_bench_generate_runs(pcscd):
    out = _run("bench_generate.py", "--rounds", "1", timeout=300)
    for row in ("bare yubikit script", "bare python-fido2 script", "bare script + pre-PIN proof",
                "sealcodes --help start-up", "--device READER vs profile path", "--device SERIAL vs profile path",
                "sealcodes generate --device emulator"):
        assert row in out


def test_bench_verifier_runs():
    out = _run("bench_verifier.py", "--rounds", "2", "--skip-postgres", "--skip-http", "--attempts", "3")
    assert "exactly-once" in out and "SQLite      1 success of 100" in out
    assert "unknown account" in out and "known hmac-sha256 account, wrong code" in out


def test_bench_verifier_http_runs():
    out = _run("bench_verifier_http.py", "--verifies", "4", "--raw-hashes", "1", "--chunks", "1", "--skip-postgres")
    assert "raw Argon2id" in out and "CPU ratio" in out and "beyond the hash" in out
    figures, factors = out.split("the CPU ratio's two factors")
    rows = [line.split() for line in figures.splitlines() if line.strip().startswith("SQLite")]
    assert [row[1] for row in rows] == [str(2 * len(os.sched_getaffinity(0))), "50"]
    assert all(row[-5] in ("4/4", "50/50") for row in rows), rows  # every verify accepted
    # the server counted its hashing's CPU (/metrics): a share of its CPU, a cost per hash
    shares = [line.split() for line in factors.splitlines() if line.strip().startswith("SQLite")]
    assert len(shares) == 2 and all(0 < float(row[2]) <= 1 and float(row[3]) > 0 for row in shares), shares


def test_bench_firmware_ram_runs():
    out = _run("bench_firmware_ram.py", "--quick")
    for row in ("RAM in use after Token()", "after every applet was selected once", "getInfo allocates, second call"):
        assert row in out


def test_bench_ec_runs():
    out = _run("bench_ec.py", "--rounds", "1")
    for row in ("affine double-and-add (baseline)", "P-256 ECDH", "P-384 ECDH", "AES-256-CBC encrypt 64 bytes",
                "FIDO makeCredential", "FIDO getAssertion + hmac-secret", "allocated", "RP2350"):
        assert row in out


def test_bench_verifier_scale_runs():
    out = _run("bench_verifier_scale.py", "--accounts", "2000", "--attempts", "20", "--v2-sample", "10")
    for row in ("1. import rate", "records/s", "record v2 sample", "bytes/account", "accepted p50",
                "(goal: <= 1.1x)", "raw Argon2id at the default cost", "-- status", "-- audit ACCOUNT",
                "Index Scan using accounts_pkey", "Index Scan Backward using audit_account",
                "-- verify, accepted", "Index Scan using codes_pkey", "-- verify, unknown account"):
        assert row in out


def test_bench_board_runs():
    out = _run("bench_board.py", "--rounds", "1", timeout=300)
    for row in ("seal GENERATE", "seal DERIVE", "FIDO makeCredential", "getAssertion with hmac-secret",
                "PIV GENERAL AUTHENTICATE", "RP2350", ".mpy bytecode", "smallest heap"):
        assert row in out


def test_bench_board_counts_instructions_in_both_heaps():
    out = _run("bench_board.py", "--instructions", "1", timeout=300)
    head = next(line for line in out.splitlines() if line.startswith("operation")).split()
    assert head[1:] == ["252", "KiB", "480", "KiB"]   # the RP2040's heap and the RP2350's
    for row in ("getAssertion with hmac-secret (ECDH)", "clientPIN getPinToken"):
        line = next(line for line in out.splitlines() if row in line)
        counts = [float(word) for word in line.split()[-2:]]
        # an ECDH and more on the token: tens of millions; a count of the boot alone would be
        # hundreds, one that lost the operation about none
        assert all(20 < count < 300 for count in counts), line


def test_bench_board_measures_some_sequences():
    out = _run("bench_board.py", "--sequences", "seal", timeout=300)
    figure = float(out.split("smallest heap seal run in (one boot): ")[1].split()[0])
    assert 16 < figure < 512   # found inside the search range, not at its ends


def test_bench_board_counts_failures_over_repeated_runs():
    out = _run("bench_board.py", "--repeat", "1", "512,16", timeout=300)
    assert "512 KiB: 0 of 1 runs failed" in out   # room enough
    assert "16 KiB: 1 of 1 runs failed" in out    # the imports alone need more: the limit is real


def test_bench_board_measures_the_board_package():
    out = _run("bench_board.py", "--board", "--board-range", "504", "512", timeout=300)
    for row in ("the board package (sealtoken-rp2)", "smallest heap the sequences ran in: 512 KiB",
                "the model of machine and rp2", "on a 32-bit board", "an RP2040 leaves"):
        assert row in out


def test_bench_board_frozen_board_keeps_only_main_on_its_file_system(tmp_path, monkeypatch):
    """`--board --frozen` (a port with sealtoken, sealdevice and the board file frozen in): the
    board's file system must not hold them too, or the files, not the image, would be measured."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_board

    built = bench_board.board_dist(tmp_path / "files", frozen=False)
    assert {p.name for p in (built / "lib").iterdir()} >= {"sealtoken", "sealdevice", "board.mpy"}
    dist = bench_board.board_dist(tmp_path / "frozen", frozen=True)
    assert (dist / "main.py").is_file()
    assert not any((dist / "lib").iterdir())
