"""Connections: how backends reach a device.

Backends speak only to these small interfaces, never to pyscard or sockets
directly. A connection is passed into a backend, never built inside it.
`SmartCardConnection` has the same shape as yubikit's, so an adapter to yubikit
is a few lines.
"""

from __future__ import annotations

import abc
import time

from .errors import DeviceError

TRANSPORT_USB = "usb"  # extended APDUs allowed
TRANSPORT_NFC = "nfc"  # short APDUs with chaining

# A device may announce "more data" (SW 61xx) or "still working" (SW 9100) only so often: a
# broken or hostile device that never stops would otherwise hang the host with growing memory.
MAX_MORE_DATA_ROUNDS = 256
MAX_MORE_DATA_BYTES = 256 * 1024
MAX_STILL_WORKING_S = 120.0
MORE_DATA_MESSAGE = ("the device keeps announcing more response data than any answer holds; "
                     "it is broken or not what it claims")


class ResponseGuard:
    """Counts consecutive 61xx / 9100 answers of one link and stops endless ones (docs/security.md item 17)."""

    def __init__(self):
        self._rounds = 0
        self._bytes = 0
        self._working_since = None

    def check(self, data_len: int, sw: int) -> None:
        if (sw >> 8) == 0x61:
            self._rounds += 1
            self._bytes += data_len
            if self._rounds > MAX_MORE_DATA_ROUNDS or self._bytes > MAX_MORE_DATA_BYTES:
                self._rounds = self._bytes = 0
                raise DeviceError(MORE_DATA_MESSAGE)
        else:
            self._rounds = self._bytes = 0
        if sw == 0x9100:
            now = time.monotonic()
            if self._working_since is None:
                self._working_since = now
            elif now - self._working_since > MAX_STILL_WORKING_S:
                self._working_since = None
                raise DeviceError(f"the device said 'still working' for over {MAX_STILL_WORKING_S:.0f} s")
        else:
            self._working_since = None


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

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return (response data, SW). Raises DeviceError on link failure,
        and on a device that never stops announcing more data."""
        data, sw = self._transmit(apdu)
        if not hasattr(self, "_guard"):
            self._guard = ResponseGuard()
        self._guard.check(len(data), sw)
        return data, sw

    @abc.abstractmethod
    def _transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Carry one APDU over the link: (response data, SW)."""

    def reset_on_close(self) -> None:
        """Reset the card when it is released (ends every verified PIN state on it), for a session
        that verified a PIN. Links whose close() powers the card off need nothing more."""
        self._reset_requested = True

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LinkConnection(SmartCardConnection):
    """A SmartCardConnection over a plain link object that does not know sealcodes.

    Device providers (the emulator in sealboard, ...) hand out links with the same shape as
    yubikit's connection: `atr`, `name`, `send_and_receive(apdu) -> (data, sw)`, `close()`; they
    raise OSError when the link fails. This adds what every sealcodes connection has: the response
    guard and DeviceError.
    """

    def __init__(self, link):
        self.link = link
        self.name = getattr(link, "name", "") or ""

    @property
    def atr(self) -> bytes:
        return bytes(self.link.atr)

    def __getattr__(self, name):  # apdu_count and other extras of the link
        if name == "link":
            raise AttributeError(name)
        return getattr(self.link, name)

    def _transmit(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            data, sw = self.link.send_and_receive(bytes(apdu))
        except OSError as exc:
            raise DeviceError(str(exc) or "the device stopped answering") from None
        return bytes(data), int(sw)

    def close(self) -> None:
        try:
            self.link.close()
        except OSError:
            pass


def as_connection(connection) -> SmartCardConnection:
    """`connection` itself when it is a SmartCardConnection, else a LinkConnection over it."""
    if isinstance(connection, SmartCardConnection):
        return connection
    return LinkConnection(connection)
