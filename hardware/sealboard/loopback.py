"""LoopbackConnection: a link straight into a firmware Card, no sockets, no pcscd.

The in-process path used by the built-in emulator and fast tests. Framing is exactly what a
reader would carry. It has the shape of yubikit's smartcard connection (`atr`, `name`,
`send_and_receive(apdu) -> (data, sw)`, `close()`) and knows nothing of the host: sealcodes
wraps it in its own connection class. A failed link raises ConnectionError (an OSError).
"""

from __future__ import annotations


class LoopbackClosed(ConnectionError):
    """The link was used after close() or the card answered without a status word."""


class LoopbackConnection:
    def __init__(self, card, name="emulator"):
        self._card = card
        self.name = name
        self.apdu_count = 0
        self._closed = False
        card.power_on()

    @property
    def atr(self) -> bytes:
        return bytes(self._card.atr)

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self._closed:
            raise LoopbackClosed("the connection to the emulated token is closed")
        self.apdu_count += 1
        response = self._card.process_apdu(bytes(apdu))
        if len(response) < 2:
            raise LoopbackClosed("the emulated token gave a response without a status word")
        return bytes(response[:-2]), (response[-2] << 8) | response[-1]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._card.power_off()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
