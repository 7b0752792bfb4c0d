"""Connections: how backends reach a device.

Backends speak only to these small interfaces, never to pyscard or sockets
directly. A connection is passed into a backend, never built inside it.
`SmartCardConnection` has the same shape as yubikit's, so an adapter to yubikit
is a few lines.
"""

from __future__ import annotations

import abc

TRANSPORT_USB = "usb"  # extended APDUs allowed
TRANSPORT_NFC = "nfc"  # short APDUs with chaining


class SmartCardConnection(abc.ABC):
    """An ISO 7816 link to one card."""

    #: a human name for the device behind the connection (reader name, "emulator")
    name: str = ""

    @property
    @abc.abstractmethod
    def atr(self) -> bytes:
        """The card's answer to reset."""

    @property
    def transport(self) -> str:
        """TRANSPORT_USB when ATR[1] & 0xF0 == 0xF0 (as yubikit decides), else TRANSPORT_NFC."""
        atr = self.atr
        return TRANSPORT_USB if len(atr) > 1 and atr[1] & 0xF0 == 0xF0 else TRANSPORT_NFC

    @abc.abstractmethod
    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return (response data, SW). Raises DeviceError on link failure."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
