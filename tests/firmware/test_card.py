"""Card framing and dispatch (sealtoken.core.card). Plain asserts: runs under MicroPython too."""
from sealtoken.core.applet import ApduError, Applet
from sealtoken.core.card import Card
from sealtoken.core.iso7816 import encode_apdu, split_response
from sealtoken.core.simplatform import SimPlatform
from sealtoken.core.card import ATR, CARD_MAX_COMMAND_DATA
from sealtoken.core.iso7816 import SW_INS_NOT_SUPPORTED

AID_A = b"\xa0\x00\x00\x00\x99\x01\x01"
AID_B = b"\xa0\x00\x00\x00\x99\x02"
AID_C = b"\xa0\x00\x00\x00\x99\x01\x02"


class Recorder(Applet):
    """Test applet: INS 01 -> P1*256+P2 bytes of pattern, INS 02 -> echo data,
    INS 03 -> ApduError(P1P2), INS 04 -> crash, INS 05 -> bad response,
    INS 06 -> (data, 6310) with P1 * 100 bytes."""

    SEND_REMAINING_INS = 0xA5

    def __init__(self, platform, store, aid):
        Applet.__init__(self, platform, store)
        self.AID = aid
        self.commands = []
        self.events = []
        self.session = None

    def select(self, command):
        self.events.append("select")
        self.session = "open"
        return b"sel:" + self.AID

    def deselect(self):
        self.events.append("deselect")
        self.session = None

    def power_off(self):
        self.events.append("power_off")
        self.session = None

    def process(self, command):
        self.commands.append(command)
        if command.ins == 0x01:
            n = (command.p1 << 8) | command.p2
            return bytes(i & 0xFF for i in range(n))
        if command.ins == 0x02:
            return command.data
        if command.ins == 0x03:
            raise ApduError((command.p1 << 8) | command.p2)
        if command.ins == 0x04:
            raise KeyError("secret-material-must-not-leak")
        if command.ins == 0x05:
            return 12345
        if command.ins == 0x06:
            return bytes(command.p1 * 100), 0x6310
        raise ApduError(SW_INS_NOT_SUPPORTED)


def make_card():
    platform = SimPlatform(seed=b"card")
    a = Recorder(platform, None, AID_A)
    b = Recorder(platform, None, AID_B)
    c = Recorder(platform, None, AID_C)
    return Card(platform, [a, b, c]), a, b, c


def tx(card, apdu):
    resp = card.process_apdu(apdu)
    assert isinstance(resp, bytes) and len(resp) >= 2
    return split_response(resp)


def send(card, cla, ins, p1=0, p2=0, data=b"", le=None, extended=False):
    return tx(card, encode_apdu(cla, ins, p1, p2, data, le, extended))


def select(card, aid, p2=0):
    return send(card, 0, 0xA4, 4, p2, aid)


def pattern(n):
    return bytes(i & 0xFF for i in range(n))


# --- ATR --------------------------------------------------------------------------------------
def test_atr_is_well_formed():
    card, _, _, _ = make_card()
    atr = card.atr
    assert atr == ATR
    assert atr[0] == 0x3B
    assert atr[1] & 0xF0 == 0xF0  # yubikit: USB transport
    k = atr[1] & 0x0F
    # TA1 TB1 TC1 TD1, then TD1 = 81 -> TD2 = 31 -> TA3 TB3
    assert atr[2:9] == b"\x13\x00\x00\x81\x31\xfe\x15"
    assert len(atr) == 9 + k + 1
    tck = 0
    for b in atr[1:]:
        tck ^= b
    assert tck == 0
    hist = atr[9:9 + k]
    assert hist[0] == 0x80 and b"sealtoken" in hist


def test_power_on_and_reset_return_atr():
    card, _, _, _ = make_card()
    assert card.power_on() == ATR
    assert card.reset() == ATR


# --- SELECT -------------------------------------------------------------------------------------
def test_select_exact_and_unknown():
    card, a, b, _ = make_card()
    assert select(card, AID_B) == (b"sel:" + AID_B, 0x9000)
    assert card.selected is b
    assert select(card, b"\xa0\x00\x00\x00\x98") == (b"", 0x6A82)
    assert card.selected is b  # unchanged
    assert select(card, AID_A) == (b"sel:" + AID_A, 0x9000)
    assert card.selected is a and "deselect" in b.events


def test_select_partial_aid_first_match():
    card, a, _, c = make_card()
    assert select(card, AID_C)[1] == 0x9000 and card.selected is c
    assert select(card, AID_A[:6])[1] == 0x9000 and card.selected is a
    assert select(card, AID_A[:4]) == (b"", 0x6A82)  # partial needs 5 bytes or more
    assert select(card, b"") == (b"", 0x6A82)
    assert select(card, AID_A + bytes(10)) == (b"", 0x6A82)


def test_select_p2_no_fci_and_other_p1():
    card, a, _, _ = make_card()
    assert send(card, 0, 0xA4, 0, 0, b"\x3f\x00") == (b"", 0x6A86)  # nothing selected
    assert select(card, AID_A, p2=0x0C) == (b"", 0x9000)
    # with an applet selected, INS A4 with P1 != 04 is the applet's (YKOATH CALCULATE ALL = 00 A4 00 01)
    assert send(card, 0, 0xA4, 0, 1, b"\x74\x08" + bytes(8)) == (b"", 0x6D00)
    assert a.commands[-1].ins == 0xA4 and a.commands[-1].p2 == 1
    assert card.selected is a


def test_no_applet_selected():
    card, _, _, _ = make_card()
    assert send(card, 0, 0x02, data=b"x") == (b"", 0x6D00)


# --- responses ----------------------------------------------------------------------------------
def test_short_response_split_with_get_response():
    card, _, _, _ = make_card()
    select(card, AID_A)
    data, sw = send(card, 0, 0x01, 0x02, 0x58, le=256)  # 600 bytes
    assert data == pattern(256) and sw == 0x6100
    d2, sw = send(card, 0, 0xC0, le=256)
    assert d2 == pattern(512)[256:] and sw == 0x6158
    d3, sw = send(card, 0, 0xC0, le=0x58)
    assert d3 == pattern(600)[512:] and sw == 0x9000
    assert send(card, 0, 0xC0, le=256) == (b"", 0x6985)


def test_short_response_le_smaller_than_data():
    card, _, _, _ = make_card()
    select(card, AID_A)
    data, sw = send(card, 0, 0x01, 0, 40, le=16)
    assert data == pattern(16) and sw == 0x6118
    d2, sw = send(card, 0, 0xC0, le=0x18)
    assert data + d2 == pattern(40) and sw == 0x9000


def test_exactly_256_fits_in_one_short_response():
    card, _, _, _ = make_card()
    select(card, AID_A)
    assert send(card, 0, 0x01, 1, 0, le=256) == (pattern(256), 0x9000)


def test_case1_without_le_gets_256_then_send_remaining_a5():
    # what yubikit's "USB" transport sends: no Le, then 00 A5 00 00 (OATH SEND REMAINING)
    card, _, _, _ = make_card()
    select(card, AID_A)
    data, sw = tx(card, b"\x00\x01\x01\x2c")  # 300 bytes, case 1
    assert data == pattern(256) and sw == 0x612C
    rest, sw = tx(card, b"\x00\xa5\x00\x00")
    assert data + rest == pattern(300) and sw == 0x9000


def test_extended_le_gets_everything():
    card, _, _, _ = make_card()
    select(card, AID_A)
    assert send(card, 0, 0x01, 0x03, 0x00, le=65536, extended=True) == (pattern(768), 0x9000)
    assert send(card, 0, 0x01, 0x03, 0x00, le=1000, extended=True) == (pattern(768), 0x9000)
    data, sw = send(card, 0, 0x01, 0x03, 0x00, le=700, extended=True)
    assert data == pattern(700) and sw == 0x6144


def test_extended_without_le_gets_everything():
    card, _, _, _ = make_card()
    select(card, AID_A)
    data, sw = tx(card, encode_apdu(0, 0x02, 0, 0, pattern(1000), None, True))
    assert data == pattern(1000) and sw == 0x9000


def test_final_status_word_after_get_response():
    card, _, _, _ = make_card()
    select(card, AID_A)
    data, sw = send(card, 0, 0x06, 3, 0, le=256)
    assert sw == 0x612C
    rest, sw = send(card, 0, 0xC0, le=256)
    assert len(data + rest) == 300 and sw == 0x6310


def test_other_command_drops_pending_response():
    card, _, _, _ = make_card()
    select(card, AID_A)
    assert send(card, 0, 0x01, 2, 0, le=256)[1] == 0x6100
    assert send(card, 0, 0x02, data=b"hi", le=256) == (b"hi", 0x9000)
    assert send(card, 0, 0xC0, le=256) == (b"", 0x6985)


def test_get_response_wrong_p1p2():
    card, _, _, _ = make_card()
    select(card, AID_A)
    send(card, 0, 0x01, 2, 0, le=256)
    assert send(card, 0, 0xC0, 1, 0, le=256) == (b"", 0x6A86)


def test_send_remaining_ins_without_pending_goes_to_applet():
    card, a, _, _ = make_card()
    select(card, AID_A)
    assert send(card, 0, 0xA5) == (b"", 0x6D00)
    assert a.commands[-1].ins == 0xA5


# --- chaining -----------------------------------------------------------------------------------
def test_command_chaining():
    card, a, _, _ = make_card()
    select(card, AID_A)
    blob = pattern(700)
    assert send(card, 0x10, 0x02, 0, 0, blob[:255]) == (b"", 0x9000)
    assert send(card, 0x10, 0x02, 0, 0, blob[255:510]) == (b"", 0x9000)
    data, sw = send(card, 0x00, 0x02, 0, 0, blob[510:], le=256)
    assert sw == 0x6100 and data == blob[:256]
    assert len(a.commands) == 1 and a.commands[0].data == blob and a.commands[0].cla == 0
    rest = b""
    while sw != 0x9000:
        more, sw = send(card, 0, 0xC0, le=256)
        rest += more
    assert data + rest == blob


def test_chaining_proprietary_class_90():
    card, a, _, _ = make_card()
    select(card, AID_A)
    assert send(card, 0x90, 0x02, 0, 0, b"abc") == (b"", 0x9000)
    assert send(card, 0x80, 0x02, 0, 0, b"def", le=256) == (b"abcdef", 0x9000)
    assert a.commands[-1].cla == 0x80


def test_chain_too_long_gives_6700():
    card, a, _, _ = make_card()
    select(card, AID_A)
    chunk = bytes(255)
    total = 0
    sw = 0x9000
    while sw == 0x9000:
        _, sw = send(card, 0x10, 0x02, 0, 0, chunk)
        total += len(chunk)
        assert total <= CARD_MAX_COMMAND_DATA + 255
    assert sw == 0x6700
    # the chain was dropped: the next command stands alone
    assert send(card, 0, 0x02, 0, 0, b"z", le=256) == (b"z", 0x9000)
    assert not a.commands[:-1]


def test_max_command_size_single_extended_apdu():
    card, _, _, _ = make_card()
    select(card, AID_A)
    limit = CARD_MAX_COMMAND_DATA
    data, sw = send(card, 0, 0x02, 0, 0, pattern(limit), le=65536, extended=True)
    assert sw == 0x9000 and data == pattern(limit)
    assert send(card, 0, 0x02, 0, 0, pattern(limit + 1), le=65536, extended=True) == (b"", 0x6700)
    too_long = bytearray(7 + 0xFFFF)  # built in place: one 64 KiB buffer, not three
    too_long[:7] = b"\x00\x02\x00\x00\x00\xff\xff"
    assert tx(card, too_long) == (b"", 0x6700)


def test_different_command_mid_chain_drops_chain():
    card, a, _, _ = make_card()
    select(card, AID_A)
    send(card, 0x10, 0x02, 0, 0, b"first")
    assert send(card, 0, 0x02, 1, 0, b"other", le=256) == (b"other", 0x9000)
    assert send(card, 0, 0x02, 0, 0, b"last", le=256) == (b"last", 0x9000)


# --- errors ---------------------------------------------------------------------------------------
def test_applet_status_words_pass_through():
    card, _, _, _ = make_card()
    select(card, AID_A)
    assert send(card, 0, 0x03, 0x69, 0x82) == (b"", 0x6982)
    assert send(card, 0, 0x03, 0x63, 0xC3) == (b"", 0x63C3)
    assert send(card, 0, 0x03, 0x12, 0x34) == (b"", 0x6F00)  # not a status word


def test_crash_becomes_6f00_without_leak_and_deselects():
    card, a, _, _ = make_card()
    select(card, AID_A)
    resp = card.process_apdu(encode_apdu(0, 0x04, 0, 0))
    assert resp == b"\x6f\x00"
    assert a.session is None and card.selected is None
    assert send(card, 0, 0x02, data=b"x") == (b"", 0x6D00)


def test_bad_applet_response_becomes_6f00():
    card, _, _, _ = make_card()
    select(card, AID_A)
    assert tx(card, encode_apdu(0, 0x05, 0, 0)) == (b"", 0x6F00)


def test_malformed_apdus():
    card, _, _, _ = make_card()
    select(card, AID_A)
    assert tx(card, b"") == (b"", 0x6700)
    assert tx(card, b"\x00\x02") == (b"", 0x6700)
    assert tx(card, b"\x00\x02\x00\x00\x05ab") == (b"", 0x6700)
    assert tx(card, b"\xff\x02\x00\x00") == (b"", 0x6E00)
    assert tx(card, b"\x01\x02\x00\x00") == (b"", 0x6881)
    assert tx(card, b"\x0c\x02\x00\x00") == (b"", 0x6882)
    assert tx(card, b"\x41\x02\x00\x00") == (b"", 0x6881)
    assert tx(card, bytearray(b"\x00\x02\x00\x00\x01q\x00")) == (b"q", 0x9000)


def test_power_cycle_drops_everything():
    card, a, b, c = make_card()
    select(card, AID_A)
    send(card, 0, 0x01, 2, 0, le=256)
    send(card, 0x10, 0x02, 0, 0, b"partial")
    card.power_off()
    for applet in (a, b, c):
        assert applet.events[-1] == "power_off"
    assert card.selected is None
    card.power_on()
    assert send(card, 0, 0xC0, le=256) == (b"", 0x6985)
    select(card, AID_A)
    assert send(card, 0, 0x02, 0, 0, b"new", le=256) == (b"new", 0x9000)
    assert a.commands[-1].data == b"new"
    card.reset()
    assert card.selected is None and a.events[-1] == "power_off"


def test_a_late_import_has_the_heap_reserve_to_itself_and_it_is_taken_again():
    # sealtoken.core.micro: the reserve is unreferenced while the import runs (so that the collection
    # an allocation that finds no room makes frees it as one hole), held again after
    from sealtoken.core.micro import import_room
    assert isinstance(import_room.reserve, bytearray) and len(import_room.reserve) >= 1024
    with import_room:
        inside = import_room.reserve
    assert inside is None
    assert isinstance(import_room.reserve, bytearray) and len(import_room.reserve) >= 1024
