"""The CTAP 2.1 authenticator core: request bytes in, response bytes out.

    auth = Authenticator(platform, store)
    response = auth.process(command_byte + cbor_params, keepalive=None)
    # response = status byte || canonical CBOR (docs/protocols.md section 4)
    auth.power_off()   # wipe session state (token, key agreement, PIN misses, ...)

keepalive(status) is handed to platform.wait_user_presence while the token
waits for a touch; it returns True when the client cancelled (-> 0x2D).

Commands: makeCredential, getAssertion, getNextAssertion, getInfo, clientPIN
(sealtoken.fido.clientpin), reset, selection, credentialManagement
(sealtoken.fido.credmgmt) and authenticatorConfig (sealtoken.fido.config). ES256
only; extensions hmac-secret and credProtect; "packed" self attestation
(signed by the new credential key). With alwaysUv on, makeCredential and
getAssertion with user presence need a pinUvAuthParam (PUAT_REQUIRED).

Credentials
-----------
Every credential has an encrypted, authenticated credential id (97 bytes):

    id = 01 || IV(16) || AES-256-CBC(K_enc, IV, d(32) || flags(1) || 0(15)) || TAG(32)
    TAG = HMAC-SHA-256(K_mac, 01 || IV || ciphertext || rpIdHash)

d is the credential's P-256 private scalar; flags hold the credProtect level
(bits 0-1), hmac-secret (bit 2) and "resident" (bit 3). K_enc, K_mac and K_cr are
HMAC-SHA-256(master, label) of a 32-byte master secret made on first use and
kept in the store (FIDO_KEY_MASTER). An id made for another RP, altered in any
bit, or made before a reset fails the tag check and is treated as unknown.
The hmac-secret secrets of a credential are

    CredRandomWithUV    = HMAC-SHA-256(K_cr, "CredRandomWithUV" || d)
    CredRandomWithoutUV = HMAC-SHA-256(K_cr, "CredRandomWithoutUV" || d)

so they exist nowhere but inside the token, survive restarts, and die with the
master secret at reset. Resident credentials additionally have a store record
(FIDO_KEY_RK_FIRST..LAST, CBOR) holding their id, rpIdHash, rpId (first 32
bytes), user id, name and displayName (first 64 bytes each) and creation
stamp; an id with the resident flag is honoured only while its record exists.
One signature counter for all credentials (FIDO_KEY_SIGN_COUNT) is incremented
and persisted for every makeCredential and every assertion.

Choices (CTAP 2.1 leaves them open)
-----------------------------------
- reset is accepted only within reset_window_ms (default 10 s) of power-up and
  after user presence; Authenticator(..., reset_window_ms=None) disables the
  window. It erases only the FIDO records (other applets keep theirs).
- getAssertion answers NO_CREDENTIALS at once, without waiting for a touch.
- hmac-secret needs user presence: with up=false it is UNSUPPORTED_OPTION.
- The request CBOR must be canonical (as python-fido2 and libfido2 send it).
- A pinUvAuthToken loses its permissions after its first use with user
  presence; a pre-flight (up=false) does not use it up.

MicroPython rules: plain classes, integer constants, crypto via the Platform.
"""

import hashlib

from sealtoken import VERSION
from sealtoken.core import cbor
from sealtoken import const as C
from sealtoken.core.cbor import CtapError
from sealtoken.fido.config import AuthenticatorConfig, always_uv, config_flags, min_pin_length
from sealtoken.fido.clientpin import ClientPin, cose_p256
from sealtoken.fido.credmgmt import (RK_CREATED, RK_ID, RK_RP_ID, RK_RP_ID_HASH, RK_USER_DISPLAY_NAME, RK_USER_ID,
                                RK_USER_NAME, CredentialManagement, truncate_text)
from sealtoken.core.hmac import ct_equal, hmac_sha256, wipe
from sealtoken.core.platform import UP_APPROVED, UP_CANCELLED, UP_DENIED
from sealtoken.core.storage import StoreFullError

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_FLAG_PROTECT_MASK = 0x03
_FLAG_HMAC_SECRET = 0x04
_FLAG_RESIDENT = 0x08
_FLAGS_KNOWN = 0x0F

_CRED_ID_LEN = 1 + 16 + 48 + 32
_PAYLOAD_LEN = 48

_PUBLIC_KEY = "public-key"
_EXT_HMAC_SECRET = "hmac-secret"
_EXT_CRED_PROTECT = "credProtect"


def _sha256(data):
    return hashlib.sha256(data).digest()


class _Cred:
    """A credential found for a request."""

    def __init__(self, cred_id, private, flags, record=None):
        self.id = cred_id
        self.private = private            # bytearray(32), wiped when done
        self.flags = flags
        self.record = record              # decoded resident record, or None

    def protect(self):
        level = self.flags & _FLAG_PROTECT_MASK
        return level if level else C.CTAP2_CRED_PROTECT_UV_OPTIONAL

    def created(self):
        stamp = self.record.get(RK_CREATED) if self.record else None
        return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else 0

    def wipe(self):
        wipe(self.private)


class _HmacSecretRequest:
    """A checked hmac-secret input of getAssertion, waiting for its credential."""

    def __init__(self, proto, secret, salts):
        self.proto = proto
        self.secret = secret
        self.salts = salts


class _PendingAssertions:
    """State for getNextAssertion."""

    def __init__(self, creds, rp_id_hash, client_data_hash, flags, hmac_request, started_ms):
        self.creds = creds
        self.rp_id_hash = rp_id_hash
        self.client_data_hash = client_data_hash
        self.flags = flags
        self.hmac_request = hmac_request
        self.started_ms = started_ms

    def wipe(self):
        for cred in self.creds:
            cred.wipe()
        self.creds = []


class Authenticator:
    def __init__(self, platform, store, reset_window_ms=C.CTAP2_RESET_WINDOW_MS, raise_internal_errors=False):
        self.platform = platform
        self.store = store
        self.reset_window_ms = reset_window_ms
        # tests set this to see the traceback of a bug instead of status 0x7F
        self.raise_internal_errors = raise_internal_errors
        self.client_pin = ClientPin(platform, store)
        self.cred_mgmt = CredentialManagement(self)
        self.config = AuthenticatorConfig(store, self.client_pin)
        self._keys = None          # (K_enc, K_mac, K_cr) bytearrays, from the master secret
        self._pending = None       # _PendingAssertions
        self._boot_ms = platform.now_ms()

    # --- lifecycle ------------------------------------------------------------------
    def power_off(self):
        """Power cycle: forget tokens, the key-agreement key, PIN misses, pending assertions."""
        self.client_pin.power_off()
        self.cred_mgmt.end_enumeration()
        self._drop_pending()
        self._drop_keys()
        self._boot_ms = None

    def _drop_pending(self):
        if self._pending is not None:
            self._pending.wipe()
        self._pending = None

    def _drop_keys(self):
        if self._keys is not None:
            for k in self._keys:
                wipe(k)
        self._keys = None

    # --- entry point ----------------------------------------------------------------
    def process(self, request, keepalive=None):
        """One CTAP2 request (command byte || CBOR) -> status byte || CBOR."""
        if self._boot_ms is None:
            self._boot_ms = self.platform.now_ms()
        try:
            if not request:
                raise CtapError(C.CTAP1_ERR_INVALID_LENGTH, "empty request")
            if len(request) > C.CTAP2_MAX_MSG_SIZE:
                raise CtapError(C.CTAP2_ERR_REQUEST_TOO_LARGE, "request too large")
            cmd = request[0]
            if cmd != C.CTAP2_CMD_GET_NEXT_ASSERTION:
                self._drop_pending()
            if cmd != C.CTAP2_CMD_CREDENTIAL_MANAGEMENT:
                self.cred_mgmt.end_enumeration()
            if cmd == C.CTAP2_CMD_GET_INFO:
                result = self.get_info()
            elif cmd == C.CTAP2_CMD_MAKE_CREDENTIAL:
                result = self._make_credential(self._params(request), keepalive)
            elif cmd == C.CTAP2_CMD_GET_ASSERTION:
                result = self._get_assertion(self._params(request), keepalive)
            elif cmd == C.CTAP2_CMD_GET_NEXT_ASSERTION:
                result = self._get_next_assertion()
            elif cmd == C.CTAP2_CMD_CLIENT_PIN:
                result = self.client_pin.process(self._params(request))
            elif cmd == C.CTAP2_CMD_RESET:
                result = self._reset(keepalive)
            elif cmd == C.CTAP2_CMD_CREDENTIAL_MANAGEMENT:
                result = self.cred_mgmt.process(self._params(request))
            elif cmd == C.CTAP2_CMD_CONFIG:
                result = self.config.process(self._params(request))
            elif cmd == C.CTAP2_CMD_SELECTION:
                self._user_presence(keepalive)
                result = None
            else:
                raise CtapError(C.CTAP1_ERR_INVALID_COMMAND, "unknown command")
            if result is None:
                return bytes((C.CTAP2_OK,))
            return bytes((C.CTAP2_OK,)) + cbor.encode(result)
        except CtapError as e:
            return bytes((e.code,))
        except StoreFullError:
            return bytes((C.CTAP2_ERR_KEY_STORE_FULL,))
        except Exception:
            if self.raise_internal_errors:
                raise
            return bytes((C.CTAP1_ERR_OTHER,))

    @staticmethod
    def _params(request):
        if len(request) == 1:
            return {}
        params = cbor.decode(request[1:], max_size=C.CTAP2_MAX_MSG_SIZE)
        if not isinstance(params, dict):
            raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "parameters are not a map")
        return params

    def _user_presence(self, keepalive):
        outcome = self.platform.wait_user_presence(C.CTAP2_UP_TIMEOUT_MS, keepalive)
        if outcome == UP_APPROVED:
            return
        if outcome == UP_DENIED:
            raise CtapError(C.CTAP2_ERR_OPERATION_DENIED, "user refused")
        if outcome == UP_CANCELLED:
            raise CtapError(C.CTAP2_ERR_KEEPALIVE_CANCEL, "cancelled")
        raise CtapError(C.CTAP2_ERR_USER_ACTION_TIMEOUT, "no touch")

    # --- getInfo --------------------------------------------------------------------
    def get_info(self):
        flags = config_flags(self.store)
        options = {
            "rk": True,
            "up": True,
            "clientPin": self.client_pin.pin_is_set(),
            "pinUvAuthToken": True,
            "credMgmt": True,
            "authnrCfg": True,
            "setMinPINLength": True,
            "alwaysUv": bool(flags & C.CTAP2_CONFIG_ALWAYS_UV),
        }
        return {
            C.CTAP2_INFO_VERSIONS: ["FIDO_2_0", "FIDO_2_1"],
            C.CTAP2_INFO_EXTENSIONS: [_EXT_CRED_PROTECT, _EXT_HMAC_SECRET],
            C.CTAP2_INFO_AAGUID: C.CTAP2_AAGUID,
            C.CTAP2_INFO_OPTIONS: options,
            C.CTAP2_INFO_MAX_MSG_SIZE: C.CTAP2_MAX_MSG_SIZE,
            C.CTAP2_INFO_PIN_UV_PROTOCOLS: [2, 1],
            C.CTAP2_INFO_MAX_CREDS_IN_LIST: C.CTAP2_MAX_CREDS_IN_LIST,
            C.CTAP2_INFO_MAX_CRED_ID_LENGTH: C.CTAP2_MAX_CRED_ID_LENGTH,
            C.CTAP2_INFO_TRANSPORTS: ["nfc", "usb"],
            C.CTAP2_INFO_ALGORITHMS: [{"alg": C.COSE_ALG_ES256, "type": _PUBLIC_KEY}],
            C.CTAP2_INFO_FORCE_PIN_CHANGE: bool(flags & C.CTAP2_CONFIG_FORCE_PIN_CHANGE),
            C.CTAP2_INFO_MIN_PIN_LENGTH: min_pin_length(self.store),
            C.CTAP2_INFO_FIRMWARE_VERSION: (VERSION[0] << 16) | (VERSION[1] << 8) | VERSION[2],
        }

    # --- keys and credential ids -------------------------------------------------------
    def _credential_keys(self, create):
        """(K_enc, K_mac, K_cr), making the master secret if create; None if there is none."""
        if self._keys is None:
            master = self.store.get(C.FIDO_KEY_MASTER)
            if master is None or len(master) != 32:
                if not create:
                    return None
                master = bytes(self.platform.random_bytes(32))
                self.store.put(C.FIDO_KEY_MASTER, master)
            self._keys = (bytearray(hmac_sha256(master, b"sealtoken/fido/credential-id/enc")),
                          bytearray(hmac_sha256(master, b"sealtoken/fido/credential-id/mac")),
                          bytearray(hmac_sha256(master, b"sealtoken/fido/cred-random")))
        return self._keys

    def _seal_id(self, rp_id_hash, private, flags):
        k_enc, k_mac, _ = self._credential_keys(True)
        iv = bytes(self.platform.random_bytes(16))
        payload = bytearray(_PAYLOAD_LEN)
        payload[0:32] = private
        payload[32] = flags
        ciphertext = self.platform.aes256_cbc_encrypt(bytes(k_enc), iv, bytes(payload))
        body = bytes((C.CTAP2_CRED_ID_VERSION,)) + iv + ciphertext
        wipe(payload)
        return body + hmac_sha256(k_mac, body + rp_id_hash)

    def _open_id(self, rp_id_hash, cred_id):
        """_Cred of an id this token made for this RP, else None (never an error)."""
        if len(cred_id) != _CRED_ID_LEN or cred_id[0] != C.CTAP2_CRED_ID_VERSION:
            return None
        keys = self._credential_keys(False)
        if keys is None:
            return None
        k_enc, k_mac, _ = keys
        body = cred_id[:-32]
        if not ct_equal(hmac_sha256(k_mac, body + rp_id_hash), cred_id[-32:]):
            return None
        payload = bytearray(self.platform.aes256_cbc_decrypt(bytes(k_enc), body[1:17], body[17:]))
        flags = payload[32]
        private = bytearray(payload[0:32])
        tail_ok = flags & ~_FLAGS_KNOWN == 0 and payload[33:] == bytes(_PAYLOAD_LEN - 33)
        wipe(payload)
        d = int.from_bytes(bytes(private), "big")
        if not tail_ok or not 0 < d < _P256_ORDER:
            wipe(private)
            return None
        return _Cred(bytes(cred_id), private, flags)

    def _cred_random(self, cred, uv):
        k_cr = self._credential_keys(True)[2]
        label = b"CredRandomWithUV" if uv else b"CredRandomWithoutUV"
        return hmac_sha256(k_cr, label + bytes(cred.private))

    # --- resident records ------------------------------------------------------------
    def _resident_slots(self):
        """[(store key, record dict)] of every readable resident record."""
        out = []
        for key in self.store.keys(C.FIDO_KEY_RK_FIRST, C.FIDO_KEY_RK_LAST):
            raw = self.store.get(key)
            try:
                record = cbor.decode(raw)
            except CtapError:
                continue
            if (isinstance(record, dict) and isinstance(record.get(RK_ID), bytes)
                    and isinstance(record.get(RK_RP_ID_HASH), bytes) and isinstance(record.get(RK_USER_ID), bytes)):
                out.append((key, record))
        return out

    def _resident_by_id(self, cred_id):
        for _, record in self._resident_slots():
            if ct_equal(record[RK_ID], cred_id):
                return record
        return None

    # --- signature counter -----------------------------------------------------------
    def _next_count(self):
        raw = self.store.get(C.FIDO_KEY_SIGN_COUNT)
        count = int.from_bytes(raw, "big") if raw is not None and len(raw) == 4 else 0
        count = (count + 1) & 0xFFFFFFFF
        return count, count.to_bytes(4, "big")

    # --- request helpers -------------------------------------------------------------
    @staticmethod
    def _options(params, key):
        options = cbor.get(params, key, cbor.MAP)
        if options is None:
            return {}
        for name in options:
            if not isinstance(name, str) or not cbor.is_kind(options[name], cbor.BOOL):
                raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "options are text -> bool")
        return options

    @staticmethod
    def _descriptors(params, key):
        """The public-key credential ids of an allow/exclude list (others ignored)."""
        items = cbor.get(params, key, cbor.ARRAY)
        if items is None:
            return None
        ids = []
        for item in items:
            if not isinstance(item, dict):
                raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "descriptor is not a map")
            kind = cbor.get(item, "type", cbor.TEXT, True)
            cred_id = cbor.get(item, "id", cbor.BYTES, True)
            if kind == _PUBLIC_KEY:
                ids.append(cred_id)
        return ids

    def _pin_uv_auth(self, params, param_key, protocol_key, client_data_hash, permission, rp_id, keepalive):
        """Checks pinUvAuthParam; True when the request is user-verified."""
        param = cbor.get(params, param_key, cbor.BYTES)
        version = cbor.get(params, protocol_key, cbor.UINT)
        if param is None:
            return False
        if len(param) == 0:
            # CTAP 2.0 "select a device" probe: touch, then say whether a PIN is set
            self._user_presence(keepalive)
            if self.client_pin.pin_is_set():
                raise CtapError(C.CTAP2_ERR_PIN_INVALID, "PIN set")
            raise CtapError(C.CTAP2_ERR_PIN_NOT_SET, "no PIN")
        if version is None:
            raise CtapError(C.CTAP2_ERR_MISSING_PARAMETER, "pinUvAuthProtocol missing")
        self.client_pin.verify_token(version, client_data_hash, param, permission, rp_id)
        return True

    # --- makeCredential ----------------------------------------------------------------
    def _make_credential(self, params, keepalive):
        cdh = cbor.get(params, C.CTAP2_MC_CLIENT_DATA_HASH, cbor.BYTES, True)
        rp = cbor.get(params, C.CTAP2_MC_RP, cbor.MAP, True)
        user = cbor.get(params, C.CTAP2_MC_USER, cbor.MAP, True)
        cred_params = cbor.get(params, C.CTAP2_MC_PUB_KEY_CRED_PARAMS, cbor.ARRAY, True)
        rp_id = cbor.get(rp, "id", cbor.TEXT, True)
        cbor.get(rp, "name", cbor.TEXT)
        user_id = cbor.get(user, "id", cbor.BYTES, True)
        user_name = cbor.get(user, "name", cbor.TEXT)
        display_name = cbor.get(user, "displayName", cbor.TEXT)
        if len(user_id) > C.CTAP2_MAX_USER_ID_LENGTH:
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "user id too long")
        es256 = False
        for entry in cred_params:
            if not isinstance(entry, dict):
                raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "pubKeyCredParams entry")
            kind = cbor.get(entry, "type", cbor.TEXT, True)
            alg = cbor.get(entry, "alg", cbor.INT, True)
            if kind == _PUBLIC_KEY and alg == C.COSE_ALG_ES256:
                es256 = True
        exclude = self._descriptors(params, C.CTAP2_MC_EXCLUDE_LIST)
        extensions = cbor.get(params, C.CTAP2_MC_EXTENSIONS, cbor.MAP) or {}
        options = self._options(params, C.CTAP2_MC_OPTIONS)
        if C.CTAP2_MC_ENTERPRISE_ATTESTATION in params:
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "no enterprise attestation")
        want_hmac_secret = cbor.get(extensions, _EXT_HMAC_SECRET, cbor.BOOL) is True
        protect = cbor.get(extensions, _EXT_CRED_PROTECT, cbor.UINT)
        if protect is not None and not 1 <= protect <= 3:
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "credProtect level")

        if not es256:
            raise CtapError(C.CTAP2_ERR_UNSUPPORTED_ALGORITHM, "ES256 only")
        rk = options.get("rk") is True
        rp_id_hash = _sha256(rp_id.encode("utf-8"))
        uv = self._pin_uv_auth(params, C.CTAP2_MC_PIN_UV_AUTH_PARAM, C.CTAP2_MC_PIN_UV_AUTH_PROTOCOL,
                               cdh, C.CTAP2_PERM_MC, rp_id, keepalive)
        if options.get("up") is False:
            raise CtapError(C.CTAP2_ERR_INVALID_OPTION, "makeCredential needs user presence")
        if options.get("uv") is True and not uv:
            raise CtapError(C.CTAP2_ERR_INVALID_OPTION, "no built-in user verification")
        if not uv and (self.client_pin.pin_is_set() or always_uv(self.store)):
            raise CtapError(C.CTAP2_ERR_PUAT_REQUIRED, "PIN set or alwaysUv: pinUvAuthParam required")

        for cred_id in exclude or ():
            cred = self._open_id(rp_id_hash, cred_id)
            if cred is None:
                continue
            if cred.flags & _FLAG_RESIDENT and self._resident_by_id(cred.id) is None:
                cred.wipe()
                continue
            visible = uv or cred.protect() != C.CTAP2_CRED_PROTECT_UV_REQUIRED
            cred.wipe()
            if visible:
                self._user_presence(keepalive)
                raise CtapError(C.CTAP2_ERR_CREDENTIAL_EXCLUDED, "excluded")

        self._user_presence(keepalive)
        if uv:
            self.client_pin.token_used_with_presence()

        flags = protect or 0
        if want_hmac_secret:
            flags |= _FLAG_HMAC_SECRET
        if rk:
            flags |= _FLAG_RESIDENT
        private, x, y = self.platform.p256_generate()
        private = bytearray(private)
        try:
            cred_id = self._seal_id(rp_id_hash, private, flags)
            count, count_raw = self._next_count()
            changes = {C.FIDO_KEY_SIGN_COUNT: count_raw}
            if rk:
                record = {RK_ID: cred_id, RK_RP_ID_HASH: rp_id_hash,
                          RK_RP_ID: truncate_text(rp_id, C.CTAP2_MAX_STORED_RP_ID),
                          RK_USER_ID: user_id, RK_CREATED: count}
                if user_name is not None:
                    record[RK_USER_NAME] = truncate_text(user_name, C.CTAP2_MAX_STORED_NAME)
                if display_name is not None:
                    record[RK_USER_DISPLAY_NAME] = truncate_text(display_name, C.CTAP2_MAX_STORED_NAME)
                changes[self._resident_slot_for(rp_id_hash, user_id)] = cbor.encode(record)
            self.store.update(changes)

            ext_out = {}
            if protect is not None:
                ext_out[_EXT_CRED_PROTECT] = protect
            if want_hmac_secret:
                ext_out[_EXT_HMAC_SECRET] = True
            auth_flags = C.CTAP2_FLAG_UP | C.CTAP2_FLAG_AT
            if uv:
                auth_flags |= C.CTAP2_FLAG_UV
            if ext_out:
                auth_flags |= C.CTAP2_FLAG_ED
            auth_data = (rp_id_hash + bytes((auth_flags,)) + count_raw + C.CTAP2_AAGUID
                         + len(cred_id).to_bytes(2, "big") + cred_id
                         + cbor.encode(cose_p256(bytes(x), bytes(y), C.COSE_ALG_ES256)))
            if ext_out:
                auth_data += cbor.encode(ext_out)
            signature = self.platform.p256_sign(bytes(private), auth_data + cdh)
        finally:
            wipe(private)
        return {
            C.CTAP2_MC_RESP_FMT: "packed",
            C.CTAP2_MC_RESP_AUTH_DATA: auth_data,
            C.CTAP2_MC_RESP_ATT_STMT: {"alg": C.COSE_ALG_ES256, "sig": bytes(signature)},
        }

    def _resident_slot_for(self, rp_id_hash, user_id):
        """Store key for a new resident credential: same RP and user id replaces; else a free slot."""
        used = set()
        for key, record in self._resident_slots():
            used.add(key)
            if record.get(RK_RP_ID_HASH) == rp_id_hash and record.get(RK_USER_ID) == user_id:
                return key
        # unreadable records occupy their slot too
        for key in self.store.keys(C.FIDO_KEY_RK_FIRST, C.FIDO_KEY_RK_LAST):
            used.add(key)
        for key in range(C.FIDO_KEY_RK_FIRST, C.FIDO_KEY_RK_LAST + 1):
            if key not in used:
                return key
        raise CtapError(C.CTAP2_ERR_KEY_STORE_FULL, "no free resident slot")

    # --- getAssertion ----------------------------------------------------------------
    def _hmac_secret_input(self, value):
        """Check the hmac-secret input (before any touch); _HmacSecretRequest."""
        if not isinstance(value, dict):
            raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "hmac-secret input is not a map")
        peer = cbor.get(value, C.CTAP2_HS_KEY_AGREEMENT, cbor.MAP, True)
        salt_enc = cbor.get(value, C.CTAP2_HS_SALT_ENC, cbor.BYTES, True)
        salt_auth = cbor.get(value, C.CTAP2_HS_SALT_AUTH, cbor.BYTES, True)
        version = cbor.get(value, C.CTAP2_HS_PIN_UV_AUTH_PROTOCOL, cbor.UINT)
        proto = self.client_pin.protocol(1 if version is None else version)
        secret = self.client_pin.shared_secret(proto, peer)
        if not proto.verify(secret, salt_enc, salt_auth):
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "bad saltAuth")
        try:
            salts = proto.decrypt(secret, salt_enc)
        except ValueError:
            raise CtapError(C.CTAP1_ERR_INVALID_LENGTH, "bad saltEnc length")
        if len(salts) not in (32, 64):
            raise CtapError(C.CTAP1_ERR_INVALID_LENGTH, "salts are 32 or 64 bytes")
        return _HmacSecretRequest(proto, secret, salts)

    def _get_assertion(self, params, keepalive):
        rp_id = cbor.get(params, C.CTAP2_GA_RP_ID, cbor.TEXT, True)
        cdh = cbor.get(params, C.CTAP2_GA_CLIENT_DATA_HASH, cbor.BYTES, True)
        allow = self._descriptors(params, C.CTAP2_GA_ALLOW_LIST)
        extensions = cbor.get(params, C.CTAP2_GA_EXTENSIONS, cbor.MAP) or {}
        options = self._options(params, C.CTAP2_GA_OPTIONS)
        if "rk" in options:
            raise CtapError(C.CTAP2_ERR_UNSUPPORTED_OPTION, "rk is not a getAssertion option")
        up = options.get("up") is not False
        rp_id_hash = _sha256(rp_id.encode("utf-8"))
        uv = self._pin_uv_auth(params, C.CTAP2_GA_PIN_UV_AUTH_PARAM, C.CTAP2_GA_PIN_UV_AUTH_PROTOCOL,
                               cdh, C.CTAP2_PERM_GA, rp_id, keepalive)
        if options.get("uv") is True and not uv:
            raise CtapError(C.CTAP2_ERR_INVALID_OPTION, "no built-in user verification")
        if up and not uv and always_uv(self.store):
            # CTAP 2.1: a silent (up=false) assertion stays possible; it has no hmac-secret
            raise CtapError(C.CTAP2_ERR_PUAT_REQUIRED, "alwaysUv: pinUvAuthParam required")
        hmac_request = None
        if _EXT_HMAC_SECRET in extensions:
            if not up:
                raise CtapError(C.CTAP2_ERR_UNSUPPORTED_OPTION, "hmac-secret needs user presence")
            hmac_request = self._hmac_secret_input(extensions[_EXT_HMAC_SECRET])

        creds = self._find_credentials(rp_id_hash, allow, uv)
        if not creds:
            raise CtapError(C.CTAP2_ERR_NO_CREDENTIALS, "no credentials")
        try:
            if up:
                self._user_presence(keepalive)
                if uv:
                    self.client_pin.token_used_with_presence()
            flags = (C.CTAP2_FLAG_UP if up else 0) | (C.CTAP2_FLAG_UV if uv else 0)
            response = self._assertion(creds[0], rp_id_hash, cdh, flags, hmac_request)
            if allow is None and len(creds) > 1:
                response[C.CTAP2_GA_RESP_NUMBER_OF_CREDENTIALS] = len(creds)
                self._pending = _PendingAssertions(creds[1:], rp_id_hash, cdh, flags, hmac_request,
                                                   self.platform.now_ms())
                creds = creds[:1]
            return response
        finally:
            for cred in creds:
                cred.wipe()

    def _find_credentials(self, rp_id_hash, allow, uv):
        """Applicable credentials: the first match of the allow list, or every discoverable one."""
        if allow is not None:
            for cred_id in allow:
                cred = self._open_id(rp_id_hash, cred_id)
                if cred is None:
                    continue
                if cred.flags & _FLAG_RESIDENT:
                    cred.record = self._resident_by_id(cred.id)
                    if cred.record is None:
                        cred.wipe()
                        continue
                if cred.protect() == C.CTAP2_CRED_PROTECT_UV_REQUIRED and not uv:
                    cred.wipe()
                    continue
                return [cred]
            return []
        found = []
        for _, record in self._resident_slots():
            if record.get(RK_RP_ID_HASH) != rp_id_hash:
                continue
            cred = self._open_id(rp_id_hash, record[RK_ID])
            if cred is None:
                continue
            cred.record = record
            if cred.protect() != C.CTAP2_CRED_PROTECT_UV_OPTIONAL and not uv:
                cred.wipe()
                continue
            found.append(cred)
        found.sort(key=lambda c: c.created(), reverse=True)
        return found

    def _assertion(self, cred, rp_id_hash, cdh, flags, hmac_request):
        ext = b""
        if hmac_request is not None and cred.flags & _FLAG_HMAC_SECRET:
            cred_random = bytearray(self._cred_random(cred, flags & C.CTAP2_FLAG_UV))
            salts = hmac_request.salts
            out = bytearray(hmac_sha256(cred_random, salts[:32]))
            if len(salts) == 64:
                out.extend(hmac_sha256(cred_random, salts[32:]))
            wipe(cred_random)
            ext = cbor.encode({_EXT_HMAC_SECRET: hmac_request.proto.encrypt(hmac_request.secret, bytes(out))})
            wipe(out)
            flags |= C.CTAP2_FLAG_ED
        count, count_raw = self._next_count()
        self.store.put(C.FIDO_KEY_SIGN_COUNT, count_raw)
        auth_data = rp_id_hash + bytes((flags,)) + count_raw + ext
        signature = self.platform.p256_sign(bytes(cred.private), auth_data + cdh)
        response = {
            C.CTAP2_GA_RESP_CREDENTIAL: {"id": cred.id, "type": _PUBLIC_KEY},
            C.CTAP2_GA_RESP_AUTH_DATA: auth_data,
            C.CTAP2_GA_RESP_SIGNATURE: bytes(signature),
        }
        if cred.record is not None:
            user = {"id": cred.record[RK_USER_ID]}
            if flags & C.CTAP2_FLAG_UV:
                # name and displayName only to a user-verified request
                for key, name in ((RK_USER_NAME, "name"), (RK_USER_DISPLAY_NAME, "displayName")):
                    if key in cred.record:
                        user[name] = cred.record[key]
            response[C.CTAP2_GA_RESP_USER] = user
        return response

    def _get_next_assertion(self):
        pending = self._pending
        if pending is None or not pending.creds:
            self._drop_pending()
            raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "no pending assertions")
        if self.platform.now_ms() - pending.started_ms > C.CTAP2_NEXT_ASSERTION_TIMEOUT_MS:
            self._drop_pending()
            raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "getNextAssertion too late")
        cred = pending.creds.pop(0)
        try:
            return self._assertion(cred, pending.rp_id_hash, pending.client_data_hash, pending.flags,
                                   pending.hmac_request)
        finally:
            cred.wipe()
            if not pending.creds:
                self._drop_pending()

    # --- reset ------------------------------------------------------------------------
    def _reset(self, keepalive):
        if self.reset_window_ms is not None and self.platform.now_ms() - self._boot_ms > self.reset_window_ms:
            raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "reset only right after power-up")
        self._user_presence(keepalive)
        changes = {C.FIDO_KEY_MASTER: None, C.FIDO_KEY_PIN_HASH: None, C.FIDO_KEY_PIN_RETRIES: None,
                   C.FIDO_KEY_SIGN_COUNT: None}
        for key in self.store.keys(C.KEY_FIDO_FIRST, C.KEY_FIDO_LAST):
            changes[key] = None
        self.store.update(changes, True)   # scrub: no old copy of the master secret stays in flash
        self._drop_keys()
        self._drop_pending()
        self.cred_mgmt.end_enumeration()
        self.client_pin.power_off()
        return None
