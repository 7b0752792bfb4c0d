"""authenticatorGetInfo (CTAP 2.1 command 0x04), built once.

What getInfo says changes only with the PIN being set and the authenticatorConfig settings
(alwaysUv, forcePINChange, minPINLength). The encoded answer is kept with the state it was built
for and sent again while that state holds: a board does not rebuild and re-encode the map on every
call (it allocated about 11 KB each time under MicroPython).

MicroPython rules: plain classes.
"""

from sealtoken import VERSION
from sealtoken.core import cbor
from sealtoken.core.micro import const
from sealtoken.fido import const as C
from sealtoken.fido.config import config
from sealtoken.fido.request import EXT_CRED_PROTECT, EXT_HMAC_SECRET, PUBLIC_KEY

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_CTAP2_INFO_VERSIONS = const(0x01)
_CTAP2_INFO_EXTENSIONS = const(0x02)
_CTAP2_INFO_AAGUID = const(0x03)
_CTAP2_INFO_OPTIONS = const(0x04)
_CTAP2_INFO_MAX_MSG_SIZE = const(0x05)
_CTAP2_INFO_PIN_UV_PROTOCOLS = const(0x06)
_CTAP2_INFO_MAX_CREDS_IN_LIST = const(0x07)
_CTAP2_INFO_MAX_CRED_ID_LENGTH = const(0x08)
_CTAP2_INFO_TRANSPORTS = const(0x09)
_CTAP2_INFO_ALGORITHMS = const(0x0A)
_CTAP2_INFO_FORCE_PIN_CHANGE = const(0x0C)
_CTAP2_INFO_MIN_PIN_LENGTH = const(0x0D)
_CTAP2_INFO_FIRMWARE_VERSION = const(0x0E)


def info_map(pin_set, flags, min_pin_length):
    """The getInfo map for a state."""
    options = {
        "rk": True,
        "up": True,
        "clientPin": pin_set,
        "pinUvAuthToken": True,
        "credMgmt": True,
        "authnrCfg": True,
        "setMinPINLength": True,
        "alwaysUv": bool(flags & C.CTAP2_CONFIG_ALWAYS_UV),
    }
    return {
        _CTAP2_INFO_VERSIONS: ["FIDO_2_0", "FIDO_2_1"],
        _CTAP2_INFO_EXTENSIONS: [EXT_CRED_PROTECT, EXT_HMAC_SECRET],
        _CTAP2_INFO_AAGUID: C.CTAP2_AAGUID,
        _CTAP2_INFO_OPTIONS: options,
        _CTAP2_INFO_MAX_MSG_SIZE: C.CTAP2_MAX_MSG_SIZE,
        _CTAP2_INFO_PIN_UV_PROTOCOLS: [2, 1],
        _CTAP2_INFO_MAX_CREDS_IN_LIST: C.CTAP2_MAX_CREDS_IN_LIST,
        _CTAP2_INFO_MAX_CRED_ID_LENGTH: C.CTAP2_MAX_CRED_ID_LENGTH,
        _CTAP2_INFO_TRANSPORTS: ["nfc", "usb"],
        _CTAP2_INFO_ALGORITHMS: [{"alg": C.COSE_ALG_ES256, "type": PUBLIC_KEY}],
        _CTAP2_INFO_FORCE_PIN_CHANGE: bool(flags & C.CTAP2_CONFIG_FORCE_PIN_CHANGE),
        _CTAP2_INFO_MIN_PIN_LENGTH: min_pin_length,
        _CTAP2_INFO_FIRMWARE_VERSION: (VERSION[0] << 16) | (VERSION[1] << 8) | VERSION[2],
    }


class Info:
    """The getInfo answer (status byte || CBOR), rebuilt only when the state it shows changed."""

    def __init__(self, store, client_pin):
        self.store = store
        self.client_pin = client_pin
        self._state = None
        self._response = None

    def response(self):
        flags, minimum = config(self.store)
        state = (self.client_pin.pin_is_set(), flags, minimum)
        if state != self._state:
            self._response = bytes((C.CTAP2_OK,)) + cbor.encode(info_map(state[0], flags, minimum))
            self._state = state
        return self._response
