# sealtoken: a FIDO2 key and smartcard on this board (docs/board.md). Hold BOOTSEL while the LED
# flickers (one second, soon after plugging in) to keep the USB REPL instead.
import board
from sealdevice.names import learn_names

learn_names()  # first: sealdevice/names.py says why

from sealdevice.app import run  # noqa: E402

run(board)
