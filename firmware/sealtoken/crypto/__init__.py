"""The Platform's crypto for boards without a crypto library: pure Python, with a native hook.

A board Platform mixes in PurePythonCrypto to get every crypto method the Platform
declares (p256_generate / p256_public / p256_ecdh / p256_sign, p384_generate /
p384_public / p384_ecdh, aes256_cbc_encrypt / aes256_cbc_decrypt):

    class PicoPlatform(PurePythonCrypto, Platform):
        def random_bytes(self, n):
            return os.urandom(n)

Each method runs the native implementation of that operation when there is one, else the
pure-Python one (sealtoken.crypto.ec, sealtoken.crypto.aes; imported on first use).

THE NATIVE HOOK (the one seam): each operation is looked up, on first use, in the
providers of the platform and taken from the first one that has it:
  - `native_crypto`, when the board sets it (class or instance attribute): its one provider;
  - else whichever of these imports (find_native()):
      1. a module named NATIVE_MODULE ("sealtoken_native_crypto"), e.g. a C user module
         linked into the board's MicroPython image, or a frozen module wrapping one;
      2. MicroPython's built-in `cryptolib` (where the port links mbedTLS or axTLS): the
         two AES-CBC operations only (CryptolibAes below).
A provider is any object with some of the OPERATIONS as attributes; each takes the
Platform method's arguments, and the three that need randomness (p256_generate,
p384_generate, p256_sign) take the platform's random_bytes function as their last
argument (a native one may use its own RNG instead). Operations no provider has run in
pure Python.

The pure-Python elliptic-curve code is NOT CONSTANT-TIME (see sealtoken.crypto.ec).
"""

NATIVE_MODULE = "sealtoken_native_crypto"

OPERATIONS = (
    "p256_generate", "p256_public", "p256_ecdh", "p256_sign",
    "p384_generate", "p384_public", "p384_ecdh",
    "aes256_cbc_encrypt", "aes256_cbc_decrypt",
)


class CryptolibAes:
    """AES-256-CBC from MicroPython's built-in cryptolib (C; mbedTLS or axTLS inside)."""

    MODE_CBC = 2  # cryptolib's mode number for CBC

    def __init__(self, cryptolib):
        self._cryptolib = cryptolib

    def aes256_cbc_encrypt(self, key, iv, data):
        _check_cbc(key, iv, data)
        return bytes(self._cryptolib.aes(bytes(key), self.MODE_CBC, bytes(iv)).encrypt(bytes(data)))

    def aes256_cbc_decrypt(self, key, iv, data):
        _check_cbc(key, iv, data)
        return bytes(self._cryptolib.aes(bytes(key), self.MODE_CBC, bytes(iv)).decrypt(bytes(data)))


def _check_cbc(key, iv, data):
    # the same refusals as the pure-Python AES (cryptolib would accept other key sizes)
    if len(key) != 32 or len(iv) != 16 or len(data) % 16:
        raise ValueError("AES-256-CBC needs a 32-byte key, a 16-byte IV and whole blocks")


def find_native():
    """The native providers this build offers, in order: NATIVE_MODULE, then cryptolib's AES."""
    providers = []
    try:
        import sealtoken_native_crypto
        providers.append(sealtoken_native_crypto)
    except ImportError:
        pass
    try:
        import cryptolib
        providers.append(CryptolibAes(cryptolib))
    except ImportError:
        pass
    return providers


def pure_operation(name):
    """The pure-Python implementation of one of OPERATIONS."""
    if name.startswith("aes"):
        from . import aes as module
    else:
        from . import ec as module
    return getattr(module, name)


class PurePythonCrypto:
    """Mixin: the Platform's crypto methods, native where a provider has them, else pure Python."""

    native_crypto = None   # the board's provider; None: find_native() on first use
    _crypto_ops = None     # operation name -> function, filled on first use

    def crypto_operation(self, name):
        """The function that runs operation `name` (one of OPERATIONS) on this platform."""
        ops = self._crypto_ops
        if ops is None:
            ops = self._crypto_ops = {}
        function = ops.get(name)
        if function is None:
            providers = find_native() if self.native_crypto is None else (self.native_crypto,)
            for provider in providers:
                function = getattr(provider, name, None)
                if function is not None:
                    break
            if function is None:
                function = pure_operation(name)
            ops[name] = function
        return function

    def crypto_backend(self, name):
        """'native' or 'pure': where operation `name` runs (for tests and the board's report)."""
        return "pure" if self.crypto_operation(name) is pure_operation(name) else "native"

    def p256_generate(self):
        return self.crypto_operation("p256_generate")(self.random_bytes)

    def p256_public(self, private):
        return self.crypto_operation("p256_public")(private)

    def p256_ecdh(self, private, peer_x, peer_y):
        return self.crypto_operation("p256_ecdh")(private, peer_x, peer_y)

    def p256_sign(self, private, message):
        return self.crypto_operation("p256_sign")(private, message, self.random_bytes)

    def p384_generate(self):
        return self.crypto_operation("p384_generate")(self.random_bytes)

    def p384_public(self, private):
        return self.crypto_operation("p384_public")(private)

    def p384_ecdh(self, private, peer_x, peer_y):
        return self.crypto_operation("p384_ecdh")(private, peer_x, peer_y)

    def aes256_cbc_encrypt(self, key, iv, data):
        return self.crypto_operation("aes256_cbc_encrypt")(key, iv, data)

    def aes256_cbc_decrypt(self, key, iv, data):
        return self.crypto_operation("aes256_cbc_decrypt")(key, iv, data)
