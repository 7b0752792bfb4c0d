"""authenticatorClientPIN (CTAP 2.1) and the PIN/UV auth protocols 1 and 2.

docs/protocols.md section 5. One ClientPin object lives inside the Authenticator
(sealtoken.fido.ctap2); it owns

- persistent state, through the Store: the PIN hash LEFT(SHA-256(PIN), 16) and
  the retry counter (CTAP2_PIN_RETRIES_MAX, decremented and written to flash
  BEFORE the PIN is compared, so cutting power after a wrong guess never gives
  the guess back);
- session state, wiped by power_off(): the key-agreement key (made on first
  use, made again after every wrong PIN), the pinUvAuthToken with its
  protocol, permissions, permissions RP ID and issue time, and the count of
  consecutive wrong PINs (3 -> PIN_AUTH_BLOCKED until power cycle).

A pinUvAuthToken is 32 random bytes. Getting a new one invalidates the old
one; so do changePIN, reset and power_off. It is valid only with the protocol
it was obtained with, for CTAP2_TOKEN_LIFETIME_MS, and loses its permissions
after the first makeCredential / getAssertion that collected user presence
(CTAP 2.1 clearPinUvAuthTokenPermissionsExceptLbw).

setPIN and changePIN refuse PINs shorter than the minimum of
sealtoken.fido.config (4 code points unless setMinPINLength raised it) and keep
the new PIN's length (FIDO_KEY_PIN_LENGTH). While forcePINChange is set, a
right PIN gives no token (PIN_INVALID, tries restored) and changePIN must set
a different PIN; a successful changePIN clears the flag.

There is no built-in user verification: subcommands 06 and 07 answer
INVALID_SUBCOMMAND.

MicroPython rules: plain classes; P-256 and AES through the Platform; HMAC and
HKDF from sealtoken.core.hmac; secrets in bytearrays wiped when dropped.
"""

import hashlib

from sealtoken.core import cbor
from sealtoken.core.cbor import CtapError
from sealtoken.core.hmac import ct_equal, hkdf_sha256, hmac_sha256, wipe
from sealtoken.core.keys import FIDO_KEY_CONFIG, FIDO_KEY_PIN_HASH, FIDO_KEY_PIN_LENGTH, FIDO_KEY_PIN_RETRIES
from sealtoken.core.micro import const
from sealtoken.fido import const as C
from sealtoken.fido.config import config_flags, min_pin_length

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_CTAP2_ERR_PIN_BLOCKED = const(0x32)
_CTAP2_ERR_PIN_AUTH_BLOCKED = const(0x34)
_CTAP2_ERR_UNAUTHORIZED_PERMISSION = const(0x40)
_CTAP2_CP_PIN_UV_AUTH_PROTOCOL = const(0x01)
_CTAP2_CP_SUB_COMMAND = const(0x02)
_CTAP2_CP_KEY_AGREEMENT = const(0x03)
_CTAP2_CP_PIN_UV_AUTH_PARAM = const(0x04)
_CTAP2_CP_NEW_PIN_ENC = const(0x05)
_CTAP2_CP_PIN_HASH_ENC = const(0x06)
_CTAP2_CP_PERMISSIONS = const(0x09)
_CTAP2_CP_RP_ID = const(0x0A)
_CTAP2_CP_RESP_KEY_AGREEMENT = const(0x01)
_CTAP2_CP_RESP_PIN_UV_AUTH_TOKEN = const(0x02)
_CTAP2_CP_RESP_PIN_RETRIES = const(0x03)
_CTAP2_CP_RESP_POWER_CYCLE_STATE = const(0x04)
_CTAP2_CP_GET_PIN_RETRIES = const(0x01)
_CTAP2_CP_GET_KEY_AGREEMENT = const(0x02)
_CTAP2_CP_SET_PIN = const(0x03)
_CTAP2_CP_CHANGE_PIN = const(0x04)
_CTAP2_CP_GET_PIN_TOKEN = const(0x05)
_CTAP2_CP_GET_TOKEN_USING_PIN = const(0x09)
_CTAP2_PERMS_SUPPORTED = const(0x27)              # mc | ga | cm | acfg; others -> UNAUTHORIZED_PERMISSION
_COSE_KTY = const(1)
_COSE_ALG = const(3)
_COSE_EC2_CRV = const(-1)
_COSE_EC2_X = const(-2)
_COSE_EC2_Y = const(-3)
_COSE_KTY_EC2 = const(2)
_COSE_CRV_P256 = const(1)
_COSE_ALG_ECDH_ES_HKDF_256 = const(-25)           # what the key-agreement keys carry
_CTAP2_PIN_CONSECUTIVE_MISSES = const(3)          # then PIN_AUTH_BLOCKED until power cycle

_ZERO_IV = bytes(16)


def _sha256(data):
    return hashlib.sha256(data).digest()


class PinProtocolV1:
    """PIN/UV auth protocol 1: SHA-256(Z) key, AES-256-CBC with IV 0, 16-byte HMAC."""

    VERSION = 1
    AUTH_LEN = 16

    def __init__(self, platform):
        self.platform = platform

    def kdf(self, z):
        return _sha256(z)

    def encrypt(self, key, plaintext):
        return self.platform.aes256_cbc_encrypt(key[:32], _ZERO_IV, plaintext)

    def decrypt(self, key, ciphertext):
        """Plaintext; ValueError when the ciphertext has no whole blocks."""
        if not ciphertext or len(ciphertext) % 16:
            raise ValueError("bad ciphertext length")
        return self.platform.aes256_cbc_decrypt(key[:32], _ZERO_IV, ciphertext)

    def authenticate(self, key, message):
        return hmac_sha256(key[:32], message)[:16]

    def verify(self, key, message, signature):
        if len(signature) != self.AUTH_LEN:
            return False
        return ct_equal(self.authenticate(key, message), signature)


class PinProtocolV2(PinProtocolV1):
    """PIN/UV auth protocol 2: HKDF keys (HMAC || AES), random IV, full HMAC."""

    VERSION = 2
    AUTH_LEN = 32

    def kdf(self, z):
        salt = bytes(32)
        return (hkdf_sha256(salt, z, b"CTAP2 HMAC key", 32)
                + hkdf_sha256(salt, z, b"CTAP2 AES key", 32))

    def encrypt(self, key, plaintext):
        iv = bytes(self.platform.random_bytes(16))
        return iv + self.platform.aes256_cbc_encrypt(key[32:64], iv, plaintext)

    def decrypt(self, key, ciphertext):
        if len(ciphertext) <= 16 or len(ciphertext) % 16:
            raise ValueError("bad ciphertext length")
        return self.platform.aes256_cbc_decrypt(key[32:64], ciphertext[:16], ciphertext[16:])

    def authenticate(self, key, message):
        # key is a shared secret (HMAC key || AES key) or a 32-byte token
        return hmac_sha256(key[:32], message)


def cose_p256(x, y, alg):
    """COSE_Key map of a P-256 public key."""
    return {_COSE_KTY: _COSE_KTY_EC2, _COSE_ALG: alg, _COSE_EC2_CRV: _COSE_CRV_P256,
            _COSE_EC2_X: x, _COSE_EC2_Y: y}


def _pin_code_points(pin):
    """Number of Unicode code points of UTF-8 bytes; -1 when not valid UTF-8."""
    try:
        return len(str(pin, "utf-8"))
    except (UnicodeError, ValueError):
        return -1


class ClientPin:
    def __init__(self, platform, store):
        self.platform = platform
        self.store = store
        self.protocols = {1: PinProtocolV1(platform), 2: PinProtocolV2(platform)}
        self._ka = None              # (private bytearray, x, y) of the key-agreement key
        self._ka_peer = None         # (x, y, Z bytearray): the last ECDH with it, kept as long as the key
        self._token = None           # bytearray(32)
        self._token_protocol = 0
        self._permissions = 0
        self._rp_id = None
        self._token_ms = 0
        self._misses = 0             # consecutive wrong PINs since power-up

    # --- session state -----------------------------------------------------------------
    def power_off(self):
        """Forget every session secret: key-agreement key, token, consecutive-miss count."""
        self._drop_key_agreement()
        self._drop_token()
        self._misses = 0

    def _drop_key_agreement(self):
        if self._ka is not None:
            wipe(self._ka[0])
        self._ka = None
        if self._ka_peer is not None:
            wipe(self._ka_peer[2])
        self._ka_peer = None

    def _drop_token(self):
        if self._token is not None:
            wipe(self._token)
        self._token = None
        self._token_protocol = 0
        self._permissions = 0
        self._rp_id = None

    # --- persistent state --------------------------------------------------------------
    def pin_is_set(self):
        return self.store.get(FIDO_KEY_PIN_HASH) is not None

    def retries(self):
        raw = self.store.get(FIDO_KEY_PIN_RETRIES)
        if raw is None:
            return C.CTAP2_PIN_RETRIES_MAX
        if len(raw) != 1 or raw[0] > C.CTAP2_PIN_RETRIES_MAX:
            return 0  # unreadable counter: fail closed
        return raw[0]

    # --- building blocks shared with ctap2 ---------------------------------------------
    def protocol(self, version):
        """The PinProtocol object of a version number; INVALID_PARAMETER if unsupported."""
        proto = self.protocols.get(version)
        if proto is None:
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "unsupported pinUvAuthProtocol")
        return proto

    def key_agreement_cose(self):
        if self._ka is None:
            private, x, y = self.platform.p256_generate()
            self._ka = (bytearray(private), bytes(x), bytes(y))
        return cose_p256(self._ka[1], self._ka[2], _COSE_ALG_ECDH_ES_HKDF_256)

    def shared_secret(self, proto, peer):
        """decapsulate(): the shared secret with the platform's COSE key peer."""
        if not isinstance(peer, dict):
            raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "keyAgreement is not a map")
        x = peer.get(_COSE_EC2_X)
        y = peer.get(_COSE_EC2_Y)
        if (peer.get(_COSE_KTY) != _COSE_KTY_EC2 or peer.get(_COSE_EC2_CRV) != _COSE_CRV_P256
                or not isinstance(x, bytes) or not isinstance(y, bytes) or len(x) != 32 or len(y) != 32):
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "bad keyAgreement key")
        if self._ka is None:
            # no key was handed out since power-up: any answer is as good as a wrong one
            self.key_agreement_cose()
        cached = self._ka_peer
        if cached is not None and cached[0] == x and cached[1] == y:
            # the same platform key again (a PIN token, then hmac-secret in the getAssertion that
            # uses it): the same shared point, not computed twice (an ECDH is most of a second
            # on a board); it lives exactly as long as the key-agreement key
            return proto.kdf(bytes(cached[2]))
        try:
            z = self.platform.p256_ecdh(bytes(self._ka[0]), x, y)
        except ValueError:
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "keyAgreement point not on the curve")
        if cached is not None:
            wipe(cached[2])
        self._ka_peer = (bytes(x), bytes(y), bytearray(z))
        return proto.kdf(bytes(z))

    def check_token(self, version, message, param, permission):
        """Check a pinUvAuthParam made with the current pinUvAuthToken and its permission."""
        proto = self.protocol(version)
        if not self.pin_is_set():
            raise CtapError(C.CTAP2_ERR_PIN_NOT_SET, "no PIN")
        token = self._token
        if token is None or self._token_protocol != version:
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "no token")
        if self.platform.now_ms() - self._token_ms > C.CTAP2_TOKEN_LIFETIME_MS:
            self._drop_token()
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "token expired")
        if not proto.verify(bytes(token), message, param):
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "bad pinUvAuthParam")
        if not self._permissions & permission:
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "token lacks the permission")

    def token_rp_id(self):
        """The permissions RP ID of the current token (text), or None."""
        return self._rp_id

    def verify_token(self, version, message, param, permission, rp_id):
        """check_token for makeCredential / getAssertion: binds the token to rp_id when it
        has no permissions RP ID yet."""
        self.check_token(version, message, param, permission)
        if self._rp_id is not None and self._rp_id != rp_id:
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "token bound to another RP")
        if self._rp_id is None:
            self._rp_id = rp_id

    def token_used_with_presence(self):
        """After a makeCredential / getAssertion that collected user presence."""
        self._permissions = 0

    # --- the clientPIN command -------------------------------------------------------
    def process(self, params):
        sub = cbor.get(params, _CTAP2_CP_SUB_COMMAND, cbor.UINT, True)
        version = cbor.get(params, _CTAP2_CP_PIN_UV_AUTH_PROTOCOL, cbor.UINT)
        if sub == _CTAP2_CP_GET_PIN_RETRIES:
            if version is not None:
                self.protocol(version)
            return {_CTAP2_CP_RESP_PIN_RETRIES: self.retries(),
                    _CTAP2_CP_RESP_POWER_CYCLE_STATE: self._misses >= _CTAP2_PIN_CONSECUTIVE_MISSES}
        if sub not in (_CTAP2_CP_GET_KEY_AGREEMENT, _CTAP2_CP_SET_PIN, _CTAP2_CP_CHANGE_PIN,
                       _CTAP2_CP_GET_PIN_TOKEN, _CTAP2_CP_GET_TOKEN_USING_PIN):
            raise CtapError(C.CTAP2_ERR_INVALID_SUBCOMMAND, "unsupported subcommand")
        if version is None:
            raise CtapError(C.CTAP2_ERR_MISSING_PARAMETER, "pinUvAuthProtocol missing")
        proto = self.protocol(version)
        if sub == _CTAP2_CP_GET_KEY_AGREEMENT:
            return {_CTAP2_CP_RESP_KEY_AGREEMENT: self.key_agreement_cose()}
        if sub == _CTAP2_CP_SET_PIN:
            return self._set_pin(proto, params)
        if sub == _CTAP2_CP_CHANGE_PIN:
            return self._change_pin(proto, params)
        return self._get_token(proto, params, sub)

    def _key_agreement_param(self, params):
        return cbor.get(params, _CTAP2_CP_KEY_AGREEMENT, cbor.MAP, True)

    def _check_not_blocked(self):
        if not self.pin_is_set():
            raise CtapError(C.CTAP2_ERR_PIN_NOT_SET, "no PIN")
        if self.retries() == 0:
            raise CtapError(_CTAP2_ERR_PIN_BLOCKED, "PIN blocked")
        if self._misses >= _CTAP2_PIN_CONSECUTIVE_MISSES:
            raise CtapError(_CTAP2_ERR_PIN_AUTH_BLOCKED, "power cycle needed")

    def _verify_pin(self, proto, secret, pin_hash_enc):
        """Compare the PIN hash the platform sent; the try is spent (on flash) first."""
        try:
            pin_hash = bytearray(proto.decrypt(secret, pin_hash_enc))
        except ValueError:
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "bad pinHashEnc")
        if len(pin_hash) != 16:
            wipe(pin_hash)
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "bad pinHashEnc")
        left = self.retries() - 1
        self.store.put(FIDO_KEY_PIN_RETRIES, bytes((left,)))   # persisted before comparing
        stored = self.store.get(FIDO_KEY_PIN_HASH)
        ok = stored is not None and ct_equal(pin_hash, stored)
        wipe(pin_hash)
        if not ok:
            self._drop_key_agreement()
            self._misses += 1
            if left == 0:
                raise CtapError(_CTAP2_ERR_PIN_BLOCKED, "PIN blocked")
            if self._misses >= _CTAP2_PIN_CONSECUTIVE_MISSES:
                raise CtapError(_CTAP2_ERR_PIN_AUTH_BLOCKED, "power cycle needed")
            raise CtapError(C.CTAP2_ERR_PIN_INVALID, "wrong PIN")
        self._misses = 0
        self.store.put(FIDO_KEY_PIN_RETRIES, bytes((C.CTAP2_PIN_RETRIES_MAX,)))

    def _new_pin(self, proto, secret, new_pin_enc):
        """(LEFT(SHA-256(newPin), 16), code points) of a valid new PIN, or the CTAP error."""
        try:
            padded = bytearray(proto.decrypt(secret, new_pin_enc))
        except ValueError:
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "bad newPinEnc")
        try:
            if len(padded) != 64:
                raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "newPin not padded to 64 bytes")
            n = 64
            while n > 0 and padded[n - 1] == 0:
                n -= 1
            if n > C.CTAP2_MAX_PIN_BYTES:
                raise CtapError(C.CTAP2_ERR_PIN_POLICY_VIOLATION, "PIN too long")
            pin = bytes(padded[:n])
            points = _pin_code_points(pin)
            if points < min_pin_length(self.store):
                raise CtapError(C.CTAP2_ERR_PIN_POLICY_VIOLATION, "PIN too short or not UTF-8")
            return _sha256(pin)[:16], points
        finally:
            wipe(padded)

    def _set_pin(self, proto, params):
        peer = self._key_agreement_param(params)
        param = cbor.get(params, _CTAP2_CP_PIN_UV_AUTH_PARAM, cbor.BYTES, True)
        new_pin_enc = cbor.get(params, _CTAP2_CP_NEW_PIN_ENC, cbor.BYTES, True)
        if self.pin_is_set():
            raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "PIN already set")
        secret = self.shared_secret(proto, peer)
        if not proto.verify(secret, new_pin_enc, param):
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "bad pinUvAuthParam")
        pin_hash, points = self._new_pin(proto, secret, new_pin_enc)
        self.store.update({FIDO_KEY_PIN_HASH: pin_hash,
                           FIDO_KEY_PIN_RETRIES: bytes((C.CTAP2_PIN_RETRIES_MAX,)),
                           FIDO_KEY_PIN_LENGTH: bytes((points,))})
        self._misses = 0
        return None

    def _change_pin(self, proto, params):
        peer = self._key_agreement_param(params)
        param = cbor.get(params, _CTAP2_CP_PIN_UV_AUTH_PARAM, cbor.BYTES, True)
        new_pin_enc = cbor.get(params, _CTAP2_CP_NEW_PIN_ENC, cbor.BYTES, True)
        pin_hash_enc = cbor.get(params, _CTAP2_CP_PIN_HASH_ENC, cbor.BYTES, True)
        self._check_not_blocked()
        secret = self.shared_secret(proto, peer)
        if not proto.verify(secret, new_pin_enc + pin_hash_enc, param):
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "bad pinUvAuthParam")
        self._verify_pin(proto, secret, pin_hash_enc)
        pin_hash, points = self._new_pin(proto, secret, new_pin_enc)
        changes = {FIDO_KEY_PIN_HASH: pin_hash,
                   FIDO_KEY_PIN_RETRIES: bytes((C.CTAP2_PIN_RETRIES_MAX,)),
                   FIDO_KEY_PIN_LENGTH: bytes((points,))}
        flags = config_flags(self.store)
        if flags & C.CTAP2_CONFIG_FORCE_PIN_CHANGE:
            # a forced change must really change the PIN
            if ct_equal(pin_hash, self.store.get(FIDO_KEY_PIN_HASH)):
                raise CtapError(C.CTAP2_ERR_PIN_POLICY_VIOLATION, "forced change to the same PIN")
            changes[FIDO_KEY_CONFIG] = bytes((flags & ~C.CTAP2_CONFIG_FORCE_PIN_CHANGE,
                                                min_pin_length(self.store)))
        # scrub: the old PIN's hash must not survive in the spare flash bank
        self.store.update(changes, True)
        self._drop_token()
        return None

    def _get_token(self, proto, params, sub):
        peer = self._key_agreement_param(params)
        pin_hash_enc = cbor.get(params, _CTAP2_CP_PIN_HASH_ENC, cbor.BYTES, True)
        if sub == _CTAP2_CP_GET_PIN_TOKEN:
            if _CTAP2_CP_PERMISSIONS in params or _CTAP2_CP_RP_ID in params:
                raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "permissions with getPinToken")
            permissions = C.CTAP2_PERM_MC | C.CTAP2_PERM_GA
            rp_id = None
        else:
            permissions = cbor.get(params, _CTAP2_CP_PERMISSIONS, cbor.UINT, True)
            rp_id = cbor.get(params, _CTAP2_CP_RP_ID, cbor.TEXT)
            if permissions == 0:
                raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "no permissions")
            if permissions & ~_CTAP2_PERMS_SUPPORTED:
                raise CtapError(_CTAP2_ERR_UNAUTHORIZED_PERMISSION, "unsupported permission")
        self._check_not_blocked()
        secret = self.shared_secret(proto, peer)
        self._verify_pin(proto, secret, pin_hash_enc)
        if config_flags(self.store) & C.CTAP2_CONFIG_FORCE_PIN_CHANGE:
            # right PIN (the tries are back), but it must be changed before it gives a token
            raise CtapError(C.CTAP2_ERR_PIN_INVALID, "PIN change required")
        self._drop_token()
        self._token = bytearray(self.platform.random_bytes(32))
        self._token_protocol = proto.VERSION
        self._permissions = permissions
        self._rp_id = rp_id
        self._token_ms = self.platform.now_ms()
        return {_CTAP2_CP_RESP_PIN_UV_AUTH_TOKEN: proto.encrypt(secret, bytes(self._token))}
