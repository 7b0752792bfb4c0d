"""The whole token on a platform whose crypto is the pure-Python code (what a MicroPython
board gets), driven by real clients: python-fido2 (PIN protocol = ECDH + AES-CBC,
makeCredential = key generation + signature, getAssertion with hmac-secret) through the
CTAPHID link, and yubikit's PivSession (AES-256 management key, P-256 and P-384 keys and
ECDH) over the loopback. Every crypto call is counted to prove it ran in pure Python."""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.hazmat.primitives.asymmetric import ec as cec
from yubikit.piv import KEY_TYPE, MANAGEMENT_KEY_TYPE, SLOT, PivSession

from sealboard.ctaphid_link import open_emulated_hid_device
from sealboard.loopback import LoopbackConnection
from sealboard.platform import CPythonPlatform
from sealcodes import derivation
from sealcodes.backends._yubikit import yubikit_connection
from sealcodes.backends.base import Interaction
from sealcodes.backends.fido2 import Fido2Backend
from sealcodes.enrollment import Fido2Options
from sealtoken.crypto import OPERATIONS, PurePythonCrypto
from sealtoken.token import Token

MGMT_KEY = b"\x01\x02\x03\x04\x05\x06\x07\x08" * 4


class PureCryptoPlatform(PurePythonCrypto, CPythonPlatform):
    """The PC platform with every crypto method from sealtoken.crypto (pure Python)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.crypto_calls = Counter()

    def crypto_operation(self, name):
        assert self.crypto_backend_checked(name)
        self.crypto_calls[name] += 1
        return super().crypto_operation(name)

    def crypto_backend_checked(self, name):
        return PurePythonCrypto.crypto_operation(self, name).__module__.startswith("sealtoken.crypto.")


class _Pin(Interaction):
    def request_pin(self, purpose, new=False):
        return "pure-crypto-pin"

    def confirm(self, question):
        return True


def test_fido2_with_pin_and_hmac_secret_on_pure_crypto():
    platform = PureCryptoPlatform(rng_seed="pure-fido")
    hid = open_emulated_hid_device(Token(platform))
    try:
        fido = Fido2Backend(hid)
        meta = fido.enroll(_Pin(), Fido2Options(uv="required"))
        first = fido.respond(derivation.challenge("pure", 0), meta, _Pin())
        again = fido.respond(derivation.challenge("pure", 0), meta, _Pin())
        other = fido.respond(derivation.challenge("pure", 1), meta, _Pin())
    finally:
        hid.close()
    assert len(first) == 32 and first == again != other
    used = set(platform.crypto_calls)
    assert {"p256_generate", "p256_ecdh", "p256_sign", "aes256_cbc_encrypt", "aes256_cbc_decrypt"} <= used
    assert used <= set(OPERATIONS)


@pytest.mark.parametrize("key_type, curve", [(KEY_TYPE.ECCP256, cec.SECP256R1()),
                                             (KEY_TYPE.ECCP384, cec.SECP384R1())])
def test_piv_keys_and_ecdh_on_pure_crypto(key_type, curve):
    platform = PureCryptoPlatform(rng_seed="pure-piv")
    piv = PivSession(yubikit_connection(LoopbackConnection(Token(platform).card)))
    assert piv.management_key_type == MANAGEMENT_KEY_TYPE.AES256
    piv.authenticate(MGMT_KEY)  # AES-256 challenge-response through the pure AES
    public = piv.generate_key(SLOT.KEY_MANAGEMENT, key_type)
    piv.verify_pin("123456")
    peer = cec.generate_private_key(curve)
    secret = piv.calculate_secret(SLOT.KEY_MANAGEMENT, peer.public_key())
    assert secret == peer.exchange(cec.ECDH(), public)
    prefix = "p256" if key_type == KEY_TYPE.ECCP256 else "p384"
    assert {"aes256_cbc_encrypt", prefix + "_generate", prefix + "_ecdh"} <= set(platform.crypto_calls)
