"""CTAPHID framing of the firmware, driven by python-fido2's own CtapHidDevice.

python-fido2 is the client: it does INIT, splits requests into packets, reads
KEEPALIVEs and sends CANCEL itself. Below it there is only
sealboard.ctaphid_link (64-byte reports in and out) and the firmware. The raw
tests write hand-made reports and read the exact reports the token answers.
"""

from __future__ import annotations

import os
import random
import struct
import threading
import time

import pytest
from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import STATUS, CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.extensions import HmacSecretExtension
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.hid import CAPABILITY, CTAPHID
from fido2.utils import websafe_decode
from fido2.webauthn import AuthenticatorData

from sealboard.ctaphid_link import (
    EMULATOR_HID_PATH,
    SEALTOKEN_PID,
    SEALTOKEN_VID,
    FirmwareHidConnection,
    open_emulated_hid_device,
)
from sealboard.platform import CPythonPlatform
from sealtoken.fido.ctaphid import CtapHid
from sealtoken.token import Token
from sealtoken.fido.ctaphid import (CTAPHID_ERR_CHANNEL_BUSY, CTAPHID_ERR_INVALID_CHANNEL,
                                    CTAPHID_ERR_INVALID_CMD, CTAPHID_ERR_INVALID_LEN,
                                    CTAPHID_ERR_INVALID_PAR, CTAPHID_ERR_INVALID_SEQ,
                                    CTAPHID_ERR_MSG_TIMEOUT, CTAPHID_MAX_MESSAGE)

PIN = "correct horse"
RP = {"id": "example.com", "name": "Example"}
BROADCAST = 0xFFFFFFFF
ES256 = [{"type": "public-key", "alg": -7}]


class QuickPlatform(CPythonPlatform):
    """A board whose touch timeout is short, so the timeout path is quick to test."""

    TIMEOUT_MS = 400

    def wait_user_presence(self, timeout_ms, keepalive):
        return super().wait_user_presence(min(timeout_ms, self.TIMEOUT_MS), keepalive)


@pytest.fixture
def platform():
    return QuickPlatform(rng_seed="test_ctaphid")


@pytest.fixture
def token(platform):
    return Token(platform)


@pytest.fixture
def device(token):
    dev = open_emulated_hid_device(token)
    yield dev
    dev.close()


@pytest.fixture
def ctap(device):
    return Ctap2(device)


def _user(n=1):
    return {"id": bytes([n]) * 16, "name": f"user{n}", "displayName": f"User {n}"}


def _hmac_input(ctap, protocol, salt):
    """The hmac-secret getAssertion input, built by hand (docs/protocols.md section 6)."""
    response = ctap.client_pin(protocol.VERSION, ClientPin.CMD.GET_KEY_AGREEMENT)
    key_agreement, shared = protocol.encapsulate(response[ClientPin.RESULT.KEY_AGREEMENT])
    salt_enc = protocol.encrypt(shared, salt)
    ext = {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: protocol.authenticate(shared, salt_enc),
                           4: protocol.VERSION}}
    return ext, shared


def _hmac_output(protocol, shared, assertion):
    assert assertion.auth_data.flags & AuthenticatorData.FLAG.ED
    return protocol.decrypt(shared, assertion.auth_data.extensions["hmac-secret"])


# --- python-fido2 over the link ------------------------------------------------------
def test_init_capabilities_and_descriptor(device):
    assert device.version == 2
    assert device.capabilities == CAPABILITY.WINK | CAPABILITY.CBOR | CAPABILITY.NMSG
    assert device.descriptor.path == EMULATOR_HID_PATH
    assert (device.descriptor.vid, device.descriptor.pid) == (SEALTOKEN_VID, SEALTOKEN_PID)
    assert device.descriptor.report_size_in == device.descriptor.report_size_out == 64
    assert device.ping(b"hello") == b"hello"
    big = os.urandom(CTAPHID_MAX_MESSAGE)
    assert device.ping(big) == big
    device.wink()


def test_get_info(ctap):
    info = ctap.info
    assert "FIDO_2_0" in info.versions
    assert "hmac-secret" in info.extensions
    assert set(info.pin_uv_protocols) >= {1, 2}
    assert info.options.get("rk") is True


def test_msg_is_refused_ctap2_only(device):
    with pytest.raises(CtapError) as err:
        device.call(CTAPHID.MSG, b"\x00\x03\x00\x00")
    assert err.value.code == CtapError.ERR.INVALID_COMMAND


def test_make_and_get_with_hmac_secret_via_fido2_client(device):
    collector = DefaultClientDataCollector("https://example.com")
    client = Fido2Client(device, collector, UserInteraction(),
                         extensions=[HmacSecretExtension(allow_hmac_secret=True)])
    made = client.make_credential({
        "rp": RP, "user": _user(), "challenge": os.urandom(32), "pubKeyCredParams": ES256,
        "extensions": {"hmacCreateSecret": True},
        "authenticatorSelection": {"userVerification": "discouraged"},
    })
    assert made.client_extension_results["hmacCreateSecret"] is True
    cred_id = made.response.attestation_object.auth_data.credential_data.credential_id
    salt = os.urandom(32)
    outputs = []
    for _ in range(2):
        got = client.get_assertion({
            "rpId": RP["id"], "challenge": os.urandom(32),
            "allowCredentials": [{"type": "public-key", "id": cred_id}],
            "extensions": {"hmacGetSecret": {"salt1": salt}}, "userVerification": "discouraged",
        })
        outputs.append(got.get_response(0).client_extension_results["hmacGetSecret"]["output1"])
    assert outputs[0] == outputs[1] and len(websafe_decode(outputs[0])) == 32


@pytest.mark.parametrize("proto_cls", [PinProtocolV1, PinProtocolV2])
def test_pin_protocols_make_get_hmac(ctap, proto_cls):
    protocol = proto_cls()
    client_pin = ClientPin(ctap, protocol)
    client_pin.set_pin(PIN)
    assert client_pin.get_pin_retries()[0] == 8
    token = client_pin.get_pin_token(PIN, ClientPin.PERMISSION.MAKE_CREDENTIAL, RP["id"])
    cdh = os.urandom(32)
    made = ctap.make_credential(cdh, RP, _user(), ES256, extensions={"hmac-secret": True},
                                options={"rk": True}, pin_uv_param=protocol.authenticate(token, cdh),
                                pin_uv_protocol=protocol.VERSION)
    auth = made.auth_data
    assert auth.flags & AuthenticatorData.FLAG.UV
    assert auth.extensions == {"hmac-secret": True}
    cred = auth.credential_data
    allow = [{"type": "public-key", "id": cred.credential_id}]
    salt = os.urandom(32)

    outputs = {}
    for uv in (True, False):
        for proto in (PinProtocolV1(), PinProtocolV2()):  # either protocol reaches the same secret
            ext, shared = _hmac_input(ctap, proto, salt)
            cdh = os.urandom(32)
            kwargs = {}
            if uv:
                tok = ClientPin(ctap, proto).get_pin_token(PIN, ClientPin.PERMISSION.GET_ASSERTION, RP["id"])
                kwargs = {"pin_uv_param": proto.authenticate(tok, cdh), "pin_uv_protocol": proto.VERSION}
            assertion = ctap.get_assertion(RP["id"], cdh, allow, extensions=ext, **kwargs)
            assertion.verify(cdh, cred.public_key)
            assert bool(assertion.auth_data.flags & AuthenticatorData.FLAG.UV) == uv
            outputs.setdefault(uv, set()).add(_hmac_output(proto, shared, assertion))
    assert len(outputs[True]) == 1 and len(outputs[False]) == 1
    assert outputs[True] != outputs[False]


def test_wrong_pin_over_hid(ctap):
    ClientPin(ctap).set_pin(PIN)
    with pytest.raises(CtapError) as err:
        ClientPin(ctap).get_pin_token("wrong pin", ClientPin.PERMISSION.GET_ASSERTION, "x")
    assert err.value.code == CtapError.ERR.PIN_INVALID
    assert ClientPin(ctap).get_pin_retries()[0] == 7


# --- keepalive, cancel, touch outcomes --------------------------------------------------
def test_keepalive_upneeded_then_touch(platform, ctap):
    platform.presence = "wait"
    seen = []
    timer = threading.Timer(0.35, platform.press)
    timer.start()
    started = time.monotonic()
    made = ctap.make_credential(os.urandom(32), RP, _user(), ES256, on_keepalive=seen.append)
    assert time.monotonic() - started >= 0.3
    assert STATUS.UPNEEDED in seen
    assert made.auth_data.flags & AuthenticatorData.FLAG.UP


def test_cancel_interrupts_the_touch_wait(platform, ctap):
    platform.presence = "wait"
    platform.TIMEOUT_MS = 20000  # only CANCEL can end this wait quickly
    event = threading.Event()
    seen = []

    def cancel_on_upneeded(status):
        seen.append(status)
        threading.Timer(0.1, event.set).start()

    started = time.monotonic()
    with pytest.raises(CtapError) as err:
        ctap.make_credential(os.urandom(32), RP, _user(), ES256, event=event, on_keepalive=cancel_on_upneeded)
    assert err.value.code == CtapError.ERR.KEEPALIVE_CANCEL
    assert time.monotonic() - started < 5
    assert seen == [STATUS.UPNEEDED]
    platform.presence = "approve"
    assert ctap.get_info().versions  # still working


@pytest.mark.parametrize("policy, code", [("timeout", CtapError.ERR.USER_ACTION_TIMEOUT),
                                          ("deny", CtapError.ERR.OPERATION_DENIED)])
def test_touch_timeout_and_denial(platform, ctap, policy, code):
    platform.presence = policy
    with pytest.raises(CtapError) as err:
        ctap.make_credential(os.urandom(32), RP, _user(), ES256)
    assert err.value.code == code
    platform.presence = "approve"
    ctap.make_credential(os.urandom(32), RP, _user(), ES256)


# --- raw reports ---------------------------------------------------------------------------
class Raw:
    """Hand-made 64-byte reports straight into the link."""

    def __init__(self, token):
        self.conn = FirmwareHidConnection(token, read_timeout=3)

    def init(self, cid, cmd, payload=b"", bcnt=None):
        bcnt = len(payload) if bcnt is None else bcnt
        self.write(struct.pack(">IBH", cid, 0x80 | cmd, bcnt) + payload[:57])

    def cont(self, cid, seq, payload=b""):
        self.write(struct.pack(">IB", cid, seq) + payload[:59])

    def write(self, packet):
        self.conn.write_packet(packet.ljust(64, b"\0"))

    def read(self):
        """One whole message: (cid, command, payload), continuation packets joined."""
        packet = self.conn.read_packet()
        assert len(packet) == 64
        cid, cmd, bcnt = struct.unpack_from(">IBH", packet)
        assert cmd & 0x80
        data = packet[7:7 + bcnt]
        seq = 0
        while len(data) < bcnt:
            packet = self.conn.read_packet()
            assert struct.unpack_from(">IB", packet) == (cid, seq)
            data += packet[5:5 + bcnt - len(data)]
            seq += 1
        return cid, cmd & 0x7F, data

    def error(self):
        cid, cmd, data = self.read()
        assert cmd == CTAPHID.ERROR, (hex(cmd), data)
        return cid, data[0]

    def silent(self, wait=0.3):
        time.sleep(wait)
        return self.conn.pending() == 0

    def channel(self):
        nonce = os.urandom(8)
        self.init(BROADCAST, CTAPHID.INIT, nonce)
        cid, cmd, data = self.read()
        assert (cid, cmd, data[:8]) == (BROADCAST, CTAPHID.INIT, nonce)
        new_cid, version, _, _, _, caps = struct.unpack_from(">IBBBBB", data, 8)
        assert version == 2 and caps == 0x0D and new_cid not in (0, BROADCAST)
        return new_cid

    def ping(self, cid, payload=b"ping"):
        self.init(cid, CTAPHID.PING, payload)
        assert self.read() == (cid, CTAPHID.PING, payload)

    def close(self):
        self.conn.close()


@pytest.fixture
def raw(token):
    r = Raw(token)
    yield r
    r.close()


def _still_works(token):
    dev = open_emulated_hid_device(token)
    try:
        assert dev.ping(b"alive") == b"alive"
        assert "hmac-secret" in Ctap2(dev).get_info().extensions
    finally:
        dev.close()


def test_raw_channels_are_distinct(raw):
    a, b = raw.channel(), raw.channel()
    assert a != b
    raw.ping(a)
    raw.ping(b)


def test_raw_cid_zero_and_unknown_channel(raw, token):
    raw.init(0, CTAPHID.PING, b"x")
    assert raw.error() == (0, CTAPHID_ERR_INVALID_CHANNEL)
    raw.init(0x12345678, CTAPHID.PING, b"x")
    assert raw.error() == (0x12345678, CTAPHID_ERR_INVALID_CHANNEL)
    raw.init(BROADCAST, CTAPHID.PING, b"x")  # only INIT on the broadcast channel
    assert raw.error() == (BROADCAST, CTAPHID_ERR_INVALID_CHANNEL)
    raw.close()
    _still_works(token)


def test_raw_bad_sequence(raw, token):
    cid = raw.channel()
    payload = os.urandom(200)
    raw.init(cid, CTAPHID.PING, payload)
    raw.cont(cid, 0, payload[57:])
    raw.cont(cid, 2, payload[57 + 59:])  # 1 expected
    assert raw.error() == (cid, CTAPHID_ERR_INVALID_SEQ)
    raw.cont(cid, 1, payload[57 + 59:])  # the message was dropped: spurious now
    assert raw.silent()
    raw.ping(cid)
    raw.close()
    _still_works(token)


def test_raw_oversize_and_bad_lengths(raw):
    cid = raw.channel()
    raw.init(cid, CTAPHID.PING, b"", bcnt=CTAPHID_MAX_MESSAGE + 1)
    assert raw.error() == (cid, CTAPHID_ERR_INVALID_LEN)
    raw.init(cid, CTAPHID.PING, b"", bcnt=0xFFFF)
    assert raw.error() == (cid, CTAPHID_ERR_INVALID_LEN)
    raw.init(BROADCAST, CTAPHID.INIT, b"1234567")  # nonce must be 8 bytes
    assert raw.error() == (BROADCAST, CTAPHID_ERR_INVALID_LEN)
    raw.init(cid, CTAPHID.CBOR, b"")  # no CTAP command byte
    assert raw.error() == (cid, CTAPHID_ERR_INVALID_LEN)
    raw.ping(cid)


def test_raw_busy_channel(raw):
    a, b = raw.channel(), raw.channel()
    payload = os.urandom(100)
    raw.init(a, CTAPHID.PING, payload)  # A is mid-message
    raw.init(b, CTAPHID.PING, b"b")
    assert raw.error() == (b, CTAPHID_ERR_CHANNEL_BUSY)
    raw.cont(b, 0, b"ignored")  # continuation of the refused request: ignored
    raw.cont(a, 0, payload[57:])
    assert raw.read() == (a, CTAPHID.PING, payload)
    raw.ping(b)


def test_raw_init_packet_mid_message_and_resync(raw):
    cid = raw.channel()
    raw.init(cid, CTAPHID.PING, os.urandom(100))
    raw.init(cid, CTAPHID.WINK)  # another command before the message is complete
    assert raw.error() == (cid, CTAPHID_ERR_INVALID_SEQ)
    raw.init(cid, CTAPHID.PING, os.urandom(100))
    nonce = os.urandom(8)
    raw.init(cid, CTAPHID.INIT, nonce)  # INIT on the channel resynchronises it
    got_cid, cmd, data = raw.read()
    assert (got_cid, cmd, data[:8], struct.unpack_from(">I", data, 8)[0]) == (cid, CTAPHID.INIT, nonce, cid)
    raw.ping(cid)


def test_raw_continuation_without_init_is_ignored(raw, token):
    cid = raw.channel()
    raw.cont(cid, 0, b"stray")
    raw.cont(0x0BADCAFE, 5, b"stray")
    assert raw.silent()
    raw.ping(cid)
    raw.close()
    _still_works(token)


def test_raw_unknown_commands_and_idle_cancel(raw):
    cid = raw.channel()
    for cmd in (CTAPHID.MSG, 0x02, 0x3B, 0x3F, 0x40, 0x7F):
        raw.init(cid, cmd, b"\x00")
        assert raw.error() == (cid, CTAPHID_ERR_INVALID_CMD)
    raw.init(cid, CTAPHID.CANCEL)
    assert raw.silent()  # CANCEL is never answered
    raw.ping(cid)


def test_raw_lock(raw):
    a, b = raw.channel(), raw.channel()
    raw.init(a, CTAPHID.LOCK, b"\x0b")
    assert raw.error() == (a, CTAPHID_ERR_INVALID_PAR)
    raw.init(a, CTAPHID.LOCK, b"\x05")
    assert raw.read() == (a, CTAPHID.LOCK, b"")
    raw.init(b, CTAPHID.PING, b"x")
    assert raw.error() == (b, CTAPHID_ERR_CHANNEL_BUSY)
    raw.ping(a)
    raw.init(a, CTAPHID.LOCK, b"\x00")
    assert raw.read() == (a, CTAPHID.LOCK, b"")
    raw.ping(b)


def test_raw_message_timeout(raw):
    cid = raw.channel()
    raw.init(cid, CTAPHID.PING, os.urandom(100))
    # no continuation: the link ticks the firmware, which gives up after MSG_TIMEOUT_MS
    assert raw.error() == (cid, CTAPHID_ERR_MSG_TIMEOUT)
    raw.ping(cid)


def test_raw_busy_while_cbor_request_waits(raw, platform):
    platform.presence = "wait"
    platform.TIMEOUT_MS = 20000
    a, b = raw.channel(), raw.channel()
    cdh = os.urandom(32)
    from fido2 import cbor

    request = bytes([0x01]) + cbor.encode({1: cdh, 2: RP, 3: _user(), 4: ES256})
    raw.init(a, CTAPHID.CBOR, request)
    for seq, offset in enumerate(range(57, len(request), 59)):
        raw.cont(a, seq, request[offset:offset + 59])
    assert raw.read() == (a, CTAPHID.KEEPALIVE, bytes([STATUS.UPNEEDED]))
    raw.init(b, CTAPHID.PING, b"x")
    packets = [raw.read() for _ in range(3)]
    assert (b, CTAPHID.ERROR, bytes([CTAPHID_ERR_CHANNEL_BUSY])) in packets
    raw.init(a, CTAPHID.CANCEL)
    while True:
        cid, cmd, data = raw.read()
        if cmd != CTAPHID.KEEPALIVE:
            break
    assert (cid, cmd, data) == (a, CTAPHID.CBOR, bytes([0x2D]))
    raw.ping(b)


# --- fuzz ------------------------------------------------------------------------------------
class _EchoAuthenticator:
    def process(self, request, keepalive=None):
        return b"\x00" + bytes(request[:8])


def _fuzz(ctaphid, rounds, seed):
    rng = random.Random(seed)
    cids = [0, BROADCAST, 1, 2, 3, 0x12345678]
    for _ in range(rounds):
        kind = rng.random()
        cid = rng.choice(cids)
        if kind < 0.15:
            packet = struct.pack(">IBH", BROADCAST, 0x86, 8) + bytes(rng.getrandbits(8) for _ in range(8))
        elif kind < 0.3:  # a whole CBOR request in one packet: random CTAP parameters
            body = bytes([rng.choice([1, 2, 4, 6, 8, 0x0B, rng.randrange(256)])])
            body += bytes(rng.getrandbits(8) for _ in range(rng.randrange(57)))
            if rng.random() < 0.5:
                body = body[:1] + bytes([0xA0 | rng.randrange(6)]) + body[2:]  # a CBOR map head
            packet = struct.pack(">IBH", rng.choice([1, 2, 3]), 0x90, len(body)) + body
        elif kind < 0.55:
            cmd = rng.choice([0x01, 0x03, 0x04, 0x06, 0x08, 0x10, 0x11, 0x3B, 0x3F, rng.randrange(0x80)])
            bcnt = rng.choice([0, 1, 8, 57, 58, 200, 7609, 7610, rng.randrange(0x10000)])
            packet = struct.pack(">IBH", cid, 0x80 | cmd, bcnt) + bytes(rng.getrandbits(8) for _ in range(57))
        elif kind < 0.9:
            packet = struct.pack(">IB", cid, rng.choice([0, 1, 2, rng.randrange(0x80)]))
            packet += bytes(rng.getrandbits(8) for _ in range(59))
        else:
            packet = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 70)))
        for reply in ctaphid.handle_packet(packet):
            assert len(reply) == 64
        if rng.random() < 0.02:
            ctaphid.tick()


def _check_alive(ctaphid):
    # end what the fuzz may have left: a half-assembled message, a channel lock
    for cid in (1, 2, 3):
        ctaphid.handle_packet(struct.pack(">IBH", cid, 0x86, 8) + b"resync!!")
        ctaphid.handle_packet(struct.pack(">IBHB", cid, 0x84, 1, 0))
    nonce = b"12345678"
    out = ctaphid.handle_packet(struct.pack(">IBH", BROADCAST, 0x86, 8) + nonce)
    cid = struct.unpack_from(">I", out[-1], 15)[0]
    out = ctaphid.handle_packet(struct.pack(">IBH", cid, 0x81, 4) + b"ping")
    assert out[-1][:11] == struct.pack(">IBH", cid, 0x81, 4) + b"ping"


def test_fuzz_framing_fast(platform):
    ctaphid = CtapHid(_EchoAuthenticator(), platform)
    _fuzz(ctaphid, 3000, seed=1)
    _check_alive(ctaphid)


def _loud(token):
    token.ctaphid.raise_internal_errors = True
    token.fido.authenticator.raise_internal_errors = True


def test_fuzz_with_the_real_authenticator(token):
    _loud(token)
    _fuzz(token.ctaphid, 1500, seed=2)
    _check_alive(token.ctaphid)
    _still_works(token)


@pytest.mark.slow
def test_fuzz_framing_long(token):
    _loud(token)
    for seed in range(50):
        _fuzz(token.ctaphid, 20000, seed=100 + seed)
        _check_alive(token.ctaphid)
    _still_works(token)
