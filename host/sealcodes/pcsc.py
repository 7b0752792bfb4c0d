"""The only pyscard code of sealcodes: PC/SC readers and a SmartCardConnection over them.

A connection holds a PC/SC transaction (SCardBeginTransaction) from connect to close: no other
program reaches the card in between, so nobody can slip a command between sealcodes' VERIFY
and its DERIVE, or select another application under it. A session that verified a PIN
(`reset_on_close()`) ends the transaction by resetting the card, so no verified state outlives
it. pyscard's low-level `scard` module is used directly: it is what the higher layers of
pyscard wrap.

Another program can hold a card too. One that opened it exclusively is told by pcscd at once
(DeviceBusyError, no wait). One that holds a transaction (scdaemon does, around each of its
commands) makes pcscd hold our connect, and pyscard repeat our SCardBeginTransaction, for as long
as it keeps the transaction, without any limit: so each connection is opened in a thread and a
PC/SC context of its own (a call that waits holds its context's lock), and the caller waits only
as long as it chose (`wait`), telling `on_wait` once after BUSY_NOTICE_AFTER_S. An opening given
up on closes what it opened if the other program ever lets go. Listing readers uses one shared
context: pcscd answers it without waiting for anybody.
"""

from __future__ import annotations

import threading

from .connection import ResponseGuard, SmartCardConnection
from .errors import DeviceBusyError, DeviceError, DeviceNotFoundError

#: how long a command waits for a card another program holds in a transaction (CLI: --wait)
DEFAULT_BUSY_WAIT_S = 15.0
#: after this long, the wait is told (`on_wait`): a card that answers does so well before
BUSY_NOTICE_AFTER_S = 0.5

_context = None


def _scard():
    try:
        from smartcard import scard
    except ImportError:  # pyscard missing: no PC/SC here
        return None
    return scard


def _get_context(scard):
    """One PC/SC context per process (established on first use); None without pcscd."""
    global _context
    if _context is None:
        try:
            rv, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        except Exception:
            return None
        if rv != scard.SCARD_S_SUCCESS:
            return None
        _context = context
    return _context


def list_readers() -> list[str]:
    """Names of the PC/SC readers pcscd knows; [] when pcscd is not running."""
    scard = _scard()
    context = _get_context(scard) if scard else None
    if context is None:
        return []
    try:
        rv, readers = scard.SCardListReaders(context, [])
    except Exception:
        return []
    return list(readers) if rv == scard.SCARD_S_SUCCESS else []


def busy_message(reader: str, exclusive: bool, waited: float | None = None) -> str:
    """What the user reads when another program holds the card, with what usually does it."""
    held = "in exclusive use by another program" if exclusive else "in use by another program"
    after = f" (waited {waited:g} s)" if waited else ""
    return (f"the card in {reader!r} is {held}{after}. With a YubiKey that is usually GnuPG's scdaemon: "
            "stop it with `gpgconf --kill scdaemon`, or add `pcsc-shared` to ~/.gnupg/scdaemon.conf so "
            "that it shares the card")


class _Opened:
    """What a successful opening holds: its own context, the card handle, its protocol and ATR."""

    def __init__(self, context, card, protocol, atr, in_transaction):
        self.context, self.card, self.protocol, self.atr = context, card, protocol, atr
        self.in_transaction = in_transaction


def _release(scard, context, card, in_transaction, disposition) -> None:
    """End the transaction, disconnect and release the context; whatever is gone stays gone."""
    if card is not None:
        if in_transaction:
            try:
                if scard.SCardEndTransaction(card, disposition) == scard.SCARD_S_SUCCESS:
                    disposition = scard.SCARD_LEAVE_CARD  # reset once is enough
            except Exception:  # the card or pcscd is gone; the disconnect below still asks for the reset
                pass
        try:
            scard.SCardDisconnect(card, disposition)
        except Exception:  # the card or pcscd is gone: nothing left to release
            pass
    try:
        scard.SCardReleaseContext(context)
    except Exception:  # pcscd is gone
        pass


class _Opening:
    """SCardConnect (shared), SCardBeginTransaction and SCardStatus of one connection, in a thread
    and a PC/SC context of their own (module docstring). `result()` gives an `_Opened`, the
    (stage, rv) of a failure, or None when the caller gave up waiting."""

    def __init__(self, scard, reader: str, transaction: bool):
        self._scard, self._reader, self._transaction = scard, reader, transaction
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._given_up = False
        self._result = None
        threading.Thread(target=self._run, name="sealcodes-pcsc-open", daemon=True).start()

    def _open(self):
        scard = self._scard
        rv, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rv != scard.SCARD_S_SUCCESS:
            return ("context", rv)
        rv, card, protocol = scard.SCardConnect(context, self._reader, scard.SCARD_SHARE_SHARED,
                                                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if rv != scard.SCARD_S_SUCCESS:
            _release(scard, context, None, False, scard.SCARD_LEAVE_CARD)
            return ("connect", rv)
        if self._transaction:
            rv = scard.SCardBeginTransaction(card)
            if rv != scard.SCARD_S_SUCCESS:
                _release(scard, context, card, False, scard.SCARD_LEAVE_CARD)
                return ("transaction", rv)
        rv, _reader, _state, _protocol, atr = scard.SCardStatus(card)
        if rv != scard.SCARD_S_SUCCESS:
            _release(scard, context, card, self._transaction, scard.SCARD_LEAVE_CARD)
            return ("status", rv)
        return _Opened(context, card, protocol, bytes(atr), self._transaction)

    def _run(self):
        try:
            result = self._open()
        except Exception:  # pyscard failed in a way of its own: as if pcscd were not there
            result = ("context", None)
        with self._lock:
            if not self._given_up:
                self._result = result
                self._done.set()
                return
        if isinstance(result, _Opened):  # nobody waits for it any more
            _release(self._scard, result.context, result.card, result.in_transaction, self._scard.SCARD_LEAVE_CARD)

    def result(self, wait: float, on_wait=None):
        try:
            if not self._done.wait(min(wait, BUSY_NOTICE_AFTER_S)) and wait > BUSY_NOTICE_AFTER_S:
                if on_wait is not None:
                    on_wait()
                self._done.wait(wait - BUSY_NOTICE_AFTER_S)
        finally:  # also on Ctrl-C: whatever comes later is released by the thread
            with self._lock:
                if self._result is None:
                    self._given_up = True
        return self._result


class PcscConnection(SmartCardConnection):
    """The card in a named PC/SC reader, held in a transaction until close().

    `wait`: how long to wait for a card another program holds in a transaction before giving up
    (DeviceBusyError); `on_wait()` is called once when that wait goes on past BUSY_NOTICE_AFTER_S.
    A card another program holds exclusively is DeviceBusyError at once."""

    def __init__(self, reader_name: str, transaction: bool = True, wait: float = DEFAULT_BUSY_WAIT_S,
                 on_wait=None):
        scard = _scard()
        if scard is None:
            raise DeviceNotFoundError("PC/SC is not available (pyscard is not installed)")
        self._scard = scard
        self.name = reader_name
        self.apdu_count = 0
        self._card = None
        self._reset_requested = False
        result = _Opening(scard, reader_name, transaction).result(wait, on_wait)
        if result is None:
            raise DeviceBusyError(busy_message(reader_name, exclusive=False, waited=wait), reader_name)
        if not isinstance(result, _Opened):
            stage, rv = result
            if stage == "context":
                raise DeviceNotFoundError("PC/SC is not available (is pcscd running?)")
            if stage == "connect" and rv == scard.SCARD_E_UNKNOWN_READER:
                raise DeviceNotFoundError(f"no PC/SC reader named {reader_name!r}")
            if stage == "connect" and rv == scard.SCARD_E_SHARING_VIOLATION:
                raise DeviceBusyError(busy_message(reader_name, exclusive=True), reader_name, exclusive=True)
            if stage == "connect":
                raise DeviceNotFoundError(f"no card in reader {reader_name!r}")
            raise DeviceError(f"the card in {reader_name!r} was removed or reset while connecting")
        self._context, self._card, self._protocol = result.context, result.card, result.protocol
        self._in_transaction = result.in_transaction
        self._atr = result.atr

    @property
    def atr(self) -> bytes:
        return self._atr

    def _transmit(self, apdu: bytes) -> tuple[bytes, int]:
        data, sw1, sw2 = self.transmit_raw(apdu, f"the card in {self.name!r}")
        return bytes(data), (sw1 << 8) | sw2

    def transmit_raw(self, apdu, what="the card") -> tuple[list, int, int]:
        """One APDU as pyscard carries it: (data, SW1, SW2). A removed or reset card (or a link
        failure) becomes one DeviceError."""
        if self._card is None:
            raise DeviceError(f"{what} is no longer connected")
        self.apdu_count += 1
        rv, response = self._scard.SCardTransmit(self._card, self._protocol, list(apdu))
        if rv != self._scard.SCARD_S_SUCCESS or len(response) < 2:
            raise DeviceError(f"{what} was removed or reset during the command; nothing was changed")
        return response[:-2], response[-2], response[-1]

    @property
    def pyscard_connection(self):
        """This connection as the pyscard CardConnection python-fido2's CtapPcscDevice expects,
        inside the same transaction, behind a response guard of its own."""
        return _PyscardView(self)

    def ctap_device(self):
        """python-fido2's CtapPcscDevice (NFCCTAP) over this connection, in its transaction."""
        return _ctap_device_class()(self.pyscard_connection, self.name)

    def close(self) -> None:
        if self._card is None:
            return
        scard, card = self._scard, self._card
        self._card = None
        disposition = scard.SCARD_RESET_CARD if self._reset_requested else scard.SCARD_LEAVE_CARD
        _release(scard, self._context, card, self._in_transaction, disposition)


class _PyscardView:
    """The subset of pyscard's CardConnection python-fido2 uses, over a PcscConnection. It stops
    endless 61xx / 9100 answers (python-fido2's PC/SC code follows both without a limit); its
    connect() and disconnect() leave the PcscConnection (and its transaction) alone."""

    def __init__(self, connection: PcscConnection):
        self._connection = connection
        self._guard = ResponseGuard()

    def connect(self, *args, **kwargs):
        pass

    def disconnect(self):
        pass

    def getATR(self):
        return list(self._connection.atr)

    def getReader(self):
        return self._connection.name

    def transmit(self, command, protocol=None):
        data, sw1, sw2 = self._connection.transmit_raw(command)
        self._guard.check(len(data), (sw1 << 8) | sw2)
        return data, sw1, sw2

    def control(self, code, data=()):
        raise DeviceError("this reader cannot be controlled through sealcodes")


_CTAP_DEVICE_CLASS = None


def _ctap_device_class():
    """CtapPcscDevice, minus one message: a FIDO application that answers SELECT with "FIDO_2_0" is
    CTAP2 (CTAP 2.1, NFC), so python-fido2's getInfo probe is spent only on keys that answer
    "U2F_V2" (also CTAP1), where the SELECT answer cannot tell. Ctap2() reads getInfo anyway."""
    global _CTAP_DEVICE_CLASS
    if _CTAP_DEVICE_CLASS is None:
        from fido2.ctap import CtapError
        from fido2.hid import CAPABILITY, CTAPHID
        from fido2.pcsc import AID_FIDO, CtapPcscDevice

        class PcscCtapDevice(CtapPcscDevice):
            def __init__(self, connection, name):
                self._name = name
                self._capabilities = CAPABILITY(0)
                self.use_ext_apdu = False
                self.use_nfcctap_getresponse = True
                self._conn = connection
                self._select_answer = b""
                self.connect()
                if self._select_answer == b"FIDO_2_0":
                    self._capabilities |= CAPABILITY.CBOR
                    return
                try:
                    self.call(CTAPHID.CBOR, b"\x04")
                    self._capabilities |= CAPABILITY.CBOR
                except CtapError:
                    if not self._capabilities:
                        raise ValueError("Unsupported device") from None

            def _select(self):
                apdu = b"\x00\xa4\x04\x00" + bytes((len(AID_FIDO),)) + AID_FIDO
                resp, sw1, sw2 = self._chained_apdu_exchange(apdu)
                if (sw1, sw2) != (0x90, 0x00):
                    raise ValueError("FIDO applet selection failure.")
                if resp == b"U2F_V2":
                    self._capabilities |= CAPABILITY.NMSG
                self._select_answer = bytes(resp)

        _CTAP_DEVICE_CLASS = PcscCtapDevice
    return _CTAP_DEVICE_CLASS
