"""The only pyscard code of sealcodes: PC/SC readers and a SmartCardConnection over them."""

from __future__ import annotations

from .connection import SmartCardConnection
from .errors import DeviceError, DeviceNotFoundError


def list_readers() -> list[str]:
    """Names of the PC/SC readers pcscd knows; [] when pcscd is not running."""
    try:
        from smartcard.System import readers
        from smartcard.Exceptions import ListReadersException
    except ImportError:  # pyscard missing: no PC/SC here
        return []
    try:
        return [str(r) for r in readers()]
    except ListReadersException:
        return []
    except Exception:  # pcscd not running / no service
        return []


class PcscConnection(SmartCardConnection):
    """A card in a named PC/SC reader."""

    def __init__(self, reader_name: str):
        from smartcard.System import readers
        from smartcard.Exceptions import CardConnectionException, NoCardException

        self.name = reader_name
        matching = [r for r in _safe_readers(readers) if str(r) == reader_name]
        if not matching:
            raise DeviceNotFoundError(f"no PC/SC reader named {reader_name!r}")
        self._connection = matching[0].createConnection()
        try:
            self._connection.connect()
        except (NoCardException, CardConnectionException):
            raise DeviceNotFoundError(f"no card in reader {reader_name!r}") from None
        self._atr = bytes(self._connection.getATR())
        self.apdu_count = 0

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def pyscard_connection(self):
        """The pyscard connection for fido2.pcsc.CtapPcscDevice, behind the same response guard."""
        return _GuardedPyscard(self._connection)

    def _transmit(self, apdu: bytes) -> tuple[bytes, int]:
        self.apdu_count += 1
        data, sw1, sw2 = _transmit(self._connection, list(apdu), f"the card in {self.name!r}")
        return bytes(data), (sw1 << 8) | sw2

    def close(self) -> None:
        try:
            self._connection.disconnect()
        except Exception:
            pass


def _safe_readers(readers):
    try:
        return readers()
    except Exception:
        raise DeviceNotFoundError("PC/SC is not available (is pcscd running?)") from None


class _GuardedPyscard:
    """A pyscard CardConnection whose transmit() stops endless 61xx / 9100 answers (python-fido2's
    PC/SC code follows both without a limit) and turns link failures into DeviceError."""

    def __init__(self, connection):
        from .connection import ResponseGuard

        self._connection = connection
        self._guard = ResponseGuard()

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def transmit(self, command, *args, **kwargs):
        data, sw1, sw2 = _transmit(self._connection, command, "the card", *args, **kwargs)
        self._guard.check(len(data), (sw1 << 8) | sw2)
        return data, sw1, sw2


def _transmit(connection, command, what, *args, **kwargs):
    """pyscard transmit; a removed or reset card (SCARD_W_RESET_CARD, ...) becomes one DeviceError."""
    from smartcard.Exceptions import CardConnectionException

    try:
        return connection.transmit(command, *args, **kwargs)
    except CardConnectionException:
        raise DeviceError(f"{what} was removed or reset during the command; nothing was changed") from None
