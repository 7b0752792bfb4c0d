"""PIN-always through the real PC/SC stack: the PIN verification sealcodes makes on our token can be
used once, by sealcodes, and not by another program sharing the card through pcscd.

pcscd shares a card between clients (SCARD_SHARE_SHARED), and the card's state is the card's, not
the client's: before PIN-always, a second client connected while sealcodes held the card could
DERIVE with a challenge of its own after sealcodes' VERIFY and compute every code.
"""

from __future__ import annotations

import threading

import pytest

from sealcodes.backends.applet import AppletBackend, parse_info
from sealcodes.backends.base import Interaction
from sealcodes.pcsc import PcscConnection
from sealcodes.enrollment import AppletOptions
from sealcodes.records import Enrollment
from sealtoken.applets import AID_SEALCODES
from sealtoken.applets.seal import SEAL_INS_DERIVE, SEAL_INS_RESET, SEAL_INS_VERIFY_PIN
pytestmark = pytest.mark.pcsc

PIN = b"4711-pin"
ATTACKER_CHALLENGE = bytes(range(200, 232))


class _Pin(Interaction):
    def __init__(self):
        self.handed_out = []

    def request_pin(self, purpose, new=False):
        pin = bytearray(PIN)
        self.handed_out.append(pin)
        return pin

    def confirm(self, message):
        return True


def _pyscard(reader):
    from smartcard.System import readers

    connection = next(r for r in readers() if str(r) == reader).createConnection()
    connection.connect()
    return connection


def _send(connection, apdu):
    data, sw1, sw2 = connection.transmit(list(apdu))
    return bytes(data), (sw1 << 8) | sw2


def _derive_apdu(slot, challenge):
    return bytes((0x00, SEAL_INS_DERIVE, slot, 0x00, len(challenge))) + challenge + b"\x00"


def _enrolled(reader):
    backend = AppletBackend(PcscConnection(reader))
    try:
        backend.enroll(_Pin(), AppletOptions(slot=1))
    finally:
        backend.connection.close()


def _other_program_derives(reader, outcome):
    """Another local program: connects through pcscd (shared) and asks for DERIVE, no SELECT."""
    try:
        connection = _pyscard(reader)
        try:
            outcome.append(_send(connection, _derive_apdu(1, ATTACKER_CHALLENGE)))
        finally:
            connection.disconnect()
    except Exception as exc:  # the card was reset under it (sealcodes closed its session): also fine
        outcome.append(exc)


def test_another_client_cannot_derive_after_sealcodes_verify_and_derive(vpcd_token):
    _enrolled(vpcd_token.reader)
    backend = AppletBackend(PcscConnection(vpcd_token.reader))
    interaction = _Pin()
    try:
        response = backend.respond(bytes(32), Enrollment(backend="applet", slot=1), interaction)
        assert len(response) == 32
        outcome = []
        other = threading.Thread(target=_other_program_derives, args=(vpcd_token.reader, outcome))
        other.start()
        other.join(5)  # sealcodes' session is still open here
    finally:
        backend.connection.close()
    other.join(10)
    assert len(outcome) == 1
    result = outcome[0]
    if isinstance(result, tuple):
        data, sw = result
        # 6982: the verification was spent; 6D00: sealcodes' session ended with a card reset, so the
        # seal application is not even selected for the other program
        assert sw in (0x6982, 0x6D00) and data == b"", f"another program got DERIVE answered with {sw:04X}"
    # the PIN buffer sealcodes was handed is wiped
    assert interaction.handed_out and all(not any(pin) for pin in interaction.handed_out)


def test_one_verify_one_derive_between_two_raw_clients(vpcd_token):
    """The same through two bare pyscard clients: A verifies and derives; B, sharing the card, gets 6982;
    A's own second DERIVE needs a second VERIFY too."""
    _enrolled(vpcd_token.reader)
    a = _pyscard(vpcd_token.reader)
    b = _pyscard(vpcd_token.reader)
    try:
        select = bytes((0x00, 0xA4, 0x04, 0x00, len(AID_SEALCODES))) + AID_SEALCODES
        verify = bytes((0x00, SEAL_INS_VERIFY_PIN, 0x00, 0x00, len(PIN))) + PIN
        assert _send(a, select)[1] == 0x9000
        assert _send(a, verify)[1] == 0x9000
        answer, sw = _send(a, _derive_apdu(1, bytes(32)))
        assert sw == 0x9000 and len(answer) == 32
        assert _send(b, _derive_apdu(1, ATTACKER_CHALLENGE)) == (b"", 0x6982)
        assert _send(a, _derive_apdu(1, bytes(32))) == (b"", 0x6982)
        # a VERIFY that B's DERIVE uses up is gone for A: A sees it fail, nothing is silent
        assert _send(a, verify)[1] == 0x9000
        assert _send(b, _derive_apdu(1, ATTACKER_CHALLENGE))[1] == 0x9000
        assert _send(a, _derive_apdu(1, bytes(32))) == (b"", 0x6982)
    finally:
        a.disconnect()
        b.disconnect()


def test_reset_over_pcsc_needs_a_touch(pcscd, tmp_path):
    from _support import VpcdToken

    token = VpcdToken(tmp_path / "denying", presence="deny")
    token.start()
    try:
        _enrolled(token.reader)
        connection = _pyscard(token.reader)
        try:
            select = bytes((0x00, 0xA4, 0x04, 0x00, len(AID_SEALCODES))) + AID_SEALCODES
            assert _send(connection, select)[1] == 0x9000
            assert _send(connection, bytes((0x00, SEAL_INS_RESET, 0xDE, 0xAD)))[1] == 0x6985
            info, sw = _send(connection, select)
            assert sw == 0x9000
            # nothing was erased: the PIN and the slot are still there
            assert parse_info(info)["slots_used"] == [1] and parse_info(info)["pin_set"]
        finally:
            connection.disconnect()
    finally:
        token.stop()


def test_reset_over_pcsc_waits_for_the_touch_then_erases(pcscd, tmp_path):
    import signal

    from _support import VpcdToken

    token = VpcdToken(tmp_path / "waiting", presence="wait")
    token.start()
    try:
        _enrolled(token.reader)  # enrolling needs no touch; only RESET waits for one
        connection = _pyscard(token.reader)
        try:
            select = bytes((0x00, 0xA4, 0x04, 0x00, len(AID_SEALCODES))) + AID_SEALCODES
            assert _send(connection, select)[1] == 0x9000
            outcome = []
            reset = threading.Thread(target=lambda: outcome.append(
                _send(connection, bytes((0x00, SEAL_INS_RESET, 0xDE, 0xAD)))))
            reset.start()
            reset.join(1.0)
            assert reset.is_alive() and not outcome  # the token waits for the button
            token.process.send_signal(signal.SIGUSR1)  # the button (sealtoken serve: SIGUSR1 = touch)
            reset.join(20)
            assert outcome == [(b"", 0x9000)]
            info, sw = _send(connection, select)
            assert sw == 0x9000 and parse_info(info)["slots_used"] == [] and not parse_info(info)["pin_set"]
        finally:
            connection.disconnect()
    finally:
        token.stop()
