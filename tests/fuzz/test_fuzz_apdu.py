"""Fuzzing APDU dispatch of the whole token: every applet registered on the card.

The token (sealtoken.token.Token: card, seal applet, OATH, OTP, FIDO over ISO
7816, and whatever else sealtoken.token.build_applets registers) runs on FuzzPlatform. Seeds are
real client traffic recorded at the card: yubikit's OathSession and
YubiOtpSession (USB and NFC framing, so extended APDUs and command chaining),
the seal applet's commands (docs/applet.md), and python-fido2's CTAP requests
wrapped in NFCCTAP_MSG. Inputs are those APDUs replayed, mutated bytewise,
rebuilt with random header fields, SELECTs of every AID (full and partial) and
random bytes; now and then a power cycle.

After every APDU:
- an answer ends in a status word and is never 6F00 (an applet raised: a bug);
- the store re-opened from flash equals the store in RAM;
- PIN tries (the seal applet's PIN, PIV PIN and PUK, OpenPGP PW1 and PW3, FIDO
  clientPIN) never go up except to their maximum on a 9000 answer, and a 63Cx
  answer means exactly x tries are left on the counter of the applet that answered
  (the selected one) and of the reference the command named;
- no known secret is in the answer: seal slot secrets, PIN and PIN hash, the
  OATH and OTP keys and access codes the seeds programmed, the FIDO master
  secret, derived keys, pinUvAuthToken, credential keys and CredRandoms.
OATH and OTP access codes have no try counter (as on a YubiKey), so there is
none to watch there.
"""

from __future__ import annotations

import random

import pytest

from sealboard.loopback import LoopbackConnection
from sealcodes.backends._yubikit import yubikit_connection
from sealtoken.core.iso7816 import encode_apdu, parse_apdu
from sealtoken.token import Token

from ._ctap import SecretCache, fido_tries, record_session
from ._harness import Budget, Tries, assert_flash_equals_ram, assert_no_secret, mutate_bytes
from ._platform import FuzzPlatform
from sealtoken.applets import AID_FIDO, AID_OPENPGP, AID_PIV, AID_SEALCODES
from sealtoken.applets.fido import (FIDO_CLA, FIDO_INS_NFCCTAP_GETRESPONSE, FIDO_INS_NFCCTAP_MSG,
                                    FIDO_P1_GETRESPONSE_SUPPORTED)
from sealtoken.applets.openpgp import (OPENPGP_INS_CHANGE_REFERENCE, OPENPGP_INS_VERIFY, OPENPGP_PW3,
                                       OPENPGP_PW_MAX_TRIES)
from sealtoken.applets.piv import (PIV_INS_CHANGE_REFERENCE, PIV_INS_RESET_RETRY, PIV_INS_VERIFY, PIV_P2_PIN,
                                   PIV_P2_PUK, PIV_PIN_MAX_TRIES, PIV_PUK_MAX_TRIES)
from sealtoken.applets.seal import (SEAL_INS_CHANGE_PIN, SEAL_INS_DELETE, SEAL_INS_DERIVE, SEAL_INS_GENERATE,
                                    SEAL_INS_GET_INFO, SEAL_INS_RESET, SEAL_INS_SET_PIN, SEAL_INS_VERIFY_PIN,
                                    SEAL_NUM_SLOTS, SEAL_PIN_MAX_TRIES)
from sealtoken.core.card import AID_MIN_LEN, INS_GET_RESPONSE, INS_SELECT
from sealtoken.core.iso7816 import SW_UNKNOWN, SW_WRONG_DATA
from sealtoken.core.keys import (KEY_OPENPGP_PW1_TRIES, KEY_OPENPGP_PW3_TRIES, KEY_PIV_PIN_TRIES,
                                 KEY_PIV_PUK_TRIES, KEY_SEAL_PIN, KEY_SEAL_PIN_TRIES, KEY_SEAL_SLOT_BASE,
                                 OATH_KEY_CODE)

SEAL_PIN = b"fuzz-seal-pin"
OATH_KEYS = [b"oath-totp-key-0123456789", b"oath-hotp-key-abcdefghij", b"oath-sha256-key-" + bytes(range(16))]
OATH_PASSWORD = "oath fuzz password"
OTP_KEY = b"otp-hmac-key-20bytes"
OTP_ACC = b"\x31\x41\x59\x26\x53\x58"


class RecordingConnection(LoopbackConnection):
    def __init__(self, card, log):
        LoopbackConnection.__init__(self, card)
        self.log = log

    def _transmit(self, apdu):
        self.log.append(bytes(apdu))
        return LoopbackConnection._transmit(self, apdu)


def _record_oath(token, log):
    from yubikit.oath import HASH_ALGORITHM, OATH_TYPE, CredentialData, OathSession

    for transport in ("usb", "nfc"):
        session = OathSession(yubikit_connection(RecordingConnection(token.card, log), transport))
        session.reset()   # whatever the fuzzer left (access code, names) goes
        for name, kind, alg, key in (("totp", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1, OATH_KEYS[0]),
                                     ("hotp", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, OATH_KEYS[1]),
                                     ("sha256", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA256, OATH_KEYS[2])):
            session.put_credential(CredentialData(f"{transport}-{name}", kind, alg, key), touch_required=False)
        session.calculate_all()
        creds = session.list_credentials()
        session.calculate_code(creds[0])
        session.calculate(creds[-1].id, b"challenge-1234")
        session.rename_credential(creds[0].id, "renamed-" + transport)
        session.delete_credential(creds[1].id)
        key = session.derive_key(OATH_PASSWORD)
        session.set_key(key)
        session = OathSession(yubikit_connection(RecordingConnection(token.card, log), transport))
        session.validate(key)
        session.calculate_all()
        session.unset_key()
    return [bytes(k) for k in (OATH_KEYS + [key])]


def _record_otp(token, log):
    from yubikit.yubiotp import SLOT, HmacSha1SlotConfiguration, YubiOtpSession

    def attempt(fn, *args, **kwargs):
        # best effort: a slot the fuzzer locked with an access code of its own stays as it is
        try:
            fn(*args, **kwargs)
        except Exception:
            pass

    for transport in ("usb", "nfc"):
        session = YubiOtpSession(yubikit_connection(RecordingConnection(token.card, log), transport))
        for slot in (SLOT.ONE, SLOT.TWO):
            attempt(session.delete_slot, slot, cur_acc_code=OTP_ACC)
            attempt(session.delete_slot, slot)
        attempt(session.put_configuration, SLOT.ONE, HmacSha1SlotConfiguration(OTP_KEY))
        attempt(session.put_configuration, SLOT.TWO, HmacSha1SlotConfiguration(OTP_KEY[::-1]))
        attempt(session.swap_slots)
        attempt(session.swap_slots)
        attempt(session.put_configuration, SLOT.TWO, HmacSha1SlotConfiguration(OTP_KEY[::-1]), acc_code=OTP_ACC)
        attempt(session.calculate_hmac_sha1, SLOT.ONE, b"c" * 32)
        attempt(session.calculate_hmac_sha1, SLOT.TWO, b"d" * 63)
        attempt(session.get_serial)
    return [OTP_KEY, OTP_KEY[::-1], OTP_ACC]


def _seal_apdus():
    sel = encode_apdu(0, INS_SELECT, 4, 0, AID_SEALCODES, 256)
    out = [sel, encode_apdu(0, SEAL_INS_RESET, 0xDE, 0xAD), sel,
           encode_apdu(0, SEAL_INS_SET_PIN, 0, 0, SEAL_PIN),
           encode_apdu(0, SEAL_INS_GET_INFO, 0, 0, le=256)]
    for slot in (1, 2, 3):
        out += [encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, SEAL_PIN),
                encode_apdu(0, SEAL_INS_GENERATE, slot, 0)]
    for slot in (1, 2, 3):
        out += [encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, SEAL_PIN),
                encode_apdu(0, SEAL_INS_DERIVE, slot, 0, bytes(range(slot, slot + 32)), 32)]
    out += [encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, b"wrong-pin"),
            encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, b""),
            encode_apdu(0, SEAL_INS_CHANGE_PIN, 0, 0, bytes([len(SEAL_PIN)]) + SEAL_PIN + SEAL_PIN),
            encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, SEAL_PIN),
            encode_apdu(0, SEAL_INS_DELETE, 3, 0),
            encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, SEAL_PIN),
            encode_apdu(0, SEAL_INS_GENERATE, 1, 1)]
    return out


def _fido_apdus(token):
    sel = encode_apdu(0, INS_SELECT, 4, 0, AID_FIDO, 256)
    out = [sel]
    for request in record_session(token.fido.authenticator):
        out.append(encode_apdu(FIDO_CLA, FIDO_INS_NFCCTAP_MSG, 0, 0, request, 65536, len(request) > 255))
    out.append(encode_apdu(FIDO_CLA, FIDO_INS_NFCCTAP_MSG, FIDO_P1_GETRESPONSE_SUPPORTED, 0, b"\x04"))
    out.append(encode_apdu(FIDO_CLA, FIDO_INS_NFCCTAP_GETRESPONSE, 0, 0))
    return out


class Harness:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.platform = FuzzPlatform(seed=b"apdu-%d" % seed)
        self.token = Token(self.platform)
        self.card = self.token.card
        self.store = self.token.store
        self.auth = self.token.fido.authenticator
        self.auth.reset_window_ms = None
        self.auth.raise_internal_errors = True   # a crash inside CTAP shows as 6F00
        self.aids = [slot.AID for slot in self.token.card.slots]
        self.known = [("seal PIN", SEAL_PIN)]
        self.seeds = []
        self.queue = []
        self.resync()
        self.fido_secrets = SecretCache(self.auth, self.store, [])
        self.seal_tries = Tries("seal applet PIN", self._seal_tries, SEAL_PIN_MAX_TRIES)
        self.piv_pin = self._card_tries("PIV PIN", KEY_PIV_PIN_TRIES, PIV_PIN_MAX_TRIES)
        self.piv_puk = self._card_tries("PIV PUK", KEY_PIV_PUK_TRIES, PIV_PUK_MAX_TRIES)
        self.pgp_pw1 = self._card_tries("OpenPGP PW1", KEY_OPENPGP_PW1_TRIES, OPENPGP_PW_MAX_TRIES)
        self.pgp_pw3 = self._card_tries("OpenPGP PW3", KEY_OPENPGP_PW3_TRIES, OPENPGP_PW_MAX_TRIES)
        self.card_tries = [self.seal_tries, self.piv_pin, self.piv_puk, self.pgp_pw1, self.pgp_pw3]
        self.fido_tries = fido_tries(self.store)
        self.sixes = {}

    def _seal_tries(self):
        raw = self.store.get(KEY_SEAL_PIN_TRIES)
        return SEAL_PIN_MAX_TRIES if raw is None or len(raw) != 1 else raw[0]

    def _card_tries(self, name, key, maximum):
        """A PIV / OpenPGP counter, read as those applets read it (absent: all tries; damaged: none)."""
        def read():
            raw = self.store.get(key)
            if raw is None:
                return maximum
            return raw[0] if len(raw) == 1 and raw[0] <= maximum else 0

        return Tries(name, read, maximum)

    def tries_named_by(self, apdu):
        """The try counter a 63Cx answer to apdu speaks of: that of the selected applet (the one that
        answered, a SELECT's target included) and of the reference the command names; None when the
        applet has no counter there."""
        applet = self.card.selected
        aid = bytes(applet.AID) if applet is not None else b""
        cmd = parse_apdu(apdu)
        if aid == AID_SEALCODES:
            return self.seal_tries
        if aid.startswith(AID_PIV) and cmd.ins in (PIV_INS_VERIFY, PIV_INS_CHANGE_REFERENCE, PIV_INS_RESET_RETRY):
            if cmd.ins == PIV_INS_RESET_RETRY or cmd.p2 == PIV_P2_PUK:
                return self.piv_puk
            return self.piv_pin
        if aid.startswith(AID_OPENPGP) and cmd.ins in (OPENPGP_INS_VERIFY, OPENPGP_INS_CHANGE_REFERENCE):
            return self.pgp_pw3 if cmd.p2 == OPENPGP_PW3 else self.pgp_pw1
        return None

    def resync(self):
        """Record fresh seeds against the token's current state (and put the known secrets in)."""
        log = []
        oath = _record_oath(self.token, log)
        otp = _record_otp(self.token, log)
        self.known = ([("seal PIN", SEAL_PIN)] + [("OATH key", k) for k in oath]
                      + [("OTP key", k) for k in otp])
        seeds = log + _fido_apdus(self.token)
        for apdu in _seal_apdus():
            self.card.process_apdu(apdu)
            seeds.append(apdu)
        self.seeds = seeds
        if hasattr(self, "seal_tries"):
            for tries in self.card_tries + [self.fido_tries]:
                tries.last = tries.read()

    def secrets(self, snapshot):
        out = list(self.known)
        for slot in range(1, SEAL_NUM_SLOTS + 1):
            rec = snapshot.get(KEY_SEAL_SLOT_BASE + slot)
            if rec is not None:
                out.append((f"seal slot {slot} secret", rec[1:]))
        pin = snapshot.get(KEY_SEAL_PIN)
        if pin is not None and len(pin) > 16:
            out.append(("seal PIN hash", pin[16:]))
        code = snapshot.get(OATH_KEY_CODE)
        if code is not None and len(code) > 1:
            out.append(("OATH access key", code[1:]))
        return out + self.fido_secrets.get(snapshot)

    def apdu(self):
        rng = self.rng
        if self.queue:
            apdu = self.queue.pop(0)
            return mutate_bytes(rng, apdu) if rng.random() < 0.2 else apdu
        roll = rng.random()
        if roll < 0.25:
            # a run of recorded APDUs in their order (SELECT, VERIFY, then the command...)
            start = rng.randrange(len(self.seeds))
            self.queue = list(self.seeds[start:start + rng.randrange(1, 10)])
            return self.queue.pop(0)
        if roll < 0.35:
            aid = rng.choice(self.aids)
            if rng.random() < 0.3:
                aid = aid[:rng.randrange(AID_MIN_LEN, len(aid) + 1)]
            return encode_apdu(0, INS_SELECT, 4, rng.choice([0, 0, 2, 0x0C]), aid, 256)
        if roll < 0.45:
            return rng.choice(self.seeds)
        if roll < 0.8:
            return mutate_bytes(rng, rng.choice(self.seeds))
        if roll < 0.95:
            base = rng.choice(self.seeds)
            cla = rng.choice([0x00, 0x10, 0x80, 0x90, base[0], rng.randrange(256)])
            ins = rng.choice([base[1] if len(base) > 1 else 0, rng.randrange(256), INS_GET_RESPONSE, 0xA5])
            p1 = rng.choice([0, 1, 2, 3, 0x80, 0xDE, rng.randrange(256)])
            p2 = rng.choice([0, 1, 0xAD, rng.randrange(256)])
            data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 6, 8, 32, 64, 200, 300, 1000])))
            le = rng.choice([None, 0, 1, 32, 256, 65536])
            try:
                return encode_apdu(cla, ins, p1, p2, data, le or None, rng.random() < 0.3)
            except ValueError:
                return bytes((cla, ins, p1, p2))
        return bytes(rng.randrange(256) for _ in range(rng.randrange(12)))

    def step(self, apdu):
        answer = self.card.process_apdu(apdu)
        context = apdu.hex()[:160]
        assert isinstance(answer, bytes) and 2 <= len(answer) <= 65536 + 2, context
        sw = (answer[-2] << 8) | answer[-1]
        assert sw != SW_UNKNOWN, f"6F00 (an applet raised) for {context}"
        assert 0x61 <= answer[-2] <= 0x6F or 0x90 <= answer[-2] <= 0x9F, context
        snapshot = assert_flash_equals_ram(self.platform, self.store, context)
        # PIV and OpenPGP check the old PIN before the new one: a right PIN gives the tries back
        # even when the new value is then refused (6A80)
        refused_new = sw == SW_WRONG_DATA and apdu[1:2] in (b"\x24", b"\x2c")
        for tries in self.card_tries:
            tries.check(sw == 0x9000 or (refused_new and tries is not self.seal_tries), context)
        if sw & 0xFFF0 == 0x63C0:
            tries = self.tries_named_by(apdu)
            assert tries is not None, f"63Cx from an applet or command without a try counter: {context}"
            assert tries.last == sw & 0x0F, f"63Cx says {sw & 15} tries, {tries.name} has {tries.last} ({context})"
        fido_ok = sw == 0x9000 and len(answer) > 2 and answer[0] == 0
        self.fido_tries.check(fido_ok, context)
        assert_no_secret(answer, self.secrets(snapshot), context)
        self.sixes[sw >> 8] = self.sixes.get(sw >> 8, 0) + 1


def fuzz_apdu(budget, seed, resync_every=1500):
    h = Harness(seed)
    for i in budget:
        if i and i % resync_every == 0:
            h.resync()
        h.step(h.apdu())
        if h.rng.random() < 0.005:
            h.token.power_off()
            h.token.power_on()
    # still a working token: every applet answers its SELECT
    h.token.power_off()
    h.token.power_on()
    for aid in h.aids:
        assert h.card.process_apdu(encode_apdu(0, INS_SELECT, 4, 0, aid, 256))[-2:] == b"\x90\x00"
    h.resync()
    assert h.sixes.get(0x90, 0) > budget.tried // 20, h.sixes
    return budget.report(f"({len(h.aids)} applets)")


def test_fuzz_apdu_all_applets():
    fuzz_apdu(Budget("apdu", 8000), 31)


@pytest.mark.slow
def test_fuzz_apdu_all_applets_long():
    fuzz_apdu(Budget("apdu", 0, slow=True), 1031)


def test_a_63cx_is_checked_against_the_counter_it_speaks_of():
    """A 63Cx answer is compared with the try counter of the applet that gave it and of the reference
    the command names (the long run once took the PIV applet's 63C3 to a VERIFY status query for the
    seal applet's 8 tries), and a count that differs from that counter is still caught."""
    h = Harness(5)
    verify_status = encode_apdu(0, PIV_INS_VERIFY, 0, PIV_P2_PIN)
    h.step(encode_apdu(0, INS_SELECT, 4, 0, AID_PIV, 256))
    assert h.tries_named_by(verify_status) is h.piv_pin
    assert h.tries_named_by(encode_apdu(0, PIV_INS_RESET_RETRY, 0, PIV_P2_PIN)) is h.piv_puk
    for apdu in (verify_status, encode_apdu(0, PIV_INS_VERIFY, 0, PIV_P2_PIN, b"000000\xff\xff"),
                 verify_status):
        h.step(apdu)
    assert h.piv_pin.last == PIV_PIN_MAX_TRIES - 1 and h.piv_puk.last == PIV_PUK_MAX_TRIES
    h.step(encode_apdu(0, INS_SELECT, 4, 0, AID_OPENPGP, 256))
    h.step(encode_apdu(0, OPENPGP_INS_VERIFY, 0, OPENPGP_PW3))
    assert h.tries_named_by(encode_apdu(0, OPENPGP_INS_VERIFY, 0, OPENPGP_PW3)) is h.pgp_pw3
    h.step(encode_apdu(0, INS_SELECT, 4, 0, AID_SEALCODES, 256))
    before = h.seal_tries.last
    h.step(encode_apdu(0, SEAL_INS_VERIFY_PIN, 0, 0, b"wrong-pin"))
    assert h.seal_tries.last == before - 1
    h.step(encode_apdu(0, INS_SELECT, 4, 0, AID_PIV, 256))
    h.piv_pin.read = lambda: 1   # the harness now reads one try fewer than the card has
    with pytest.raises(AssertionError, match="63Cx says 2 tries, PIV PIN has 1"):
        h.step(verify_status)
