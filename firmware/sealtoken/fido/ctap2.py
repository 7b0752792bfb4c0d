"""The CTAP 2.1 authenticator: request bytes in, response bytes out. A dispatcher; each command
group has its module, imported on its first use:

    auth = Authenticator(platform, store)
    response = auth.process(command_byte + cbor_params, keepalive=None)
    # response = status byte || canonical CBOR (docs/protocols.md section 4)
    auth.power_off()   # wipe session state (token, key agreement, PIN misses, ...)

keepalive(status) is handed to platform.wait_user_presence while the token
waits for a touch; it returns True when the client cancelled (-> 0x2D).

    command                        module (sealtoken.fido.*)
    makeCredential (01)            make_credential
    getAssertion (02), next (08)   get_assertion
    getInfo (04)                   info (built once)
    clientPIN (06)                 clientpin
    reset (07), selection (0B)     here
    credentialManagement (0A)      credmgmt
    authenticatorConfig (0D)       config

Credential ids, keys, resident records and the signature counter: sealtoken.fido.credentials.
ES256 only; extensions hmac-secret and credProtect; "packed" self attestation
(signed by the new credential key). With alwaysUv on, makeCredential and
getAssertion with user presence need a pinUvAuthParam (PUAT_REQUIRED).

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
from sealtoken.core import cbor
from sealtoken.core.cbor import CtapError
from sealtoken.core.keys import (FIDO_KEY_MASTER, FIDO_KEY_PIN_HASH, FIDO_KEY_PIN_RETRIES,
                                 FIDO_KEY_SIGN_COUNT, KEY_FIDO_FIRST, KEY_FIDO_LAST)
from sealtoken.core.micro import const, import_room
from sealtoken.core.platform import UP_APPROVED, UP_CANCELLED, UP_DENIED
from sealtoken.core.storage import StoreFullError
from sealtoken.fido import const as C

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_CTAP2_CMD_MAKE_CREDENTIAL = const(0x01)
_CTAP2_CMD_GET_ASSERTION = const(0x02)
_CTAP2_CMD_GET_INFO = const(0x04)
_CTAP2_CMD_CLIENT_PIN = const(0x06)
_CTAP2_CMD_GET_NEXT_ASSERTION = const(0x08)
_CTAP2_CMD_CREDENTIAL_MANAGEMENT = const(0x0A)    # sealtoken.fido.credmgmt
_CTAP2_CMD_SELECTION = const(0x0B)
_CTAP2_CMD_CONFIG = const(0x0D)                   # sealtoken.fido.config
_CTAP1_ERR_INVALID_COMMAND = const(0x01)
_CTAP2_ERR_OPERATION_DENIED = const(0x27)
_CTAP2_ERR_KEEPALIVE_CANCEL = const(0x2D)
_CTAP2_ERR_USER_ACTION_TIMEOUT = const(0x2F)
_CTAP2_ERR_REQUEST_TOO_LARGE = const(0x39)
_CTAP1_ERR_OTHER = const(0x7F)
_CTAP2_UP_TIMEOUT_MS = const(30000)


class Authenticator:
    def __init__(self, platform, store, reset_window_ms=C.CTAP2_RESET_WINDOW_MS, raise_internal_errors=False):
        self.platform = platform
        self.store = store
        self.reset_window_ms = reset_window_ms
        # tests set this to see the traceback of a bug instead of status 0x7F
        self.raise_internal_errors = raise_internal_errors
        self.pending = None        # getNextAssertion's state (sealtoken.fido.get_assertion)
        self._client_pin = None
        self._credentials = None
        self._cred_mgmt = None
        self._config = None
        self._info = None
        self._registration = None  # sealtoken.fido.make_credential
        self._assertion = None     # sealtoken.fido.get_assertion
        self._boot_ms = platform.now_ms()

    # --- the parts, each made (and its module imported) on first use ----------------------
    @property
    def client_pin(self):
        if self._client_pin is None:
            with import_room:
                from sealtoken.fido.clientpin import ClientPin

            self._client_pin = ClientPin(self.platform, self.store)
        return self._client_pin

    @property
    def credentials(self):
        if self._credentials is None:
            with import_room:
                from sealtoken.fido.credentials import Credentials

            self._credentials = Credentials(self.platform, self.store)
        return self._credentials

    @property
    def cred_mgmt(self):
        if self._cred_mgmt is None:
            with import_room:
                from sealtoken.fido.credmgmt import CredentialManagement

            self._cred_mgmt = CredentialManagement(self)
        return self._cred_mgmt

    @property
    def config(self):
        if self._config is None:
            with import_room:
                from sealtoken.fido.config import AuthenticatorConfig

            self._config = AuthenticatorConfig(self.store, self.client_pin)
        return self._config

    @property
    def registration(self):
        """The makeCredential module."""
        if self._registration is None:
            with import_room:
                from sealtoken.fido import make_credential

            self._registration = make_credential
        return self._registration

    @property
    def assertion(self):
        """The getAssertion and getNextAssertion module."""
        if self._assertion is None:
            with import_room:
                from sealtoken.fido import get_assertion

            self._assertion = get_assertion
        return self._assertion

    # --- lifecycle ------------------------------------------------------------------
    def power_off(self):
        """Power cycle: forget tokens, the key-agreement key, PIN misses, pending assertions."""
        if self._client_pin is not None:
            self._client_pin.power_off()
        self._end_enumeration()
        self.drop_pending()
        if self._credentials is not None:
            self._credentials.drop_keys()
        self._boot_ms = None

    def drop_pending(self):
        if self.pending is not None:
            self.pending.wipe()
        self.pending = None

    def _end_enumeration(self):
        if self._cred_mgmt is not None:
            self._cred_mgmt.end_enumeration()

    # --- entry point ----------------------------------------------------------------
    def process(self, request, keepalive=None):
        """One CTAP2 request (command byte || CBOR) -> status byte || CBOR."""
        if self._boot_ms is None:
            self._boot_ms = self.platform.now_ms()
        try:
            if not request:
                raise CtapError(C.CTAP1_ERR_INVALID_LENGTH, "empty request")
            if len(request) > C.CTAP2_MAX_MSG_SIZE:
                raise CtapError(_CTAP2_ERR_REQUEST_TOO_LARGE, "request too large")
            cmd = request[0]
            if cmd != _CTAP2_CMD_GET_NEXT_ASSERTION:
                self.drop_pending()
            if cmd != _CTAP2_CMD_CREDENTIAL_MANAGEMENT:
                self._end_enumeration()
            if cmd == _CTAP2_CMD_GET_INFO:
                return self.get_info()
            if cmd == _CTAP2_CMD_MAKE_CREDENTIAL:
                result = self.registration.make_credential(self, self._params(request), keepalive)
            elif cmd == _CTAP2_CMD_GET_ASSERTION:
                result = self.assertion.get_assertion(self, self._params(request), keepalive)
            elif cmd == _CTAP2_CMD_GET_NEXT_ASSERTION:
                result = self.assertion.get_next_assertion(self)
            elif cmd == _CTAP2_CMD_CLIENT_PIN:
                result = self.client_pin.process(self._params(request))
            elif cmd == C.CTAP2_CMD_RESET:
                result = self._reset(keepalive)
            elif cmd == _CTAP2_CMD_CREDENTIAL_MANAGEMENT:
                result = self.cred_mgmt.process(self._params(request))
            elif cmd == _CTAP2_CMD_CONFIG:
                result = self.config.process(self._params(request))
            elif cmd == _CTAP2_CMD_SELECTION:
                self.user_presence(keepalive)
                result = None
            else:
                raise CtapError(_CTAP1_ERR_INVALID_COMMAND, "unknown command")
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
            return bytes((_CTAP1_ERR_OTHER,))

    def get_info(self):
        """The getInfo answer: status byte || CBOR (sealtoken.fido.info)."""
        if self._info is None:
            with import_room:
                from sealtoken.fido.info import Info

            self._info = Info(self.store, self.client_pin)
        return self._info.response()

    @staticmethod
    def _params(request):
        if len(request) == 1:
            return {}
        params = cbor.decode(request[1:], max_size=C.CTAP2_MAX_MSG_SIZE)
        if not isinstance(params, dict):
            raise CtapError(C.CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "parameters are not a map")
        return params

    def user_presence(self, keepalive):
        outcome = self.platform.wait_user_presence(_CTAP2_UP_TIMEOUT_MS, keepalive)
        if outcome == UP_APPROVED:
            return
        if outcome == UP_DENIED:
            raise CtapError(_CTAP2_ERR_OPERATION_DENIED, "user refused")
        if outcome == UP_CANCELLED:
            raise CtapError(_CTAP2_ERR_KEEPALIVE_CANCEL, "cancelled")
        raise CtapError(_CTAP2_ERR_USER_ACTION_TIMEOUT, "no touch")

    # --- reset ------------------------------------------------------------------------
    def _reset(self, keepalive):
        if self.reset_window_ms is not None and self.platform.now_ms() - self._boot_ms > self.reset_window_ms:
            raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "reset only right after power-up")
        self.user_presence(keepalive)
        changes = {FIDO_KEY_MASTER: None, FIDO_KEY_PIN_HASH: None, FIDO_KEY_PIN_RETRIES: None,
                   FIDO_KEY_SIGN_COUNT: None}
        for key in self.store.keys(KEY_FIDO_FIRST, KEY_FIDO_LAST):
            changes[key] = None
        self.store.update(changes, True)   # scrub: no old copy of the master secret stays in flash
        if self._credentials is not None:
            self._credentials.drop_keys()
        self.drop_pending()
        self._end_enumeration()
        if self._client_pin is not None:
            self._client_pin.power_off()
        return None
