"""APDU parsing and encoding (sealtoken.core.iso7816). Plain asserts: runs under MicroPython too."""
from sealtoken.core.applet import ApduError
from sealtoken.core.iso7816 import encode_apdu, parse_apdu, split_response, sw_bytes
from sealtoken.core.iso7816 import SW_CLA_NOT_SUPPORTED, SW_WRONG_LENGTH


def _sw_of(apdu):
    try:
        parse_apdu(apdu)
    except ApduError as e:
        return e.sw
    return None


def test_case1():
    c = parse_apdu(b"\x00\xa4\x04\x00")
    assert (c.cla, c.ins, c.p1, c.p2) == (0x00, 0xA4, 0x04, 0x00)
    assert c.data == b"" and c.le is None and not c.extended


def test_case1_with_explicit_le_00_is_case2_ne_256():
    c = parse_apdu(b"\x00\xa1\x00\x00\x00")
    assert c.data == b"" and c.le == 256 and not c.extended


def test_case2_short():
    assert parse_apdu(b"\x00\xc0\x00\x00\x10").le == 16
    assert parse_apdu(b"\x00\xc0\x00\x00\xff").le == 255


def test_case3_short():
    c = parse_apdu(b"\x00\x20\x00\x00\x04" + b"1234")
    assert c.data == b"1234" and c.le is None and not c.extended


def test_case4_short():
    c = parse_apdu(b"\x00\x88\x01\x00\x02ab\x00")
    assert c.data == b"ab" and c.le == 256
    c = parse_apdu(b"\x00\x88\x01\x00\x02ab\x20")
    assert c.data == b"ab" and c.le == 32


def test_case2_extended():
    c = parse_apdu(b"\x00\xc0\x00\x00\x00\x01\x00")
    assert c.extended and c.le == 256 and c.data == b""
    assert parse_apdu(b"\x00\xc0\x00\x00\x00\x00\x00").le == 65536


def test_case3_extended():
    data = bytes(range(256)) * 2
    c = parse_apdu(b"\x00\x10\x00\x00\x00\x02\x00" + data)
    assert c.extended and c.data == data and c.le is None


def test_case4_extended():
    c = parse_apdu(b"\x00\x10\x00\x00\x00\x00\x03abc\x00\x00")
    assert c.extended and c.data == b"abc" and c.le == 65536
    c = parse_apdu(b"\x00\x10\x00\x00\x00\x00\x03abc\x01\x02")
    assert c.le == 0x0102


def test_malformed_lengths_give_6700():
    for apdu in (b"", b"\x00", b"\x00\xa4\x04", b"\x00\xa4\x04\x00\x00\x00",
                 b"\x00\xa4\x04\x00\x05abc", b"\x00\xa4\x04\x00\x02abcde",
                 b"\x00\xa4\x04\x00\x00\x00\x05abc", b"\x00\xa4\x04\x00\x00\x00\x00\x01",
                 b"\x00\xa4\x04\x00\x00\x00\x02ab\x00"):
        assert _sw_of(apdu) == SW_WRONG_LENGTH, apdu


def test_bad_class_gives_6e00():
    assert _sw_of(b"\xff\xa4\x04\x00") == SW_CLA_NOT_SUPPORTED
    assert _sw_of(b"\x20\xa4\x04\x00") == SW_CLA_NOT_SUPPORTED
    assert _sw_of(b"\x3f\xa4\x04\x00") == SW_CLA_NOT_SUPPORTED


def test_chaining_bit():
    assert parse_apdu(b"\x10\x20\x00\x00\x01a").chained
    assert parse_apdu(b"\x90\x10\x00\x00\x01a").chained
    assert not parse_apdu(b"\x80\x10\x00\x00\x01a").chained
    assert not parse_apdu(b"\x00\x20\x00\x00\x01a").chained


def test_encode_roundtrip():
    cases = [
        (0, 0xA4, 4, 0, b"", None, False),
        (0, 0xA4, 4, 0, b"", 256, False),
        (0, 0xA4, 4, 0, b"\xa0\x00\x00\x05\x27", None, False),
        (0, 0x88, 1, 0, bytes(32), 32, False),
        (0, 0x88, 1, 0, bytes(300), None, True),
        (0, 0x88, 1, 0, bytes(300), 65536, True),
        (0, 0xC0, 0, 0, b"", 65536, True),
        (0x80, 0x10, 0, 0, b"x", 1000, True),
    ]
    for cla, ins, p1, p2, data, le, ext in cases:
        c = parse_apdu(encode_apdu(cla, ins, p1, p2, data, le, ext))
        assert (c.cla, c.ins, c.p1, c.p2, c.data, c.le, c.extended) == (cla, ins, p1, p2, data, le, ext)


def test_encode_exact_bytes():
    assert encode_apdu(0, 0xA4, 4, 0, b"\x01\x02\x03\x04\x05") == b"\x00\xa4\x04\x00\x05\x01\x02\x03\x04\x05"
    assert encode_apdu(0, 0xC0, 0, 0, le=256) == b"\x00\xc0\x00\x00\x00"
    assert encode_apdu(0, 0xC0, 0, 0, le=65536) == b"\x00\xc0\x00\x00\x00\x00\x00"
    assert encode_apdu(0, 0x01, 0, 0, b"ab", 2, True) == b"\x00\x01\x00\x00\x00\x00\x02ab\x00\x02"


def test_repr_hides_data():
    c = parse_apdu(b"\x00\x20\x00\x00\x06secret")
    assert "secret" not in repr(c)


def test_sw_helpers():
    assert sw_bytes(0x9000) == b"\x90\x00"
    assert split_response(b"ab\x61\x05") == (b"ab", 0x6105)
    assert split_response(b"\x6a\x82") == (b"", 0x6A82)
