"""Two clients writing the token's store at once: no lost write, no lost secret.

A FIDO makeCredential with a resident key, sent through the FIDO ISO applet with
P1 = 80, runs in the platform's background job (a real thread of
CPythonPlatform, flash in files) while the foreground card serves the seal
applet: VERIFY, GENERATE, DERIVE. This is a browser doing WebAuthn through
pcscd while `sealcodes enroll` runs. For many rounds the test then compares

- RAM: what the running store holds, with what a fresh Store reads from flash;
- content: both the new slot secret and the resident credential are there;
- answers: DERIVE with the same challenge before and after a restart.

Each round waits for the touch, so the background write starts while the
foreground is busy. CPython threads only (the MicroPython build of the firmware
has no threads; tests/firmware covers it).
"""

from __future__ import annotations

import hashlib
import threading
import time

from fido2 import cbor

from sealboard.platform import CPythonPlatform
from sealtoken.core.storage import Store
from sealtoken.token import Token
from sealtoken.applets import AID_FIDO, AID_SEALCODES
from sealtoken.applets.seal import (SEAL_INS_DERIVE, SEAL_INS_GENERATE, SEAL_INS_SET_PIN,
                                    SEAL_INS_VERIFY_PIN, SEAL_NUM_SLOTS, SEAL_P2_GENERATE_OVERWRITE)
from sealtoken.core.keys import FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST, KEY_SEAL_SLOT_BASE

ROUNDS = 60
PIN = b"race-pin-1234"
SELECT_FIDO = bytes.fromhex("00a4040008") + AID_FIDO
SELECT_SEAL = bytes([0x00, 0xA4, 0x04, 0x00, len(AID_SEALCODES)]) + AID_SEALCODES
RP = {"id": "race.example", "name": "Race"}
ES256 = [{"type": "public-key", "alg": -7}]


def apdu(card, data):
    response = card.process_apdu(bytes(data))
    return bytes(response[:-2]), (response[-2] << 8) | response[-1]


def seal(card, ins, p1=0, p2=0, data=b""):
    command = bytes([0x00, ins, p1, p2])
    if data:
        command += bytes([len(data)]) + data
    return apdu(card, command)


def make_credential_request(round_no):
    client_data_hash = hashlib.sha256(b"race %d" % round_no).digest()
    user_no = round_no % 32  # from round 32 on, each credential replaces one of an earlier round
    user = {"id": b"user-%d" % user_no, "name": "user%d" % user_no}
    return b"\x01" + cbor.encode({1: client_data_hash, 2: RP, 3: user, 4: ES256, 7: {"rk": True}})


def store_state(store):
    return {key: store.get(key) for key in store.keys()}


def resident_records(state):
    return set(v for k, v in state.items() if FIDO_KEY_RK_FIRST <= k <= FIDO_KEY_RK_LAST)


def background_threads():
    return [t for t in threading.enumerate() if t.name == "sealtoken-ctap"]


def one_round(state_dir, round_no, slot):
    """Race one makeCredential against one GENERATE; a list of what went wrong."""
    problems = []
    platform = CPythonPlatform(state_dir=str(state_dir), rng_seed="race-%d" % round_no, presence="wait")
    token = Token(platform)
    card = token.card
    card.power_on()
    try:
        assert apdu(card, SELECT_SEAL)[1] == 0x9000
        if round_no == 0:
            assert seal(card, SEAL_INS_SET_PIN, data=PIN)[1] == 0x9000
        rk_before = resident_records(store_state(token.store))

        # the browser: makeCredential(rk) through the FIDO applet, polled (P1 = 80)
        assert apdu(card, SELECT_FIDO)[1] == 0x9000
        request = make_credential_request(round_no)
        data, sw = apdu(card, bytes([0x80, 0x10, 0x80, 0x00, len(request)]) + request + b"\x00")
        assert sw == 0x9100 and data == b"\x02", (data, hex(sw))  # waiting for the touch
        jobs = background_threads()
        # the user touches: the background job goes on to make and store its credential, while
        # sealcodes enroll runs VERIFY + GENERATE + DERIVE; the foreground starts 0 to 1 ms after
        # the touch, so the rounds sweep the window where both commits overlap
        platform.press()
        time.sleep((round_no % 6) / 5000.0)
        assert apdu(card, SELECT_SEAL)[1] == 0x9000
        assert seal(card, SEAL_INS_VERIFY_PIN, data=PIN)[1] == 0x9000
        sw = seal(card, SEAL_INS_GENERATE, slot, SEAL_P2_GENERATE_OVERWRITE)[1]
        assert sw == 0x9000, hex(sw)
        challenge = hashlib.sha256(b"challenge %d" % round_no).digest()
        assert seal(card, SEAL_INS_VERIFY_PIN, data=PIN)[1] == 0x9000
        before, sw = seal(card, SEAL_INS_DERIVE, slot, 0, challenge)
        if sw != 0x9000:
            problems.append("GENERATE said 9000 but DERIVE answers %04X" % sw)

        for job in jobs:
            job.join(10)
        # RAM against flash
        in_ram = store_state(token.store)
        on_flash = store_state(Store(platform))
        if in_ram != on_flash:
            problems.append("RAM and flash differ")
        rk_after = resident_records(on_flash)
        if not rk_after - rk_before or len(rk_after) < len(rk_before):
            problems.append("resident credential lost")
        if KEY_SEAL_SLOT_BASE + slot not in on_flash:
            problems.append("slot secret missing from flash")
    finally:
        platform.close()

    # restart: the slot that answered DERIVE answers the same
    platform = CPythonPlatform(state_dir=str(state_dir), rng_seed="race-restart-%d" % round_no)
    try:
        card = Token(platform).card
        card.power_on()
        assert apdu(card, SELECT_SEAL)[1] == 0x9000
        assert seal(card, SEAL_INS_VERIFY_PIN, data=PIN)[1] == 0x9000
        after, sw = seal(card, SEAL_INS_DERIVE, slot, 0, challenge)
        if sw != 0x9000:
            problems.append("slot gone after restart (SW %04X)" % sw)
        elif before and after != before:
            problems.append("slot secret changed after restart")
    finally:
        platform.close()
    return problems


def test_fido_background_write_races_seal_generate(tmp_path):
    failures = []
    started = time.monotonic()
    for round_no in range(ROUNDS):
        slot = 1 + round_no % SEAL_NUM_SLOTS
        problems = one_round(tmp_path / "state", round_no, slot)
        if problems:
            failures.append((round_no, problems))
    assert not background_threads()
    assert not failures, "%d of %d rounds went wrong (%.1f s): %r" % (
        len(failures), ROUNDS, time.monotonic() - started, failures[:5])
