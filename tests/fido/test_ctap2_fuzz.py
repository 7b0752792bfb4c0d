"""Malformed CTAP2 requests get the right status and never crash (docs/security.md item 16).

The table tests run over every transport of the `fido` fixture. The fuzz tests
drive Authenticator.process directly (in-memory flash, for speed): requests
recorded from real python-fido2 sessions, mutated bytewise and structurally.
`raise_internal_errors=True` turns any unexpected exception into a test failure
instead of status 0x7F. The long runs are marked slow (pytest -m slow).
"""

from __future__ import annotations

import random

import pytest
from fido2 import cbor as fido2_cbor
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2

from sealboard.platform import CPythonPlatform
from sealtoken import const as C
from sealtoken.ctap2 import Authenticator
from sealtoken.storage import Store

from ._direct_device import DirectCtapDevice
from .conftest import CDH, RP, RP_ID, cred_id_of, make_credential

MC_OK = {1: CDH, 2: RP, 3: {"id": b"u", "name": "n"}, 4: [{"alg": -7, "type": "public-key"}]}
GA_OK = {1: RP_ID, 2: CDH}


def _req(cmd, params=None):
    return bytes([cmd]) + (b"" if params is None else fido2_cbor.encode(params))


def _without(params, key):
    return {k: v for k, v in params.items() if k != key}


def _with(params, key, value):
    out = dict(params)
    out[key] = value
    return out


MALFORMED = [
    # framing and commands
    (b"\x42", 0x01), (b"\x0a", 0x14), (b"\x0d", 0x14), (b"\x00", 0x01), (b"\xff", 0x01),
    (b"\x01" + b"\x00" * C.CTAP2_MAX_MSG_SIZE, 0x39),
    # CBOR itself
    (b"\x01\x80", 0x11), (b"\x01\x00", 0x11), (b"\x01\x40", 0x11), (b"\x06\xf6", 0x11),
    (_req(1, MC_OK) + b"\x00", 0x12), (_req(1, MC_OK)[:-1], 0x12), (b"\x01\xa1", 0x12),
    (b"\x01\xbf\x01\x02\xff", 0x12), (b"\x02\xa2\x02\x40\x01\x60", 0x12), (b"\x02\xa2\x01\x60\x01\x60", 0x12),
    (b"\x06\xa1\x01\xf9\x3c\x00", 0x11), (b"\x06\xa1\x01\xc1\x01", 0x11), (b"\x06\xa1\x01\x18\x02", 0x12),
    (b"\x02\xa1\x01\x62\xc3\x28", 0x12),
    # makeCredential: missing parameters and wrong types
    (b"\x01", 0x14), (_req(1, {}), 0x14),
    *[(_req(1, _without(MC_OK, k)), 0x14) for k in (1, 2, 3, 4)],
    (_req(1, _with(MC_OK, 1, "cdh")), 0x11), (_req(1, _with(MC_OK, 2, [RP_ID])), 0x11),
    (_req(1, _with(MC_OK, 3, b"user")), 0x11), (_req(1, _with(MC_OK, 4, {"alg": -7})), 0x11),
    (_req(1, _with(MC_OK, 2, {"name": "x"})), 0x14), (_req(1, _with(MC_OK, 2, {"id": 5})), 0x11),
    (_req(1, _with(MC_OK, 3, {"name": "x"})), 0x14), (_req(1, _with(MC_OK, 3, {"id": "text"})), 0x11),
    (_req(1, _with(MC_OK, 3, {"id": b"u", "name": 7})), 0x11),
    (_req(1, _with(MC_OK, 4, [5])), 0x11), (_req(1, _with(MC_OK, 4, [{"type": "public-key"}])), 0x14),
    (_req(1, _with(MC_OK, 4, [{"alg": "es256", "type": "public-key"}])), 0x11),
    (_req(1, _with(MC_OK, 5, "x")), 0x11), (_req(1, _with(MC_OK, 5, [{"type": "public-key"}])), 0x14),
    (_req(1, _with(MC_OK, 5, [5])), 0x11), (_req(1, _with(MC_OK, 5, [{"id": "x", "type": "public-key"}])), 0x11),
    (_req(1, _with(MC_OK, 6, [])), 0x11), (_req(1, _with(MC_OK, 6, {"hmac-secret": 1})), 0x11),
    (_req(1, _with(MC_OK, 6, {"credProtect": "x"})), 0x11), (_req(1, _with(MC_OK, 6, {"credProtect": 0})), 0x02),
    (_req(1, _with(MC_OK, 7, {"rk": 1})), 0x11), (_req(1, _with(MC_OK, 7, [])), 0x11),
    (_req(1, _with(MC_OK, 8, "param")), 0x11), (_req(1, _with(_with(MC_OK, 8, b"p" * 32), 9, -1)), 0x11),
    (_req(1, _with(MC_OK, 8, b"p" * 32)), 0x14), (_req(1, _with(_with(MC_OK, 8, b"p" * 32), 9, 3)), 0x02),
    (_req(1, _with(MC_OK, 10, 1)), 0x02),
    (_req(1, _with(MC_OK, 4, [{"alg": -257, "type": "public-key"}])), 0x26),
    # getAssertion
    (b"\x02", 0x14), *[(_req(2, _without(GA_OK, k)), 0x14) for k in (1, 2)],
    (_req(2, _with(GA_OK, 1, b"rp")), 0x11), (_req(2, _with(GA_OK, 2, "cdh")), 0x11),
    (_req(2, _with(GA_OK, 3, {"id": b"x"})), 0x11), (_req(2, _with(GA_OK, 3, [{"id": b"x"}])), 0x14),
    (_req(2, _with(GA_OK, 4, [])), 0x11), (_req(2, _with(GA_OK, 5, {"up": "yes"})), 0x11),
    (_req(2, _with(GA_OK, 5, {"rk": False})), 0x2B), (_req(2, _with(GA_OK, 5, {"uv": True})), 0x2C),
    (_req(2, GA_OK), 0x2E), (_req(2, _with(GA_OK, 3, [])), 0x2E),
    (_req(2, _with(GA_OK, 3, [{"id": b"x" * 97, "type": "public-key"}])), 0x2E),
    (_req(2, _with(GA_OK, 3, [{"id": b"x", "type": "other"}])), 0x2E),
    # clientPIN
    (b"\x06", 0x14), (_req(6, {1: 2}), 0x14), (_req(6, {1: 2, 2: "x"}), 0x11), (_req(6, {1: 2, 2: 0x42}), 0x3E),
    (_req(6, {1: 7, 2: 2}), 0x02), (_req(6, {2: 2}), 0x14), (_req(6, {1: "2", 2: 2}), 0x11),
    (_req(6, {1: 2, 2: 3}), 0x14), (_req(6, {1: 2, 2: 3, 3: b"key", 4: b"x", 5: b"y"}), 0x11),
    (_req(6, {1: 2, 2: 5}), 0x14), (_req(6, {1: 2, 2: 9, 3: {}, 6: b"x"}), 0x14),
    (_req(6, {1: 2, 2: 5, 3: {1: 2}, 6: b"x" * 32}), 0x35),  # no PIN set
    (_req(6, {1: 2, 2: 3, 3: {1: 2, 3: -25, -1: 1, -2: b"x", -3: b"y"}, 4: b"a" * 32, 5: b"b" * 64}), 0x02),
    # getNextAssertion without a getAssertion before it
    (b"\x08", 0x30),
]


@pytest.mark.parametrize("request_bytes,status", MALFORMED,
                         ids=lambda v: v.hex()[:40] if isinstance(v, bytes) else None)
def test_malformed_requests(fido, request_bytes, status):
    assert fido.raw(request_bytes) == bytes([status])
    # still fine afterwards
    assert fido.raw(b"\x04")[0] == 0


def test_empty_request(fido):
    if fido.kind != "direct":
        pytest.skip("framing of an empty request is the transport's business")
    assert fido.raw(b"") == bytes([C.CTAP1_ERR_INVALID_LENGTH])


def test_wrong_types_with_a_pin_set(fido):
    ctap = fido.ctap2()
    ClientPin(ctap).set_pin("1234567")
    ctap = Ctap2(fido.device)
    assert fido.raw(_req(1, MC_OK)) == bytes([0x36])  # PUAT_REQUIRED
    assert fido.raw(_req(6, {1: 2, 2: 9, 3: {1: 2}, 6: b"x" * 32, 9: "all"})) == bytes([0x11])
    assert fido.raw(_req(6, {1: 2, 2: 9, 3: {1: 2}, 6: b"x" * 32, 9: 3, 10: b"rp"})) == bytes([0x11])
    assert fido.raw(_req(6, {1: 2, 2: 4, 3: {1: 2}, 4: b"a", 5: b"b"})) == bytes([0x14])
    assert ClientPin(ctap).get_pin_retries()[0] == 8


# --- fuzzing -----------------------------------------------------------------------------------

KNOWN_STATUS = {0x00, 0x01, 0x02, 0x03, 0x11, 0x12, 0x14, 0x19, 0x26, 0x27, 0x28, 0x2B, 0x2C, 0x2D, 0x2E,
                0x2F, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x39, 0x3E, 0x40}


def _token(seed):
    platform = CPythonPlatform(rng_seed=seed)
    return Authenticator(platform, Store(platform), reset_window_ms=None, raise_internal_errors=True)


def _session(auth):
    """A full python-fido2 session on auth (reset, credentials, PIN, hmac-secret, sequences).

    Returns the requests it sent: valid for auth's current state (its key-agreement
    key, its PIN), so mutations of them reach deep into the command handlers.
    """
    device = DirectCtapDevice(auth)
    ctap = Ctap2(device)
    ctap.reset()
    plain = make_credential(ctap, extensions={"hmac-secret": True, "credProtect": 2},
                            exclude=[{"type": "public-key", "id": b"\x01" * 97}])
    for i in range(2):
        make_credential(ctap, rk=True, user_id=bytes([i]), extensions={"hmac-secret": True})
    ctap.get_assertions(RP_ID, CDH)
    ctap.selection()
    ClientPin(ctap, PinProtocolV2()).set_pin("1234")
    ctap = Ctap2(device)
    for proto in (PinProtocolV1(), PinProtocolV2()):
        cp = ClientPin(ctap, proto)
        token = cp.get_pin_token("1234", ClientPin.PERMISSION.MAKE_CREDENTIAL | ClientPin.PERMISSION.GET_ASSERTION,
                                 RP_ID)
        make_credential(ctap, token=token, protocol=proto, rk=True, user_id=b"pin")
        token = cp.get_pin_token("1234")
        ctap.get_assertion(RP_ID, CDH, None, None, None, proto.authenticate(token, CDH), proto.VERSION)
        ctap.get_next_assertion()
        cp.get_pin_retries()
        key_agreement, secret = cp._get_shared_secret()
        salt_enc = proto.encrypt(secret, b"s" * 64)
        ctap.get_assertion(RP_ID, CDH, [{"type": "public-key", "id": cred_id_of(plain)}],
                           {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: proto.authenticate(secret, salt_enc),
                                            4: proto.VERSION}})
        cp.change_pin("1234", "1234")
    return [r for r in device.requests if r and r[0] != 0x07]  # a replayed reset would undo the set-up


def _random_value(rng, depth=0):
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return rng.choice([0, 1, 2, 3, 7, 23, 24, 255, 256, 65535, 2**32, 2**64 - 1])
    if kind == 1:
        return -rng.choice([1, 7, 25, 257, 2**31, 2**64])
    if kind == 2:
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 15, 16, 31, 32, 33, 64, 97, 300])))
    if kind == 3:
        return rng.choice(["", "public-key", "hmac-secret", "credProtect", "rk", "up", "uv", "id", "alg",
                           "type", "name", "\u00e9" * 40, "x" * 300])
    if kind in (4, 5):
        return rng.random() < 0.5
    if kind == 6:
        return rng.choice([b"\x01" * 97, b"\0" * 32, {1: 2, 3: -25, -1: 1, -2: b"\1" * 32, -3: b"\2" * 32}])
    if kind in (7, 8):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [rng.choice([1, 2, 3, 4, 5, -1, -2, "id", "type", "alg", "rk", "up", "hmac-secret"])
            for _ in range(rng.randrange(4))]
    return {k: _random_value(rng, depth + 1) for k in keys}


def _mutate_structure(rng, value):
    """A copy of a decoded request with one node replaced, deleted or added."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.2:
            del out[key]
        elif roll < 0.3:
            out[rng.choice([0, 6, 10, 11, 255, "extra", -7])] = _random_value(rng)
        elif roll < 0.65:
            out[key] = _mutate_structure(rng, value[key])
        else:
            out[key] = _random_value(rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.2:
            del out[i]
        elif roll < 0.3:
            out.extend(out * rng.randrange(1, 12))  # long lists
        elif roll < 0.7:
            out[i] = _mutate_structure(rng, out[i])
        else:
            out[i] = _random_value(rng)
        return out
    return _random_value(rng)


def _mutate_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(5)
        if kind == 0 and len(data) > 1:
            data[rng.randrange(1, len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1 and len(data) > 1:
            data[rng.randrange(1, len(data))] = rng.choice([0x00, 0x17, 0x18, 0x1F, 0x5F, 0x9F, 0xBF, 0xF6, 0xFF,
                                                            rng.randrange(256)])
        elif kind == 2:
            del data[rng.randrange(1, len(data) + 1):]
        elif kind == 3:
            pos = rng.randrange(1, len(data) + 1)
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        else:
            data[0] = rng.choice([0x01, 0x02, 0x04, 0x06, 0x08, 0x0B, rng.randrange(256)])
    return bytes(data)


def _check(auth, request):
    response = auth.process(request)
    assert isinstance(response, bytes) and len(response) >= 1
    assert response[0] in KNOWN_STATUS, (hex(response[0]), request.hex())
    if len(response) > 1:
        assert response[0] == 0
        body = response[1:]
        assert fido2_cbor.encode(fido2_cbor.decode(body)) == body
    return response


def _fuzz(iterations, seed, resync_every=250):
    rng = random.Random(seed)
    auth = _token(seed)
    statuses = {}
    for i in range(iterations):
        if i % resync_every == 0:
            seeds = _session(auth)
        base = rng.choice(seeds)
        if rng.random() < 0.5 and len(base) > 1:
            try:
                decoded = fido2_cbor.decode(base[1:])
            except Exception:
                decoded = {}
            request = base[:1] + fido2_cbor.encode(_mutate_structure(rng, decoded))
        elif rng.random() < 0.9:
            request = _mutate_bytes(rng, base)
        else:
            request = base  # valid requests keep the token in interesting states
        status = _check(auth, request)[0]
        statuses[status] = statuses.get(status, 0) + 1
        if rng.random() < 0.01:
            auth.power_off()
    # still a working token
    assert _check(auth, b"\x04")[0] == 0
    _session(auth)
    # the fuzzer reached past the parser, into PIN and credential handling
    for status in (0x00, 0x11, 0x12, 0x14, 0x2E, 0x31, 0x33):
        assert statuses.get(status, 0) > 0, (hex(status), statuses)
    return statuses


def test_fuzz_quick():
    _fuzz(4000, 11)


@pytest.mark.slow
def test_fuzz_long():
    for seed in range(4):
        _fuzz(50000, 100 + seed)
