"""docs/security.md item 17: the host treats a device as untrusted.

A hostile card (real ISO 7816 framing through the same LoopbackConnection the
emulator uses) answers with wrong lengths, wrong status words, truncated or
endless responses: every case is a clear one-line DeviceError, never a
traceback, never a partial code set.
"""

from __future__ import annotations

import pytest

from sealboard.loopback import LoopbackConnection
from sealcodes.backends.applet import AppletBackend
from sealcodes.backends.base import Interaction
from sealcodes.errors import SealcodesError
from sealcodes.records import Enrollment
from sealtoken.applets.seal import SEAL_INS_DERIVE, SEAL_INS_VERIFY_PIN
GOOD_INFO = bytes.fromhex("0103010000" "020411223344" "030101" "040108" "050101" "060108")


class _Pin(Interaction):
    def request_pin(self, purpose, new=False):
        return "1234"


class HostileCard:
    atr = bytes.fromhex("3bf813000081318fe15000000000000000000000")

    def __init__(self, select_answer=GOOD_INFO + b"\x90\x00", derive_answer=b"\x00" * 32 + b"\x90\x00",
                 verify_answer=b"\x90\x00"):
        self.select_answer = select_answer
        self.derive_answer = derive_answer
        self.verify_answer = verify_answer

    def power_on(self):
        pass

    def power_off(self):
        pass

    def process_apdu(self, apdu):
        ins = apdu[1]
        if ins == 0xA4:
            return self.select_answer
        if ins == SEAL_INS_VERIFY_PIN:
            return self.verify_answer
        if ins == SEAL_INS_DERIVE:
            return self.derive_answer
        if ins == 0xC0:  # GET RESPONSE: always "more to come"
            return b"\xAA" * 255 + b"\x61\x00"
        return b"\x6d\x00"


def _respond(card):
    backend = AppletBackend(LoopbackConnection(card, name="hostile"))
    return backend.respond(b"\x01" * 32, Enrollment(backend="applet", slot=1), _Pin())


def test_well_behaved_double_works():
    assert bytes(_respond(HostileCard())) == b"\x00" * 32


@pytest.mark.parametrize("card, words", [
    (HostileCard(derive_answer=b"\x00" * 31 + b"\x90\x00"), "31 bytes"),
    (HostileCard(derive_answer=b"\x00" * 33 + b"\x90\x00"), "33 bytes"),
    (HostileCard(derive_answer=b"\x90\x00"), "0 bytes"),
    (HostileCard(derive_answer=b"\x6f\x00"), "status 6F00"),
    (HostileCard(derive_answer=b"\x61\x10"), "more response data"),
    (HostileCard(derive_answer=b"\x00"), "without a status word"),
    (HostileCard(select_answer=b"\x01\x09\x01\x90\x00"), "malformed"),
    (HostileCard(select_answer=b"\x01\x03\x01\x00\x00\x90\x00"), "lacks"),
    (HostileCard(select_answer=b"\x6a\x82"), "no sealcodes applet"),
    (HostileCard(verify_answer=b"\x63\xc3"), "wrong PIN: 3 tries"),
    (HostileCard(verify_answer=b"\x69\x83"), "blocked"),
])
def test_hostile_answers_give_one_clear_error(card, words):
    with pytest.raises(SealcodesError) as info:
        _respond(card)
    message = str(info.value)
    assert words in message and "\n" not in message


class EndlessMoreData(HostileCard):
    """Answers every GET RESPONSE (and yubikit's SEND REMAINING) with 61 00 and no data."""

    def process_apdu(self, apdu):
        if apdu[1] in (0xC0, 0xA5):
            return b"\x61\x00"
        if apdu[1] == 0xA4:
            return b"\x61\x00"
        return super().process_apdu(apdu)


def test_endless_61xx_is_stopped_for_every_smartcard_backend():
    from sealcodes.backends.ykoath import YkoathBackend
    from sealcodes.backends.yubiotp import YubiOtpBackend

    for backend in (AppletBackend, YkoathBackend, YubiOtpBackend):
        connection = LoopbackConnection(EndlessMoreData(), name="hostile")
        with pytest.raises(SealcodesError) as info:
            session = backend(connection)
            session.respond(b"\x01" * 32, Enrollment(backend=session.name, slot=2, credential_name="sealcodes"),
                            _Pin())
        assert "more response data" in str(info.value)
        assert connection.apdu_count <= 300
