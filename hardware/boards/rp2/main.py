# sealtoken: a FIDO2 key and smartcard on this board (docs/board.md). Hold BOOTSEL during the first
# second after plugging in (the LED flickers) to keep the USB REPL instead.
import board
from sealdevice.app import run

run(board)
