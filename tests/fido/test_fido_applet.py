"""The FIDO applet (CTAP2 over ISO 7816, NFC style) through Card.process_apdu.

Two clients: hand-made APDUs, and python-fido2's own CtapPcscDevice over a
pyscard-shaped connection that hands every APDU to the firmware's Card (the
same bytes pcscd would carry). Nothing above the APDU boundary is replaced.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading

import pytest
from fido2 import cbor
from fido2.ctap import STATUS, CtapError
from fido2.ctap2 import Ctap2
from fido2.pcsc import CtapPcscDevice

from sealboard.ctaphid_link import open_emulated_hid_device
from sealboard.platform import CPythonPlatform
from sealcodes.backends.base import Interaction
from sealcodes.backends.fido2 import Fido2Backend
from sealtoken.token import Token

SELECT_FIDO = bytes.fromhex("00a4040008a0000006472f0001")
RP = {"id": "example.com", "name": "Example"}
ES256 = [{"type": "public-key", "alg": -7}]


class CardConnection:
    """What fido2.pcsc.CtapPcscDevice uses of a pyscard CardConnection, into a firmware Card."""

    def __init__(self, card):
        self.card = card
        self.apdus = []

    def connect(self, *args, **kwargs):
        self.card.power_on()

    def disconnect(self):
        self.card.power_off()

    def getATR(self):
        return list(self.card.atr)

    def transmit(self, apdu, protocol=None):
        self.apdus.append(bytes(apdu))
        response = self.card.process_apdu(bytes(apdu))
        return list(response[:-2]), response[-2], response[-1]


@pytest.fixture
def token():
    platform = CPythonPlatform(rng_seed="test_fido_applet")
    tok = Token(platform)
    tok.card.power_on()
    return tok


def apdu(card, data):
    response = card.process_apdu(bytes(data))
    return response[:-2], (response[-2] << 8) | response[-1]


def nfcctap_msg(request, p1=0x00):
    assert len(request) <= 255
    return bytes([0x80, 0x10, p1, 0x00, len(request)]) + request + b"\x00"


def _background(fido_applet):
    fido_applet.run_background = lambda fn: threading.Thread(target=fn, daemon=True).start()


def test_select_answers_fido_2_0(token):
    assert apdu(token.card, SELECT_FIDO) == (b"FIDO_2_0", 0x9000)


def test_get_info_over_nfcctap_msg(token):
    apdu(token.card, SELECT_FIDO)
    for p1 in (0x00, 0x80):
        data, sw = apdu(token.card, nfcctap_msg(b"\x04", p1))
        assert sw == 0x9000 and data[0] == 0
        info = cbor.decode(data[1:])
        assert "FIDO_2_0" in info[1] and "hmac-secret" in info[2]


def test_status_words(token):
    card = token.card
    apdu(card, SELECT_FIDO)
    assert apdu(card, bytes.fromhex("8010010001" "04"))[1] == 0x6A86  # P1 neither 00 nor 80
    assert apdu(card, bytes.fromhex("80100000" "00"))[1] == 0x6700  # no CTAP command
    assert apdu(card, bytes.fromhex("8010000001" "04")[:4])[1] == 0x6700
    assert apdu(card, bytes.fromhex("80110000" "00"))[1] == 0x6985  # nothing pending
    assert apdu(card, bytes.fromhex("80112200" "00"))[1] == 0x6A86
    assert apdu(card, bytes.fromhex("0010000001" "04"))[1] == 0x6E00  # CLA 00
    assert apdu(card, bytes.fromhex("00010300" "00"))[1] == 0x6E00  # U2F REGISTER, CTAP2 only
    assert apdu(card, bytes.fromhex("80010300" "00"))[1] == 0x6D00
    data, sw = apdu(card, nfcctap_msg(b"\x04"))
    assert sw == 0x9000 and data[0] == 0  # still fine


def test_long_answer_by_get_response_and_chained_request(token):
    card = token.card
    apdu(card, SELECT_FIDO)
    long_user = {"id": os.urandom(64), "name": "n" * 64, "displayName": "d" * 64}
    request = b"\x01" + cbor.encode({1: os.urandom(32), 2: RP, 3: long_user, 4: ES256})
    assert len(request) > 255
    chunks = [request[i:i + 250] for i in range(0, len(request), 250)]
    for chunk in chunks[:-1]:
        assert apdu(card, bytes([0x90, 0x10, 0x00, 0x00, len(chunk)]) + chunk) == (b"", 0x9000)
    data, sw = apdu(card, bytes([0x80, 0x10, 0x00, 0x00, len(chunks[-1])]) + chunks[-1] + b"\x00")
    answer = bytes(data)
    while sw >> 8 == 0x61:
        data, sw = apdu(card, bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
        answer += data
    assert sw == 0x9000 and answer[0] == 0
    made = cbor.decode(answer[1:])
    assert made[1] == "packed" and len(answer) > 256


def test_ctap_pcsc_device_drives_the_applet(token):
    conn = CardConnection(token.card)
    device = CtapPcscDevice(conn, "firmware card")
    ctap = Ctap2(device)
    assert "hmac-secret" in ctap.info.extensions
    made = ctap.make_credential(os.urandom(32), RP, {"id": b"u", "name": "u"}, ES256,
                                exclude_list=[{"type": "public-key", "id": os.urandom(97)} for _ in range(4)])
    assert made.auth_data.credential_data is not None
    assert any(a[0] == 0x90 for a in conn.apdus)  # the request went out chained


def test_same_secret_over_nfc_and_hid(token):
    class User(Interaction):
        pass

    challenge = hashlib.sha256(b"both transports").digest()
    nfc = Fido2Backend(CtapPcscDevice(CardConnection(token.card), "firmware card"))
    meta = nfc.enroll(User())
    over_nfc = nfc.respond(challenge, meta, User())
    hid = open_emulated_hid_device(token)
    try:
        over_hid = Fido2Backend(hid).respond(challenge, meta, User())
    finally:
        hid.close()
    assert over_nfc == over_hid and len(over_hid) == 32


def test_polling_while_waiting_for_a_touch(token):
    _background(token.fido)
    token.platform.presence = "wait"
    conn = CardConnection(token.card)
    ctap = Ctap2(CtapPcscDevice(conn, "firmware card"))
    seen = []
    threading.Timer(0.4, token.platform.press).start()
    made = ctap.make_credential(os.urandom(32), RP, {"id": b"u", "name": "u"}, ES256, on_keepalive=seen.append)
    assert made.auth_data.flags & 0x01
    assert seen == [STATUS.UPNEEDED]
    assert any(a[:4] == bytes.fromhex("80110000") for a in conn.apdus)  # it polled
    # quick commands still answer at once, without a 9100 round
    before = len(conn.apdus)
    ctap.get_info()
    assert len(conn.apdus) == before + 1


def test_cancel_by_get_response_p1_11(token):
    _background(token.fido)
    token.platform.presence = "wait"
    conn = CardConnection(token.card)
    ctap = Ctap2(CtapPcscDevice(conn, "firmware card"))
    event = threading.Event()
    with pytest.raises(CtapError) as err:
        ctap.make_credential(os.urandom(32), RP, {"id": b"u", "name": "u"}, ES256, event=event,
                             on_keepalive=lambda status: event.set())
    assert err.value.code == CtapError.ERR.KEEPALIVE_CANCEL
    assert any(a[:4] == bytes.fromhex("80111100") for a in conn.apdus)
    token.platform.presence = "approve"
    ctap.get_info()


def test_raw_polling_and_busy(token):
    _background(token.fido)
    token.platform.presence = "wait"
    card = token.card
    apdu(card, SELECT_FIDO)
    request = b"\x01" + cbor.encode({1: os.urandom(32), 2: RP, 3: {"id": b"u", "name": "u"}, 4: ES256})
    data, sw = apdu(card, nfcctap_msg(request, 0x80))
    assert sw == 0x9100 and data in (b"\x01", b"\x02")
    assert apdu(card, nfcctap_msg(b"\x04", 0x80))[1] == 0x6985  # one request at a time
    for _ in range(200):
        data, sw = apdu(card, bytes.fromhex("80110000" "00"))
        if data == b"\x02":
            break
    assert (data, sw) == (b"\x02", 0x9100)
    token.platform.press()
    for _ in range(200):
        data, sw = apdu(card, bytes.fromhex("80110000" "00"))
        if sw != 0x9100:
            break
        threading.Event().wait(0.01)
    answer = bytes(data)
    while sw >> 8 == 0x61:
        data, sw = apdu(card, bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
        answer += data
    assert sw == 0x9000 and answer[0] == 0
    assert apdu(card, bytes.fromhex("80110000" "00"))[1] == 0x6985


def test_power_off_abandons_a_running_request(token):
    _background(token.fido)
    token.platform.presence = "wait"
    card = token.card
    apdu(card, SELECT_FIDO)
    request = b"\x01" + cbor.encode({1: os.urandom(32), 2: RP, 3: {"id": b"u", "name": "u"}, 4: ES256})
    assert apdu(card, nfcctap_msg(request, 0x80))[1] == 0x9100
    card.power_off()
    card.power_on()
    token.platform.presence = "approve"
    apdu(card, SELECT_FIDO)
    assert apdu(card, bytes.fromhex("80110000" "00"))[1] == 0x6985
    data, sw = apdu(card, nfcctap_msg(b"\x04"))
    assert sw == 0x9000 and data[0] == 0


def test_fuzzed_apdus_never_break_the_applet(token):
    import random

    rng = random.Random(7)
    card = token.card
    apdu(card, SELECT_FIDO)
    for _ in range(1500):
        ins = rng.choice([0x10, 0x11, 0x12, 0x01, rng.randrange(256)])
        cla = rng.choice([0x80, 0x90, 0x00, rng.randrange(256)])
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 60)))
        if rng.random() < 0.5 and body:
            body = bytes([rng.choice([1, 2, 4, 6, 7, 8, 0x0B])]) + body
        raw = bytes([cla, ins, rng.choice([0, 0x80, 0x11, rng.randrange(256)]), rng.choice([0, 0, 1])])
        if body:
            raw += bytes([len(body)]) + body
        if rng.random() < 0.5:
            raw += b"\x00"
        response = card.process_apdu(raw)
        assert len(response) >= 2
        if rng.random() < 0.05:
            apdu(card, SELECT_FIDO)
    apdu(card, SELECT_FIDO)
    data, sw = apdu(card, nfcctap_msg(b"\x04"))
    assert sw == 0x9000 and data[0] == 0
    assert struct.unpack(">H", bytes(card.process_apdu(SELECT_FIDO)[-2:]))[0] == 0x9000
