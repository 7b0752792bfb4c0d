"""The whole Token (all applets, CTAPHID) on SimPlatform. Plain asserts: runs under MicroPython too,
so CTAPHID framing and the OATH applet are exercised in the MicroPython subset, not only CPython."""

import struct
from sealtoken.core.iso7816 import encode_apdu, split_response
from sealtoken.core.simplatform import SimPlatform
from sealtoken.token import Token
from sealtoken.applets import AID_OATH, AID_SEALCODES
from sealtoken.applets.seal import SEAL_TAG_VERSION
from sealtoken.fido.ctaphid import CTAPHID_CBOR, CTAPHID_ERROR, CTAPHID_INIT, CTAPHID_PING

BROADCAST = 0xFFFFFFFF


def _token():
    return Token(SimPlatform(seed=7))


def _select(card, aid):
    return split_response(card.process_apdu(encode_apdu(0x00, 0xA4, 0x04, 0x00, aid)))


def test_ctaphid_init_ping_and_getinfo():
    token = _token()
    hid = token.ctaphid
    nonce = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    init = struct.pack(">IBH", BROADCAST, 0x80 | CTAPHID_INIT, 8) + nonce
    [reply] = hid.handle_packet(init + bytes(64 - len(init)))
    assert len(reply) == 64
    cid, cmd, bcnt = struct.unpack(">IBH", reply[:7])
    assert cid == BROADCAST and cmd == 0x80 | CTAPHID_INIT and bcnt == 17
    assert reply[7:15] == nonce
    channel = struct.unpack(">I", reply[15:19])[0]
    assert channel not in (0, BROADCAST)
    assert reply[19] == 2  # CTAPHID protocol version

    # a 100-byte PING comes back identical over an init and a continuation packet
    payload = bytes(range(100))
    packets = []
    for packet in [struct.pack(">IBH", channel, 0x80 | CTAPHID_PING, 100) + payload[:57],
                   struct.pack(">IB", channel, 0) + payload[57:]]:
        packets += hid.handle_packet(packet + bytes(64 - len(packet)))
    assert len(packets) == 2
    echoed = packets[0][7:64] + packets[1][5:5 + 100 - 57]
    assert echoed == payload

    # CBOR getInfo: status 00 and a map
    request = struct.pack(">IBH", channel, 0x80 | CTAPHID_CBOR, 1) + b"\x04"
    [answer] = hid.handle_packet(request + bytes(64 - len(request)))[:1]
    assert answer[4] == 0x80 | CTAPHID_CBOR
    assert answer[7] == 0x00 and (answer[8] & 0xE0) == 0xA0

    # a continuation packet on an unknown channel never crashes the token
    stray = struct.pack(">IB", 0x12345678, 5)
    hid.handle_packet(stray + bytes(59))
    # CID 0 is invalid
    bad = hid.handle_packet(struct.pack(">IBH", 0, 0x80 | CTAPHID_PING, 1) + bytes(57))
    assert bad and bad[0][4] == 0x80 | CTAPHID_ERROR


def test_oath_put_and_calculate_rfc2202():
    card = _token().card
    card.power_on()
    _, sw = _select(card, AID_OATH)
    assert sw == 0x9000
    key = b"\x0b" * 20
    name = b"rfc2202"
    put = (bytes((0x71, len(name))) + name
           + bytes((0x73, 2 + len(key), 0x21, 6)) + key)  # TOTP | SHA1, 6 digits
    _, sw = split_response(card.process_apdu(encode_apdu(0x00, 0x01, 0x00, 0x00, put)))
    assert sw == 0x9000
    calc = bytes((0x71, len(name))) + name + bytes((0x74, 8)) + b"Hi There"
    data, sw = split_response(card.process_apdu(encode_apdu(0x00, 0xA2, 0x00, 0x00, calc)))
    assert sw == 0x9000
    # 75 len digits || HMAC-SHA1 (RFC 2202 test case 1)
    assert data[0] == 0x75 and data[2] == 6
    assert data[3:] == bytes.fromhex("b617318655057264e28bc0b6fb378c8ef146be00")


def test_sealcodes_applet_is_selected_by_its_aid():
    card = _token().card
    card.power_on()
    data, sw = _select(card, AID_SEALCODES)
    assert sw == 0x9000 and data[0] == SEAL_TAG_VERSION
