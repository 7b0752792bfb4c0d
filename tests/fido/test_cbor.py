"""sealtoken.core.cbor: canonical encoder, strict bounded decoder.

Independent reference: python-fido2's cbor module (what the host uses and what
decides whether a response is canonical) and RFC 8949 appendix A vectors.
"""

from __future__ import annotations

import random

import pytest
from fido2 import cbor as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtoken.core import cbor
from sealtoken.core.cbor import ERR_CBOR_UNEXPECTED_TYPE, ERR_INVALID_CBOR, CborError

# RFC 8949 appendix A, the part inside the CTAP subset
RFC8949 = [
    (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
    (1000, "1903e8"), (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"), (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
    (False, "f4"), (True, "f5"),
    (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"), ("a", "6161"), ("IETF", "6449455446"), ("\"\\", "62225c"), ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"), ("\U00010151", "64f0908591"),
    ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"), ({1: 2, 3: 4}, "a201020304"), ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    ({"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}, "a56161614161626142616361436164614461656145"),
]


@pytest.mark.parametrize("value,hexed", RFC8949)
def test_rfc8949_vectors(value, hexed):
    assert cbor.encode(value) == bytes.fromhex(hexed)
    decoded = cbor.decode(bytes.fromhex(hexed))
    assert decoded == value and type(decoded) is type(value)


def test_map_keys_in_ctap2_canonical_order():
    # major type first, then length, then bytes: 10 < 100 < -1 < "z" < "aa"
    value = {"aa": 0, "z": 0, -1: 0, 100: 0, 10: 0, b"k": 0}
    encoded = cbor.encode(value)
    assert encoded == ref.encode(value)
    assert encoded.hex() == "a60a001864002000416b00617a0062616100"
    # the COSE key order python-fido2 expects
    cose = {-3: b"y", -2: b"x", -1: 1, 3: -7, 1: 2}
    assert cbor.encode(cose) == ref.encode(cose)
    assert list(cbor.decode(cbor.encode(cose))) == [1, 3, -1, -2, -3]


def test_encoder_refuses_outside_the_subset():
    for bad in (None, 1.5, {1.5: 1}, {(1,): 2}, {True: 1}, 1 << 64, -(1 << 64) - 1, object()):
        with pytest.raises(ValueError):
            cbor.encode(bad)


def test_encoder_accepts_bytes_like_and_tuples():
    assert cbor.encode(bytearray(b"ab")) == cbor.encode(b"ab") == cbor.encode(memoryview(b"ab"))
    assert cbor.encode((1, 2)) == cbor.encode([1, 2])


_keys = st.one_of(st.integers(-(2**64), 2**64 - 1), st.text(max_size=8), st.binary(max_size=8))
_values = st.recursive(
    st.one_of(st.booleans(), st.integers(-(2**64), 2**64 - 1), st.binary(max_size=40), st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(_keys, children, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_roundtrip_and_agreement_with_python_fido2(value):
    encoded = cbor.encode(value)
    assert encoded == ref.encode(value)
    assert cbor.decode(encoded) == value
    assert ref.decode(encoded) == value


def _err(data, **limits):
    with pytest.raises(CborError) as info:
        cbor.decode(data, **limits)
    return info.value.code


@pytest.mark.parametrize("hexed,code", [
    ("", ERR_INVALID_CBOR),                      # nothing
    ("0000", ERR_INVALID_CBOR),                  # trailing byte
    ("a1010203", ERR_INVALID_CBOR),              # map then trailing
    ("18", ERR_INVALID_CBOR),                    # truncated argument
    ("1901", ERR_INVALID_CBOR),
    ("43aabb", ERR_INVALID_CBOR),                # truncated byte string
    ("820102" "ff", ERR_INVALID_CBOR),
    ("83 01 02".replace(" ", ""), ERR_INVALID_CBOR),  # truncated array
    ("a201", ERR_INVALID_CBOR),                  # truncated map
    ("1817", ERR_INVALID_CBOR),                  # non-shortest integers and lengths
    ("190017", ERR_INVALID_CBOR),
    ("1a0000ffff", ERR_INVALID_CBOR),
    ("1b00000000ffffffff", ERR_INVALID_CBOR),
    ("3817", ERR_INVALID_CBOR),
    ("5801" "aa", ERR_INVALID_CBOR),
    ("780161", ERR_INVALID_CBOR),
    ("980100", ERR_INVALID_CBOR),
    ("b8010000", ERR_INVALID_CBOR),
    ("1c", ERR_INVALID_CBOR),                    # reserved additional information
    ("5d", ERR_INVALID_CBOR),
    ("fc", ERR_INVALID_CBOR),
    ("5f4101ff", ERR_INVALID_CBOR),              # indefinite lengths
    ("7f6161ff", ERR_INVALID_CBOR),
    ("9f01ff", ERR_INVALID_CBOR),
    ("bf0101ff", ERR_INVALID_CBOR),
    ("ff", ERR_INVALID_CBOR),                    # lone break
    ("a2020101 01".replace(" ", ""), ERR_INVALID_CBOR),  # keys out of order
    ("a201010101", ERR_INVALID_CBOR),            # repeated key
    ("a2616201616101", ERR_INVALID_CBOR),        # "b" before "a"
    ("a2626161016162 01".replace(" ", ""), ERR_INVALID_CBOR),  # longer key first
    ("a2200101 01".replace(" ", ""), ERR_INVALID_CBOR),  # nint before uint
    ("62c328", ERR_INVALID_CBOR),                # invalid UTF-8
    ("61ff", ERR_INVALID_CBOR),
    ("63eda080", ERR_INVALID_CBOR),              # UTF-16 surrogate
    ("c0", ERR_CBOR_UNEXPECTED_TYPE),            # tags
    ("c11a514b67b0", ERR_CBOR_UNEXPECTED_TYPE),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", ERR_CBOR_UNEXPECTED_TYPE),
    ("f93c00", ERR_CBOR_UNEXPECTED_TYPE),        # floats
    ("fa47c35000", ERR_CBOR_UNEXPECTED_TYPE),
    ("fb3ff199999999999a", ERR_CBOR_UNEXPECTED_TYPE),
    ("f6", ERR_CBOR_UNEXPECTED_TYPE),            # null, undefined, simple values
    ("f7", ERR_CBOR_UNEXPECTED_TYPE),
    ("f0", ERR_CBOR_UNEXPECTED_TYPE),
    ("f8ff", ERR_CBOR_UNEXPECTED_TYPE),
    ("a1f501", ERR_CBOR_UNEXPECTED_TYPE),        # bool key
    ("a1800101", ERR_CBOR_UNEXPECTED_TYPE),      # array key
    ("a1a00101", ERR_CBOR_UNEXPECTED_TYPE),      # map key
])
def test_decoder_rejects(hexed, code):
    assert _err(bytes.fromhex(hexed)) == code


def test_huge_declared_lengths_fail_before_allocating():
    for head in ("5bffffffffffffffff", "7bffffffffffffffff", "9bffffffffffffffff",
                 "bbffffffffffffffff", "5a7fffffff", "9a7fffffff", "ba7fffffff"):
        assert _err(bytes.fromhex(head) + b"\x00" * 8) == ERR_INVALID_CBOR
    # an array claiming more items than there are bytes left
    assert _err(bytes.fromhex("99ffff") + b"\x00" * 100) == ERR_INVALID_CBOR
    # a map claiming more entries than could fit in the bytes left
    assert _err(bytes.fromhex("b8ff") + b"\x00" * 300) == ERR_INVALID_CBOR


def test_limits():
    nested = b"\x81" * 8 + b"\x00"
    assert cbor.decode(nested) == [[[[[[[[0]]]]]]]]
    assert _err(b"\x81" * 9 + b"\x00") == ERR_INVALID_CBOR
    assert _err(b"\x81" * 3 + b"\x00", max_depth=2) == ERR_INVALID_CBOR
    assert _err(b"\x81" * 10000 + b"\x00") == ERR_INVALID_CBOR  # never recurses deep
    many = cbor.encode(list(range(600)))
    assert _err(many) == ERR_INVALID_CBOR
    assert cbor.decode(many, max_items=601) == list(range(600))
    assert _err(cbor.encode(b"x" * 100), max_size=50) == ERR_INVALID_CBOR


def test_decoded_types_are_plain():
    value = cbor.decode(cbor.encode({1: b"ab", "k": [True, -5, "t"]}))
    assert type(value[1]) is bytes
    assert value["k"][0] is True


def _mutations(rng, seed, n):
    for _ in range(n):
        data = bytearray(seed)
        kind = rng.randrange(5)
        if kind == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 2:
            del data[rng.randrange(len(data) + 1):]
        elif kind == 3:
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        else:
            data = bytearray(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        yield bytes(data)


def _fuzz_decoder(n, seed):
    rng = random.Random(seed)
    seeds = [cbor.encode(v) for v in (
        {1: b"\x00" * 32, 2: {"id": "example.com", "name": "x"}, 3: {"id": b"u", "name": "n"},
         4: [{"alg": -7, "type": "public-key"}], 7: {"rk": True}},
        {1: 2, 2: 3, 3: {1: 2, 3: -25, -1: 1, -2: b"x" * 32, -3: b"y" * 32}, 4: b"a" * 16},
        [1, [2, [3, [4]]], "text", b"bytes", -1000000, True, False],
    )]
    for seed_bytes in seeds:
        for data in _mutations(rng, seed_bytes, n):
            try:
                value = cbor.decode(data)
            except CborError as e:
                assert e.code in (ERR_INVALID_CBOR, ERR_CBOR_UNEXPECTED_TYPE)
                continue
            # whatever is accepted is canonical: it re-encodes to the same bytes
            assert cbor.encode(value) == data


def test_decoder_fuzz_quick():
    _fuzz_decoder(1500, 1)


@pytest.mark.slow
def test_decoder_fuzz_long():
    _fuzz_decoder(100000, 2)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_decoder_never_fails_otherwise(data):
    try:
        value = cbor.decode(data)
    except CborError:
        return
    assert cbor.encode(value) == data
