"""Bounded fuzzing of Card.process_apdu (docs/security.md item 15, 16).

Deterministic (seeded): random bytes, random well-formed APDUs around our INS
codes, and mutations of valid ones. Every answer must be a well-formed status
word (with data), never an exception; the sealcodes applet must never answer
6F00 (which would mean it crashed) and no answer may contain a slot secret.

The default run is small; `pytest -m slow` runs a big one. Plain asserts: runs
under MicroPython too (where slow tests are skipped unless asked for).
"""
from sealtoken.core.card import Card
from sealtoken.core.iso7816 import encode_apdu
from sealtoken.applets.seal import SealApplet, slot_key
from sealtoken.core.simplatform import HashDrbg, SimPlatform
from sealtoken.core.storage import Store
from sealtoken.applets import AID_SEALCODES
from sealtoken.applets.seal import (SEAL_INS_CHANGE_PIN, SEAL_INS_DELETE, SEAL_INS_DERIVE, SEAL_INS_GENERATE,
                                    SEAL_INS_GET_INFO, SEAL_INS_RESET, SEAL_INS_SET_PIN, SEAL_INS_VERIFY_PIN,
                                    SEAL_NUM_SLOTS)
from sealtoken.core.card import INS_GET_RESPONSE, INS_SELECT

# names of the slow tests: tests/micropython/run.mjs skips them unless --slow
# (MicroPython functions take no attributes, hence a module-level list)
SLOW_TESTS = []

try:
    import pytest

    _mark_slow = pytest.mark.slow
except ImportError:  # MicroPython
    def _mark_slow(fn):
        return fn


def slow(fn):
    SLOW_TESTS.append(fn.__name__)
    return _mark_slow(fn)

PIN = b"fuzz-pin"
SEAL_INS = (SEAL_INS_GET_INFO, SEAL_INS_SET_PIN, SEAL_INS_VERIFY_PIN,
            SEAL_INS_CHANGE_PIN, SEAL_INS_GENERATE, SEAL_INS_DERIVE,
            SEAL_INS_DELETE, SEAL_INS_RESET, INS_SELECT, INS_GET_RESPONSE, 0xA5)


class Gen:
    def __init__(self, seed):
        self.rng = HashDrbg(seed)

    def below(self, n):
        return self.rng.below(n)

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def blob(self, n):
        return self.rng.read(n)

    def data(self):
        kind = self.below(8)
        if kind == 0:
            return b""
        if kind == 1:
            return self.blob(32)
        if kind == 2:
            return PIN
        if kind == 3:
            return bytes((len(PIN),)) + PIN + self.blob(self.below(70))
        if kind == 4:
            return AID_SEALCODES[:5 + self.below(6)]
        if kind == 5:
            return self.blob(self.below(600))
        return self.blob(self.below(70))

    def apdu(self):
        kind = self.below(10)
        if kind == 0:
            return self.blob(self.below(300))
        if kind == 1:  # select our applet, then often verify
            return encode_apdu(0, INS_SELECT, 4, 0, AID_SEALCODES, 256)
        if kind == 2:
            return encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, PIN)
        cla = self.pick((0x00, 0x00, 0x00, 0x10, 0x80, 0x90, 0x0C, 0x01, 0xFF, self.below(256)))
        ins = self.pick(SEAL_INS) if self.below(4) else self.below(256)
        p1 = self.pick((0, 1, 2, 3, 8, 9, 4, 0xDE, self.below(256)))
        p2 = self.pick((0, 1, 0xAD, 0x0C, self.below(256)))
        data = self.data()
        le = self.pick((None, 256, 1 + self.below(256), 65536, 1 + self.below(65536)))
        extended = self.below(3) == 0
        try:
            apdu = encode_apdu(cla, ins, p1, p2, data, le, extended)
        except ValueError:
            apdu = bytes((cla, ins, p1, p2))
        if kind == 9:  # mutate
            b = bytearray(apdu)
            for _ in range(1 + self.below(3)):
                op = self.below(3)
                if op == 0 and b:
                    b[self.below(len(b))] ^= 1 << self.below(8)
                elif op == 1 and b:
                    b = b[:self.below(len(b))]
                else:
                    b.extend(self.blob(1 + self.below(4)))
            apdu = bytes(b)
        return apdu


def check_response(resp, allow_6f00):
    assert isinstance(resp, bytes) and 2 <= len(resp) <= 65536 + 2
    sw1 = resp[-2]
    assert 0x61 <= sw1 <= 0x6F or 0x90 <= sw1 <= 0x9F
    if not allow_6f00:
        assert resp[-2:] != b"\x6f\x00"


def secrets_of(store):
    out = []
    for slot in range(1, SEAL_NUM_SLOTS + 1):
        rec = store.get(slot_key(slot))
        if rec is not None:
            out.append(bytes(rec[1:]))
    return out


def fuzz_seal_applet(count, seed):
    platform = SimPlatform(seed=seed, bank_size=8192)
    store = Store(platform)
    card = Card(platform, [SealApplet(platform, store)])
    for apdu in (encode_apdu(0, INS_SELECT, 4, 0, AID_SEALCODES),
                 encode_apdu(0, SEAL_INS_SET_PIN, 0, 0, PIN),
                 encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, PIN),
                 encode_apdu(0, SEAL_INS_GENERATE, 1, 0),
                 encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, PIN),  # one VERIFY, one use
                 encode_apdu(0, SEAL_INS_GENERATE, 2, 0)):
        assert card.process_apdu(apdu)[-2:] == b"\x90\x00"
    gen = Gen(seed)
    for i in range(count):
        apdu = gen.apdu()
        before = secrets_of(store)
        resp = card.process_apdu(apdu)
        check_response(resp, False)
        for s in before + secrets_of(store):
            assert resp.find(s) < 0 and resp.find(s[:12]) < 0
        if i % 97 == 0:
            card.power_off()
            card.power_on()
    # the token still works afterwards
    card.reset()
    assert card.process_apdu(encode_apdu(0, INS_SELECT, 4, 0, AID_SEALCODES, 256))[-2:] == b"\x90\x00"


def fuzz_token(count, seed):
    from sealtoken.token import Token

    token = Token(SimPlatform(seed=seed))
    gen = Gen(seed)
    aids = [slot.AID for slot in token.card.slots]
    for i in range(count):
        if gen.below(8) == 0:
            apdu = encode_apdu(0, INS_SELECT, 4, 0, gen.pick(aids), 256)
        else:
            apdu = gen.apdu()
        check_response(token.card.process_apdu(apdu), True)


def test_fuzz_seal_applet_small():
    fuzz_seal_applet(1500, b"fuzz-small")


def test_fuzz_token_small():
    fuzz_token(800, b"fuzz-token-small")


@slow
def test_fuzz_seal_applet_big():
    for n in range(4):
        fuzz_seal_applet(50000, b"fuzz-big-%d" % n)


@slow
def test_fuzz_token_big():
    fuzz_token(100000, b"fuzz-token-big")
