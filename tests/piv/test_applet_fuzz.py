"""Bounded fuzzing of the PIV and OpenPGP applets with real EC/AES (CPythonPlatform).

Seeded random APDUs around the applets' INS codes, well-formed TLVs with random
contents, valid commands with mutations, interleaved with the valid steps that
unlock deeper code (PIN, management key). Every answer must be a well-formed
status word, never 6F00 (a crash inside the applet), and never contain a private
key. The MicroPython-side token fuzz (tests/firmware/test_fuzz_apdu.py) also
selects these applets; this one reaches their key operations.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sealboard.platform import CPythonPlatform
from sealtoken.core.card import Card
from sealtoken.core.iso7816 import encode_apdu
from sealtoken.applets.piv import PivApplet
from sealtoken.core.iso7816 import parse_tlvs, tlv
from sealtoken.core.storage import Store
from sealtoken.applets import AID_OPENPGP, AID_PIV
from sealtoken.applets.openpgp import OPENPGP_OID_P256, OPENPGP_OID_P384
from sealtoken.applets.piv import PIV_MGMT_DEFAULT
from sealtoken.core.keys import KEY_OPENPGP_DEC_KEY, KEY_PIV_SLOT_9D

PIV_INS = (0x20, 0x24, 0x2C, 0x47, 0x87, 0xCB, 0xDB, 0xF7, 0xF8, 0xFB, 0xFD, 0xFE, 0xA4, 0xC0)


def _private_keys(store):
    out = []
    for key in (KEY_PIV_SLOT_9D, KEY_OPENPGP_DEC_KEY):
        rec = store.get(key)
        if rec:
            out.append(bytes(rec[-32:]))
    return out


def _check(resp, store):
    assert 2 <= len(resp) <= 65538
    sw1 = resp[-2]
    assert 0x61 <= sw1 <= 0x6F or 0x90 <= sw1 <= 0x9F
    assert resp[-2:] != b"\x6f\x00", resp.hex()
    for secret in _private_keys(store):
        assert resp.find(secret[:16]) < 0


def _random_tlvs(rng, tags):
    out = b""
    for _ in range(rng.randrange(4)):
        tag = rng.choice(tags)
        n = rng.choice((0, 1, 8, 16, 32, 48, 65, 97, rng.randrange(300)))
        value = bytes([4]) + rng.randbytes(n - 1) if n and rng.random() < 0.5 else rng.randbytes(n)
        if rng.random() < 0.3:
            value = _random_tlvs(rng, tags)
        out += tlv(tag, value)
    return out


def _valid_point(alg):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    curve = ec.SECP256R1() if alg == 0x11 else ec.SECP384R1()
    return ec.generate_private_key(curve).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _mgmt_auth(card):
    """The two-step AES-256 management key authentication with the default key."""
    key = PIV_MGMT_DEFAULT
    resp = card.process_apdu(encode_apdu(0, 0x87, 0x0C, 0x9B, tlv(0x7C, tlv(0x80, b""))))
    if resp[-2:] != b"\x90\x00":
        return
    witness = dict(parse_tlvs(dict(parse_tlvs(resp[:-2]))[0x7C]))[0x80]
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    plain = dec.update(witness) + dec.finalize()
    card.process_apdu(encode_apdu(0, 0x87, 0x0C, 0x9B, tlv(0x7C, tlv(0x80, plain) + tlv(0x81, bytes(16)))))


def fuzz_piv(count, seed):
    rng = random.Random(seed)
    platform = CPythonPlatform(rng_seed=seed)
    store = Store(platform)
    card = Card(platform, [PivApplet(platform, store)])
    card.power_on()
    tags = (0x7C, 0x80, 0x81, 0x82, 0x85, 0xAC, 0xAA, 0xAB, 0x06, 0x5C, 0x53, 0x7E)
    select = encode_apdu(0, 0xA4, 4, 0, AID_PIV)
    assert card.process_apdu(select)[-2:] == b"\x90\x00"
    reached = set()
    for i in range(count):
        kind = rng.randrange(12)
        if kind == 0:
            _mgmt_auth(card)
            continue
        if kind == 1:
            apdu = encode_apdu(0, 0x20, 0, 0x80, b"123456\xff\xff")
        elif kind == 2:
            alg = rng.choice((0x11, 0x14, 0x07, 0x00))
            apdu = encode_apdu(0, 0x47, 0, rng.choice((0x9D, 0x9D, 0x9A)), tlv(0xAC, tlv(0x80, bytes([alg]))
                                                                               + _random_tlvs(rng, (0xAA, 0xAB))))
        elif kind == 3:
            alg = rng.choice((0x11, 0x14))
            point = _valid_point(alg) if rng.random() < 0.6 else b"\x04" + rng.randbytes(rng.choice((64, 96)))
            apdu = encode_apdu(0, 0x87, alg, 0x9D, tlv(0x7C, tlv(0x82, b"") + tlv(0x85, point)))
        elif kind == 4:
            apdu = rng.randbytes(rng.randrange(40))
        else:
            ins = rng.choice(PIV_INS) if rng.random() < 0.85 else rng.randrange(256)
            p1 = rng.choice((0, 0x3F, 0x11, 0x14, 0x0C, 0xFF, rng.randrange(256)))
            p2 = rng.choice((0x80, 0x81, 0x9B, 0x9D, 0xFF, 0, rng.randrange(256)))
            data = _random_tlvs(rng, tags)
            try:
                apdu = encode_apdu(rng.choice((0, 0, 0, 0x10, 0x80)), ins, p1, p2, data,
                                   rng.choice((None, 256, 65536)), rng.random() < 0.3)
            except ValueError:
                apdu = bytes((0, ins, p1, p2))
            if rng.random() < 0.2 and apdu:
                b = bytearray(apdu)
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                apdu = bytes(b)
        resp = card.process_apdu(apdu)
        _check(resp, store)
        if resp[-2:] == b"\x90\x00":
            reached.add(kind)
        if i % 101 == 0:
            card.power_off()
            card.power_on()
            card.process_apdu(select)
    card.power_off()
    card.power_on()
    assert card.process_apdu(select)[-2:] == b"\x90\x00"
    return reached


def test_fuzz_piv_small():
    reached = fuzz_piv(1500, 11)
    assert {1, 2, 3} <= reached  # PIN verified, a key generated, an ECDH answered


@pytest.mark.slow
def test_fuzz_piv_big():
    for seed in range(4):
        fuzz_piv(40000, 1000 + seed)


PGP_INS = (0xCA, 0xDA, 0xDB, 0x20, 0x24, 0x2C, 0x47, 0x2A, 0xE6, 0x44, 0xF1, 0xA4, 0xC0)


def fuzz_openpgp(count, seed):
    from sealtoken.applets.openpgp import OpenPgpApplet

    rng = random.Random(seed)
    platform = CPythonPlatform(rng_seed=seed)
    store = Store(platform)
    card = Card(platform, [OpenPgpApplet(platform, store)])
    card.power_on()
    tags = (0xA6, 0x7F49, 0x86, 0x4D, 0xB8, 0xB6, 0x7F48, 0x5F48, 0x92, 0x99)
    select = encode_apdu(0, 0xA4, 4, 0, AID_OPENPGP)
    assert card.process_apdu(select)[-2:] == b"\x90\x00"
    reached = set()
    for i in range(count):
        kind = rng.randrange(12)
        if kind == 0:
            apdu = encode_apdu(0, 0x20, 0, 0x83, b"12345678")
        elif kind == 1:
            apdu = encode_apdu(0, 0x20, 0, 0x82, b"123456")
        elif kind == 2:
            apdu = encode_apdu(0, 0x47, rng.choice((0x80, 0x81)), 0, rng.choice((b"\xb8\x00", b"\xb6\x00", b"")))
        elif kind == 3:
            alg = rng.choice((0x11, 0x14))
            point = _valid_point(alg) if rng.random() < 0.6 else b"\x04" + rng.randbytes(rng.choice((64, 96)))
            apdu = encode_apdu(0, 0x2A, 0x80, 0x86, tlv(0xA6, tlv(0x7F49, tlv(0x86, point))))
        elif kind == 4:
            oid = rng.choice((OPENPGP_OID_P256, OPENPGP_OID_P384, b"\x2b\x06"))
            apdu = encode_apdu(0, 0xDA, 0, 0xC2, bytes([rng.choice((0x12, 0x13, 0x01))]) + oid)
        elif kind == 5:
            apdu = rng.randbytes(rng.randrange(40))
        else:
            ins = rng.choice(PGP_INS) if rng.random() < 0.85 else rng.randrange(256)
            p1 = rng.choice((0, 0x3F, 0x80, 0x81, 0x02, 0xFF, rng.randrange(256)))
            p2 = rng.choice((0x81, 0x82, 0x83, 0x86, 0xC2, 0xC4, 0x6E, 0xFA, 0xFF, 0, rng.randrange(256)))
            try:
                apdu = encode_apdu(rng.choice((0, 0, 0, 0x10)), ins, p1, p2, _random_tlvs(rng, tags),
                                   rng.choice((None, 256, 65536)), rng.random() < 0.3)
            except ValueError:
                apdu = bytes((0, ins, p1, p2))
            if rng.random() < 0.2 and apdu:
                b = bytearray(apdu)
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                apdu = bytes(b)
        resp = card.process_apdu(apdu)
        _check(resp, store)
        if resp[-2:] == b"\x90\x00":
            reached.add(kind)
        if i % 101 == 0:
            card.power_off()
            card.power_on()
            card.process_apdu(select)
    card.power_off()
    card.power_on()
    assert card.process_apdu(select)[-2:] == b"\x90\x00"
    return reached


def test_fuzz_openpgp_small():
    reached = fuzz_openpgp(1500, 12)
    assert {0, 1, 2, 3} <= reached  # PW3, PW1, a key generated, a PSO:DECIPHER answered


@pytest.mark.slow
def test_fuzz_openpgp_big():
    for seed in range(4):
        fuzz_openpgp(40000, 2000 + seed)
