"""Fido2Backend: R = CTAP2 hmac-secret output1 (docs/spec.md section 3, docs/fido2.md).

Works over any python-fido2 `CtapDevice` (`CtapHidDevice`: USB, or a provider's emulated key)
and over a PC/SC connection, where responses (`matches`, `respond`) go through nfcctap.py and
python-fido2's `Ctap2` (over its `CtapPcscDevice`) is opened only to enroll or recover. It talks
low-level CTAP2 (getInfo, clientPin, makeCredential, getAssertion with the hmac-secret extension
input built by hand with PIN/UV protocol 2, else 1: pin.py), never `Fido2Client`.

Enrollment makes one credential on RP ID "sealcodes:" with hmac-secret, discoverable when the
key can store one (else non-discoverable: the credential id in the profile is then the only way
back to it). The user-verification state is fixed at enrollment and recorded: CTAP 2.1 keeps
two secrets per credential, one for assertions with UV and one without, so the same key and
challenge give different R in the two states.

Nothing secret leaves this package except R, returned as a bytearray the caller wipes; PINs,
shared secrets and outputs never appear in messages or logs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from fido2.ctap import CtapError

from ...errors import DeviceError, InvalidInputError, RecoveryUnsupportedError
from ...records import Enrollment
from ..base import Backend, Interaction, require_challenge
from .assertion import (
    FLAG,
    HMAC_SECRET,
    PIN_MAX_BYTES,
    PIN_MIN_LEN,
    RP_ID_HASH,
    AssertionSession,
    pin_protocol,
    pin_text,
    uv_available,
)
from .enrollment import BACKEND_NAME, RP_ID, CheckedEnrollment, make_enrollment
from .errors import ERR, MISMATCH, CredentialNotHeldError, device_errors, keepalive_handler, log
from .p256 import COSE_ES256, public_key
from .pin import PERMISSION_MAKE_CREDENTIAL

if TYPE_CHECKING:  # enrollment.py is loaded only to enroll
    from ...enrollment import Fido2Options

RP_NAME = "sealcodes"
USER_NAME = "sealcodes"

UV_REQUIRED = "required"
UV_DISCOURAGED = "discouraged"
UV_CHOICES = (UV_REQUIRED, UV_DISCOURAGED)

_CAPABILITY_CBOR = 0x04


class Fido2Backend(Backend):
    """hmac-secret on a CTAP2 authenticator (see the module documentation)."""

    name = BACKEND_NAME
    pin_name = "FIDO2 PIN"

    def __init__(self, device):
        """`device`: a python-fido2 CtapDevice, or a sealcodes PcscConnection (the caller closes it)."""
        self._connection = None
        self._full_ctap = None
        if hasattr(device, "ctap_device"):  # a PC/SC card: responses need no python-fido2 Ctap2
            from .nfcctap import NfcCtap2

            self._connection, self.device = device, None
            with device_errors():
                self._ctap = NfcCtap2(device)
        else:
            self.device = device
            if not device.capabilities & _CAPABILITY_CBOR:
                raise DeviceError("this key does not support FIDO2 (CTAP2), only older protocols")
            self._ctap = self._full_ctap = self._python_fido2_ctap(device)
        self._info = self._ctap.info
        self._proven = None  # credential id matches() proved present, so respond() need not ask again

    @staticmethod
    def _python_fido2_ctap(device):
        from fido2.ctap2 import Ctap2

        with device_errors():
            return Ctap2(device)

    def _full(self):
        """python-fido2's Ctap2, for what nfcctap.py does not do (enroll, recovery, setting a PIN)."""
        if self._full_ctap is None:
            try:
                device = self._connection.ctap_device()
            except ValueError:
                raise DeviceError("no FIDO2 application on this card") from None
            self._full_ctap = self._python_fido2_ctap(device)
            self._info = self._full_ctap.info
        return self._full_ctap

    # --- what the key offers --------------------------------------------------------
    def _refresh(self):
        with device_errors():
            self._info = self._full().get_info()
        return self._info

    def info(self) -> dict:
        """What the key supports (no secrets), read anew."""
        info = self._refresh()
        options = info.options
        return {
            "versions": list(info.versions),
            "aaguid": str(info.aaguid),
            "hmac_secret": HMAC_SECRET in info.extensions,
            "pin_supported": "clientPin" in options,
            "pin_set": options.get("clientPin") is True,
            "builtin_uv": options.get("uv") is True,
            "always_uv": options.get("alwaysUv") is True,
            "rk": options.get("rk") is True,
            "pin_protocols": list(info.pin_uv_protocols),
            "min_pin_length": info.min_pin_length,
        }

    def identity(self) -> dict:
        identity = {"aaguid": str(self._info.aaguid)}
        for key, attr in (("product", "product_name"), ("serial", "serial_number")):
            value = getattr(self.device, attr, None)
            if value:
                identity[key] = str(value)
        return identity

    def wrong_secret_hint(self) -> str:
        return "another key, or the credential was used with user verification other than at enrollment"

    def matches(self, enrollment: Enrollment) -> bool:
        """The key holds the enrolled credential: a silent assertion signed by its key, no PIN. A key
        that does not answer raises DeviceError: that is no proof it is another key."""
        enrolled = CheckedEnrollment(enrollment)
        session = AssertionSession(self._ctap, self._info, Interaction())
        try:
            session.check_holds_credential(enrolled.credential_id, enrolled.public_key)
        except CredentialNotHeldError:
            return False
        self._proven = enrolled.credential_id
        return True

    def _offer_pin(self, info, interaction: Interaction, force=False):
        """A key that supports a PIN but has none: offer to set one (as ykman does; `force`: without
        asking), honouring the key's minimum length; returns the refreshed info (unchanged when the
        user declines)."""
        minimum = max(PIN_MIN_LEN, info.min_pin_length or PIN_MIN_LEN)
        if not force and not interaction.confirm(f"This key has no FIDO2 PIN; user verification needs one. "
                                                 f"Set a PIN ({minimum} to {PIN_MAX_BYTES} characters) now?"):
            return info
        try:
            text = pin_text(interaction.request_pin("fido2", new=True), minimum)
        except InvalidInputError:
            raise InvalidInputError(f"this key wants a FIDO2 PIN of {minimum} to {PIN_MAX_BYTES} characters; "
                                    "no PIN was set") from None
        from fido2.ctap2.pin import ClientPin as Fido2ClientPin

        with device_errors():
            Fido2ClientPin(self._full(), pin_protocol(info)).set_pin(text)
        del text
        return self._refresh()

    # --- enrollment -----------------------------------------------------------------
    def enroll(self, interaction: Interaction, options: Fido2Options | None = None) -> Enrollment:
        """Make the sealcodes credential; returns its enrollment for the profile (no secrets).

        uv: "required" (use the PIN / built-in UV on every response), "discouraged"
        (touch only), or None: required when the key has a PIN or built-in UV.
        """
        options = options if options is not None else self.default_options()
        uv = options.uv
        if uv is not None and uv not in UV_CHOICES:
            raise InvalidInputError(f"uv must be one of {', '.join(UV_CHOICES)}")
        info = self._refresh()
        available = uv_available(info)
        if uv is None:
            use_uv = available or info.options.get("alwaysUv") is True
        else:
            use_uv = uv == UV_REQUIRED
        if use_uv and not available and info.options.get("clientPin") is False:
            info = self._offer_pin(info, interaction, options.force)
            available = uv_available(info)
        if use_uv and not available:
            settable = info.options.get("clientPin") is False
            raise DeviceError(
                "user verification was asked for, but this key has no FIDO2 PIN and no built-in "
                "verification: set a PIN on the key first"
                + (" (or let enroll set one: at a terminal, or with --force and the new PIN on stdin)"
                   if settable else "")
                + ", or enroll with --uv discouraged"
            )
        if not use_uv and info.options.get("alwaysUv") is True:
            raise DeviceError("this key always verifies the user (alwaysUv): enroll with --uv required")
        session = AssertionSession(self._full(), info, interaction)
        try:
            response, discoverable = self._make_credential(session, info.options.get("rk") is True, use_uv)
        finally:
            session.close()
        auth_data = response.auth_data
        if auth_data.rp_id_hash != RP_ID_HASH:
            raise DeviceError("the key made a credential for another RP ID")
        if not auth_data.flags & FLAG.UP:
            raise DeviceError("the key made a credential without user presence")
        if (auth_data.extensions or {}).get(HMAC_SECRET) is not True:
            raise DeviceError("the key made the credential without hmac-secret, so sealcodes cannot use it")
        credential = auth_data.credential_data
        if credential is None:
            raise DeviceError("the key sent a malformed answer (no credential)")
        cose = dict(credential.public_key)
        try:
            x, y = cose[-2], cose[-3]
            if cose.get(3) != COSE_ES256 or cose.get(-1) != 1:
                raise ValueError
            key = public_key(int.from_bytes(x, "big"), int.from_bytes(y, "big"))
        except Exception:
            raise DeviceError("the key made a credential that is not an ES256 (P-256) key") from None
        return make_enrollment(credential.credential_id, key, use_uv, discoverable, str(credential.aaguid))

    def _make_credential(self, session: AssertionSession, discoverable, use_uv):
        info, protocol = session.info, session.protocol
        # a PIN-protected key needs a token to make a credential, except a non-discoverable
        # one when it says makeCredUvNotRqd
        for rk in ((True, False) if discoverable else (False,)):
            needs_token = uv_available(info) and (
                use_uv or rk or info.options.get("makeCredUvNotRqd") is not True)
            token = session.token(PERMISSION_MAKE_CREDENTIAL) if needs_token else None
            client_data_hash = os.urandom(32)
            user = {"id": os.urandom(16), "name": USER_NAME, "displayName": USER_NAME}
            with device_errors():
                try:
                    response = self._full().make_credential(
                        client_data_hash,
                        {"id": RP_ID, "name": RP_NAME},
                        user,
                        [{"type": "public-key", "alg": COSE_ES256}],
                        extensions={HMAC_SECRET: True},
                        options={"rk": True} if rk else None,
                        pin_uv_param=protocol.authenticate(token, client_data_hash) if token else None,
                        pin_uv_protocol=protocol.VERSION if token else None,
                        on_keepalive=keepalive_handler(session.interaction),
                    )
                except CtapError as exc:
                    if rk and exc.code in (ERR.KEY_STORE_FULL, ERR.UNSUPPORTED_OPTION):
                        log.info("the key cannot store a discoverable credential: making a non-discoverable one")
                        continue
                    raise
            return response, rk
        raise DeviceError("the key could not make a credential")  # pragma: no cover

    # --- responses --------------------------------------------------------------------
    def respond(self, challenge: bytes, enrollment: Enrollment, interaction: Interaction) -> bytearray:
        """R = hmac-secret output1 for salt1 = challenge, checked (see assertion.py)."""
        return self.respond_many((challenge,), enrollment, interaction)[0]

    def respond_many(self, challenges, enrollment: Enrollment, interaction: Interaction) -> list:
        """R for one or two challenges from ONE assertion (salt1, salt2 of hmac-secret): one touch."""
        if len(challenges) > 2:
            return super().respond_many(challenges, enrollment, interaction)
        salts = [require_challenge(challenge) for challenge in challenges]
        enrolled = CheckedEnrollment(enrollment)
        info = self._info
        if not enrolled.uv and info.options.get("alwaysUv") is True:
            raise DeviceError(MISMATCH)
        session = AssertionSession(self._ctap, info, interaction)
        try:
            if self._proven != enrolled.credential_id:
                session.check_holds_credential(enrolled.credential_id, enrolled.public_key)
            self._proven = None
            return session.hmac_secrets(enrolled.credential_id, enrolled.public_key, enrolled.uv, salts)
        finally:
            session.close()

    # --- recovery without a profile -------------------------------------------------------
    def candidates(self, challenge: bytes, interaction: Interaction, credential_id: bytes | None = None):
        """Yield (Enrollment, R) for every credential and UV state the key allows, lazily (each
        assertion may need a touch, so a caller that finds its match stops asking)."""
        require_challenge(challenge)
        info = self._refresh()
        session = AssertionSession(self._full(), info, interaction)
        states = []
        if uv_available(info):
            states.append(True)
        if info.options.get("alwaysUv") is not True:
            states.append(False)
        try:
            ids = [bytes(credential_id)] if credential_id is not None else session.discoverable_credentials()
            if not ids:
                raise RecoveryUnsupportedError(
                    "no discoverable sealcodes credential on this key: the credential id from the "
                    "profile is needed (or this is not the enrolled key)"
                )
            for cred_id in ids:
                key = session.recover_public_key(cred_id)
                for use_uv in states:
                    response = session.hmac_secret(cred_id, key, use_uv, bytes(challenge))
                    yield make_enrollment(cred_id, key, use_uv, credential_id is None, str(info.aaguid)), response
        finally:
            session.close()

    def recover_responses(self, challenge: bytes, interaction: Interaction, credential_id: bytes | None = None):
        """Backend protocol: (description, R) per discoverable credential (or the one `credential_id`
        names, e.g. typed from the sheet) and UV state."""
        for enrollment, response in self.candidates(challenge, interaction, credential_id):
            state = "with" if enrollment.uv else "without"
            yield f"credential {enrollment.credential_id[:8]}, {state} user verification", response
