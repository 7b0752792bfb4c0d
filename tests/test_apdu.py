"""The APDU layer's extended-length choice (apdu.py): read from the card's ATR, encoded as ISO
7816-4 says, and given up for short APDUs when a card refuses it."""

from __future__ import annotations

import pytest

from sealcodes.apdu import SmartCardProtocol, atr_allows_extended_length, encode_extended_command
from sealcodes.connection import SmartCardConnection

OUR_TOKEN = bytes.fromhex("3bff130000813 1fe158073c021c059".replace(" ", "")) + b"sealtoken\x5c"
YUBIKEY_5_USB = bytes.fromhex("3bfd1300008131fe158073c021c057597562694b657940")  # its CCID interface
NO_EXTENDED = bytes.fromhex("3bfd1300008131fe158073c0218057597562694b657940")  # capabilities: chaining only
CONTACTLESS_STORAGE = bytes.fromhex("3b8f8001804f0ca000000306030001000000006a")  # PC/SC part 3: tag 4 only


@pytest.mark.parametrize("atr, expected", [
    (OUR_TOKEN, True),
    (YUBIKEY_5_USB, True),
    (NO_EXTENDED, False),
    (CONTACTLESS_STORAGE, False),
    (bytes.fromhex("3b00"), False),  # no historical bytes
    (bytes.fromhex("3b02"), False),  # announces 2 historical bytes, has none
    (bytes.fromhex("3bf0"), False),  # announces interface bytes it does not have
    (bytes.fromhex("3b8380" "73c021c0"), False),  # TD1 announced (T0 8x): what follows is no historical byte
    (bytes.fromhex("3b038073c0"), False),  # capabilities cut short
    (bytes.fromhex("3b0800730000400090" "00"), True),  # category 00: TLV, then 3 status bytes
    (bytes.fromhex("3b050073000040"), False),  # category 00: the capabilities' last byte is status
    (bytes.fromhex("3b0410010203"), False),  # category 10: a DIR reference, no compact-TLV
    (b"", False),
])
def test_extended_length_is_read_from_the_atr(atr, expected):
    assert atr_allows_extended_length(atr) is expected


def test_extended_encoding():
    assert encode_extended_command(0x80, 0x10, 0x80, 0, b"\x04", 0) == bytes.fromhex("8010800000000104" "0000")
    assert encode_extended_command(0, 0xB0, 0, 0, b"", 256) == bytes.fromhex("00b00000000100")  # Ne 256
    assert encode_extended_command(0, 0xB0, 0, 0, b"", 65536) == bytes.fromhex("00b00000000000")  # Ne 65536
    assert encode_extended_command(0, 0xC0, 0, 0, b"", 0) == bytes.fromhex("00c00000000000")
    assert encode_extended_command(0, 0xC0, 0, 0, b"", 0x1234) == bytes.fromhex("00c00000001234")
    assert encode_extended_command(0, 0x20, 0, 0x81, b"\x01\x02") == bytes.fromhex("002000810000020102")
    assert encode_extended_command(0, 0x44, 0, 0) == bytes.fromhex("00440000")
    body = bytes(range(256)) * 2
    assert encode_extended_command(0x80, 0x10, 0x80, 0, body, 0) == bytes.fromhex("8010800000" "0200") + body + b"\0\0"
    with pytest.raises(ValueError):
        encode_extended_command(0, 0, 0, 0, bytes(65536))


class _Card(SmartCardConnection):
    """Answers every command with `length` bytes; records what was sent. refuse_extended: a card
    (or reader) that claims extended APDUs in its ATR and answers them 6700 all the same."""

    name = "test card"

    def __init__(self, atr, length, refuse_extended=False):
        self._atr, self.length, self.refuse_extended, self.sent = atr, length, refuse_extended, []

    @property
    def atr(self):
        return self._atr

    def close(self):
        pass

    def _transmit(self, apdu):
        self.sent.append(bytes(apdu))
        extended = len(apdu) > 5 and apdu[4] == 0
        if extended and self.refuse_extended:
            return b"", 0x6700
        if apdu[1] == 0xC0:  # GET RESPONSE
            self.remaining, part = self.remaining[apdu[4] or 256:], self.remaining[:apdu[4] or 256]
            return part, 0x6100 | min(len(self.remaining), 255) if self.remaining else 0x9000
        if apdu[0] & 0x10:  # a chained fragment
            return b"", 0x9000
        answer = bytes(i & 0xFF for i in range(self.length))
        limit = 65536 if extended else 256
        self.remaining = answer[limit:]
        return answer[:limit], 0x6100 | min(len(self.remaining), 255) if self.remaining else 0x9000


NFC_READER = bytes.fromhex("3b8d80018073c021c057597562694b6579f9")  # a YubiKey 5 NFC, ATR built by the reader


@pytest.mark.parametrize("atr, apdus", [
    (OUR_TOKEN, 1),  # a direct link whose card takes extended APDUs: one each way
    (YUBIKEY_5_USB, 1),
    (NO_EXTENDED, 3),  # two chained fragments, one GET RESPONSE
    (NFC_READER, 3),  # the card takes them, but the reader built the ATR: it may carry short ones only
])
def test_a_long_command_and_answer(atr, apdus):
    card = _Card(atr, 400)
    protocol = SmartCardProtocol(card)
    assert protocol.use_extended_length() is (apdus == 1)
    answer = protocol.send_apdu(0x80, 0x10, 0x80, 0, bytes(300))
    assert answer == bytes(i & 0xFF for i in range(400))
    assert len(card.sent) == apdus
    if apdus == 1:
        assert card.sent[0][:7] == bytes.fromhex("80108000" "00012c") and card.sent[0][-2:] == b"\0\0"


def test_a_refused_extended_command_is_not_sent_again():
    """6700 to an extended APDU comes back to the caller, the command is not resent here: a card
    could have acted on it (the caller probes with a command that changes nothing: NfcCtap2)."""
    card = _Card(OUR_TOKEN, 10, refuse_extended=True)
    protocol = SmartCardProtocol(card)
    protocol.use_extended_length()
    assert protocol.transceive(0x80, 0x10, 0x80, 0, b"\x04") == (b"", 0x6700)
    assert len(card.sent) == 1 and protocol.extended
