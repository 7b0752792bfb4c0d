"""LoopbackConnection: a sealcodes SmartCardConnection straight into a firmware Card.

No sockets and no pcscd: the in-process path used by `sealcodes demo`, the
built-in emulator and fast tests. Framing is exactly what a reader would carry.
"""

from __future__ import annotations

from sealcodes.connection import SmartCardConnection
from sealcodes.errors import DeviceError


class LoopbackConnection(SmartCardConnection):
    def __init__(self, card, name="emulator"):
        self._card = card
        self.name = name
        self.apdu_count = 0
        self._closed = False
        card.power_on()

    @property
    def atr(self) -> bytes:
        return bytes(self._card.atr)

    def _transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if self._closed:
            raise DeviceError("the connection to the emulated token is closed")
        self.apdu_count += 1
        response = self._card.process_apdu(bytes(apdu))
        if len(response) < 2:
            raise DeviceError("the emulated token gave a response without a status word")
        return bytes(response[:-2]), (response[-2] << 8) | response[-1]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._card.power_off()
