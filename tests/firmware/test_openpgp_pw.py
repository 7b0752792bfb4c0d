"""OpenPGP applet (sealtoken.applets.openpgp): passwords, power cuts, selection, data objects.

Plain asserts on SimPlatform: runs under MicroPython too. Key generation and
PSO:DECIPHER need the platform's EC and are tested with yubikit in tests/piv.
"""
from sealtoken.core.card import Card
from sealtoken.core.iso7816 import encode_apdu, split_response
from sealtoken.applets.openpgp import OpenPgpApplet
from sealtoken.core.iso7816 import parse_tlvs
from sealtoken.core.simplatform import PowerCut, SimPlatform
from sealtoken.core.storage import Store
from sealtoken.applets import AID_OPENPGP
from sealtoken.applets.openpgp import (OPENPGP_INS_ACTIVATE, OPENPGP_INS_CHANGE_REFERENCE,
                                       OPENPGP_INS_GENERATE, OPENPGP_INS_GET_DATA, OPENPGP_INS_GET_VERSION,
                                       OPENPGP_INS_PSO, OPENPGP_INS_PUT_DATA, OPENPGP_INS_PUT_DATA_ODD,
                                       OPENPGP_INS_TERMINATE, OPENPGP_INS_VERIFY, OPENPGP_OID_P256)
from sealtoken.core.card import INS_SELECT
from sealtoken.core.keys import KEY_OPENPGP_PW1_TRIES

PW1 = b"123456"
PW3 = b"12345678"


class Host:
    def __init__(self, seed=b"pgp"):
        self.platform = SimPlatform(seed=seed, bank_size=8192)
        self.boot()

    def boot(self):
        self.platform.reboot()
        self.store = Store(self.platform)
        self.applet = OpenPgpApplet(self.platform, self.store)
        self.card = Card(self.platform, [self.applet])

    def send(self, ins, p1=0, p2=0, data=b"", le=None, extended=False):
        return split_response(self.card.process_apdu(encode_apdu(0, ins, p1, p2, data, le, extended)))

    def select(self):
        return self.send(INS_SELECT, 4, 0, AID_OPENPGP)[1]

    def verify(self, pw, p2=0x82):
        return self.send(OPENPGP_INS_VERIFY, 0, p2, pw)[1]

    def pw_status(self):
        data, sw = self.send(OPENPGP_INS_GET_DATA, 0, 0xC4)
        assert sw == 0x9000 and len(data) == 7
        return data


def test_select_by_prefix_and_application_data():
    h = Host()
    assert h.select() == 0x9000
    aid, sw = h.send(OPENPGP_INS_GET_DATA, 0, 0x4F)
    assert sw == 0x9000 and len(aid) == 16 and aid[:6] == AID_OPENPGP and aid[6:8] == b"\x03\x04"
    data, sw = h.send(OPENPGP_INS_GET_DATA, 0, 0x6E, le=65536, extended=True)
    assert sw == 0x9000
    outer = parse_tlvs(data)
    assert outer[0][0] == 0x6E
    inner = dict(parse_tlvs(outer[0][1]))
    assert inner[0x4F] == aid
    disc = dict(parse_tlvs(inner[0x73]))
    assert disc[0xC2] == b"\x12" + OPENPGP_OID_P256        # ECDH P-256 by default
    assert disc[0xC4][4] == 3 and disc[0xC4][6] == 3
    assert disc[0xDE] == b"\x01\x00\x02\x00\x03\x00"                 # no key yet
    # Yubico's GET VERSION, for yubikit
    assert h.send(OPENPGP_INS_GET_VERSION)[0] == b"\x05\x07\x00"


def test_pw1_wrong_then_right_and_status_query():
    h = Host()
    h.select()
    assert h.verify(b"") == 0x63C3
    assert h.verify(b"654321") == 0x6982
    assert h.pw_status()[4] == 2
    h.boot()
    h.select()
    assert h.pw_status()[4] == 2       # persisted
    assert h.verify(PW1) == 0x9000
    assert h.verify(b"") == 0x9000
    assert h.pw_status()[4] == 3
    assert h.send(OPENPGP_INS_VERIFY, 0xFF, 0x82)[1] == 0x9000
    assert h.verify(b"") == 0x63C3


def test_pw3_blocks_and_terminate_resets():
    h = Host()
    h.select()
    assert h.send(OPENPGP_INS_TERMINATE)[1] == 0x6982   # PW3 neither verified nor blocked
    assert h.verify(b"00000000", 0x83) == 0x6982
    assert h.verify(b"00000000", 0x83) == 0x6982
    assert h.verify(b"00000000", 0x83) == 0x6983
    assert h.verify(PW3, 0x83) == 0x6983
    assert h.send(OPENPGP_INS_TERMINATE)[1] == 0x9000
    assert h.send(OPENPGP_INS_GET_DATA, 0, 0xC4)[1] == 0x6985   # terminated until ACTIVATE
    assert h.send(OPENPGP_INS_ACTIVATE)[1] == 0x9000
    assert h.pw_status()[6] == 3
    assert h.verify(PW3, 0x83) == 0x9000


def test_change_pw1():
    h = Host()
    h.select()
    assert h.send(OPENPGP_INS_CHANGE_REFERENCE, 0, 0x81, PW1 + b"12")[1] == 0x6A80   # new one too short
    assert h.send(OPENPGP_INS_CHANGE_REFERENCE, 0, 0x81, PW1 + b"abcdefgh")[1] == 0x9000
    assert h.verify(PW1) == 0x6982
    assert h.verify(b"abcdefgh") == 0x9000


def test_admin_operations_need_pw3():
    h = Host()
    h.select()
    h.verify(PW1)
    assert h.send(OPENPGP_INS_PUT_DATA, 0, 0xC2, b"\x12" + OPENPGP_OID_P256)[1] == 0x6982
    assert h.send(OPENPGP_INS_GENERATE, 0x80, 0, b"\xb8\x00")[1] == 0x6982
    assert h.send(OPENPGP_INS_GENERATE, 0x81, 0, b"\xb8\x00")[1] == 0x6A88   # no key to read
    assert h.send(OPENPGP_INS_PUT_DATA, 0, 0xC2, b"\x01\x08\x00")[1] == 0x6A80  # RSA: not here


def test_malformed_commands_get_clean_status_words():
    h = Host()
    h.select()
    for ins, p1, p2, data in ((OPENPGP_INS_PSO, 0x80, 0x86, b"\xa6\x03\x7f"),
                              (OPENPGP_INS_PSO, 0x9E, 0x9A, b"x"),
                              (OPENPGP_INS_GENERATE, 0x80, 0, b""),
                              (OPENPGP_INS_PUT_DATA_ODD, 0x3F, 0xFF, b"\x4d\x02\xb8"),
                              (OPENPGP_INS_GET_DATA, 0x12, 0x34, b""),
                              (OPENPGP_INS_VERIFY, 0, 0x99, PW1)):
        _, sw = h.send(ins, p1, p2, data)
        assert sw != 0x9000 and sw != 0x6F00, (ins, hex(sw))


def _tries_in_flash(platform):
    raw = Store(platform).get(KEY_OPENPGP_PW1_TRIES)
    return 3 if raw is None else raw[0]


def test_power_cut_during_verify_never_gives_a_try_back():
    for pw in (b"000000", PW1):
        h = Host(b"cut")
        h.select()
        h.verify(b"000000")
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
                    answered = h.verify(pw)
                    completed = True
                except PowerCut:
                    pass
                h.platform.cancel_power_cut()
                h.platform.reboot()
                after = _tries_in_flash(h.platform)
                if answered is None:
                    assert after in (before, before - 1)
                elif pw == PW1:
                    assert answered == 0x9000 and after == 3
                else:
                    assert answered == 0x6982 and after == before - 1
            if completed:
                break
            k += 1
        assert k >= 1
