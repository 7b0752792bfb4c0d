"""authenticatorGetAssertion (0x02) and authenticatorGetNextAssertion (0x08), with hmac-secret.

An allow list takes its first usable credential; without one, every discoverable credential of the
RP is found, newest first, and the others wait for getNextAssertion (30 s). NO_CREDENTIALS is
answered at once, without waiting for a touch. hmac-secret needs user presence (up=false:
UNSUPPORTED_OPTION) and its input is checked before any touch.

MicroPython rules: plain classes and functions; crypto via the Platform.
"""

import hashlib

from sealtoken.core import cbor
from sealtoken.core.cbor import CtapError
from sealtoken.core.hmac import hmac_sha256, wipe
from sealtoken.core.keys import FIDO_KEY_SIGN_COUNT
from sealtoken.core.micro import const
from sealtoken.fido import const as C
from sealtoken.fido.config import always_uv
from sealtoken.fido.credentials import (FLAG_HMAC_SECRET, FLAG_RESIDENT, RK_ID, RK_RP_ID_HASH,
                                        RK_USER_DISPLAY_NAME, RK_USER_ID, RK_USER_NAME)
from sealtoken.fido.request import EXT_HMAC_SECRET, PUBLIC_KEY, pin_uv_auth, read_descriptors, read_options

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_CTAP2_ERR_UNSUPPORTED_OPTION = const(0x2B)
_CTAP2_GA_RP_ID = const(0x01)
_CTAP2_GA_CLIENT_DATA_HASH = const(0x02)
_CTAP2_GA_ALLOW_LIST = const(0x03)
_CTAP2_GA_EXTENSIONS = const(0x04)
_CTAP2_GA_OPTIONS = const(0x05)
_CTAP2_GA_PIN_UV_AUTH_PARAM = const(0x06)
_CTAP2_GA_PIN_UV_AUTH_PROTOCOL = const(0x07)
_CTAP2_GA_RESP_CREDENTIAL = const(0x01)
_CTAP2_GA_RESP_AUTH_DATA = const(0x02)
_CTAP2_GA_RESP_SIGNATURE = const(0x03)
_CTAP2_GA_RESP_USER = const(0x04)
_CTAP2_GA_RESP_NUMBER_OF_CREDENTIALS = const(0x05)
_CTAP2_HS_KEY_AGREEMENT = const(0x01)
_CTAP2_HS_SALT_ENC = const(0x02)
_CTAP2_HS_SALT_AUTH = const(0x03)
_CTAP2_HS_PIN_UV_AUTH_PROTOCOL = const(0x04)


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


def _hmac_secret_input(auth, value):
    """Check the hmac-secret input (before any touch); _HmacSecretRequest."""
    if not isinstance(value, dict):
        raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "hmac-secret input is not a map")
    peer = cbor.get(value, _CTAP2_HS_KEY_AGREEMENT, cbor.MAP, True)
    salt_enc = cbor.get(value, _CTAP2_HS_SALT_ENC, cbor.BYTES, True)
    salt_auth = cbor.get(value, _CTAP2_HS_SALT_AUTH, cbor.BYTES, True)
    version = cbor.get(value, _CTAP2_HS_PIN_UV_AUTH_PROTOCOL, cbor.UINT)
    proto = auth.client_pin.protocol(1 if version is None else version)
    secret = auth.client_pin.shared_secret(proto, peer)
    if not proto.verify(secret, salt_enc, salt_auth):
        raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "bad saltAuth")
    try:
        salts = proto.decrypt(secret, salt_enc)
    except ValueError:
        raise CtapError(C.CTAP1_ERR_INVALID_LENGTH, "bad saltEnc length")
    if len(salts) not in (32, 64):
        raise CtapError(C.CTAP1_ERR_INVALID_LENGTH, "salts are 32 or 64 bytes")
    return _HmacSecretRequest(proto, secret, salts)

def get_assertion(auth, params, keepalive):
    rp_id = cbor.get(params, _CTAP2_GA_RP_ID, cbor.TEXT, True)
    cdh = cbor.get(params, _CTAP2_GA_CLIENT_DATA_HASH, cbor.BYTES, True)
    allow = read_descriptors(params, _CTAP2_GA_ALLOW_LIST)
    extensions = cbor.get(params, _CTAP2_GA_EXTENSIONS, cbor.MAP) or {}
    options = read_options(params, _CTAP2_GA_OPTIONS)
    if "rk" in options:
        raise CtapError(_CTAP2_ERR_UNSUPPORTED_OPTION, "rk is not a getAssertion option")
    up = options.get("up") is not False
    rp_id_hash = hashlib.sha256(rp_id.encode("utf-8")).digest()
    uv = pin_uv_auth(auth, params, _CTAP2_GA_PIN_UV_AUTH_PARAM, _CTAP2_GA_PIN_UV_AUTH_PROTOCOL,
                     cdh, C.CTAP2_PERM_GA, rp_id, keepalive)
    if options.get("uv") is True and not uv:
        raise CtapError(C.CTAP2_ERR_INVALID_OPTION, "no built-in user verification")
    if up and not uv and always_uv(auth.store):
        # CTAP 2.1: a silent (up=false) assertion stays possible; it has no hmac-secret
        raise CtapError(C.CTAP2_ERR_PUAT_REQUIRED, "alwaysUv: pinUvAuthParam required")
    hmac_request = None
    if EXT_HMAC_SECRET in extensions:
        if not up:
            raise CtapError(_CTAP2_ERR_UNSUPPORTED_OPTION, "hmac-secret needs user presence")
        hmac_request = _hmac_secret_input(auth, extensions[EXT_HMAC_SECRET])

    creds = _find_credentials(auth, rp_id_hash, allow, uv)
    if not creds:
        raise CtapError(C.CTAP2_ERR_NO_CREDENTIALS, "no credentials")
    try:
        if up:
            auth.user_presence(keepalive)
            if uv:
                auth.client_pin.token_used_with_presence()
        flags = (C.CTAP2_FLAG_UP if up else 0) | (C.CTAP2_FLAG_UV if uv else 0)
        response = _assertion(auth, creds[0], rp_id_hash, cdh, flags, hmac_request)
        if allow is None and len(creds) > 1:
            response[_CTAP2_GA_RESP_NUMBER_OF_CREDENTIALS] = len(creds)
            auth.pending = _PendingAssertions(creds[1:], rp_id_hash, cdh, flags, hmac_request,
                                               auth.platform.now_ms())
            creds = creds[:1]
        return response
    finally:
        for cred in creds:
            cred.wipe()

def _find_credentials(auth, rp_id_hash, allow, uv):
    """Applicable credentials: the first match of the allow list, or every discoverable one."""
    if allow is not None:
        for cred_id in allow:
            cred = auth.credentials.open_id(rp_id_hash, cred_id)
            if cred is None:
                continue
            if cred.flags & FLAG_RESIDENT:
                cred.record = auth.credentials.resident_by_id(cred.id)
                if cred.record is None:
                    cred.wipe()
                    continue
            if cred.protect() == C.CTAP2_CRED_PROTECT_UV_REQUIRED and not uv:
                cred.wipe()
                continue
            return [cred]
        return []
    found = []
    for _, record in auth.credentials.resident_slots():
        if record.get(RK_RP_ID_HASH) != rp_id_hash:
            continue
        cred = auth.credentials.open_id(rp_id_hash, record[RK_ID])
        if cred is None:
            continue
        cred.record = record
        if cred.protect() != C.CTAP2_CRED_PROTECT_UV_OPTIONAL and not uv:
            cred.wipe()
            continue
        found.append(cred)
    found.sort(key=lambda c: c.created(), reverse=True)
    return found

def _assertion(auth, cred, rp_id_hash, cdh, flags, hmac_request):
    ext = b""
    if hmac_request is not None and cred.flags & FLAG_HMAC_SECRET:
        cred_random = bytearray(auth.credentials.cred_random(cred, flags & C.CTAP2_FLAG_UV))
        salts = hmac_request.salts
        out = bytearray(hmac_sha256(cred_random, salts[:32]))
        if len(salts) == 64:
            out.extend(hmac_sha256(cred_random, salts[32:]))
        wipe(cred_random)
        ext = cbor.encode({EXT_HMAC_SECRET: hmac_request.proto.encrypt(hmac_request.secret, bytes(out))})
        wipe(out)
        flags |= C.CTAP2_FLAG_ED
    count, count_raw = auth.credentials.next_count()
    auth.store.put(FIDO_KEY_SIGN_COUNT, count_raw)
    auth_data = rp_id_hash + bytes((flags,)) + count_raw + ext
    signature = auth.platform.p256_sign(bytes(cred.private), auth_data + cdh)
    response = {
        _CTAP2_GA_RESP_CREDENTIAL: {"id": cred.id, "type": PUBLIC_KEY},
        _CTAP2_GA_RESP_AUTH_DATA: auth_data,
        _CTAP2_GA_RESP_SIGNATURE: bytes(signature),
    }
    if cred.record is not None:
        user = {"id": cred.record[RK_USER_ID]}
        if flags & C.CTAP2_FLAG_UV:
            # name and displayName only to a user-verified request
            for key, name in ((RK_USER_NAME, "name"), (RK_USER_DISPLAY_NAME, "displayName")):
                if key in cred.record:
                    user[name] = cred.record[key]
        response[_CTAP2_GA_RESP_USER] = user
    return response

def get_next_assertion(auth):
    pending = auth.pending
    if pending is None or not pending.creds:
        auth.drop_pending()
        raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "no pending assertions")
    if auth.platform.now_ms() - pending.started_ms > C.CTAP2_NEXT_ASSERTION_TIMEOUT_MS:
        auth.drop_pending()
        raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "getNextAssertion too late")
    cred = pending.creds.pop(0)
    try:
        return _assertion(auth, cred, pending.rp_id_hash, pending.client_data_hash, pending.flags,
                               pending.hmac_request)
    finally:
        cred.wipe()
        if not pending.creds:
            auth.drop_pending()
