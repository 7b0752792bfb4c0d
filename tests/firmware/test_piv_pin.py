"""PIV applet (sealtoken.applets.piv): PIN and PUK rules, power cuts, selection, malformed commands.

Plain asserts on SimPlatform: runs under MicroPython too. The key operations
(generate, ECDH, management key) need the platform's EC and AES and are tested
with yubikit's PivSession in tests/piv.
"""
from sealtoken.core.card import Card
from sealtoken.core.iso7816 import encode_apdu, split_response
from sealtoken.applets.piv import PivApplet
from sealtoken.core.iso7816 import parse_tlvs, tlv
from sealtoken.core.simplatform import PowerCut, SimPlatform
from sealtoken.core.storage import Store
from sealtoken.applets import PIV_AID_FULL
from sealtoken.applets.piv import (PIV_INS_AUTHENTICATE, PIV_INS_CHANGE_REFERENCE, PIV_INS_GENERATE,
                                   PIV_INS_GET_DATA, PIV_INS_GET_METADATA, PIV_INS_GET_VERSION,
                                   PIV_INS_IMPORT_KEY, PIV_INS_PUT_DATA, PIV_INS_RESET, PIV_INS_RESET_RETRY,
                                   PIV_INS_VERIFY, PIV_META_IS_DEFAULT, PIV_META_RETRIES, PIV_VERSION)
from sealtoken.core.card import INS_SELECT
from sealtoken.core.keys import KEY_PIV_PIN_TRIES

PIN = b"123456\xff\xff"
WRONG = b"654321\xff\xff"
PUK = b"12345678"


class Host:
    def __init__(self, seed=b"piv"):
        self.platform = SimPlatform(seed=seed, bank_size=8192)
        self.boot()

    def boot(self):
        self.platform.reboot()
        self.store = Store(self.platform)
        self.card = Card(self.platform, [PivApplet(self.platform, self.store)])

    def send(self, ins, p1=0, p2=0, data=b"", le=None):
        return split_response(self.card.process_apdu(encode_apdu(0, ins, p1, p2, data, le)))

    def select(self):
        return self.send(INS_SELECT, 4, 0, PIV_AID_FULL, 256)

    def verify(self, pin=None):
        return self.send(PIV_INS_VERIFY, 0, 0x80, pin or b"")[1]

    def tries(self, p2=0x80):
        data, sw = self.send(PIV_INS_GET_METADATA, 0, p2)
        assert sw == 0x9000
        return dict(parse_tlvs(data))[PIV_META_RETRIES][1]


def test_select_answers_application_template_and_version():
    h = Host()
    data, sw = h.select()
    assert sw == 0x9000 and data[0] == 0x61
    assert h.send(PIV_INS_GET_VERSION)[0] == bytes(PIV_VERSION)
    # the discovery object names the PIV AID
    data, sw = h.send(PIV_INS_GET_DATA, 0x3F, 0xFF, tlv(0x5C, b"\x7e"))
    assert sw == 0x9000 and PIV_AID_FULL in data


def test_verify_default_pin_status_and_wrong_pin():
    h = Host()
    h.select()
    assert h.verify() == 0x63C3          # status: not verified, 3 tries
    assert h.verify(WRONG) == 0x63C2
    assert h.tries() == 2
    assert h.verify(PIN) == 0x9000
    assert h.verify() == 0x9000          # verified in this session
    assert h.tries() == 3                # a match restores the counter
    assert h.send(PIV_INS_VERIFY, 0xFF, 0x80)[1] == 0x9000
    assert h.verify() == 0x63C3          # P1=FF forgot the verification


def test_pin_counter_survives_power_cycle_and_blocks():
    h = Host()
    h.select()
    assert h.verify(WRONG) == 0x63C2
    h.boot()
    h.select()
    assert h.verify(WRONG) == 0x63C1
    assert h.verify(WRONG) == 0x63C0
    assert h.verify(PIN) == 0x6983      # blocked: even the right PIN is refused
    h.boot()
    h.select()
    assert h.verify(PIN) == 0x6983
    # the PUK unblocks it and sets a new PIN
    new = b"24682468"
    assert h.send(PIV_INS_RESET_RETRY, 0, 0x80, PUK + new)[1] == 0x9000
    assert h.verify(PIN) == 0x63C2
    assert h.verify(new) == 0x9000


def test_change_pin_needs_old_pin_and_valid_new_one():
    h = Host()
    h.select()
    new = b"987654\xff\xff"
    assert h.send(PIV_INS_CHANGE_REFERENCE, 0, 0x80, WRONG + new)[1] == 0x63C2
    assert h.send(PIV_INS_CHANGE_REFERENCE, 0, 0x80, PIN + b"12\xff\xff\xff\xff\xff\xff")[1] == 0x6A80
    assert h.send(PIV_INS_CHANGE_REFERENCE, 0, 0x80, PIN + b"12\xff45678")[1] == 0x6A80
    assert h.send(PIV_INS_CHANGE_REFERENCE, 0, 0x80, PIN + new)[1] == 0x9000
    h.boot()
    h.select()
    assert h.verify(PIN) == 0x63C2
    assert h.verify(new) == 0x9000
    data, _ = h.send(PIV_INS_GET_METADATA, 0, 0x80)
    assert dict(parse_tlvs(data))[PIV_META_IS_DEFAULT] == b"\x00"


def test_reset_only_when_pin_and_puk_blocked():
    h = Host()
    h.select()
    assert h.send(PIV_INS_RESET)[1] == 0x6985
    for _ in range(3):
        h.verify(WRONG)
    assert h.send(PIV_INS_RESET)[1] == 0x6985
    for _ in range(3):
        h.send(PIV_INS_CHANGE_REFERENCE, 0, 0x81, b"00000000" + b"11111111")
    assert h.tries(0x81) == 0
    assert h.send(PIV_INS_RESET)[1] == 0x9000
    assert h.tries() == 3 and h.tries(0x81) == 3
    assert h.verify(PIN) == 0x9000


def test_key_operations_need_management_key():
    h = Host()
    h.select()
    gen = tlv(0xAC, tlv(0x80, b"\x11"))
    assert h.send(PIV_INS_GENERATE, 0, 0x9D, gen)[1] == 0x6982
    assert h.send(PIV_INS_PUT_DATA, 0x3F, 0xFF, tlv(0x5C, b"\x5f\xc1\x0b") + tlv(0x53, b"x"))[1] == 0x6982
    assert h.send(PIV_INS_IMPORT_KEY, 0x11, 0x9D, tlv(0x06, bytes(31) + b"\x01"))[1] == 0x6982
    # no key in 9D: ECDH and metadata say so
    ecdh = tlv(0x7C, tlv(0x82, b"") + tlv(0x85, b"\x04" + bytes(64)))
    assert h.send(PIV_INS_AUTHENTICATE, 0x11, 0x9D, ecdh)[1] == 0x6A88
    assert h.send(PIV_INS_GET_METADATA, 0, 0x9D)[1] == 0x6A88


def test_malformed_commands_get_clean_status_words():
    h = Host()
    h.select()
    cases = [
        (PIV_INS_VERIFY, 0, 0x80, b"123"),                 # not 8 bytes
        (PIV_INS_VERIFY, 0, 0x99, PIN),                    # unknown reference
        (PIV_INS_GET_DATA, 0x3F, 0xFF, b"\x5c\x05\x5f"),   # truncated TLV
        (PIV_INS_GET_DATA, 0x3F, 0xFF, tlv(0x5C, b"\x5f\xc1\x99")),
        (PIV_INS_GET_DATA, 0, 0, tlv(0x5C, b"\x7e")),
        (PIV_INS_AUTHENTICATE, 0x11, 0x9D, b"\x7c\x84\x00"),
        (PIV_INS_AUTHENTICATE, 0x11, 0x9A, tlv(0x7C, tlv(0x82, b""))),
        (PIV_INS_GENERATE, 0, 0x9D, b""),
        (0x00, 0, 0, b""),
    ]
    for ins, p1, p2, data in cases:
        _, sw = h.send(ins, p1, p2, data)
        assert sw != 0x9000 and sw != 0x6F00 and (sw >> 8) in (0x63, 0x67, 0x69, 0x6A, 0x6D), (ins, hex(sw))


def _tries_in_flash(platform):
    store = Store(platform)
    raw = store.get(KEY_PIV_PIN_TRIES)
    return 3 if raw is None else raw[0]


def test_power_cut_during_verify_never_gives_a_try_back():
    for pin in (WRONG, PIN):
        h = Host(b"cut")
        h.select()
        h.verify(WRONG)
        before = _tries_in_flash(h.platform)
        snap = h.platform.flash_snapshot()
        k = 0
        while True:
            completed = False
            for mode in ("none", "truncate", "flip", "torn"):
                h.platform.flash_restore(snap)
                h.boot()
                h.select()
                h.platform.cut_power_after(k, mode)
                answered = None
                try:
                    answered = h.verify(pin)
                    completed = True
                except PowerCut:
                    pass
                h.platform.cancel_power_cut()
                h.platform.reboot()
                after = _tries_in_flash(h.platform)
                if answered is None:
                    # cut before the decrement was durable: unchanged; after it: one try spent
                    assert after in (before, before - 1)
                elif pin == WRONG:
                    assert answered == 0x63C0 | (before - 1) and after == before - 1
                else:
                    assert answered == 0x9000 and after == 3
            if completed:
                break
            k += 1
        assert k >= 1  # the decrement is its own write, before the comparison
