"""The token as a virtual smartcard behind pcscd, through vsmartcard's vpcd driver.

vpcd (Debian package vsmartcard-vpcd) makes pcscd listen on TCP 35963 (reader
"Virtual PCD 00 00") and 35964 ("Virtual PCD 00 01"). We connect as the card.
Every message, both ways: 2-byte big-endian length, then payload. One-byte
payloads are controls (power off / on / reset / get ATR); longer ones are
C-APDUs, answered with data || SW1 SW2. pcscd always speaks first.
"""

from __future__ import annotations

import logging
import socket
import struct
import time

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963

VPCD_POWER_OFF = 0x00
VPCD_POWER_ON = 0x01
VPCD_RESET = 0x02
VPCD_GET_ATR = 0x04


class VpcdClosed(Exception):
    """pcscd closed the connection."""


def parse_address(text):
    """'HOST:PORT', 'HOST' or ':PORT' -> (host, port)."""
    host, _, port = (text or "").rpartition(":") if ":" in (text or "") else (text, "", "")
    host = host or DEFAULT_HOST
    # ASCII digits only, as sealcodes reads every number: int() takes '٣٥٩٦٣', ' 1' and '3_5'
    if port and not (port.isascii() and port.isdigit() and len(port) <= 5):
        raise ValueError(f"not a port number: {port!r}")
    port = int(port) if port else DEFAULT_PORT
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return host, port


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        if _QUICKACK is not None:
            # vpcd writes the length and the payload separately; acknowledging at once keeps
            # Nagle on its side from holding the payload back for a delayed ACK (~40 ms)
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise VpcdClosed()
        buf += chunk
    return bytes(buf)


class VpcdCard:
    """Serves one firmware Card to vpcd until stopped."""

    def __init__(self, card, host=DEFAULT_HOST, port=DEFAULT_PORT):
        self.card = card
        self.host = host
        self.port = port
        self.apdu_count = 0
        self._sock = None
        self._stopping = False

    def connect(self, timeout=10.0):
        """Connect to pcscd's vpcd port, retrying until timeout (pcscd may be starting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ConnectionError(
                        f"cannot reach vpcd at {self.host}:{self.port} ({exc.strerror or exc}); "
                        "is pcscd running with vsmartcard-vpcd installed?"
                    ) from None
                time.sleep(0.2)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def serve_once(self):
        """Answer one message from pcscd."""
        (length,) = struct.unpack(">H", _recv_exact(self._sock, 2))
        payload = _recv_exact(self._sock, length) if length else b""
        if len(payload) == 1:
            reply = self._control(payload[0])
        elif len(payload) == 0:
            reply = None
        else:
            self.apdu_count += 1
            reply = bytes(self.card.process_apdu(payload))
            if not reply:  # vpcd takes an empty answer as card removal: never send one
                reply = b"\x6f\x00"
        if reply is not None:
            self._sock.sendall(struct.pack(">H", len(reply)) + reply)

    def _control(self, code):
        if code == VPCD_POWER_OFF:
            self.card.power_off()
        elif code == VPCD_POWER_ON:
            self.card.power_on()
        elif code == VPCD_RESET:
            self.card.reset()
        elif code == VPCD_GET_ATR:
            return bytes(self.card.atr)
        else:
            log.warning("unknown vpcd control %#04x ignored", code)
        return None

    def serve_forever(self, reconnect=True):
        """Serve until stop(); reconnect when pcscd goes away (the card 'reinserts')."""
        while not self._stopping:
            if self._sock is None:
                self.connect(timeout=float("inf") if reconnect else 10.0)
            try:
                while not self._stopping:
                    self.serve_once()
            except (VpcdClosed, OSError):
                if self._stopping:
                    break
                self.card.power_off()
                self._close_socket()
                if not reconnect:
                    raise
                log.info("vpcd connection lost; reconnecting")
                time.sleep(0.2)

    def stop(self):
        self._stopping = True
        self._close_socket()

    def _close_socket(self):
        if self._sock is not None:
            for step in (lambda: self._sock.shutdown(socket.SHUT_RDWR), self._sock.close):
                try:
                    step()
                except OSError:
                    pass
            self._sock = None
