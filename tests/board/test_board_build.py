"""scripts/build-board.sh: the files a person copies onto a Pico (docs/board.md)."""

from __future__ import annotations

import hashlib
import json
import subprocess

from ._board import ROOT, build

FIRMWARE_MODULES = sorted(p.relative_to(ROOT / "firmware").with_suffix(".mpy").as_posix()
                          for p in (ROOT / "firmware" / "sealtoken").rglob("*.py"))
DEVICE_MODULES = sorted(p.relative_to(ROOT / "hardware" / "boards").with_suffix(".mpy").as_posix()
                        for p in (ROOT / "hardware" / "boards" / "sealdevice").rglob("*.py"))


def test_the_tree_holds_every_module_compiled_main_py_and_its_sums(board_dist):
    lib = sorted(p.relative_to(board_dist / "lib").as_posix() for p in (board_dist / "lib").rglob("*") if p.is_file())
    assert lib == sorted(FIRMWARE_MODULES + DEVICE_MODULES + ["board.mpy"])
    assert sorted(p.name for p in board_dist.iterdir()) == ["SHA256SUMS", "lib", "main.py", "package.json"]
    assert (board_dist / "main.py").read_text() == (ROOT / "hardware" / "boards" / "rp2" / "main.py").read_text()
    for mpy in (board_dist / "lib").rglob("*.mpy"):
        head = mpy.read_bytes()[:4]
        # 'M', version 6, then no native code (arch 0: bytecode, which every 6.x release loads, the
        # sub-version only matters for native code), small ints of 31 bits (a Pico's)
        assert head == b"M\x06\x00\x1f", (mpy, head)
    # the checksum list covers every other file, as `sha256sum -c` checks it
    sums = dict(reversed(line.split("  ", 1)) for line in (board_dist / "SHA256SUMS").read_text().splitlines())
    files = sorted(p.relative_to(board_dist).as_posix() for p in board_dist.rglob("*")
                   if p.is_file() and p.name != "SHA256SUMS")
    assert sorted(sums) == files
    for name, digest in sums.items():
        assert hashlib.sha256((board_dist / name).read_bytes()).hexdigest() == digest
    check = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=board_dist, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_package_json_lists_every_lib_file_for_mpremote_mip(board_dist):
    package = json.loads((board_dist / "package.json").read_text())
    targets = [target for target, _ in package["urls"]]
    sources = [source for _, source in package["urls"]]
    assert sorted(targets) == sorted(FIRMWARE_MODULES + DEVICE_MODULES + ["board.mpy"])
    assert all((board_dist / source).is_file() and source == "lib/" + target
               for target, source in package["urls"])
    assert len(set(sources)) == len(sources)


def test_the_build_is_reproducible(board_dist, tmp_path):
    again = build(tmp_path / "again")
    assert (again / "SHA256SUMS").read_text() == (board_dist / "SHA256SUMS").read_text()


def test_an_unknown_board_is_a_one_line_usage_error(tmp_path):
    for args in ([], ["pdp11"], ["sealdevice"]):
        result = subprocess.run(["bash", str(ROOT / "scripts" / "build-board.sh"), *args, str(tmp_path / "x")],
                                capture_output=True, text=True)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "boards: rp2" in result.stderr
    assert not (tmp_path / "x").exists()


def test_a_compiler_of_another_mpy_version_is_refused(tmp_path):
    fake = tmp_path / "mpy-cross"
    fake.write_text("#!/bin/sh\necho 'MicroPython v1.22.2 on 2024-02-22; mpy-cross emitting mpy v6.2'\n")
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build-board.sh"), "rp2", str(tmp_path / "out")],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "MPY_CROSS": str(fake)})
    assert result.returncode == 1
    assert "wrong .mpy version" in result.stderr and "6.3" in result.stderr
    assert not (tmp_path / "out").exists()
