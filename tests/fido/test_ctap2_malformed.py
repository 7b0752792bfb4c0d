"""Malformed CTAP2 requests get the right status and never crash (docs/security.md item 16).

The table tests run over every transport of the `fido` fixture. The fuzzing of
every CTAP command lives in tests/fuzz/test_fuzz_ctap2.py.
"""

from __future__ import annotations

import pytest
from fido2 import cbor as fido2_cbor
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin
from .conftest import CDH, RP, RP_ID
from sealtoken.fido.const import CTAP1_ERR_INVALID_LENGTH, CTAP2_MAX_MSG_SIZE

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
    (b"\x01" + b"\x00" * CTAP2_MAX_MSG_SIZE, 0x39),
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
    assert fido.raw(b"") == bytes([CTAP1_ERR_INVALID_LENGTH])


def test_wrong_types_with_a_pin_set(fido):
    ctap = fido.ctap2()
    ClientPin(ctap).set_pin("1234567")
    ctap = Ctap2(fido.device)
    assert fido.raw(_req(1, MC_OK)) == bytes([0x36])  # PUAT_REQUIRED
    assert fido.raw(_req(6, {1: 2, 2: 9, 3: {1: 2}, 6: b"x" * 32, 9: "all"})) == bytes([0x11])
    assert fido.raw(_req(6, {1: 2, 2: 9, 3: {1: 2}, 6: b"x" * 32, 9: 3, 10: b"rp"})) == bytes([0x11])
    assert fido.raw(_req(6, {1: 2, 2: 4, 3: {1: 2}, 4: b"a", 5: b"b"})) == bytes([0x14])
    assert ClientPin(ctap).get_pin_retries()[0] == 8
