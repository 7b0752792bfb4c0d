"""sealtoken.core.hmac against RFC 4231 (HMAC-SHA-256) and RFC 5869 (HKDF-SHA-256) vectors.

The vectors are the data files in tests/vectors/ (source recorded in each file).
Plain asserts: runs under MicroPython too (the runner copies tests/vectors/).
"""

import binascii
import json

from sealtoken.core.hmac import ct_equal, hkdf_sha256, hmac, hmac_sha256, wipe
from sealtoken.core.simplatform import SimPlatform


def _vectors(name):
    here = __file__.replace("\\", "/").rsplit("/", 1)[0]
    with open(here + "/../vectors/" + name) as f:
        return json.load(f)


def _h(s):
    return binascii.unhexlify(s)


def test_rfc4231_hmac_sha256():
    cases = _vectors("rfc4231.json")["cases"]
    assert len(cases) >= 7
    for case in cases:
        mac = hmac_sha256(_h(case["key"]), _h(case["data"]))
        want = _h(case["hmac_sha256"])
        assert mac[:len(want)] == want, case["test_case"]
        assert hmac(SimPlatform(), "sha256", _h(case["key"]), _h(case["data"]))[:len(want)] == want


def test_rfc5869_hkdf_sha256():
    for case in _vectors("rfc5869.json")["cases"]:
        okm = hkdf_sha256(_h(case["salt"]), _h(case["ikm"]), _h(case["info"]), case["length"])
        assert okm == _h(case["okm"]), case["test_case"]


def test_hmac_accepts_bytearray_keys_and_long_keys():
    key = bytearray(b"k" * 100)
    assert hmac_sha256(key, b"m") == hmac_sha256(bytes(key), b"m")
    assert len(hmac_sha256(b"", b"")) == 32


def test_hmac_sha1_through_platform_hash_when_available():
    p = SimPlatform()
    try:
        p.hash("sha1", b"")
    except (AttributeError, NotImplementedError):
        return  # MicroPython without sha1: boards supply it
    # RFC 2202 test case 2
    assert hmac(p, "sha1", b"Jefe", b"what do ya want for nothing?") == _h(
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")


def test_unknown_hash_refused():
    try:
        hmac(SimPlatform(), "md5", b"k", b"m")
        assert False
    except ValueError:
        pass


def test_ct_equal_and_wipe():
    assert ct_equal(b"abc", b"abc") and not ct_equal(b"abc", b"abd") and not ct_equal(b"ab", b"abc")
    b = bytearray(b"secret")
    view = memoryview(b)  # taken before: the wipe overwrites the same bytes, it makes no new buffer
    wipe(b)
    assert b == bytearray(6) and bytes(view) == bytes(6)
    long = bytearray(b"k" * 600)   # more than one block of the zero source: every byte still
    view = memoryview(long)
    wipe(long)
    assert bytes(view) == bytes(600) and len(long) == 600
    empty = bytearray()
    wipe(empty)
    assert empty == bytearray()
