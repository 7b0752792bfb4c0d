"""The board Platform's flash under real MicroPython: power cut in every flash program and erase of
the token's updates and of the first start's block reservation, and the token's blocks next to a
filesystem in use (tests/board/model/flash_checks.py, on the model of rp2.Flash: NOR programming
that only clears bits, whole 256-byte pages, 4 KB erases)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from ._board import MODEL, PICO_HEAP, micropython

ALL_MODES = "truncate,none,flip"


def _check(board_dist, tmp_path, check, modes="truncate", stride=1):
    env = dict(os.environ, SEALBOARD_MODEL_FLASH=str(tmp_path / "flash.bin"), SEALBOARD_MODEL_FLASH_BLOCKS="96")
    result = subprocess.run([micropython(), "-X", f"heapsize={PICO_HEAP}", str(MODEL / "flash_checks.py"),
                             str(MODEL), str(board_dist / "lib"), str(tmp_path), check, modes, str(stride)],
                            capture_output=True, text=True, env=env, timeout=600)
    passed = dict(re.findall(r"^PASS (\w+) (\d+)$", result.stdout, re.M))
    assert result.returncode == 0 and check in passed, (result.stdout + result.stderr)[-4000:]
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
    assert _check(board_dist, tmp_path, "coexist") == 8
