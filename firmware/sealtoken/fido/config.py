"""authenticatorConfig (CTAP 2.1, command 0x0D) and the settings it changes.

The settings live in one store record, FIDO_KEY_CONFIG = flags(1) || minPINLength(1);
absent means the defaults (alwaysUv off, no forced PIN change, CTAP2_MIN_PIN_LENGTH).
The FIDO reset erases it with the other FIDO records.

Subcommands:
- toggleAlwaysUv (0x02): flips alwaysUv. While it is on, makeCredential and
  getAssertion with user presence answer PUAT_REQUIRED without a
  pinUvAuthParam (a silent up=false assertion stays possible, as CTAP 2.1
  says; it never carries hmac-secret), and every config subcommand needs one,
  even without a PIN.
- setMinPINLength (0x03): newMinPINLength may only grow (smaller ->
  PIN_POLICY_VIOLATION) and is at most CTAP2_MAX_PIN_BYTES; forceChangePin
  (PIN_NOT_SET without a PIN) or a minimum above the current PIN's length
  sets forcePINChange: the PIN then gives no token (PIN_INVALID after a right
  PIN, which keeps its tries) until changePIN sets a different one.
  minPinLengthRPIDs: the minPinLength extension is not offered, so only an
  empty list is accepted (else INVALID_PARAMETER).
- enableEnterpriseAttestation (0x01): not offered (no "ep" in getInfo):
  INVALID_SUBCOMMAND.

Authorization (CTAP 2.1 section 6.11): when a PIN is set, or alwaysUv is on
(except for toggleAlwaysUv itself), the request needs pinUvAuthParam =
authenticate(pinUvAuthToken, 0xff * 32 || 0x0d || subCommand || subCommandParams)
from a token with the acfg permission (0x20); without a PIN and alwaysUv the
subcommands run unauthenticated, as the specification says.

MicroPython rules: plain functions and classes.
"""

from sealtoken.core import cbor
from sealtoken.core.cbor import CtapError
from sealtoken.core.keys import FIDO_KEY_CONFIG, FIDO_KEY_PIN_LENGTH
from sealtoken.core.micro import const
from sealtoken.fido import const as C

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_CTAP2_PERM_ACFG = const(0x20)
_CTAP2_CFG_SUB_COMMAND = const(0x01)
_CTAP2_CFG_SUB_COMMAND_PARAMS = const(0x02)
_CTAP2_CFG_PIN_UV_AUTH_PROTOCOL = const(0x03)
_CTAP2_CFG_PIN_UV_AUTH_PARAM = const(0x04)
_CTAP2_CFG_TOGGLE_ALWAYS_UV = const(0x02)
_CTAP2_CFG_SET_MIN_PIN_LENGTH = const(0x03)
_CTAP2_CFG_PARAM_NEW_MIN_PIN_LENGTH = const(0x01)
_CTAP2_CFG_PARAM_MIN_PIN_LENGTH_RP_IDS = const(0x02)  # no minPinLength extension: only an empty list is accepted
_CTAP2_CFG_PARAM_FORCE_CHANGE_PIN = const(0x03)
_CTAP2_CFG_AUTH_PREFIX = b"\xff" * 32 + b"\x0d"   # pinUvAuthParam covers prefix || subCommand || subCommandParams
_CTAP2_MIN_PIN_LENGTH = const(4)                  # Unicode code points; the default, setMinPINLength may raise it


def config(store):
    """(CTAP2_CONFIG_* flags, minimum PIN length in code points) in force."""
    raw = store.get(FIDO_KEY_CONFIG)
    if raw is None or len(raw) != 2:
        return 0, _CTAP2_MIN_PIN_LENGTH
    # an unreadable minimum never lowers the default
    return raw[0], max(raw[1], _CTAP2_MIN_PIN_LENGTH)


def config_flags(store):
    """CTAP2_CONFIG_* bits in force."""
    return config(store)[0]


def min_pin_length(store):
    """Minimum PIN length in code points."""
    return config(store)[1]


def always_uv(store):
    return bool(config_flags(store) & C.CTAP2_CONFIG_ALWAYS_UV)


def force_pin_change(store):
    return bool(config_flags(store) & C.CTAP2_CONFIG_FORCE_PIN_CHANGE)


class AuthenticatorConfig:
    def __init__(self, store, client_pin):
        self.store = store
        self.client_pin = client_pin

    def process(self, params):
        sub = cbor.get(params, _CTAP2_CFG_SUB_COMMAND, cbor.UINT, True)
        sub_params = cbor.get(params, _CTAP2_CFG_SUB_COMMAND_PARAMS, cbor.MAP)
        version = cbor.get(params, _CTAP2_CFG_PIN_UV_AUTH_PROTOCOL, cbor.UINT)
        param = cbor.get(params, _CTAP2_CFG_PIN_UV_AUTH_PARAM, cbor.BYTES)
        if sub not in (_CTAP2_CFG_TOGGLE_ALWAYS_UV, _CTAP2_CFG_SET_MIN_PIN_LENGTH):
            raise CtapError(C.CTAP2_ERR_INVALID_SUBCOMMAND, "unsupported config subcommand")
        enforce_uv = sub != _CTAP2_CFG_TOGGLE_ALWAYS_UV and always_uv(self.store)
        if self.client_pin.pin_is_set() or enforce_uv:
            if param is None:
                raise CtapError(C.CTAP2_ERR_PUAT_REQUIRED, "pinUvAuthParam required")
            if version is None:
                raise CtapError(C.CTAP2_ERR_MISSING_PARAMETER, "pinUvAuthProtocol missing")
            message = _CTAP2_CFG_AUTH_PREFIX + bytes((sub,))
            if sub_params is not None:
                message += cbor.encode(sub_params)   # the request is canonical: same bytes
            self.client_pin.check_token(version, message, param, _CTAP2_PERM_ACFG)
        flags, minimum = config(self.store)
        if sub == _CTAP2_CFG_TOGGLE_ALWAYS_UV:
            self.store.put(FIDO_KEY_CONFIG, bytes((flags ^ C.CTAP2_CONFIG_ALWAYS_UV, minimum)))
            return None
        return self._set_min_pin_length(sub_params, flags, minimum)

    def _set_min_pin_length(self, sub_params, flags, minimum):
        if sub_params is None:
            sub_params = {}
        new_min = cbor.get(sub_params, _CTAP2_CFG_PARAM_NEW_MIN_PIN_LENGTH, cbor.UINT)
        rp_ids = cbor.get(sub_params, _CTAP2_CFG_PARAM_MIN_PIN_LENGTH_RP_IDS, cbor.ARRAY)
        force = cbor.get(sub_params, _CTAP2_CFG_PARAM_FORCE_CHANGE_PIN, cbor.BOOL) is True
        if rp_ids:
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "no minPinLength extension: no RP IDs")
        if new_min is None:
            new_min = minimum
        if new_min < minimum or new_min > C.CTAP2_MAX_PIN_BYTES:
            raise CtapError(C.CTAP2_ERR_PIN_POLICY_VIOLATION, "minimum PIN length may only grow")
        if force and not self.client_pin.pin_is_set():
            raise CtapError(C.CTAP2_ERR_PIN_NOT_SET, "no PIN to change")
        length = self.store.get(FIDO_KEY_PIN_LENGTH)
        if self.client_pin.pin_is_set():
            if length is not None and len(length) == 1:
                force = force or length[0] < new_min
            else:
                # a PIN set before lengths were kept: any raise may leave it too short
                force = force or new_min > minimum
        if force:
            flags |= C.CTAP2_CONFIG_FORCE_PIN_CHANGE
        self.store.put(FIDO_KEY_CONFIG, bytes((flags, new_min)))
        return None
