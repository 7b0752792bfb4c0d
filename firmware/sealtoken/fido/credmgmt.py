"""authenticatorCredentialManagement (CTAP 2.1, command 0x0A): the resident credentials.

One object lives inside the Authenticator (sealtoken.fido.ctap2) and works on its
resident records (FIDO_KEY_RK_FIRST..LAST) through the Store.

Subcommands and their authorization (pinUvAuthParam = authenticate(pinUvAuthToken,
subCommand || subCommandParams), token with the cm permission 0x04):

    01 getCredsMetadata            token without a permissions RP ID
    02 enumerateRPsBegin           token without a permissions RP ID
    03 enumerateRPsGetNextRP       none: only right after 02 / 03
    04 enumerateCredentialsBegin   token without RP ID, or bound to that RP
    05 enumerateCredentialsGetNextCredential   none: only right after 04 / 05
    06 deleteCredential            token without RP ID, or bound to the credential's RP
    07 updateUserInformation       token without RP ID, or bound to the credential's RP

Any other command (or subcommand) ends an enumeration; so does power_off.
Enumerations hold store keys and RP ID hashes only, no secret.

- rp is {"id": rpId} with the rpId as stored (its first CTAP2_MAX_STORED_RP_ID bytes).
- A credential whose id no longer opens (it cannot, short of a corrupted
  record) is left out of counts and enumerations.
- deleteCredential removes the record: the credential id is honoured only
  while its record exists (sealtoken.fido.ctap2), so it stops answering
  getAssertion and hmac-secret at once.
- updateUserInformation: user.id must be the stored one (else
  INVALID_PARAMETER); name and displayName are replaced, and removed when
  absent or empty (CTAP 2.1 section 6.8.7).

MicroPython rules: plain classes.
"""

import hashlib

from sealtoken.core import cbor
from sealtoken.core.cbor import CtapError
from sealtoken.core.hmac import ct_equal
from sealtoken.core.keys import FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST
from sealtoken.core.micro import const
from sealtoken.fido import const as C
from sealtoken.fido.clientpin import cose_p256
from sealtoken.fido.credentials import (RK_ID, RK_RP_ID, RK_RP_ID_HASH, RK_USER_DISPLAY_NAME, RK_USER_ID,
                                        RK_USER_NAME, truncate_text)
from sealtoken.fido.request import PUBLIC_KEY

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_CTAP2_PERM_CM = const(0x04)
_CTAP2_CM_SUB_COMMAND = const(0x01)
_CTAP2_CM_SUB_COMMAND_PARAMS = const(0x02)
_CTAP2_CM_PIN_UV_AUTH_PROTOCOL = const(0x03)
_CTAP2_CM_PIN_UV_AUTH_PARAM = const(0x04)
_CTAP2_CM_GET_CREDS_METADATA = const(0x01)
_CTAP2_CM_ENUMERATE_RPS_BEGIN = const(0x02)
_CTAP2_CM_ENUMERATE_RPS_NEXT = const(0x03)
_CTAP2_CM_ENUMERATE_CREDS_BEGIN = const(0x04)
_CTAP2_CM_ENUMERATE_CREDS_NEXT = const(0x05)
_CTAP2_CM_DELETE_CREDENTIAL = const(0x06)
_CTAP2_CM_UPDATE_USER_INFO = const(0x07)
_CTAP2_CM_PARAM_RP_ID_HASH = const(0x01)
_CTAP2_CM_PARAM_CREDENTIAL_ID = const(0x02)
_CTAP2_CM_PARAM_USER = const(0x03)
_CTAP2_CM_RESP_EXISTING_CREDS = const(0x01)
_CTAP2_CM_RESP_REMAINING_CREDS = const(0x02)
_CTAP2_CM_RESP_RP = const(0x03)
_CTAP2_CM_RESP_RP_ID_HASH = const(0x04)
_CTAP2_CM_RESP_TOTAL_RPS = const(0x05)
_CTAP2_CM_RESP_USER = const(0x06)
_CTAP2_CM_RESP_CREDENTIAL_ID = const(0x07)
_CTAP2_CM_RESP_PUBLIC_KEY = const(0x08)
_CTAP2_CM_RESP_TOTAL_CREDENTIALS = const(0x09)
_CTAP2_CM_RESP_CRED_PROTECT = const(0x0A)


class CredentialManagement:
    def __init__(self, authenticator):
        self.auth = authenticator
        self.store = authenticator.store
        self.client_pin = authenticator.client_pin
        self._rps = None       # [(rp_id, rp_id_hash)] still to hand out
        self._creds = None     # [store key] still to hand out

    def end_enumeration(self):
        self._rps = None
        self._creds = None

    # --- entry point ------------------------------------------------------------------
    def process(self, params):
        sub = cbor.get(params, _CTAP2_CM_SUB_COMMAND, cbor.UINT, True)
        sub_params = cbor.get(params, _CTAP2_CM_SUB_COMMAND_PARAMS, cbor.MAP)
        version = cbor.get(params, _CTAP2_CM_PIN_UV_AUTH_PROTOCOL, cbor.UINT)
        param = cbor.get(params, _CTAP2_CM_PIN_UV_AUTH_PARAM, cbor.BYTES)
        if sub == _CTAP2_CM_ENUMERATE_RPS_NEXT:
            return self._next_rp()
        if sub == _CTAP2_CM_ENUMERATE_CREDS_NEXT:
            return self._next_credential()
        self.end_enumeration()
        if sub not in (_CTAP2_CM_GET_CREDS_METADATA, _CTAP2_CM_ENUMERATE_RPS_BEGIN,
                       _CTAP2_CM_ENUMERATE_CREDS_BEGIN, _CTAP2_CM_DELETE_CREDENTIAL,
                       _CTAP2_CM_UPDATE_USER_INFO):
            raise CtapError(C.CTAP2_ERR_INVALID_SUBCOMMAND, "unsupported credMgmt subcommand")
        if param is None:
            raise CtapError(C.CTAP2_ERR_PUAT_REQUIRED, "pinUvAuthParam required")
        if version is None:
            raise CtapError(C.CTAP2_ERR_MISSING_PARAMETER, "pinUvAuthProtocol missing")
        message = bytes((sub,))
        if sub_params is not None:
            message += cbor.encode(sub_params)   # the request is canonical: same bytes
        self.client_pin.check_token(version, message, param, _CTAP2_PERM_CM)
        if sub == _CTAP2_CM_GET_CREDS_METADATA:
            self._require_no_rp_binding()
            return self._metadata()
        if sub == _CTAP2_CM_ENUMERATE_RPS_BEGIN:
            self._require_no_rp_binding()
            return self._rps_begin()
        if sub_params is None:
            raise CtapError(C.CTAP2_ERR_MISSING_PARAMETER, "subCommandParams missing")
        if sub == _CTAP2_CM_ENUMERATE_CREDS_BEGIN:
            rp_id_hash = cbor.get(sub_params, _CTAP2_CM_PARAM_RP_ID_HASH, cbor.BYTES, True)
            self._require_rp_binding(rp_id_hash)
            return self._creds_begin(rp_id_hash)
        key, record = self._find(sub_params)
        self._require_rp_binding(record[RK_RP_ID_HASH])
        if sub == _CTAP2_CM_DELETE_CREDENTIAL:
            self.store.update({key: None})
            return None
        return self._update_user(key, record, sub_params)

    # --- token binding ----------------------------------------------------------------
    def _require_no_rp_binding(self):
        if self.client_pin.token_rp_id() is not None:
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "token bound to an RP")

    def _require_rp_binding(self, rp_id_hash):
        bound = self.client_pin.token_rp_id()
        if bound is not None and not ct_equal(hashlib.sha256(bound.encode("utf-8")).digest(), rp_id_hash):
            raise CtapError(C.CTAP2_ERR_PIN_AUTH_INVALID, "token bound to another RP")

    # --- records ----------------------------------------------------------------------
    def _usable(self):
        """[(store key, record)] of every resident credential whose id opens."""
        out = []
        for key, record in self.auth.credentials.resident_slots():
            cred = self.auth.credentials.open_id(record[RK_RP_ID_HASH], record[RK_ID])
            if cred is None:
                continue
            cred.wipe()
            out.append((key, record))
        return out

    def _find(self, sub_params):
        descriptor = cbor.get(sub_params, _CTAP2_CM_PARAM_CREDENTIAL_ID, cbor.MAP, True)
        cred_id = cbor.get(descriptor, "id", cbor.BYTES, True)
        cbor.get(descriptor, "type", cbor.TEXT, True)
        for key, record in self._usable():
            if ct_equal(record[RK_ID], cred_id):
                return key, record
        raise CtapError(C.CTAP2_ERR_NO_CREDENTIALS, "no such credential")

    # --- subcommands ------------------------------------------------------------------
    def _metadata(self):
        used = len(self.store.keys(FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST))
        return {_CTAP2_CM_RESP_EXISTING_CREDS: len(self._usable()),
                _CTAP2_CM_RESP_REMAINING_CREDS: C.CTAP2_MAX_RESIDENT - used}

    def _rps_begin(self):
        rps = []
        seen = []
        for _, record in self._usable():
            rp_id_hash = record[RK_RP_ID_HASH]
            if rp_id_hash in seen:
                continue
            seen.append(rp_id_hash)
            rp_id = record.get(RK_RP_ID)
            rps.append((rp_id if isinstance(rp_id, str) else "", rp_id_hash))
        if not rps:
            raise CtapError(C.CTAP2_ERR_NO_CREDENTIALS, "no resident credentials")
        self._rps = rps[1:]
        response = self._rp_entry(rps[0])
        response[_CTAP2_CM_RESP_TOTAL_RPS] = len(rps)
        return response

    @staticmethod
    def _rp_entry(rp):
        return {_CTAP2_CM_RESP_RP: {"id": rp[0]}, _CTAP2_CM_RESP_RP_ID_HASH: rp[1]}

    def _next_rp(self):
        self._creds = None
        if not self._rps:
            self.end_enumeration()
            raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "no RP enumeration in progress")
        return self._rp_entry(self._rps.pop(0))

    def _creds_begin(self, rp_id_hash):
        keys = [key for key, record in self._usable() if record[RK_RP_ID_HASH] == rp_id_hash]
        if not keys:
            raise CtapError(C.CTAP2_ERR_NO_CREDENTIALS, "no credentials for this RP")
        response = self._cred_entry(keys[0])
        self._creds = keys[1:]
        response[_CTAP2_CM_RESP_TOTAL_CREDENTIALS] = len(keys)
        return response

    def _next_credential(self):
        self._rps = None
        if not self._creds:
            self.end_enumeration()
            raise CtapError(C.CTAP2_ERR_NOT_ALLOWED, "no credential enumeration in progress")
        return self._cred_entry(self._creds.pop(0))

    def _cred_entry(self, key):
        record = None
        for k, r in self.auth.credentials.resident_slots():
            if k == key:
                record = r
        cred = None if record is None else self.auth.credentials.open_id(record[RK_RP_ID_HASH], record[RK_ID])
        if cred is None:
            self.end_enumeration()
            raise CtapError(C.CTAP2_ERR_NO_CREDENTIALS, "credential gone")
        try:
            x, y = self.auth.platform.p256_public(bytes(cred.private))
            protect = cred.protect()
        finally:
            cred.wipe()
        user = {"id": record[RK_USER_ID]}
        for field, name in ((RK_USER_NAME, "name"), (RK_USER_DISPLAY_NAME, "displayName")):
            if isinstance(record.get(field), str):
                user[name] = record[field]
        return {_CTAP2_CM_RESP_USER: user,
                _CTAP2_CM_RESP_CREDENTIAL_ID: {"id": record[RK_ID], "type": PUBLIC_KEY},
                _CTAP2_CM_RESP_PUBLIC_KEY: cose_p256(bytes(x), bytes(y), C.COSE_ALG_ES256),
                _CTAP2_CM_RESP_CRED_PROTECT: protect}

    def _update_user(self, key, record, sub_params):
        user = cbor.get(sub_params, _CTAP2_CM_PARAM_USER, cbor.MAP, True)
        user_id = cbor.get(user, "id", cbor.BYTES, True)
        name = cbor.get(user, "name", cbor.TEXT)
        display_name = cbor.get(user, "displayName", cbor.TEXT)
        if not ct_equal(user_id, record[RK_USER_ID]):
            raise CtapError(C.CTAP1_ERR_INVALID_PARAMETER, "user id differs")
        new = dict(record)
        for field, value in ((RK_USER_NAME, name), (RK_USER_DISPLAY_NAME, display_name)):
            if value:
                new[field] = truncate_text(value, C.CTAP2_MAX_STORED_NAME)
            elif field in new:
                del new[field]
        self.store.put(key, cbor.encode(new))
        return None
