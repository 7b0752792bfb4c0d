"""fido2 backend: PIN/UV tokens and the checked hmac-secret assertion.

One `AssertionSession` per operation: it agrees on one shared secret with the key and uses it
both for the PIN token and for the hmac-secret salt (CTAP 2.1 allows it; a second key
agreement would cost a message), asks for the PIN at most once, and checks every assertion
before its output is touched (docs/security.md): RP ID hash, credential id, flags (UP; UV
exactly as enrolled) and the ES256 signature over authData || clientDataHash.
"""

from __future__ import annotations

import enum
import hashlib
import os

from fido2.ctap import CtapError

from ...errors import DeviceError, InvalidInputError, PinError, SealcodesError
from ...memory import wipe
from ..base import take_pin
from .enrollment import RP_ID
from .errors import ERR, MISMATCH, PIN_AUTH_BLOCKED, CredentialNotHeldError, device_errors, keepalive_handler
from .p256 import public_key as _public_key
from .p256 import recover_public_keys, verify
from .pin import PERMISSION_GET_ASSERTION, PROTOCOLS, ClientPin, token_supported

HMAC_SECRET = "hmac-secret"
OUTPUT_LEN = 32
PIN_MIN_LEN = 4  # code points (CTAP 2.1 minimum)
PIN_MAX_BYTES = 63



class FLAG(enum.IntFlag):
    """authData flags (WebAuthn 6.1)."""

    UP = 0x01
    UV = 0x04
    AT = 0x40
    ED = 0x80


RP_ID_HASH = hashlib.sha256(RP_ID.encode()).digest()


def pin_protocol(info):
    """PIN/UV protocol 2 if the key has it, else 1; refuses a key without hmac-secret."""
    if HMAC_SECRET not in info.extensions:
        raise DeviceError("this key does not support the hmac-secret extension, so sealcodes cannot use it")
    for cls in PROTOCOLS:
        if cls.VERSION in info.pin_uv_protocols:
            return cls()
    raise DeviceError("this key offers no PIN/UV protocol, which hmac-secret needs")


def uv_available(info) -> bool:
    return info.options.get("clientPin") is True or info.options.get("uv") is True


def pin_bytes(given, minimum: int) -> bytearray:
    """The PIN an Interaction returned, checked: UTF-8, `minimum` to 63 bytes' worth of code points.
    The caller owns (and wipes) the bytearray; a refused PIN is wiped here."""
    pin = take_pin(given)
    try:
        if len(pin) > PIN_MAX_BYTES:
            raise ValueError
        pin.decode("utf-8")  # only checked: the short-lived str is dropped at once
        characters = sum(1 for b in pin if b & 0xC0 != 0x80)
        if characters < minimum:
            raise ValueError
    except ValueError:
        wipe(pin)
        raise InvalidInputError(f"a FIDO2 PIN has {minimum} to {PIN_MAX_BYTES} characters") from None
    return pin


def pin_text(given, minimum: int) -> str:
    """The PIN as the str python-fido2's ClientPin.set_pin takes: that short-lived str is the one
    copy of the PIN outside a wiped buffer."""
    pin = pin_bytes(given, minimum)
    try:
        return pin.decode("utf-8")
    finally:
        wipe(pin)


class AssertionSession:
    """PIN tokens and hmac-secret assertions for one operation on one key."""

    def __init__(self, ctap, info, interaction):
        self.ctap = ctap
        self.info = info
        self.protocol = pin_protocol(info)
        self.interaction = interaction
        self.client_pin = ClientPin(ctap, self.protocol)
        self._pin = None

    def close(self):
        if self._pin is not None:
            wipe(self._pin)
        self._pin = None
        self.client_pin.forget_agreement()

    # --- PIN / UV tokens ---------------------------------------------------------------
    def _ask_pin(self) -> bytearray:
        return pin_bytes(self.interaction.request_pin("fido2"), PIN_MIN_LEN)

    def token(self, permissions):
        """A pinUvAuthToken for RP_ID: built-in UV if the key has it, else the PIN (asked once)."""
        info = self.info
        if info.options.get("uv") is True and token_supported(info):
            with device_errors():
                return self.client_pin.get_uv_token(permissions, RP_ID,
                                                    on_keepalive=keepalive_handler(self.interaction))
        if info.options.get("clientPin") is not True:
            raise DeviceError(
                "this credential needs user verification, but the key has no FIDO2 PIN "
                "(was its FIDO application reset?)"
            )
        if self._pin is None:
            self._pin = self._ask_pin()
        with device_errors():
            try:
                return self.client_pin.get_pin_token(self._pin, permissions, RP_ID, info)
            except CtapError as exc:
                if exc.code not in (ERR.PIN_INVALID, ERR.PIN_AUTH_BLOCKED):
                    raise
                wipe(self._pin)
                self._pin = None
                self.client_pin.forget_agreement()  # the key makes a new one after a wrong PIN
                retries = self._pin_retries()
                left = ""
                if retries is not None:
                    left = f" ({retries} {'attempt' if retries == 1 else 'attempts'} left)"
                message = PIN_AUTH_BLOCKED if exc.code == ERR.PIN_AUTH_BLOCKED else "wrong FIDO2 PIN"
                raise PinError(message + left, retries_left=retries) from None

    def _pin_retries(self):
        try:
            with device_errors():
                return self.client_pin.get_pin_retries()
        except SealcodesError:
            return None

    # --- assertions ------------------------------------------------------------------------
    def check_holds_credential(self, credential_id, public_key) -> None:
        """Before any PIN is sent: a silent (up=false) assertion must come from the enrolled
        credential, signed by its key. Another key is refused without spending a PIN try."""
        client_data_hash = os.urandom(32)
        with device_errors():
            try:
                assertion = self.ctap.get_assertion(
                    RP_ID, client_data_hash, [{"type": "public-key", "id": credential_id}],
                    options={"up": False})
            except CtapError as exc:
                # keys differ in which of the two they answer for a credential they do not hold
                if exc.code in (ERR.NO_CREDENTIALS, ERR.INVALID_CREDENTIAL):
                    raise CredentialNotHeldError("this key does not hold the sealcodes credential of the profile "
                                                 "(another key, or it was reset); no PIN was tried") from None
                raise
        if not verify(public_key, bytes(assertion.auth_data) + client_data_hash, assertion.signature):
            raise CredentialNotHeldError("this key's answer is not signed by the enrolled credential (another key, or "
                                         "the profile was altered); no PIN was tried")

    def hmac_secret(self, credential_id, public_key, use_uv, salt) -> bytearray:
        """hmac-secret output1 for salt, from the credential, checked (module doc)."""
        return self.hmac_secrets(credential_id, public_key, use_uv, (salt,))[0]

    def hmac_secrets(self, credential_id, public_key, use_uv, salts) -> list:
        """hmac-secret outputs for one or two salts (salt1, salt2) from ONE checked assertion: one
        touch, one PIN token. Caller wipes each output."""
        if not 1 <= len(salts) <= 2 or any(len(salt) != OUTPUT_LEN for salt in salts):
            raise InvalidInputError("hmac-secret takes one or two 32-byte salts")
        protocol = self.protocol
        token = self.token(PERMISSION_GET_ASSERTION) if use_uv else None
        with device_errors():
            key_agreement, shared_secret = self.client_pin.shared_secret()
        salt_enc = protocol.encrypt(shared_secret, b"".join(bytes(salt) for salt in salts))
        extension = {HMAC_SECRET: {1: key_agreement, 2: salt_enc,
                                   3: protocol.authenticate(shared_secret, salt_enc), 4: protocol.VERSION}}
        client_data_hash = os.urandom(32)
        with device_errors():
            assertion = self.ctap.get_assertion(
                RP_ID,
                client_data_hash,
                [{"type": "public-key", "id": credential_id}],
                extensions=extension,
                pin_uv_param=protocol.authenticate(token, client_data_hash) if token else None,
                pin_uv_protocol=protocol.VERSION if token else None,
                on_keepalive=keepalive_handler(self.interaction),
            )
        auth_data = assertion.auth_data
        if auth_data.rp_id_hash != RP_ID_HASH:
            raise DeviceError("the key answered for another RP ID")
        answered_id = (assertion.credential or {}).get("id", credential_id)
        if bytes(answered_id) != bytes(credential_id):
            raise DeviceError("the key answered with another credential")
        if not auth_data.flags & FLAG.UP:
            raise DeviceError("the key answered without user presence")
        if bool(auth_data.flags & FLAG.UV) != use_uv:
            raise DeviceError(MISMATCH)
        if not verify(public_key, bytes(auth_data) + client_data_hash, assertion.signature):
            raise DeviceError(
                "the key's answer is not signed by the enrolled credential: wrong key, "
                "or the profile was altered"
            )
        encrypted = (auth_data.extensions or {}).get(HMAC_SECRET)
        if not isinstance(encrypted, bytes) or not auth_data.flags & FLAG.ED:
            raise DeviceError("the key answered without the hmac-secret output")
        try:
            plain = bytearray(protocol.decrypt(shared_secret, encrypted))
        except Exception:
            raise DeviceError("the key sent a malformed hmac-secret output") from None
        try:
            if len(plain) != OUTPUT_LEN * len(salts):
                raise DeviceError("the key sent a malformed hmac-secret output")
            return [plain[i:i + OUTPUT_LEN] for i in range(0, len(plain), OUTPUT_LEN)]
        finally:
            wipe(plain)

    # --- without a profile -------------------------------------------------------------------
    def discoverable_credentials(self) -> list:
        """Ids of the discoverable credentials on RP_ID ([] when there are none)."""
        with device_errors():
            try:
                first = self.ctap.get_assertion(RP_ID, os.urandom(32), options={"up": False})
            except CtapError as exc:
                if exc.code != ERR.NO_CREDENTIALS:
                    raise
                return []
            found = [first]
            for _ in range(1, min(first.number_of_credentials or 1, 32)):
                found.append(self.ctap.get_next_assertion())
        return [bytes(a.credential["id"]) for a in found]

    def recover_public_key(self, credential_id):
        """The credential's public key, from the signatures of two silent assertions."""
        signed = []
        for _ in range(2):
            cdh = os.urandom(32)
            with device_errors():
                assertion = self.ctap.get_assertion(
                    RP_ID, cdh, [{"type": "public-key", "id": credential_id}], options={"up": False})
            if assertion.auth_data.rp_id_hash != RP_ID_HASH:
                raise DeviceError("the key answered for another RP ID")
            signed.append((bytes(assertion.auth_data) + cdh, assertion.signature))
        message, signature = signed[0]
        for x, y in recover_public_keys(message, signature):
            key = _public_key(x, y)
            if all(verify(key, m, s) for m, s in signed):
                return key
        raise DeviceError("the key's signatures do not verify under any P-256 key")
