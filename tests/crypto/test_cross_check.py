"""Random cross-checks of the pure-Python crypto with `cryptography` (seeded, budgeted: about
two seconds), and the properties a board relies on: keys in range, hedged signatures that
differ per call yet verify, refusals of points off the curve."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec as cec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtoken.crypto import aes, ec

CURVES = ((ec.P256, cec.SECP256R1()), (ec.P384, cec.SECP384R1()))


def _rng(seed):
    r = random.Random(seed)
    return lambda n: bytes(r.getrandbits(8) for _ in range(n))


def _numbers(curve, x, y):
    return int.from_bytes(x, "big"), int.from_bytes(y, "big")


def test_keys_and_ecdh_agree_with_cryptography():
    rng = _rng(21)
    for curve, theirs in CURVES:
        for _ in range(12 if curve is ec.P256 else 5):
            d, x, y = ec.generate(curve, rng)
            key = cec.derive_private_key(int.from_bytes(d, "big"), theirs)
            numbers = key.public_key().public_numbers()
            assert (numbers.x, numbers.y) == _numbers(curve, x, y)
            other = cec.generate_private_key(theirs)
            o = other.public_key().public_numbers()
            shared = ec.ecdh(curve, d, o.x.to_bytes(curve.size, "big"), o.y.to_bytes(curve.size, "big"))
            assert shared == key.exchange(cec.ECDH(), other.public_key())
            assert shared == other.exchange(cec.ECDH(), key.public_key())


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=ec.P256.n - 1))
def test_public_keys_of_any_scalar(k):
    x, y = ec.public(ec.P256, k.to_bytes(32, "big"))
    numbers = cec.derive_private_key(k, cec.SECP256R1()).public_key().public_numbers()
    assert (numbers.x, numbers.y) == _numbers(ec.P256, x, y)


def test_edge_scalars():
    for curve, theirs in CURVES:
        for k in (1, 2, 3, 15, 16, 17, (1 << 255) % curve.n, curve.n - 1, curve.n - 2, curve.n // 2):
            x, y = ec.public(curve, k.to_bytes(curve.size, "big"))
            numbers = cec.derive_private_key(k, theirs).public_key().public_numbers()
            assert (numbers.x, numbers.y) == _numbers(curve, x, y), (curve.name, k)


def test_hedged_signatures_verify_and_differ():
    rng = _rng(6979)
    d, x, y = ec.generate(ec.P256, rng)
    public = cec.EllipticCurvePublicNumbers(*_numbers(ec.P256, x, y), cec.SECP256R1()).public_key()
    seen = set()
    for i in range(10):
        message = b"message %d" % (i % 3)
        signature = ec.sign(ec.P256, d, message, rng)
        public.verify(signature, message, cec.ECDSA(hashes.SHA256()))
        seen.add(signature)
    assert len(seen) == 10  # the hedge: the same message twice gives two signatures
    # without the hedge: RFC 6979, a function of key and message
    assert ec.sign(ec.P256, d, b"m") == ec.sign(ec.P256, d, b"m")


def test_ecdh_refuses_points_off_the_curve():
    rng = random.Random(5)
    for curve, _ in CURVES:
        d = (12345).to_bytes(curve.size, "big")
        for _ in range(20):
            x = rng.randrange(curve.p)
            y = rng.randrange(curve.p)
            if (y * y - x * x * x + 3 * x - curve.b) % curve.p == 0:
                continue
            try:
                ec.ecdh(curve, d, x.to_bytes(curve.size, "big"), y.to_bytes(curve.size, "big"))
            except ValueError:
                continue
            raise AssertionError("a point off the curve was accepted")


def test_aes_cbc_agrees_with_cryptography():
    rng = _rng(197)
    for blocks in list(range(6)) + [16, 64]:
        key, iv, data = rng(32), rng(16), rng(16 * blocks)
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        expected = enc.update(data) + enc.finalize()
        assert aes.aes256_cbc_encrypt(key, iv, data) == expected
        assert aes.aes256_cbc_decrypt(key, iv, expected) == data
        assert aes.aes256_cbc_encrypt(bytearray(key), bytearray(iv), bytearray(data)) == expected


def _naf_value(steps):
    """The scalar a list of steps computes: double m times, then add the table's digit i."""
    value = 0
    for k in range(0, len(steps), 2):
        m, i = steps[k], steps[k + 1]
        value <<= m
        if i:
            digit = 2 * (i & 0x7F) - 1
            value += -digit if i & ec._NEG else digit
    return value


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(1, ec.P256.n - 1), st.sampled_from([1, 2, 3, 15, 16, 17, 31, 2 ** 255,
                                                                  ec.P256.n - 1, ec.P256.n - 16])))
def test_signed_digits_of_a_scalar_give_the_scalar_back(k):
    # the width-5 NAF of the variable-point multiplication: every digit odd, |digit| <= 15, and
    # two digits at least 5 positions apart (no additions wasted), for any scalar, carries included
    steps = ec._naf_steps(k.to_bytes(32, "big"), 32, 256)
    assert _naf_value(steps) == k
    gaps = [steps[i] for i in range(2, len(steps), 2) if steps[i + 1]]
    assert all(gap >= 5 for gap in gaps)
    assert all(0 < steps[i] & 0x7F <= ec._NAF_POINTS for i in range(1, len(steps), 2) if steps[i])


def _comb_value(steps, curve=ec.P256):
    """The scalar a list of comb steps computes: entry e of block u adds T_u(i) (precompute's
    docstring), its negative with the bit _NEG."""
    teeth, columns = curve.comb_teeth, curve.comb_columns
    half = 1 << (teeth - 1)
    value = 0
    for k in range(0, len(steps), 2):
        m, e = steps[k], steps[k + 1]
        value <<= m
        u, i = divmod((e & 0x7F) - 1, half)
        rows = [1 if r == teeth - 1 or i >> r & 1 else -1 for r in range(teeth)]
        entry = sum(s << (r * 2 * columns + u * columns) for r, s in enumerate(rows))
        value += -entry if e & ec._NEG else entry
    return value


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(1, ec.P256.n - 1).map(lambda k: k | 1),
                 st.sampled_from([1, 3, 2 ** 255 + 1, ec.P256.n - 2, ec.P256.n - 4, 2 ** 256 - 1,
                                  ec.P256.n + 2, 2 * ec.P256.n - 1])))
def test_signed_comb_digits_give_the_odd_scalar_back(k):
    # the generator's comb: every digit +1 or -1, 2 blocks of 22 columns, one doubling a column
    steps = ec._comb_steps(ec.P256, k)
    assert len(steps) == 4 * ec.P256.comb_columns
    assert _comb_value(steps) == k
    assert all(0 < steps[i] & 0x7F <= 2 << (ec.P256.comb_teeth - 1) for i in range(1, len(steps), 2))


@pytest.mark.parametrize("leading_bits", [60, 28, 12])
def test_lehmer_inverse_against_python(monkeypatch, leading_bits):
    # 60: a 64-bit port's leading parts; 28: a 32-bit board's (RP2040); 12: many more Lehmer steps
    monkeypatch.setattr(ec, "_LEHMER_BITS", leading_bits)
    monkeypatch.setattr(ec, "_LEHMER_TOP", 1 << leading_bits)
    r = random.Random(leading_bits)
    for m in (ec.P256.p, ec.P256.n, ec.P384.p, ec.P384.n):
        values = [1, 2, 3, m - 1, m - 2, (1 << 200) + 1, (1 << 64) - 1, 1 << 60, m + 5, 7 * m + 1]
        values += [r.randrange(1, m) for _ in range(300)]
        for v in values:
            assert ec._inverse(v, m) == pow(v, -1, m), (leading_bits, m, v)
    with pytest.raises(ValueError):
        ec._inverse(3 * 5, 5 * 7)


def test_packed_tables_hold_no_list_of_more_than_eight():
    # MicroPython's collector marks from a stack of 64 entries: a list of more objects overflows it
    # and every collection then scans the whole heap again (docs/board-crypto.md)
    ec.precompute(ec.P256)
    assert all(isinstance(row, list) and len(row) == 8 for row in ec.P256.comb)
    assert len(ec.P256.comb) * 8 == 2 << (ec.P256.comb_teeth - 1)
    table = ec._odd_multiples(ec.P256, ec.P256.gx, ec.P256.gy)
    assert len(table) == 1 and len(table[0]) == 8
    x3, y3 = ec.public(ec.P256, (3).to_bytes(32, "big"))
    assert table[0][1] == int.from_bytes(x3 + y3, "big")  # entry 2 is 3P: x * 2^256 + y
