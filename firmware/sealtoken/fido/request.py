"""Parameters that makeCredential and getAssertion read alike: options, credential lists, pinUvAuthParam.

MicroPython rules: plain functions.
"""
from sealtoken.core import cbor
from sealtoken.core.cbor import CtapError
from sealtoken.fido import const as C

PUBLIC_KEY = "public-key"
EXT_HMAC_SECRET = "hmac-secret"
EXT_CRED_PROTECT = "credProtect"


def read_options(params, key):
    """The options map (text -> bool) at params[key]; {} when absent."""
    found = cbor.get(params, key, cbor.MAP)
    if found is None:
        return {}
    for name in found:
        if not isinstance(name, str) or not cbor.is_kind(found[name], cbor.BOOL):
            raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "options are text -> bool")
    return found


def read_descriptors(params, key):
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
        if kind == PUBLIC_KEY:
            ids.append(cred_id)
    return ids


def pin_uv_auth(auth, params, param_key, protocol_key, client_data_hash, permission, rp_id, keepalive):
    """Checks pinUvAuthParam; True when the request is user-verified."""
    param = cbor.get(params, param_key, cbor.BYTES)
    version = cbor.get(params, protocol_key, cbor.UINT)
    if param is None:
        return False
    if len(param) == 0:
        # CTAP 2.0 "select a device" probe: touch, then say whether a PIN is set
        auth.user_presence(keepalive)
        if auth.client_pin.pin_is_set():
            raise CtapError(C.CTAP2_ERR_PIN_INVALID, "PIN set")
        raise CtapError(C.CTAP2_ERR_PIN_NOT_SET, "no PIN")
    if version is None:
        raise CtapError(C.CTAP2_ERR_MISSING_PARAMETER, "pinUvAuthProtocol missing")
    auth.client_pin.verify_token(version, client_data_hash, param, permission, rp_id)
    return True
