"""Checks of tests/vectors/crypto-primitives.json against sealtoken.crypto, written for both
CPython (tests/crypto/test_vectors.py imports it) and MicroPython (test_micropython_crypto.py
runs it under the unix port: `micropython _vector_checks.py FIRMWARE_DIR VECTORS_FILE`).

Each check_* function raises AssertionError on the first mismatch and returns how many
cases it checked. MicroPython rules: no f-string features beyond 3.4 + f-strings, no typing.
"""

import binascii
import hashlib
import json

if __name__ == "__main__":
    import sys
    sys.path.insert(0, sys.argv[1])

from sealtoken.crypto import aes, ec  # noqa: E402

CURVES = {"P-256": ec.P256, "P-384": ec.P384}


def _h(text):
    return binascii.unhexlify(text)


def load(path):
    with open(path) as f:
        return json.load(f)


def check_ecdh(vectors):
    """Every ECDH case: the shared x of valid ones; a ValueError for every invalid peer point."""
    count = 0
    for case in vectors["ecdh"]:
        curve = CURVES[case["curve"]]
        d = _h(case["private"])
        try:
            x, y = ec.decode_point(curve, _h(case["public"]))
            shared = ec.ecdh(curve, d, x, y)
        except ValueError:
            shared = None
        if case["result"] == "valid":
            assert shared == _h(case["shared"]), case["source"]
        else:
            assert shared is None, case["source"]
        if "own_public" in case:
            assert ec.encode_point(curve, *ec.public(curve, d)) == _h(case["own_public"]), case["source"]
        count += 1
    return count


def check_ecdsa(vectors):
    """RFC 6979: the deterministic nonce and the signature (r, s), and the public key."""
    count = 0
    for case in vectors["ecdsa"]:
        curve = CURVES[case["curve"]]
        d = _h(case["private"])
        digest = hashlib.sha256(_h(case["message"])).digest()
        k = next(ec.nonces(curve, d, digest))
        assert k == int(case["k"], 16), case["source"]
        r, s = ec.sign_digest(curve, d, digest)
        assert (r, s) == (int(case["r"], 16), int(case["s"], 16)), case["source"]
        assert ec.encode_point(curve, *ec.public(curve, d)) == _h(case["public"]), case["source"]
        der = ec.sign(curve, d, _h(case["message"]))  # no hedge: the RFC's signature, DER-encoded
        assert der == ec.der_signature(r, s), case["source"]
        count += 1
    return count


def check_aes(vectors, provider=aes):
    """FIPS 197 / SP 800-38A in both directions, through `provider` (the pure module by default)."""
    count = 0
    for case in vectors["aes_cbc"]:
        key, iv = _h(case["key"]), _h(case["iv"])
        plain, cipher = _h(case["plaintext"]), _h(case["ciphertext"])
        assert provider.aes256_cbc_encrypt(key, iv, plain) == cipher, case["source"]
        assert provider.aes256_cbc_decrypt(key, iv, cipher) == plain, case["source"]
        count += 1
    return count


def check_refusals():
    """Bad scalars, bad points, bad AES lengths: ValueError, every one."""
    count = 0
    for curve in (ec.P256, ec.P384):
        size = curve.size
        good = (1).to_bytes(size, "big")
        gx = curve.gx.to_bytes(size, "big")
        gy = curve.gy.to_bytes(size, "big")
        for d in (bytes(size), curve.n.to_bytes(size, "big"), (curve.n + 1).to_bytes(size, "big"),
                  b"\xff" * size, good[1:], b"\x00" + good):
            for call in (lambda: ec.public(curve, d), lambda: ec.ecdh(curve, d, gx, gy)):
                try:
                    call()
                    raise AssertionError("accepted a bad scalar")
                except ValueError:
                    count += 1
        p = curve.p.to_bytes(size, "big")
        bad_y = ((curve.gy + 1) % curve.p).to_bytes(size, "big")
        for x, y in ((gx, bad_y), (p, gy), (gx, p), (bytes(size), bytes(size)), (gx[1:], gy), (gx, gy + b"\x00")):
            try:
                ec.ecdh(curve, good, x, y)
                raise AssertionError("accepted a bad point")
            except ValueError:
                count += 1
        for data in (b"\x04" + gx + gy[1:], b"\x02" + gx, b"\x05" + gx + gy):
            try:
                ec.decode_point(curve, data)
                raise AssertionError("accepted a bad encoding")
            except ValueError:
                count += 1
    for key, iv, data in ((bytes(16), bytes(16), bytes(16)), (bytes(32), bytes(15), bytes(16)),
                          (bytes(32), bytes(16), bytes(15))):
        for call in (aes.aes256_cbc_encrypt, aes.aes256_cbc_decrypt):
            try:
                call(key, iv, data)
                raise AssertionError("accepted a bad AES input")
            except ValueError:
                count += 1
    return count


def run_all(vectors_path):
    vectors = load(vectors_path)
    results = []
    for name, check in (("ecdh", lambda: check_ecdh(vectors)), ("ecdsa", lambda: check_ecdsa(vectors)),
                        ("aes_cbc", lambda: check_aes(vectors)), ("refusals", check_refusals)):
        results.append((name, check()))
    return vectors, results


if __name__ == "__main__":
    vectors, results = run_all(sys.argv[2])
    for name, count in results:
        print("PASS %s %d" % (name, count))
