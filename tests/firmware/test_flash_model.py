"""The NOR flash model of SimPlatform (and of CPythonPlatform, which uses the same NorFlash).

Page erase to 0xFF; word writes that can only clear bits (a 1 over a 0 is an error);
a limit on writes per word between erases; an erase count per page with a limit,
reported; power cuts in writes and erases that respect the physics (a write only
ever clears bits, an erase only ever sets them). Plain asserts: runs under MicroPython too.
"""

from sealtoken.core.platform import FlashError, FlashWornOut
from sealtoken.core.simplatform import NorFlash, PowerCut, SimPlatform


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_write_clears_bits_only():
    p = SimPlatform(page_size=256, num_pages=2)
    p.flash_write(0, 0, b"\xf0\x0f\xff\x00")
    assert p.flash_read(0, 0, 4) == b"\xf0\x0f\xff\x00"
    p.flash_write(0, 0, b"\x30\x0f\x7f\x00")  # clearing more bits of the same word is allowed
    assert p.flash_read(0, 0, 4) == b"\x30\x0f\x7f\x00"
    # setting a bit back to 1 needs an erase: refused, nothing changes
    assert raises(FlashError, p.flash_write, 0, 0, b"\x31\x0f\x7f\x00")
    assert p.flash_read(0, 0, 4) == b"\x30\x0f\x7f\x00"
    p.flash_erase(0)
    assert p.flash_read(0, 0, 256) == b"\xff" * 256
    p.flash_write(0, 0, b"\xff\xff\xff\xff")
    assert p.erase_counts() == [1, 0]


def test_writes_are_whole_aligned_words():
    p = SimPlatform(page_size=256, num_pages=2)
    for offset, data in ((1, b"abcd"), (0, b"abc"), (2, b"ab"), (4, b"abcdef")):
        assert raises(FlashError, p.flash_write, 0, offset, data)
    assert p.flash_read(0, 0, 16) == b"\xff" * 16 and p.flash_writes == 0


def test_word_write_limit_between_erases():
    p = SimPlatform(page_size=256, num_pages=1)
    p.flash_write(0, 8, b"\xfe\xff\xff\xff")
    p.flash_write(0, 8, b"\xfc\xff\xff\xff")
    assert raises(FlashError, p.flash_write, 0, 8, b"\xf8\xff\xff\xff")  # a third write to the word
    p.flash_write(0, 12, b"\x00\x00\x00\x00")  # its neighbour is another word
    p.flash_erase(0)
    p.flash_write(0, 8, b"\x00\x00\x00\x00")


def test_erase_count_limit_and_report():
    p = SimPlatform(page_size=64, num_pages=3, max_erase_cycles=5)
    for _ in range(5):
        p.flash_erase(1)
    p.flash_erase(2)
    assert p.erase_counts() == [0, 5, 1]
    p.flash_write(1, 0, b"\x00\x00\x00\x00")
    assert raises(FlashWornOut, p.flash_erase, 1)
    assert issubclass(FlashWornOut, FlashError)
    assert p.erase_counts() == [0, 5, 1] and p.flash_read(1, 0, 4) == b"\x00\x00\x00\x00"


def test_power_cut_during_write_only_clears_bits():
    for mode in ("none", "truncate", "flip", "torn"):
        for keep in (None, 0, 3, 8):
            p = SimPlatform(page_size=64, num_pages=1, seed=mode)
            p.flash_write(0, 0, b"\x0f\x0f\x0f\x0f" * 2)
            old = p.flash_read(0, 0, 8)
            p.cut_power_after(0, mode, keep)
            assert raises(PowerCut, p.flash_write, 0, 0, b"\x05\x05\x05\x05\x03\x03\x03\x03")
            p.reboot()
            got = p.flash_read(0, 0, 8)
            for i in range(8):
                assert got[i] & ~old[i] & 0xFF == 0, (mode, keep)  # no bit went from 0 to 1
            if mode == "truncate" and keep is not None:
                assert got[:keep] == b"\x05\x05\x05\x05\x03\x03\x03\x03"[:keep] and got[keep:] == old[keep:]


def test_power_cut_during_erase_only_sets_bits_and_counts():
    for mode in ("none", "truncate", "flip", "torn"):
        p = SimPlatform(page_size=64, num_pages=1, seed=mode)
        p.flash_write(0, 0, bytes(64))
        p.cut_power_after(0, mode, 10)
        assert raises(PowerCut, p.flash_erase, 0)
        p.reboot()
        got = p.flash_read(0, 0, 64)
        if mode == "none":
            assert got == bytes(64) and p.erase_counts() == [0]
            continue
        assert p.erase_counts() == [1]  # an interrupted erase wears the page too
        assert got != b"\xff" * 64 or mode == "truncate"
        if mode in ("truncate", "torn"):
            assert got[:10] == b"\xff" * 10
        if mode == "truncate":
            assert got[10:] == bytes(54)


def test_cut_counts_writes_and_erases():
    p = SimPlatform(page_size=64, num_pages=2)
    p.cut_power_after(2)
    p.flash_write(0, 0, b"abcd")
    p.flash_erase(1)
    assert raises(PowerCut, p.flash_write, 0, 4, b"efgh")
    p.reboot()
    assert p.flash_ops == 2 and p.flash_read(0, 0, 8) == b"abcd\xff\xff\xff\xff"


def test_nor_flash_snapshot_restore_keeps_word_counts_sane():
    f = NorFlash(1, 16)
    f.program(0, 0, b"\x00\x00\x00\x00")
    f.set_content(0, bytes(f.pages[0]))
    f.program(0, 0, b"\x00\x00\x00\x00")  # the second write of that word
    assert raises(FlashError, f.program, 0, 0, b"\x00\x00\x00\x00")
    f.program(0, 4, b"\x00\x00\x00\x00")
