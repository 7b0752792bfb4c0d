"""The native hook under real MicroPython (run by test_micropython_crypto.py):
    micropython _hook_checks.py FIRMWARE_DIR STANDIN_DIR VECTORS_FILE
The stand-in module in STANDIN_DIR supplies P-256 ECDH; the unix port's built-in cryptolib
supplies AES-CBC; everything else must run in pure Python."""

import os
import sys

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])

from sealtoken.crypto import CryptolibAes, PurePythonCrypto, ec, find_native  # noqa: E402
import sealtoken_native_crypto as standin  # noqa: E402
from _vector_checks import check_aes, load  # noqa: E402


class Board(PurePythonCrypto):
    def random_bytes(self, n):
        return os.urandom(n)


board = Board()
assert [type(p).__name__ for p in find_native()][1:] == ["CryptolibAes"], find_native()
assert board.crypto_backend("p256_ecdh") == "native"
assert board.crypto_backend("aes256_cbc_encrypt") == "native"
assert board.crypto_backend("aes256_cbc_decrypt") == "native"
for name in ("p256_generate", "p256_public", "p256_sign", "p384_generate", "p384_public", "p384_ecdh"):
    assert board.crypto_backend(name) == "pure", name
print("PASS backends")

d, x, y = board.p256_generate()
assert board.p256_public(d) == (x, y)
d2, x2, y2 = board.p256_generate()
assert board.p256_ecdh(d, x2, y2) == ec.ecdh(ec.P256, d2, x, y)
assert standin.calls == ["p256_ecdh"], standin.calls
print("PASS standin")

import cryptolib  # noqa: E402
vectors = load(sys.argv[3])
assert check_aes(vectors, CryptolibAes(cryptolib)) == 2
assert check_aes(vectors, board) == 2
key, iv = bytes(range(32)), bytes(16)
assert board.aes256_cbc_decrypt(key, iv, board.aes256_cbc_encrypt(key, iv, b"x" * 64)) == b"x" * 64
for bad in ((bytes(16), iv, bytes(16)), (key, iv, bytes(15))):
    try:
        board.aes256_cbc_encrypt(*bad)
        raise AssertionError("cryptolib path accepted a bad input")
    except ValueError:
        pass
print("PASS cryptolib")

# the board names its provider: only that one counts, cryptolib is not looked up
class Explicit(Board):
    native_crypto = standin


explicit = Explicit()
assert explicit.crypto_backend("p256_ecdh") == "native"
assert explicit.crypto_backend("aes256_cbc_encrypt") == "pure"
print("PASS explicit")
