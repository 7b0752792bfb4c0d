"""Adapter: a sealcodes SmartCardConnection seen as yubikit's SmartCardConnection.

yubikit is an optional extra (`pip install sealcodes[yubikey]`); this module is
imported only by the backends that need it, and imports yubikit only when
called, so the rest of sealcodes works without it.
"""

from __future__ import annotations

import threading

from ..connection import TRANSPORT_USB, as_connection
from ..errors import DeviceError

TOUCH_NOTICE_DELAY_S = 0.5

_MISSING = "this backend needs yubikit: install sealcodes[yubikey] (pip install 'sealcodes[yubikey]')"


def require_yubikit():
    """Import yubikit or raise DeviceError telling how to install it."""
    try:
        import yubikit.core.smartcard  # noqa: F401
    except ImportError:
        raise DeviceError(_MISSING) from None
    return yubikit


_adapter_class = None


def _make_adapter_class():
    from yubikit.core import TRANSPORT
    from yubikit.core.smartcard import SmartCardConnection as YkSmartCardConnection

    class YubikitConnection(YkSmartCardConnection):
        """yubikit connection over a sealcodes connection; closing it leaves the link open."""

        def __init__(self, connection, transport=None):
            self._connection = connection
            self._transport = transport

        @property
        def transport(self):
            kind = self._transport or self._connection.transport
            return TRANSPORT.USB if kind == TRANSPORT_USB else TRANSPORT.NFC

        def send_and_receive(self, apdu):
            data, sw = self._connection.send_and_receive(bytes(apdu))
            return bytes(data), sw

        def close(self):
            # the caller owns the sealcodes connection and closes it
            pass

    return YubikitConnection


def yubikit_connection(connection, transport=None):
    """A `yubikit.core.smartcard.SmartCardConnection` that sends through `connection`.

    yubikit picks its APDU framing from the transport: "usb" (extended APDUs) or
    "nfc" (short APDUs with command chaining). By default the transport is the
    connection's (decided from the ATR); `transport` overrides it.
    """
    global _adapter_class
    require_yubikit()
    if _adapter_class is None:
        _adapter_class = _make_adapter_class()
    return _adapter_class(as_connection(connection), transport)


class TouchNotice:
    """Context manager: calls interaction.touch_needed() once if the block lasts ~0.5 s.

    yubikit blocks in send_and_receive while a device waits for a touch; the
    notice comes from a timer, so a device that answers at once shows nothing.
    """

    def __init__(self, interaction):
        self._timer = threading.Timer(TOUCH_NOTICE_DELAY_S, interaction.touch_needed)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


def new_key(n: int) -> bytearray:
    """n fresh random key bytes for a key the host provisions (held in memory only, wiped after)."""
    import os

    return bytearray(os.urandom(n))
