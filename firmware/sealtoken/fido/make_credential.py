"""authenticatorMakeCredential (CTAP 2.1 command 0x01): a new ES256 credential, "packed" self attestation.

The credential (sealtoken.fido.credentials) is signed over by its own new key; extensions
hmac-secret and credProtect; with rk a resident record is written in the same store update as the
signature counter. With alwaysUv on, or a PIN set, a pinUvAuthParam is required (PUAT_REQUIRED).

MicroPython rules: plain functions; crypto via the Platform.
"""

import hashlib

from sealtoken.core import cbor
from sealtoken.core.cbor import CtapError
from sealtoken.core.hmac import wipe
from sealtoken.core.keys import FIDO_KEY_SIGN_COUNT
from sealtoken.core.micro import const
from sealtoken.fido import const as C
from sealtoken.fido.clientpin import cose_p256
from sealtoken.fido.config import always_uv
from sealtoken.fido.credentials import (FLAG_HMAC_SECRET, FLAG_RESIDENT, RK_CREATED, RK_ID, RK_RP_ID,
                                        RK_RP_ID_HASH, RK_USER_DISPLAY_NAME, RK_USER_ID, RK_USER_NAME,
                                        truncate_text)
from sealtoken.fido.request import (EXT_CRED_PROTECT, EXT_HMAC_SECRET, PUBLIC_KEY, pin_uv_auth, read_descriptors,
                                    read_options)

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_CTAP2_ERR_CREDENTIAL_EXCLUDED = const(0x19)
_CTAP2_ERR_UNSUPPORTED_ALGORITHM = const(0x26)
_CTAP2_MC_CLIENT_DATA_HASH = const(0x01)
_CTAP2_MC_RP = const(0x02)
_CTAP2_MC_USER = const(0x03)
_CTAP2_MC_PUB_KEY_CRED_PARAMS = const(0x04)
_CTAP2_MC_EXCLUDE_LIST = const(0x05)
_CTAP2_MC_EXTENSIONS = const(0x06)
_CTAP2_MC_OPTIONS = const(0x07)
_CTAP2_MC_PIN_UV_AUTH_PARAM = const(0x08)
_CTAP2_MC_PIN_UV_AUTH_PROTOCOL = const(0x09)
_CTAP2_MC_ENTERPRISE_ATTESTATION = const(0x0A)
_CTAP2_MC_RESP_FMT = const(0x01)
_CTAP2_MC_RESP_AUTH_DATA = const(0x02)
_CTAP2_MC_RESP_ATT_STMT = const(0x03)
_CTAP2_FLAG_AT = const(0x40)
_CTAP2_MAX_USER_ID_LENGTH = const(64)
_CTAP2_MAX_STORED_RP_ID = const(32)               # rpId kept for resident credentials (bytes, truncated)


def make_credential(auth, params, keepalive):
    cdh = cbor.get(params, _CTAP2_MC_CLIENT_DATA_HASH, cbor.BYTES, True)
    rp = cbor.get(params, _CTAP2_MC_RP, cbor.MAP, True)
    user = cbor.get(params, _CTAP2_MC_USER, cbor.MAP, True)
    cred_params = cbor.get(params, _CTAP2_MC_PUB_KEY_CRED_PARAMS, cbor.ARRAY, True)
    rp_id = cbor.get(rp, "id", cbor.TEXT, True)
    cbor.get(rp, "name", cbor.TEXT)
    user_id = cbor.get(user, "id", cbor.BYTES, True)
    user_name = cbor.get(user, "name", cbor.TEXT)
    display_name = cbor.get(user, "displayName", cbor.TEXT)
    if len(user_id) > _CTAP2_MAX_USER_ID_LENGTH:
        raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "user id too long")
    es256 = False
    for entry in cred_params:
        if not isinstance(entry, dict):
            raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "pubKeyCredParams entry")
        kind = cbor.get(entry, "type", cbor.TEXT, True)
        alg = cbor.get(entry, "alg", cbor.INT, True)
        if kind == PUBLIC_KEY and alg == C.COSE_ALG_ES256:
            es256 = True
    exclude = read_descriptors(params, _CTAP2_MC_EXCLUDE_LIST)
    extensions = cbor.get(params, _CTAP2_MC_EXTENSIONS, cbor.MAP) or {}
    options = read_options(params, _CTAP2_MC_OPTIONS)
    if _CTAP2_MC_ENTERPRISE_ATTESTATION in params:
        raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "no enterprise attestation")
    want_hmac_secret = cbor.get(extensions, EXT_HMAC_SECRET, cbor.BOOL) is True
    protect = cbor.get(extensions, EXT_CRED_PROTECT, cbor.UINT)
    if protect is not None and not 1 <= protect <= 3:
        raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "credProtect level")

    if not es256:
        raise CtapError(_CTAP2_ERR_UNSUPPORTED_ALGORITHM, "ES256 only")
    rk = options.get("rk") is True
    rp_id_hash = hashlib.sha256(rp_id.encode("utf-8")).digest()
    uv = pin_uv_auth(auth, params, _CTAP2_MC_PIN_UV_AUTH_PARAM, _CTAP2_MC_PIN_UV_AUTH_PROTOCOL,
                     cdh, C.CTAP2_PERM_MC, rp_id, keepalive)
    if options.get("up") is False:
        raise CtapError(C.CTAP2_ERR_INVALID_OPTION, "makeCredential needs user presence")
    if options.get("uv") is True and not uv:
        raise CtapError(C.CTAP2_ERR_INVALID_OPTION, "no built-in user verification")
    if not uv and (auth.client_pin.pin_is_set() or always_uv(auth.store)):
        raise CtapError(C.CTAP2_ERR_PUAT_REQUIRED, "PIN set or alwaysUv: pinUvAuthParam required")

    for cred_id in exclude or ():
        cred = auth.credentials.open_id(rp_id_hash, cred_id)
        if cred is None:
            continue
        if cred.flags & FLAG_RESIDENT and auth.credentials.resident_by_id(cred.id) is None:
            cred.wipe()
            continue
        visible = uv or cred.protect() != C.CTAP2_CRED_PROTECT_UV_REQUIRED
        cred.wipe()
        if visible:
            auth.user_presence(keepalive)
            raise CtapError(_CTAP2_ERR_CREDENTIAL_EXCLUDED, "excluded")

    auth.user_presence(keepalive)
    if uv:
        auth.client_pin.token_used_with_presence()

    flags = protect or 0
    if want_hmac_secret:
        flags |= FLAG_HMAC_SECRET
    if rk:
        flags |= FLAG_RESIDENT
    private, x, y = auth.platform.p256_generate()
    private = bytearray(private)
    try:
        cred_id = auth.credentials.seal_id(rp_id_hash, private, flags)
        count, count_raw = auth.credentials.next_count()
        changes = {FIDO_KEY_SIGN_COUNT: count_raw}
        if rk:
            record = {RK_ID: cred_id, RK_RP_ID_HASH: rp_id_hash,
                      RK_RP_ID: truncate_text(rp_id, _CTAP2_MAX_STORED_RP_ID),
                      RK_USER_ID: user_id, RK_CREATED: count}
            if user_name is not None:
                record[RK_USER_NAME] = truncate_text(user_name, C.CTAP2_MAX_STORED_NAME)
            if display_name is not None:
                record[RK_USER_DISPLAY_NAME] = truncate_text(display_name, C.CTAP2_MAX_STORED_NAME)
            changes[auth.credentials.resident_slot_for(rp_id_hash, user_id)] = cbor.encode(record)
        auth.store.update(changes)

        ext_out = {}
        if protect is not None:
            ext_out[EXT_CRED_PROTECT] = protect
        if want_hmac_secret:
            ext_out[EXT_HMAC_SECRET] = True
        auth_flags = C.CTAP2_FLAG_UP | _CTAP2_FLAG_AT
        if uv:
            auth_flags |= C.CTAP2_FLAG_UV
        if ext_out:
            auth_flags |= C.CTAP2_FLAG_ED
        auth_data = (rp_id_hash + bytes((auth_flags,)) + count_raw + C.CTAP2_AAGUID
                     + len(cred_id).to_bytes(2, "big") + cred_id
                     + cbor.encode(cose_p256(bytes(x), bytes(y), C.COSE_ALG_ES256)))
        if ext_out:
            auth_data += cbor.encode(ext_out)
        signature = auth.platform.p256_sign(bytes(private), auth_data + cdh)
    finally:
        wipe(private)
    return {
        _CTAP2_MC_RESP_FMT: "packed",
        _CTAP2_MC_RESP_AUTH_DATA: auth_data,
        _CTAP2_MC_RESP_ATT_STMT: {"alg": C.COSE_ALG_ES256, "sig": bytes(signature)},
    }
