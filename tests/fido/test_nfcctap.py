"""The backend's own NFCCTAP requests (nfcctap.py) against answers a broken or hostile card could
give: whatever comes back, a response ends in one clear SealcodesError or a checked R, never
another exception; and the framing matches python-fido2's (same R through either)."""

from __future__ import annotations

import random

import pytest

from sealcodes.backends.fido2 import Fido2Backend
from sealcodes.errors import SealcodesError

from .test_fido_backend import CHALLENGE, PIN, Board, NfcCard, Recorder


class _Tampering(NfcCard):
    """Replaces the answer to the n-th CTAP request (80 10 ...) with `forged`."""

    def __init__(self, card, nth, forged):
        super().__init__(card)
        self.nth, self.forged, self.seen = nth, forged, 0

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


@pytest.mark.parametrize("nth", [1, 2, 3, 4, 5])  # getInfo, proof, key agreement, PIN token, the answer with R
def test_forged_answers_end_in_a_clear_error(nth):
    board = Board(transport="nfc", seed="forged answers")
    try:
        board.set_pin()
        enrollment = board.backend().enroll(Recorder(PIN))
        genuine = board.backend().respond(CHALLENGE, enrollment, Recorder(PIN))
        rng = random.Random(nth)
        outcomes = set()
        for forged in _forgeries(rng):
            board.device.close()
            board.device = _Tampering(board.token.card, nth, forged)
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
        self.sent = []

    def _transmit(self, apdu):
        self.sent.append(bytes(apdu[:4]))
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
        atr = bytearray(self.card.atr)
        at = atr.index(b"\x73\xc0\x21\xc0")
        atr[at + 3] = 0x80  # card capabilities: chaining, no extended Lc/Le
        return bytes(atr)


def test_one_apdu_per_request_where_the_atr_allows_it():
    """Our token's ATR offers extended APDUs: a response is SELECT + 5 requests in 6 APDUs. The same
    card behind an ATR that does not offer them gets short APDUs (chained, 61xx) and gives the same R."""
    board = Board(transport="nfc", seed="extended")
    try:
        board.set_pin()
        enrollment = board.backend().enroll(Recorder(PIN))
        answers = {}
        for kind in (_Recording, _ShortOnly):
            board.device.close()
            board.device = kind(board.token.card)
            answers[kind] = Fido2Backend(board.device).respond(CHALLENGE, enrollment, Recorder(PIN))
            sent = board.device.sent
            if kind is _Recording:
                assert sent == [b"\x00\xa4\x04\x00"] + [b"\x80\x10\x80\x00"] * 5
            else:
                assert len(sent) > 6 and b"\x90\x10\x80\x00" in sent and b"\x00\xc0\x00\x00" in sent
        assert answers[_Recording] == answers[_ShortOnly]
    finally:
        board.close()
