"""The board Platform's flash under real MicroPython: power cut in every flash program and erase of
the token's updates and of the first start's block reservation, and the token's blocks next to a
filesystem in use (tests/board/model/flash_checks.py, on the model of rp2.Flash: NOR programming
that only clears bits, whole 256-byte pages, 4 KB erases)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from ._board import MODEL, PICO_HEAP, ROOT, micropython

ALL_MODES = "truncate,none,flip"


def _check(board_dist, tmp_path, check, modes="truncate", stride=1, out=None):
    env = dict(os.environ, SEALBOARD_MODEL_FLASH=str(tmp_path / "flash.bin"), SEALBOARD_MODEL_FLASH_BLOCKS="96")
    result = subprocess.run([micropython(), "-X", f"heapsize={PICO_HEAP}", str(MODEL / "flash_checks.py"),
                             str(MODEL), str(board_dist / "lib"), str(tmp_path), check, modes, str(stride)],
                            capture_output=True, text=True, env=env, timeout=600)
    passed = dict(re.findall(r"^PASS (\w+) (\d+)$", result.stdout, re.M))
    assert result.returncode == 0 and check in passed, (result.stdout + result.stderr)[-4000:]
    if out is not None:
        out.extend(result.stdout.splitlines())
    return int(passed[check])


def test_power_cut_in_every_flash_operation_of_the_tokens_updates(board_dist, tmp_path):
    # six steps (first boot, PIN set and changed with compactions, slots, an OATH credential), every
    # program and erase, three ways of being cut: 49 operations
    assert _check(board_dist, tmp_path, "cuts", ALL_MODES) == 3 * 49


def test_power_cut_during_the_first_start_reservation(board_dist, tmp_path):
    assert _check(board_dist, tmp_path, "reservation", "truncate", 3) >= 40


@pytest.mark.slow
def test_power_cut_in_every_operation_of_the_reservation(board_dist, tmp_path):
    assert _check(board_dist, tmp_path, "reservation", ALL_MODES, 1) >= 400


def test_the_tokens_blocks_next_to_a_filesystem_in_use(board_dist, tmp_path):
    lines = []
    assert _check(board_dist, tmp_path, "coexist", out=lines) == 8
    # the map file, read by a parser written here from docs/board.md ("The flash map"), not the board's
    (line,) = [x for x in lines if x.startswith("MAP ")]
    _, data, blocks = line.split()
    assert parse_map(bytes.fromhex(data)) == [int(b) for b in blocks.split(",")]
    assert len(set(parse_map(bytes.fromhex(data)))) == 16


def parse_map(data: bytes) -> list:
    """docs/board.md: "SLTM" | count (u16 BE) | count block numbers (u32 BE) | first 8 bytes of SHA-256
    of everything before."""
    import hashlib
    import struct

    assert data[:4] == b"SLTM"
    (count,) = struct.unpack(">H", data[4:6])
    body, check = data[:6 + 4 * count], data[6 + 4 * count:]
    assert check == hashlib.sha256(body).digest()[:8] and len(data) == 6 + 4 * count + 8
    return list(struct.unpack(f">{count}I", body[6:]))


def test_the_map_vector_of_docs_board_md():
    import sys

    sys.path.insert(0, str(ROOT / "hardware" / "boards"))
    try:
        from sealdevice.flash import map_bytes  # plain Python: it runs under CPython too
    finally:
        sys.path.pop(0)
    vector = bytes.fromhex(MAP_VECTOR)
    assert parse_map(vector) == list(range(20, 36))
    assert map_bytes(list(range(20, 36))) == vector


# docs/board.md, "The flash map": blocks 20..35
MAP_VECTOR = ("534c544d0010" + "".join(f"{b:08x}" for b in range(20, 36)) + "b0198ee280c1a853")
