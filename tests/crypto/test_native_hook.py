"""The native hook of sealtoken.crypto (docs/board-crypto.md): a module named
sealtoken_native_crypto on the path takes over the operations it has, the rest stays in
pure Python; a board can also name its provider; MicroPython's cryptolib is wrapped for AES.
Here the stand-ins are backed by `cryptography`; test_micropython_crypto.py repeats this
under MicroPython with its real cryptolib."""

from __future__ import annotations

import sys

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec as cec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sealtoken import crypto
from sealtoken.crypto import OPERATIONS, CryptolibAes, PurePythonCrypto, ec
from sealtoken.core.platform import Platform
from sealtoken.core.simplatform import SimPlatform

STANDIN = '''
"""Stand-in for a C module: P-256 signing and ECDH from pyca/cryptography, calls counted."""
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

calls = []

def _key(private):
    return ec.derive_private_key(int.from_bytes(bytes(private), "big"), ec.SECP256R1())

def p256_sign(private, message, random_bytes):
    calls.append("p256_sign")
    return _key(private).sign(bytes(message), ec.ECDSA(hashes.SHA256()))

def p256_ecdh(private, peer_x, peer_y):
    calls.append("p256_ecdh")
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\\x04" + bytes(peer_x) + bytes(peer_y))
    return _key(private).exchange(ec.ECDH(), peer)
'''


class Board(PurePythonCrypto, SimPlatform):
    """A board platform as the rp2 package will make one: SimPlatform for the rest."""


@pytest.fixture
def standin(tmp_path, monkeypatch):
    (tmp_path / f"{crypto.NATIVE_MODULE}.py").write_text(STANDIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, crypto.NATIVE_MODULE, raising=False)
    yield __import__(crypto.NATIVE_MODULE)
    sys.modules.pop(crypto.NATIVE_MODULE, None)


def test_without_a_native_module_everything_is_pure():
    board = Board(seed=b"pure")
    assert crypto.find_native() == []  # CPython has no cryptolib either
    assert {name: board.crypto_backend(name) for name in OPERATIONS} == dict.fromkeys(OPERATIONS, "pure")
    d, x, y = board.p256_generate()
    public = cec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                            cec.SECP256R1()).public_key()
    public.verify(board.p256_sign(d, b"abc"), b"abc", cec.ECDSA(hashes.SHA256()))


def test_a_native_module_takes_over_what_it_has(standin):
    board = Board(seed=b"native")
    backends = {name: board.crypto_backend(name) for name in OPERATIONS}
    assert backends == {**dict.fromkeys(OPERATIONS, "pure"), "p256_sign": "native", "p256_ecdh": "native"}
    d, x, y = board.p256_generate()                 # pure
    d2, x2, y2 = board.p256_generate()
    assert board.p256_ecdh(d, x2, y2) == ec.ecdh(ec.P256, d2, x, y)  # native, equal to pure
    signature = board.p256_sign(d, b"abc")           # native
    public = cec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                            cec.SECP256R1()).public_key()
    public.verify(signature, b"abc", cec.ECDSA(hashes.SHA256()))
    assert standin.calls == ["p256_ecdh", "p256_sign"]


def test_the_board_names_its_provider(standin):
    class Explicit(Board):
        native_crypto = CryptolibAes(_StandinCryptolib())

    board = Explicit(seed=b"explicit")
    assert board.crypto_backend("aes256_cbc_encrypt") == "native"
    assert board.crypto_backend("p256_ecdh") == "pure"  # the named provider only: the module is not used
    key, iv, data = bytes(range(32)), bytes(16), bytes(range(64))
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    assert board.aes256_cbc_encrypt(key, iv, data) == enc.update(data) + enc.finalize()
    assert board.aes256_cbc_decrypt(key, iv, board.aes256_cbc_encrypt(key, iv, data)) == data
    with pytest.raises(ValueError):
        board.aes256_cbc_encrypt(bytes(16), iv, data)  # cryptolib would take AES-128: refused
    with pytest.raises(ValueError):
        board.aes256_cbc_decrypt(key, iv, data[:15])


class _StandinCryptolib:
    """MicroPython's cryptolib.aes(key, mode, iv) with .encrypt/.decrypt, over `cryptography`."""

    class aes:  # noqa: N801 - the name MicroPython gives it
        def __init__(self, key, mode, iv):
            assert mode == 2
            self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv))

        def encrypt(self, data):
            enc = self._cipher.encryptor()
            return enc.update(data) + enc.finalize()

        def decrypt(self, data):
            dec = self._cipher.decryptor()
            return dec.update(data) + dec.finalize()


def test_the_mixin_covers_every_crypto_method_of_the_platform():
    declared = {name for name in vars(Platform) if name.startswith(("p256_", "p384_", "aes256_"))}
    assert declared == set(OPERATIONS)
    assert all(getattr(PurePythonCrypto, name) is not getattr(Platform, name) for name in declared)
