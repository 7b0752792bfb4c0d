"""The sealcodes applet (sealtoken.applets.seal) through the card, as a host sees it.

Plain asserts: runs under MicroPython too. Under CPython, DERIVE is also checked
against the standard library's hmac module.
"""

import hashlib
from sealtoken.core.card import Card
from sealtoken.core.iso7816 import encode_apdu, split_response
from sealtoken.core.applet import Applet
from sealtoken.core.platform import UP_APPROVED, UP_CANCELLED, UP_DENIED, UP_TIMEOUT
from sealtoken.applets.seal import SealApplet, slot_key
from sealtoken.core.simplatform import PowerCut, SimPlatform
from sealtoken.core.storage import Store
from sealtoken.applets import AID_SEALCODES
from sealtoken.applets.seal import (SEAL_INS_CHANGE_PIN, SEAL_INS_DELETE, SEAL_INS_DERIVE, SEAL_INS_GENERATE,
                                    SEAL_INS_GET_INFO, SEAL_INS_RESET, SEAL_INS_SET_PIN, SEAL_INS_VERIFY_PIN,
                                    SEAL_P2_GENERATE_OVERWRITE, SEAL_RESET_TOUCH_TIMEOUT_MS,
                                    SEAL_TAG_NUM_SLOTS, SEAL_TAG_PIN_LENGTHS, SEAL_TAG_PIN_MAX_TRIES,
                                    SEAL_TAG_PIN_SET, SEAL_TAG_PIN_TRIES, SEAL_TAG_PIN_VERIFIED,
                                    SEAL_TAG_SERIAL, SEAL_TAG_SLOTS_USED, SEAL_TAG_VERSION, SEAL_VERSION)
from sealtoken.core.card import ATR, INS_GET_RESPONSE, INS_SELECT
from sealtoken.core.keys import (KEY_FIDO_FIRST, KEY_OTP_FIRST, KEY_OTP_LAST, KEY_SEAL_FIRST, KEY_SEAL_LAST,
                                 KEY_SEAL_PIN_TRIES)

try:
    import hmac as std_hmac  # CPython's standard library: an independent implementation
except ImportError:
    std_hmac = None

PIN = b"correct horse"
WRONG = b"wrong pin"
CHALLENGE = bytes(range(32))


def reference_hmac_sha256(key, msg):
    """Independent HMAC-SHA-256: stdlib hmac when present, else RFC 2104 spelled out here."""
    if std_hmac is not None:
        return std_hmac.new(bytes(key), bytes(msg), hashlib.sha256).digest()
    k = bytes(key) + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k) + bytes(msg)).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in k) + inner).digest()


class Host:
    """A token (flash survives `reboot`) and a tiny APDU client."""

    def __init__(self, seed=b"seal"):
        self.platform = SimPlatform(seed=seed, bank_size=8192)
        self.watch = None  # called with every response (kept nowhere: the heap of a board is small)
        self.boot()

    def boot(self):
        self.platform.reboot()
        self.store = Store(self.platform)
        self.applet = SealApplet(self.platform, self.store)
        self.card = Card(self.platform, [self.applet])

    def send(self, ins, p1=0, p2=0, data=b"", le=None, cla=0):
        resp = self.card.process_apdu(encode_apdu(cla, ins, p1, p2, data, le))
        if self.watch is not None:
            self.watch(resp)
        return split_response(resp)

    def select(self):
        return self.send(INS_SELECT, 4, 0, AID_SEALCODES, 256)

    def info(self):
        data, sw = self.send(SEAL_INS_GET_INFO, le=256)
        assert sw == 0x9000
        return parse_tlv(data)

    def set_pin(self, pin=PIN):
        return self.send(SEAL_INS_SET_PIN, data=pin)[1]

    def verify(self, pin=PIN):
        return self.send(SEAL_INS_VERIFY_PIN, data=pin)[1]

    def generate(self, slot=1, p2=0):
        return self.send(SEAL_INS_GENERATE, slot, p2)[1]

    def derive(self, slot=1, challenge=CHALLENGE):
        return self.send(SEAL_INS_DERIVE, slot, 0, challenge, 256)

    def verified_derive(self, slot=1, challenge=CHALLENGE):
        """VERIFY right before DERIVE, as the host does: one VERIFY authorizes one DERIVE."""
        assert self.verify() == 0x9000
        return self.derive(slot, challenge)

    def reset(self):
        return self.send(SEAL_INS_RESET, 0xDE, 0xAD)[1]

    def tries(self):
        return self.info()[SEAL_TAG_PIN_TRIES][0]

    def secret(self, slot=1):
        rec = self.store.get(slot_key(slot))
        return None if rec is None else rec[1:]


def parse_tlv(data):
    out = {}
    i = 0
    while i < len(data):
        tag, n = data[i], data[i + 1]
        out[tag] = data[i + 2:i + 2 + n]
        i += 2 + n
    assert i == len(data)
    return out


def ready(seed=b"seal"):
    h = Host(seed)
    assert h.select()[1] == 0x9000
    assert h.set_pin() == 0x9000
    assert h.verify() == 0x9000
    assert h.generate(1) == 0x9000
    return h


def flash_contains(platform, needle):
    for bank in platform.banks:
        if bytes(bank).find(needle) >= 0:
            return True
    return False


# --- info -------------------------------------------------------------------------------------------
def test_select_and_info_of_a_fresh_token():
    h = Host()
    data, sw = h.select()
    assert sw == 0x9000
    info = parse_tlv(data)
    assert info[SEAL_TAG_VERSION] == bytes(SEAL_VERSION)
    assert len(info[SEAL_TAG_SERIAL]) == 4
    assert info[SEAL_TAG_PIN_SET] == b"\x00"
    assert info[SEAL_TAG_PIN_TRIES] == b"\x08"
    assert info[SEAL_TAG_SLOTS_USED] == b"\x00"
    assert info[SEAL_TAG_NUM_SLOTS] == b"\x08"
    assert info[SEAL_TAG_PIN_VERIFIED] == b"\x00"
    assert info[SEAL_TAG_PIN_MAX_TRIES] == b"\x08"
    assert info[SEAL_TAG_PIN_LENGTHS] == b"\x04\x3f"
    assert h.info() == info


def test_serial_is_random_and_persisted():
    h = Host(b"one")
    h.select()
    serial = h.info()[SEAL_TAG_SERIAL]
    h.boot()
    h.select()
    assert h.info()[SEAL_TAG_SERIAL] == serial
    other = Host(b"two")
    other.select()
    assert other.info()[SEAL_TAG_SERIAL] != serial


def test_bad_class_ins_and_params():
    h = Host()
    h.select()
    assert h.send(SEAL_INS_GET_INFO, cla=0x80)[1] == 0x6E00
    assert h.send(0x99)[1] == 0x6D00
    assert h.send(SEAL_INS_GET_INFO, 1, 0)[1] == 0x6A86


# --- PIN ----------------------------------------------------------------------------------------------
def test_set_pin_rules():
    h = Host()
    h.select()
    assert h.verify() == 0x6A88  # no PIN yet
    assert h.set_pin(b"123") == 0x6A80
    assert h.set_pin(b"x" * 64) == 0x6A80
    assert h.set_pin(b"1234") == 0x9000
    assert h.set_pin(b"5678") == 0x6985
    assert h.info()[SEAL_TAG_PIN_SET] == b"\x01"
    assert h.verify(b"1234") == 0x9000
    h2 = Host(b"long")
    h2.select()
    assert h2.set_pin(b"y" * 63) == 0x9000 and h2.verify(b"y" * 63) == 0x9000


def test_pin_countdown_block_and_reset_on_success():
    h = Host()
    h.select()
    h.set_pin()
    assert h.verify(WRONG) == 0x63C7
    assert h.verify(WRONG) == 0x63C6
    assert h.verify() == 0x9000
    assert h.tries() == 8
    for left in range(7, -1, -1):
        assert h.verify(WRONG) == 0x63C0 | left
    assert h.verify() == 0x6983  # blocked, even with the right PIN
    assert h.send(SEAL_INS_VERIFY_PIN)[1] == 0x6983
    assert h.tries() == 0
    h.boot()
    h.select()
    assert h.verify() == 0x6983  # still blocked after a power cycle
    change = bytes((len(PIN),)) + PIN + b"newpin"
    assert h.send(SEAL_INS_CHANGE_PIN, data=change)[1] == 0x6983


def test_wrong_length_pin_spends_no_try():
    h = Host()
    h.select()
    h.set_pin()
    assert h.verify(b"abc") == 0x6A80
    assert h.verify(b"z" * 64) == 0x6A80
    assert h.tries() == 8


def test_verify_status_query():
    h = Host()
    h.select()
    h.set_pin()
    assert h.send(SEAL_INS_VERIFY_PIN)[1] == 0x63C8
    h.verify(WRONG)
    assert h.send(SEAL_INS_VERIFY_PIN)[1] == 0x63C7
    h.verify()
    assert h.send(SEAL_INS_VERIFY_PIN)[1] == 0x9000
    assert h.tries() == 8


def test_wrong_pin_ends_verified_state():
    h = ready()
    assert h.verify(WRONG) == 0x63C7
    assert h.derive()[1] == 0x6982


def test_change_pin():
    h = Host()
    h.select()
    h.set_pin()
    bad = bytes((len(WRONG),)) + WRONG + b"brand new"
    assert h.send(SEAL_INS_CHANGE_PIN, data=bad)[1] == 0x63C7
    good = bytes((len(PIN),)) + PIN + b"brand new"
    assert h.send(SEAL_INS_CHANGE_PIN, data=good)[1] == 0x9000
    assert h.tries() == 8
    assert h.verify(PIN) == 0x63C7
    assert h.verify(b"brand new") == 0x9000
    for data in (b"", b"\x20abc", bytes((len(b"brand new"),)) + b"brand new" + b"12"):
        assert h.send(SEAL_INS_CHANGE_PIN, data=data)[1] == 0x6A80
    assert h.tries() == 8
    assert not flash_contains(h.platform, PIN)


def test_pin_not_stored_in_clear():
    h = Host()
    h.select()
    h.set_pin(b"visible-pin-1234")
    assert not flash_contains(h.platform, b"visible-pin-1234")


def _tries_in_flash(platform):
    store = Store(platform)
    return store.get(KEY_SEAL_PIN_TRIES)[0]


def test_power_cut_after_verify_never_gives_a_try_back():
    for pin in (WRONG, PIN):
        h = Host(b"cut")
        h.select()
        h.set_pin()
        h.verify(WRONG)
        before = h.tries()
        snap = h.platform.flash_snapshot()
        k = 0
        while True:
            for mode in ("none", "truncate", "flip", "torn"):
                h.platform.flash_restore(snap)
                h.boot()
                h.select()
                h.platform.cut_power_after(k, mode)
                answered = None
                try:
                    answered = h.verify(pin)
                except PowerCut:
                    pass
                h.platform.cancel_power_cut()
                h.platform.reboot()
                after = _tries_in_flash(h.platform)
                if answered is not None:
                    # an answer (match or not) is only ever given once the try is spent durably
                    if pin == WRONG:
                        assert answered == 0x63C0 | (before - 1) and after == before - 1
                    else:
                        assert answered == 0x9000 and after == 8
                elif after == before - 1 or after == before:
                    pass
                else:
                    assert False, (k, mode, after)
            if answered is not None:
                break
            k += 1
            assert k < 10
        assert k >= 1  # there was at least one write to cut before the answer


class LoggingSim(SimPlatform):
    def __init__(self, *args, **kwargs):
        SimPlatform.__init__(self, *args, **kwargs)
        self.log = []

    def flash_write(self, bank, offset, data):
        self.log.append((bank, offset, bytes(data)))
        SimPlatform.flash_write(self, bank, offset, data)


def test_verify_writes_the_decrement_before_anything_else():
    # the first flash write of VERIFY is the same for a right and a wrong PIN (the
    # decremented counter), and a cut there leaves no answer and the old flash:
    # the result of the comparison cannot leak before the try is spent
    first_writes = []
    for pin in (WRONG, PIN):
        h = Host(b"same")
        h.platform = LoggingSim(seed=b"same", bank_size=8192)
        h.boot()
        h.select()
        h.set_pin()
        start = len(h.platform.log)
        assert h.verify(pin) in (0x9000, 0x63C7)
        first_writes.append(h.platform.log[start])
        # and with the power cut at that write
        h2 = Host(b"same")
        h2.select()
        h2.set_pin()
        snap = h2.platform.flash_snapshot()
        h2.platform.cut_power_after(0, "none")
        got = None
        try:
            got = h2.verify(pin)
        except PowerCut:
            pass
        h2.platform.reboot()
        assert got is None and h2.platform.flash_snapshot() == snap
    assert first_writes[0] == first_writes[1]


# --- slots --------------------------------------------------------------------------------------------
def test_generate_needs_pin_and_refuses_overwrite():
    h = Host()
    h.select()
    h.set_pin()
    assert h.generate(1) == 0x6982
    h.verify()
    assert h.generate(1) == 0x9000
    first = h.secret(1)
    assert len(first) == 32
    h.verify()
    assert h.generate(1) == 0x6A89
    assert h.secret(1) == first
    h.verify()
    assert h.generate(1, SEAL_P2_GENERATE_OVERWRITE) == 0x9000
    assert h.secret(1) != first
    assert not flash_contains(h.platform, first)  # replaced secrets are scrubbed
    assert h.generate(0) == 0x6A86
    assert h.generate(9) == 0x6A86
    assert h.generate(2, 0x02) == 0x6A86
    h.verify()
    assert h.generate(8) == 0x9000
    assert h.info()[SEAL_TAG_SLOTS_USED] == bytes((0x81,))


def test_derive_is_hmac_sha256_of_the_slot_secret():
    h = ready()
    data, sw = h.verified_derive(1)
    assert sw == 0x9000 and len(data) == 32
    assert data == reference_hmac_sha256(h.secret(1), CHALLENGE)
    other = bytes(range(100, 132))
    assert h.verified_derive(1, other)[0] == reference_hmac_sha256(h.secret(1), other)
    assert h.verified_derive(1)[0] == data  # deterministic
    h.verify()
    h.generate(2)
    assert h.verified_derive(2)[0] != data


def test_derive_rules():
    h = ready()
    assert h.verified_derive(1, bytes(31))[1] == 0x6700
    assert h.verified_derive(1, bytes(33))[1] == 0x6700
    assert h.verified_derive(1, b"")[1] == 0x6700
    assert h.verified_derive(3)[1] == 0x6A88
    assert h.verified_derive(0)[1] == 0x6A86
    assert h.send(SEAL_INS_DERIVE, 1, 1, CHALLENGE, 256)[1] == 0x6A86
    assert h.derive(1)[1] == 0x9000  # a DERIVE refused for its parameters leaves the verification unused


def test_derive_short_le_and_no_le():
    h = ready()
    full = h.verified_derive(1)[0]
    h.verify()
    data, sw = h.send(SEAL_INS_DERIVE, 1, 0, CHALLENGE, 16)
    assert data == full[:16] and sw == 0x6110
    rest, sw = h.send(INS_GET_RESPONSE, 0, 0, b"", 16)
    assert data + rest == full and sw == 0x9000
    h.verify()
    assert h.send(SEAL_INS_DERIVE, 1, 0, CHALLENGE, None) == (full, 0x9000)


def test_session_state_is_wiped_by_deselect_power_off_and_reset():
    h = ready()
    assert h.verified_derive()[1] == 0x9000
    h.verify()
    h.select()  # re-select: new session
    assert h.derive()[1] == 0x6982
    h.verify()
    h.card.power_off()
    h.card.power_on()
    h.select()
    assert h.derive()[1] == 0x6982
    h.verify()
    h.card.reset()
    assert h.derive()[1] == 0x6D00  # nothing selected
    h.select()
    assert h.derive()[1] == 0x6982
    assert h.info()[SEAL_TAG_PIN_VERIFIED] == b"\x00"
    h.verify()
    assert h.info()[SEAL_TAG_PIN_VERIFIED] == b"\x01"


# --- PIN-always: one VERIFY authorizes exactly one PIN-protected command ---------------------------------
def test_one_verify_authorizes_exactly_one_derive():
    h = ready()
    assert h.verify() == 0x9000
    assert h.info()[SEAL_TAG_PIN_VERIFIED] == b"\x01"
    first, sw = h.derive()
    assert sw == 0x9000 and len(first) == 32
    # another client on the same card session (no SELECT in between) gets nothing more
    assert h.derive()[1] == 0x6982
    assert h.derive(1, bytes(range(1, 33)))[1] == 0x6982
    assert h.info()[SEAL_TAG_PIN_VERIFIED] == b"\x00"
    assert h.send(SEAL_INS_VERIFY_PIN)[1] == 0x63C8  # status query: not verified, 8 tries
    assert h.verified_derive()[0] == first


def test_a_refused_derive_still_uses_up_the_verification():
    h = ready()
    for challenge, slot, sw in ((bytes(31), 1, 0x6700), (CHALLENGE, 4, 0x6A88)):
        assert h.verify() == 0x9000
        assert h.derive(slot, challenge)[1] == sw
        assert h.derive()[1] == 0x6982


def test_generate_and_delete_use_up_the_verification():
    h = ready()  # its GENERATE used the VERIFY of ready()
    assert h.derive()[1] == 0x6982
    assert h.generate(2) == 0x6982
    h.verify()
    assert h.generate(2) == 0x9000
    assert h.send(SEAL_INS_DELETE, 2)[1] == 0x6982
    h.verify()
    assert h.send(SEAL_INS_DELETE, 2)[1] == 0x9000
    assert h.generate(3) == 0x6982
    assert h.info()[SEAL_TAG_SLOTS_USED] == b"\x01"


def test_change_pin_authorizes_nothing():
    h = ready()
    change = bytes((len(PIN),)) + PIN + b"brand new"
    assert h.send(SEAL_INS_CHANGE_PIN, data=change)[1] == 0x9000
    assert h.derive()[1] == 0x6982
    assert h.verify(b"brand new") == 0x9000 and h.derive()[1] == 0x9000


def test_pin_counting_stays_right_with_a_verify_per_derive():
    h = ready()
    for _ in range(20):  # many uses: each successful VERIFY puts the counter back to 8
        assert h.verified_derive()[1] == 0x9000
        assert h.tries() == 8
    assert h.verify(WRONG) == 0x63C7
    assert h.derive()[1] == 0x6982
    assert h.verify(WRONG) == 0x63C6
    assert h.verified_derive()[1] == 0x9000
    assert h.tries() == 8
    for left in range(7, 0, -1):
        assert h.verify(WRONG) == 0x63C0 | left
    assert h.verified_derive()[1] == 0x9000  # one try left was enough, and it is back to 8
    assert h.tries() == 8


class OtherApplet(Applet):
    AID = b"\xA0\x00\x00\x00\x99\x01"

    def process(self, command):
        return b"other"


def test_select_of_another_application_ends_the_verified_state():
    platform = SimPlatform(seed=b"two apps", bank_size=8192)
    store = Store(platform)
    seal = SealApplet(platform, store)
    card = Card(platform, [seal, OtherApplet(platform, store)])

    def send(ins, p1=0, p2=0, data=b"", le=None):
        return split_response(card.process_apdu(encode_apdu(0, ins, p1, p2, data, le)))

    assert send(INS_SELECT, 4, 0, AID_SEALCODES)[1] == 0x9000
    assert send(SEAL_INS_SET_PIN, data=PIN)[1] == 0x9000
    assert send(SEAL_INS_VERIFY_PIN, data=PIN)[1] == 0x9000
    assert send(SEAL_INS_GENERATE, 1)[1] == 0x9000
    assert send(SEAL_INS_VERIFY_PIN, data=PIN)[1] == 0x9000
    assert send(INS_SELECT, 4, 0, OtherApplet.AID)[1] == 0x9000
    assert not seal.pin_verified()  # the seal applet forgot it when the other one was selected
    # an unknown AID leaves the selection, and with it an unused verification, as it is
    assert send(INS_SELECT, 4, 0, AID_SEALCODES)[1] == 0x9000
    assert send(SEAL_INS_VERIFY_PIN, data=PIN)[1] == 0x9000
    assert send(INS_SELECT, 4, 0, b"\xA0\x00\x00\x00\x55")[1] == 0x6A82
    assert seal.pin_verified()
    card.reset()
    assert not seal.pin_verified()
    assert send(INS_SELECT, 4, 0, AID_SEALCODES)[1] == 0x9000
    assert send(SEAL_INS_DERIVE, 1, 0, CHALLENGE, 256)[1] == 0x6982


# --- RESET needs a touch -------------------------------------------------------------------------------
def test_reset_without_a_touch_changes_nothing():
    for outcome in (UP_DENIED, UP_TIMEOUT, UP_CANCELLED):
        h = ready()
        secret = h.secret(1)
        snap = h.platform.flash_snapshot()
        h.platform.presence = outcome
        before = h.platform.presence_requests
        assert h.reset() == 0x6985
        assert h.platform.presence_requests == before + 1
        assert h.platform.flash_snapshot() == snap
        assert h.secret(1) == secret
        info = h.info()
        assert info[SEAL_TAG_PIN_SET] == b"\x01" and info[SEAL_TAG_SLOTS_USED] == b"\x01"
        assert h.verified_derive()[1] == 0x9000


def test_reset_asks_for_a_touch_only_after_the_confirmation_bytes():
    h = ready()
    h.platform.presence = UP_DENIED
    before = h.platform.presence_requests
    assert h.send(SEAL_INS_RESET, 0xDE, 0xAE)[1] == 0x6A86
    assert h.platform.presence_requests == before
    h.platform.presence = UP_APPROVED
    assert h.reset() == 0x9000
    assert h.platform.presence_requests == before + 1
    assert h.info()[SEAL_TAG_PIN_SET] == b"\x00"


def test_reset_waits_for_the_touch():
    h = ready()
    seen = []

    def touch_after_a_while(timeout_ms, keepalive):
        seen.append(timeout_ms)
        h.platform.advance_ms(2000)
        return UP_APPROVED

    h.platform.presence = touch_after_a_while
    assert h.reset() == 0x9000
    assert seen == [SEAL_RESET_TOUCH_TIMEOUT_MS]
    assert h.secret(1) is None


def test_delete_slot():
    h = ready()
    secret = h.secret(1)
    h.select()
    assert h.send(SEAL_INS_DELETE, 1)[1] == 0x6982
    h.verify()
    assert h.send(SEAL_INS_DELETE, 2)[1] == 0x6A88
    assert h.send(SEAL_INS_DELETE, 9)[1] == 0x6A86
    h.verify()
    assert h.send(SEAL_INS_DELETE, 1)[1] == 0x9000
    assert h.verified_derive(1)[1] == 0x6A88
    assert h.info()[SEAL_TAG_SLOTS_USED] == b"\x00"
    assert not flash_contains(h.platform, secret)


def test_no_command_exports_a_secret():
    h = ready()
    h.verify()
    h.generate(5)
    secrets = [h.secret(1), h.secret(5)]
    seen = [0]

    def no_secret(resp):
        # each response is checked as it comes: about 10,000 of them would not fit a small heap
        seen[0] += 1
        for s in secrets:
            assert resp.find(s) < 0
            assert resp.find(s[:8]) < 0

    h.watch = no_secret
    for ins in range(256):
        for p1, p2 in ((0, 0), (1, 0), (5, 0), (1, 1), (0xDE, 0xAD)):
            if ins == SEAL_INS_RESET:
                continue
            for data in (b"", CHALLENGE, PIN, secrets[0]):
                h.verify()
                h.send(ins, p1, p2, data, 256)
    h.send(INS_GET_RESPONSE, 0, 0, b"", 256)
    assert seen[0] > 10000


def test_reset_destroys_pin_and_slots_only():
    h = ready()
    h.verify()
    h.generate(3)
    secrets = (h.secret(1), h.secret(3))
    serial = h.info()[SEAL_TAG_SERIAL]
    h.store.put(KEY_FIDO_FIRST, b"fido record")
    h.select()  # not verified: reset does not need the PIN, only the confirmation
    assert h.send(SEAL_INS_RESET, 0, 0)[1] == 0x6A86
    assert h.send(SEAL_INS_RESET, 0xDE, 0xAE)[1] == 0x6A86
    assert h.secret(1) == secrets[0]
    assert h.send(SEAL_INS_RESET, 0xDE, 0xAD)[1] == 0x9000
    info = h.info()
    assert info[SEAL_TAG_PIN_SET] == b"\x00"
    assert info[SEAL_TAG_SLOTS_USED] == b"\x00"
    assert info[SEAL_TAG_SERIAL] == serial
    for s in secrets:
        assert not flash_contains(h.platform, s)
    h.boot()
    h.select()
    assert h.store.get(KEY_FIDO_FIRST) == b"fido record"
    assert h.store.keys(KEY_SEAL_FIRST, KEY_SEAL_LAST) == []
    assert h.verify() == 0x6A88
    assert h.set_pin(b"fresh-pin") == 0x9000 and h.verify(b"fresh-pin") == 0x9000
    assert h.derive(1)[1] == 0x6A88


def test_reset_unblocks_a_blocked_token():
    h = ready()
    secret = h.secret(1)
    for _ in range(8):
        h.verify(WRONG)
    assert h.verify() == 0x6983
    assert h.send(SEAL_INS_RESET, 0xDE, 0xAD)[1] == 0x9000
    assert not flash_contains(h.platform, secret)
    assert h.set_pin() == 0x9000 and h.verify() == 0x9000


def test_store_full_gives_6a84():
    h = Host()
    h.select()
    h.set_pin()
    h.verify()
    i = 0
    while True:  # fill the flash with another applet's records
        try:
            h.store.put(KEY_OTP_FIRST + i, bytes(1000))
        except Exception:
            break
        i += 1
    free = h.store.capacity - h.store.used()
    h.store.put(KEY_OTP_LAST, bytes(max(0, free - 4 - 20)))
    assert h.generate(1) == 0x6A84
    assert h.secret(1) is None


def test_token_wires_the_applet():
    """The token knows the applet by its AID and module only, until its first SELECT makes it."""
    from sealtoken.token import Token

    p = SimPlatform(seed=b"token")
    t = Token(p)
    [slot] = [s for s in t.card.slots if s.AID == AID_SEALCODES]
    assert slot.module == "sealtoken.applets.seal" and slot.applet is None
    data, sw = split_response(t.card.process_apdu(encode_apdu(0, 0xA4, 4, 0, AID_SEALCODES, 256)))
    assert sw == 0x9000 and parse_tlv(data)[SEAL_TAG_SERIAL] == t.serial
    assert isinstance(slot.applet, SealApplet) and t.card.selected is slot.applet
    assert t.card.atr == ATR
