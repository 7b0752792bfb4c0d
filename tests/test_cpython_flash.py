"""CPythonPlatform's flash: the NOR model of the firmware tests, written through to the state directory."""

from __future__ import annotations

import pytest

from sealboard.platform import CPythonPlatform
from sealtoken.core.platform import FlashError, FlashWornOut


def test_state_files_hold_pages_and_wear_across_restarts(tmp_path):
    p = CPythonPlatform(state_dir=str(tmp_path))
    try:
        assert (p.NUM_PAGES, p.PAGE_SIZE) == (16, 4096)
        p.flash_write(3, 8, b"\x12\x34\x56\x78")
        p.flash_write(12, 4092, b"\x00\x00\x00\x00")
        p.flash_erase(5)
        p.flash_erase(5)
        p.flash_sync()
    finally:
        p.close()
    # the two halves of the pages are the two files of the old two-bank layout
    assert (tmp_path / "flash0.bin").stat().st_size == (tmp_path / "flash1.bin").stat().st_size == 32768
    assert (tmp_path / "flash0.bin").read_bytes()[3 * 4096 + 8:3 * 4096 + 12] == b"\x12\x34\x56\x78"
    assert (tmp_path / "flash1.bin").read_bytes()[4 * 4096 + 4092:5 * 4096] == bytes(4)
    assert oct((tmp_path / "erase-counts.bin").stat().st_mode & 0o777) == "0o600"
    p = CPythonPlatform(state_dir=str(tmp_path))
    try:
        assert p.flash_read(3, 8, 4) == b"\x12\x34\x56\x78"
        assert p.erase_counts()[5] == 2 and sum(p.erase_counts()) == 2
        # NOR rules hold on the PC too, and a refused write changes nothing on disk
        with pytest.raises(FlashError):
            p.flash_write(3, 8, b"\xff\xff\xff\xff")
        with pytest.raises(FlashError):
            p.flash_write(3, 9, b"\x00\x00\x00\x00")
    finally:
        p.close()
    assert (tmp_path / "flash0.bin").read_bytes()[3 * 4096 + 8:3 * 4096 + 12] == b"\x12\x34\x56\x78"


def test_erase_limit(tmp_path):
    p = CPythonPlatform(page_size=256, num_pages=2)
    p.flash.max_erase_cycles = 2
    p.flash_erase(0)
    p.flash_erase(0)
    with pytest.raises(FlashWornOut):
        p.flash_erase(0)
    assert p.erase_counts() == [2, 0]
