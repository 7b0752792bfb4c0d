"""Fuzzing the CBOR decoder and every CTAP2 command of the authenticator.

CBOR: random bytes and byte mutations of valid encodings. The decoder either
raises CtapError with INVALID_CBOR / CBOR_UNEXPECTED_TYPE, or returns a value
that python-fido2 decodes the same way and that both encoders write back to
exactly the input (the input was canonical).

CTAP2: requests recorded from python-fido2 sessions (every command, credential
management and authenticatorConfig included), mutated structurally and
bytewise, plus random ones, sent to Authenticator.process with
raise_internal_errors=True (an escaping exception fails the test). After every
request: a known status, a canonical body, RAM equal to flash, the clientPIN
try counter not up (except to 8 on success), no known secret in the answer.
"""

from __future__ import annotations

import random

import pytest
from fido2 import cbor as fido2_cbor

from sealtoken.core import cbor
from sealtoken.fido.config import force_pin_change
from sealtoken.core.cbor import CtapError
from sealtoken.fido.ctap2 import Authenticator
from sealtoken.core.storage import Store

from ._ctap import SecretCache, check_ctap_response, fido_tries, record_session
from ._harness import Budget, assert_flash_equals_ram, assert_no_secret, mutate_bytes, mutate_structure, random_value
from ._platform import FuzzPlatform

# --- CBOR -----------------------------------------------------------------------------------------


def _cbor_corpus(rng):
    corpus = [fido2_cbor.encode(random_value(rng)) for _ in range(200)]
    platform = FuzzPlatform(seed=b"cbor-corpus")
    auth = Authenticator(platform, Store(platform), reset_window_ms=None, raise_internal_errors=True)
    corpus.extend(r[1:] for r in record_session(auth) if len(r) > 1)
    return corpus


def fuzz_cbor(budget, seed):
    rng = random.Random(seed)
    corpus = _cbor_corpus(rng)
    decoded_ok = failed = 0
    for _ in budget:
        roll = rng.random()
        if roll < 0.1:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        elif roll < 0.15:
            data = rng.choice(corpus)
        else:
            data = mutate_bytes(rng, rng.choice(corpus))
        try:
            value = cbor.decode(data)
        except CtapError as e:
            assert e.code in (0x11, 0x12), (hex(e.code), data.hex())
            failed += 1
            continue
        decoded_ok += 1
        assert cbor.encode(value) == data, data.hex()
        assert fido2_cbor.decode(data) == value, data.hex()
        assert fido2_cbor.encode(value) == data, data.hex()
    assert decoded_ok > budget.tried // 50 and failed > budget.tried // 10, (decoded_ok, failed)
    return budget.report()


def test_fuzz_cbor_decoder():
    fuzz_cbor(Budget("cbor", 150000), 1)


@pytest.mark.slow
def test_fuzz_cbor_decoder_long():
    fuzz_cbor(Budget("cbor", 0, slow=True), 1001)


# --- CTAP2 commands ----------------------------------------------------------------------------


def fuzz_ctap2(budget, seed, resync_every=300):
    rng = random.Random(seed)
    platform = FuzzPlatform(seed=b"ctap2-%d" % seed)
    store = Store(platform)
    auth = Authenticator(platform, store, reset_window_ms=None, raise_internal_errors=True)
    tries = fido_tries(store)
    secrets = SecretCache(auth, store)
    statuses = {}
    commands = {}
    seeds = []
    for i in budget:
        if i % resync_every == 0:
            seeds = record_session(auth)
            tries.last = tries.read()
        roll = rng.random()
        base = rng.choice(seeds)
        if roll < 0.45 and len(base) > 1:
            try:
                decoded = fido2_cbor.decode(base[1:])
            except Exception:
                decoded = {}
            request = base[:1] + fido2_cbor.encode(mutate_structure(rng, decoded))
        elif roll < 0.85:
            request = mutate_bytes(rng, base, keep_first=1 if rng.random() < 0.8 else 0)
        elif roll < 0.9:
            request = bytes([rng.choice([0x0A, 0x0D, rng.randrange(256)])]) + fido2_cbor.encode(random_value(rng))
        else:
            request = base   # valid requests keep the token in interesting states
        forced = force_pin_change(store)
        response = auth.process(request)
        context = request.hex()[:200]
        check_ctap_response(response, context)
        snapshot = assert_flash_equals_ram(platform, store, context)
        # PIN_INVALID to clientPIN is a spent try (unless a forced change turned a right PIN away)
        spent = request[:1] == b"\x06" and response == b"\x31" and not forced
        tries.check(response[0] == 0, context, spent)
        assert_no_secret(response, secrets.get(snapshot), context)
        statuses[response[0]] = statuses.get(response[0], 0) + 1
        if request:
            commands[request[0]] = commands.get(request[0], 0) + 1
        if rng.random() < 0.01:
            auth.power_off()
        if rng.random() < 0.05:
            platform.advance_ms(rng.choice([10, 1000, 40000, 700000]))
    info = auth.process(b"\x04")
    check_ctap_response(info)
    assert info[0] == 0
    record_session(auth)   # still a working token
    # the fuzzer reached past the parser into every command handler
    for status in (0x00, 0x11, 0x12, 0x14, 0x2E, 0x31, 0x33):
        assert statuses.get(status, 0) > 0, (hex(status), statuses)
    for command in (0x01, 0x02, 0x04, 0x06, 0x08, 0x0A, 0x0B, 0x0D):
        assert commands.get(command, 0) > 0, (hex(command), commands)
    return budget.report()


def test_fuzz_ctap2_commands():
    fuzz_ctap2(Budget("ctap2", 6000), 11)


@pytest.mark.slow
def test_fuzz_ctap2_commands_long():
    fuzz_ctap2(Budget("ctap2", 0, slow=True), 1011)
