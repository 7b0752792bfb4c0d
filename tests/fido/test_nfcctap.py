"""The backend's own NFCCTAP requests (nfcctap.py) against answers a broken or hostile card could
give: whatever comes back, a response ends in one clear SealcodesError or a checked R, never
another exception; and the framing matches python-fido2's (same R through either)."""

from __future__ import annotations

import random

import pytest

from sealcodes.backends.fido2 import Fido2Backend
from sealcodes.errors import SealcodesError

from .test_fido_backend import CHALLENGE, PIN, Board, NfcCard, Recorder


def _short_only_atr(atr: bytes) -> bytes:
    """Our token's ATR with the card capabilities saying: chaining, no extended Lc/Le."""
    atr = bytearray(atr)
    at = atr.index(b"\x73\xc0\x21\xc0")
    atr[at + 3] = 0x80
    return bytes(atr)


class _Tampering(NfcCard):
    """Replaces the answer to the n-th CTAP request (80 10 ...) with `forged`; short=True: behind
    an ATR without extended APDUs (chained requests, answers with 61xx)."""

    def __init__(self, card, nth, forged, short=False):
        super().__init__(card)
        self.nth, self.forged, self.seen, self.short = nth, forged, 0, short

    @property
    def atr(self):
        return _short_only_atr(self.card.atr) if self.short else bytes(self.card.atr)

    def _transmit(self, apdu):
        data, sw = super()._transmit(apdu)
        if apdu[:2] == b"\x80\x10":
            self.seen += 1
            if self.seen == self.nth:
                return self.forged, 0x9000
        return data, sw


def _forgeries(rng):
    yield b""  # no status byte
    yield b"\x00"  # success, no CBOR where some is needed
    yield b"\x00\xa1" + b"\x81" * 5000  # a map whose value nests past any sane depth
    yield b"\x00\x5a\xff\xff\xff\xff"  # a byte string longer than the answer
    yield b"\x00\xa3\x01\xa0\x02\x41\x00\x03\x40"  # an assertion with a 1-byte authData
    for _ in range(150):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        yield bytes([0, 0xA0 | rng.randrange(1, 6)]) + body
        yield bytes([rng.choice((0, 0x31, 0x2E, 0x22))]) + body


@pytest.mark.parametrize("short", [False, True], ids=["extended", "short"])
@pytest.mark.parametrize("nth", [1, 2, 3, 4, 5])  # getInfo, proof, key agreement, PIN token, the answer with R
def test_forged_answers_end_in_a_clear_error(nth, short):
    board = Board(transport="nfc", seed="forged answers")
    try:
        board.set_pin()
        enrollment = board.backend().enroll(Recorder(PIN))
        genuine = board.backend().respond(CHALLENGE, enrollment, Recorder(PIN))
        rng = random.Random(nth)
        outcomes = set()
        for forged in _forgeries(rng):
            board.device.close()
            board.device = _Tampering(board.token.card, nth, forged, short)
            try:
                response = Fido2Backend(board.device).respond(CHALLENGE, enrollment, Recorder(PIN))
            except SealcodesError as exc:
                outcomes.add(type(exc).__name__)
                assert "\n" not in str(exc)
                continue
            assert response == genuine  # nothing forged can pass the checks and change R
        assert outcomes  # the forgeries were seen
    finally:
        board.close()


def test_same_answer_as_python_fido2_over_the_same_card():
    """nfcctap.py and python-fido2's CtapPcscDevice give the same R, with and without UV."""
    from sealcodes.enrollment import Fido2Options

    board = Board(transport="nfc", seed="same answer")
    try:
        board.set_pin()
        backend = board.backend()
        for options in (Fido2Options(uv="required"), Fido2Options(uv="discouraged")):
            enrollment = backend.enroll(Recorder(PIN), options)
            ours = Fido2Backend(board.device).respond(CHALLENGE, enrollment, Recorder(PIN))
            theirs = Fido2Backend(board.device.ctap_device()).respond(CHALLENGE, enrollment, Recorder(PIN))
            assert ours == theirs and len(ours) == 32
    finally:
        board.close()


class _Recording(NfcCard):
    def __init__(self, card):
        super().__init__(card)
        self.apdus = []

    @property
    def sent(self):
        """The header (CLA INS P1 P2) of each APDU sent."""
        return [apdu[:4] for apdu in self.apdus]

    def _transmit(self, apdu):
        self.apdus.append(bytes(apdu))
        return super()._transmit(apdu)


class _Impatient(Recorder):
    def touch_needed(self):
        raise KeyboardInterrupt


def test_a_request_given_up_is_cancelled_on_the_key():
    """Ctrl-C while the key waits for a touch (9100 polling): the key is told to stop waiting."""
    board = Board(transport="nfc", seed="cancel")
    try:
        enrollment = board.backend().enroll(Recorder())
        board.device.close()
        board.device = _Recording(board.token.card)
        board.platform.presence = "wait"
        with pytest.raises(KeyboardInterrupt):
            Fido2Backend(board.device).respond(CHALLENGE, enrollment, _Impatient())
        assert board.device.sent[-1] == b"\x80\x11\x11\x00"  # NFCCTAP_GETRESPONSE, cancel
        board.platform.presence = "approve"
        assert len(Fido2Backend(board.device).respond(CHALLENGE, enrollment, Recorder())) == 32
    finally:
        board.close()


class _ShortOnly(_Recording):
    """Our token's card behind an ATR that does not offer extended APDUs."""

    @property
    def atr(self):
        return _short_only_atr(self.card.atr)


class _BehindNfcReader(_Recording):
    """Our token's card as an NFC reader presents it: the ATR is the reader's (PC/SC part 3, built
    from the card's historical bytes, extended Lc/Le included), the reader may carry short APDUs only."""

    @property
    def atr(self):
        historical = bytes.fromhex("8073c021c0") + b"Ysealtoken"
        return bytes((0x3B, 0x80 | len(historical), 0x80, 0x01)) + historical + b"\x00"


class _RefusesExtended(_Recording):
    """A card (or a reader passing its ATR on) that claims extended APDUs and does not take them:
    it answers them `refusal` (data, SW), or (None) the exchange fails, as a short-APDU reader
    fails them."""

    refusal = (b"", 0x6700)

    def _transmit(self, apdu):
        if len(apdu) > 5 and apdu[4] == 0:
            self.apdus.append(bytes(apdu))
            if self.refusal is None:
                from sealcodes.errors import DeviceError

                raise DeviceError("the card in 'test' was removed or reset during the command; nothing was changed")
            return self.refusal
        return super()._transmit(apdu)


def _refusing(refusal):
    return type("_Refuses", (_RefusesExtended,), {"refusal": refusal})


_ReaderFailsExtended = _refusing(None)


def _ctap_commands(apdus):
    """The CTAP command byte of each request (a chained request counted once)."""
    out, chained = [], False
    for apdu in apdus:
        if apdu[1] != 0x10:
            continue
        if not chained:
            out.append(apdu[7] if apdu[4] == 0 else apdu[5])
        chained = bool(apdu[0] & 0x10)
    return out


@pytest.mark.parametrize("kind, extended", [
    (_Recording, True),  # our token: extended APDUs, one per request
    (_ShortOnly, False),  # its ATR says no: short APDUs
    (_BehindNfcReader, False),  # behind an NFC reader: short APDUs, whatever the ATR says
    (_RefusesExtended, False),  # answers the extended getInfo 6700: short from then on
    (_ReaderFailsExtended, False),  # the exchange fails: the same
    (_refusing((b"", 0x6F00)), False),  # another status word
    (_refusing((b"\x01", 0x9000)), False),  # a CTAP error (INVALID_COMMAND)
    (_refusing((b"\x00\xa1\x01", 0x9000)), False),  # a malformed answer
])
def test_extended_apdus_only_where_they_get_through(kind, extended):
    """Our token's ATR offers extended APDUs over a direct link: a response is SELECT + 5 requests in
    6 APDUs. Elsewhere short APDUs (chained, 61xx) give the same R. Only getInfo, which changes
    nothing on the key, is ever sent twice (the probe); no PIN or assertion request is."""
    board = Board(transport="nfc", seed="extended")
    try:
        board.set_pin()
        enrollment = board.backend().enroll(Recorder(PIN))
        board.device.close()
        board.device = _Recording(board.token.card)
        reference = Fido2Backend(board.device).respond(CHALLENGE, enrollment, Recorder(PIN))
        board.device.close()
        board.device = kind(board.token.card)
        assert Fido2Backend(board.device).respond(CHALLENGE, enrollment, Recorder(PIN)) == reference
        apdus = board.device.apdus
        requests = _ctap_commands(apdus)
        if extended:
            assert len(apdus) == 6 and all(a[4] == 0 for a in apdus[1:])  # SELECT, then 5 extended requests
            assert requests == [0x04, 0x02, 0x06, 0x06, 0x02]
        else:
            short = [a for a in apdus if not (len(a) > 5 and a[4] == 0)]
            assert b"\x90\x10\x80\x00" in [a[:4] for a in short] and b"\x00\xc0\x00\x00" in [a[:4] for a in short]
            probes = 1 if issubclass(kind, _RefusesExtended) else 0
            assert requests == [0x04] * (1 + probes) + [0x02, 0x06, 0x06, 0x02]
    finally:
        board.close()
