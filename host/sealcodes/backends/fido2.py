"""The fido2 backend: R = CTAP2 hmac-secret output1 (docs/spec.md section 3).

Works over any python-fido2 `CtapDevice`: `CtapHidDevice` (USB, or our firmware
through sealboard.ctaphid_link) and `CtapPcscDevice` (NFC-style over PC/SC).
It talks low-level CTAP2 (`Ctap2`, `ClientPin`, the hmac-secret extension
input built by hand with PIN/UV protocol 2, else 1), never `Fido2Client`.

Enrollment makes one credential on RP ID "sealcodes:" with hmac-secret,
discoverable when the key can store one (else non-discoverable: the credential
id in the profile is then the only way back to it). The user-verification
state is fixed at enrollment and recorded: CTAP 2.1 keeps two secrets per
credential, one for assertions with UV and one without, so the same key and
challenge give different R in the two states.

Before an output is used the assertion is checked (docs/security.md item 12): RP ID hash,
credential id, flags (UP; UV exactly as enrolled) and the ES256 signature over
authData || clientDataHash under the public key recorded at enrollment.

Nothing secret leaves this module except R, returned as a bytearray the caller
wipes; PINs, shared secrets and outputs never appear in messages or logs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fido2 import cbor
from fido2.ctap import STATUS, CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.webauthn import AuthenticatorData

from ..errors import (
    DeviceError,
    InvalidInputError,
    PinBlockedError,
    PinError,
    ProfileError,
    RecoveryUnsupportedError,
    SealcodesError,
)
from .base import Backend, Interaction, require_challenge, take_pin

log = logging.getLogger(__name__)

BACKEND_NAME = "fido2"
RP_ID = "sealcodes:"
RP_NAME = "sealcodes"
USER_NAME = "sealcodes"
HMAC_SECRET = "hmac-secret"
COSE_ES256 = -7
OUTPUT_LEN = 32

UV_REQUIRED = "required"
UV_DISCOURAGED = "discouraged"
UV_CHOICES = (UV_REQUIRED, UV_DISCOURAGED)

PIN_MIN_LEN = 4  # code points (CTAP 2.1 minimum)
PIN_MAX_BYTES = 63

_ERR = CtapError.ERR
_CAPABILITY_CBOR = 0x04
_FLAG = AuthenticatorData.FLAG
_RP_ID_HASH = hashlib.sha256(RP_ID.encode()).digest()

_NO_CREDENTIAL = ("this key does not hold the sealcodes credential of this profile "
                  "(wrong key, or the key's FIDO application was reset)")
_MISMATCH = ("this key answered with a different secret: wrong key, or PIN used differently "
             "than at enrollment")
_MESSAGES = {
    _ERR.NO_CREDENTIALS: _NO_CREDENTIAL,
    _ERR.INVALID_CREDENTIAL: _NO_CREDENTIAL,
    _ERR.USER_ACTION_TIMEOUT: "the key was not touched in time",
    _ERR.ACTION_TIMEOUT: "the key was not touched in time",
    _ERR.OPERATION_DENIED: "the request was refused on the key",
    _ERR.NOT_ALLOWED: "the request was refused on the key",
    _ERR.KEEPALIVE_CANCEL: "the request was cancelled",
    _ERR.PIN_NOT_SET: "this key has no FIDO2 PIN set",
    _ERR.PIN_POLICY_VIOLATION: "the PIN does not meet the key's PIN policy",
    _ERR.PIN_TOKEN_EXPIRED: "the key's PIN session expired: try again",
    _ERR.PUAT_REQUIRED: "the key requires its PIN (or built-in user verification) for this request",
    _ERR.UNSUPPORTED_ALGORITHM: "the key cannot make ES256 (P-256) credentials",
    _ERR.KEY_STORE_FULL: "the key has no room left for another credential",
    _ERR.LIMIT_EXCEEDED: "the key has no room left for another credential",
    _ERR.UV_INVALID: "built-in user verification failed",
    _ERR.REQUEST_TOO_LARGE: "the request is too large for the key",
    _ERR.CHANNEL_BUSY: "the key is busy with another application",
}

_LINK_ERRORS: tuple = (OSError,)
try:  # pyscard is a dependency, but only the PC/SC path needs it
    from smartcard.Exceptions import SmartcardException as _SmartcardException

    _LINK_ERRORS += (_SmartcardException,)
except ImportError:  # pragma: no cover
    pass
try:
    from fido2.hid import ConnectionFailure as _ConnectionFailure

    _LINK_ERRORS += (_ConnectionFailure,)
except Exception:  # pragma: no cover - fido2.hid needs a supported OS
    pass


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@contextlib.contextmanager
def _device_errors():
    """Turn every failure of the key or the link into one clear SealcodesError."""
    try:
        yield
    except SealcodesError:
        raise
    except CtapError as exc:
        code = exc.code
        if code == _ERR.PIN_BLOCKED:
            raise PinBlockedError(
                "the FIDO2 PIN of this key is blocked (no attempts left); only a reset of the key's "
                "FIDO application unblocks it, and a reset destroys the sealed secret"
            ) from None
        if code == _ERR.PIN_AUTH_BLOCKED:
            raise PinError("too many wrong PINs in a row: remove the key, insert it again, then retry") from None
        if code == _ERR.UV_BLOCKED:
            raise PinBlockedError("built-in user verification of this key is blocked: use the PIN") from None
        if code == _ERR.PIN_INVALID:
            raise PinError("wrong FIDO2 PIN") from None
        if code == _ERR.PIN_AUTH_INVALID:
            raise DeviceError("the key rejected the PIN session (try again)") from None
        message = _MESSAGES.get(code)
        if message is None:
            message = f"the key refused the request ({code})"
        raise DeviceError(message) from None
    except _LINK_ERRORS:
        raise DeviceError("the key was removed or stopped answering") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        log.debug("malformed answer from the key (%s)", sys.exc_info()[0].__name__)
        raise DeviceError("the key sent a malformed answer") from None


def _keepalive_handler(interaction: Interaction):
    prompted = []

    def on_keepalive(status):
        if status == STATUS.UPNEEDED and not prompted:
            prompted.append(True)
            interaction.touch_needed()

    return on_keepalive


# --- P-256 helpers (public key recovery from signatures, for `recover`) ------------
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
      0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _point_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % _P == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, _P) % _P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (lam * lam - x1 - x2) % _P
    return x3, (lam * (x1 - x3) - y1) % _P


def _point_mul(k, point):
    result = None
    addend = point
    while k:
        if k & 1:
            result = _point_add(result, addend)
        addend = _point_add(addend, addend)
        k >>= 1
    return result


def _recover_public_keys(message: bytes, der_signature: bytes) -> list:
    """The P-256 public keys (x, y) under which der_signature verifies for message."""
    r, s = decode_dss_signature(der_signature)
    if not (0 < r < _N and 0 < s < _N):
        return []
    e = int.from_bytes(hashlib.sha256(message).digest(), "big") % _N
    r_inv = pow(r, -1, _N)
    keys = []
    y2 = (pow(r, 3, _P) - 3 * r + _B) % _P
    y = pow(y2, (_P + 1) // 4, _P)
    if y * y % _P != y2:
        return []
    for ry in (y, _P - y):
        point = _point_add(_point_mul(s * r_inv % _N, (r, ry)), _point_mul((-e * r_inv) % _N, _G))
        if point is not None:
            keys.append(point)
    return keys


def _public_key(x: int, y: int) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def _cose_es256(key: ec.EllipticCurvePublicKey) -> dict:
    numbers = key.public_numbers()
    return {1: 2, 3: COSE_ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}


def _verify(key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    try:
        key.verify(bytes(signature), bytes(message), ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


class _Enrollment:
    """The parts of the profile metadata a response needs, checked."""

    def __init__(self, metadata: dict):
        def damaged(what):
            return ProfileError(f"the fido2 enrollment in the profile is damaged ({what})")

        if not isinstance(metadata, dict):
            raise damaged("not a mapping")
        if metadata.get("backend", BACKEND_NAME) != BACKEND_NAME:
            raise damaged("another backend")
        if metadata.get("rp_id", RP_ID) != RP_ID:
            raise damaged("RP ID")
        try:
            self.credential_id = b64url_decode(metadata["credential_id"])
        except (KeyError, ValueError, TypeError):
            raise damaged("credential id") from None
        if not 1 <= len(self.credential_id) <= 1023:
            raise damaged("credential id")
        try:
            cose = cbor.decode(b64url_decode(metadata["public_key"]))
            if cose.get(1) != 2 or cose.get(3) != COSE_ES256 or cose.get(-1) != 1:
                raise ValueError
            x, y = cose[-2], cose[-3]
            if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 32):
                raise ValueError
            self.public_key = _public_key(int.from_bytes(x, "big"), int.from_bytes(y, "big"))
        except Exception:
            raise damaged("public key") from None
        uv = metadata.get("uv")
        if not isinstance(uv, bool):
            raise damaged("user verification state")
        self.uv = uv


class Fido2Backend(Backend):
    """hmac-secret on a CTAP2 authenticator (see the module documentation)."""

    name = BACKEND_NAME

    def __init__(self, device):
        self.device = device
        if not device.capabilities & _CAPABILITY_CBOR:
            raise DeviceError("this key does not support FIDO2 (CTAP2), only older protocols")
        with _device_errors():
            self._ctap = Ctap2(device)
        self._info = self._ctap.info

    # --- what the key offers --------------------------------------------------------
    def _refresh(self):
        with _device_errors():
            self._info = self._ctap.get_info()
        return self._info

    def info(self) -> dict:
        """What the key supports (no secrets)."""
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

    def _protocol(self, info):
        if HMAC_SECRET not in info.extensions:
            raise DeviceError("this key does not support the hmac-secret extension, so sealcodes cannot use it")
        for cls in (PinProtocolV2, PinProtocolV1):
            if cls.VERSION in info.pin_uv_protocols:
                return cls()
        raise DeviceError("this key offers no PIN/UV protocol, which hmac-secret needs")

    @staticmethod
    def _uv_available(info) -> bool:
        return info.options.get("clientPin") is True or info.options.get("uv") is True

    # --- PIN / UV tokens ---------------------------------------------------------------
    def _ask_pin(self, interaction: Interaction) -> str:
        pin = take_pin(interaction.request_pin("fido2"))
        try:
            # python-fido2's ClientPin takes a str: this short-lived str is the one copy of the PIN
            # outside the wiped buffer
            text = pin.decode("utf-8") if len(pin) <= PIN_MAX_BYTES else ""
        except UnicodeDecodeError:
            text = ""
        finally:
            _wipe(pin)
        if len(text) < PIN_MIN_LEN:
            raise InvalidInputError(
                f"a FIDO2 PIN has {PIN_MIN_LEN} to {PIN_MAX_BYTES} characters"
            )
        return text

    def _offer_pin(self, info, protocol, interaction: Interaction):
        """A key that supports a PIN but has none: offer to set one (as ykman does), honouring the
        key's minimum length; returns the refreshed info (unchanged when the user declines)."""
        minimum = max(PIN_MIN_LEN, info.min_pin_length or PIN_MIN_LEN)
        if not interaction.confirm(f"This key has no FIDO2 PIN; user verification needs one. Set a PIN "
                                   f"({minimum} to {PIN_MAX_BYTES} characters) now?"):
            return info
        pin = take_pin(interaction.request_pin("fido2", new=True))
        try:
            # python-fido2's ClientPin takes a str: this short-lived str is the one copy outside the buffer
            text = pin.decode("utf-8") if len(pin) <= PIN_MAX_BYTES else ""
        except UnicodeDecodeError:
            text = ""
        finally:
            _wipe(pin)
        if len(text) < minimum:
            raise InvalidInputError(f"this key wants a FIDO2 PIN of {minimum} to {PIN_MAX_BYTES} characters; "
                                    "no PIN was set")
        with _device_errors():
            ClientPin(self._ctap, protocol).set_pin(text)
        del text
        return self._refresh()

    def _token(self, info, protocol, permissions, interaction, pin_holder):
        """A pinUvAuthToken for RP_ID: built-in UV if the key has it, else the PIN.

        pin_holder is a one-element list caching the PIN typed during one operation
        (a fresh token per request, the PIN asked once).
        """
        client_pin = ClientPin(self._ctap, protocol)
        if info.options.get("uv") is True and ClientPin.is_token_supported(info):
            with _device_errors():
                return client_pin.get_uv_token(permissions, RP_ID,
                                               on_keepalive=_keepalive_handler(interaction))
        if info.options.get("clientPin") is not True:
            raise DeviceError(
                "this credential needs user verification, but the key has no FIDO2 PIN "
                "(was its FIDO application reset?)"
            )
        if not pin_holder:
            pin_holder.append(self._ask_pin(interaction))
        with _device_errors():
            try:
                return client_pin.get_pin_token(pin_holder[0], permissions, RP_ID)
            except CtapError as exc:
                if exc.code not in (_ERR.PIN_INVALID, _ERR.PIN_AUTH_BLOCKED):
                    raise
                pin_holder.clear()
                retries = self._pin_retries(client_pin)
                left = ""
                if retries is not None:
                    left = f" ({retries} {'attempt' if retries == 1 else 'attempts'} left)"
                if exc.code == _ERR.PIN_AUTH_BLOCKED:
                    message = "too many wrong PINs in a row: remove the key, insert it again, then retry"
                else:
                    message = "wrong FIDO2 PIN"
                raise PinError(message + left, retries_left=retries) from None

    def _pin_retries(self, client_pin):
        try:
            with _device_errors():
                return int(client_pin.get_pin_retries()[0])
        except SealcodesError:
            return None

    def _shared_secret(self, protocol):
        with _device_errors():
            response = self._ctap.client_pin(protocol.VERSION, ClientPin.CMD.GET_KEY_AGREEMENT)
            return protocol.encapsulate(response[ClientPin.RESULT.KEY_AGREEMENT])

    # --- enrollment -----------------------------------------------------------------
    def enroll(self, interaction: Interaction, uv: str | None = None, **options) -> dict:
        """Make the sealcodes credential; returns its metadata for the profile (no secrets).

        uv: "required" (use the PIN / built-in UV on every response), "discouraged"
        (touch only), or None: required when the key has a PIN or built-in UV.
        """
        if uv is not None and uv not in UV_CHOICES:
            raise InvalidInputError(f"uv must be one of {', '.join(UV_CHOICES)}")
        info = self._refresh()
        protocol = self._protocol(info)
        options_ = info.options
        uv_available = self._uv_available(info)
        if uv is None:
            use_uv = uv_available or options_.get("alwaysUv") is True
        else:
            use_uv = uv == UV_REQUIRED
        if use_uv and not uv_available and options_.get("clientPin") is False:
            info = self._offer_pin(info, protocol, interaction)
            uv_available = self._uv_available(info)
        if use_uv and not uv_available:
            raise DeviceError(
                "user verification was asked for, but this key has no FIDO2 PIN and no built-in "
                "verification: set a PIN on the key first, or enroll with --uv discouraged"
            )
        if not use_uv and options_.get("alwaysUv") is True:
            raise DeviceError("this key always verifies the user (alwaysUv): enroll with --uv required")
        discoverable = options_.get("rk") is True
        pin_holder: list = []
        try:
            response, discoverable = self._make_credential(info, protocol, interaction, discoverable,
                                                           use_uv, pin_holder)
        finally:
            pin_holder.clear()
        auth_data = response.auth_data
        if auth_data.rp_id_hash != _RP_ID_HASH:
            raise DeviceError("the key made a credential for another RP ID")
        if not auth_data.flags & _FLAG.UP:
            raise DeviceError("the key made a credential without user presence")
        extensions = auth_data.extensions or {}
        if extensions.get(HMAC_SECRET) is not True:
            raise DeviceError("the key made the credential without hmac-secret, so sealcodes cannot use it")
        credential = auth_data.credential_data
        if credential is None:
            raise DeviceError("the key sent a malformed answer (no credential)")
        cose = dict(credential.public_key)
        try:
            x, y = cose[-2], cose[-3]
            if cose.get(3) != COSE_ES256 or cose.get(-1) != 1:
                raise ValueError
            public_key = _public_key(int.from_bytes(x, "big"), int.from_bytes(y, "big"))
        except Exception:
            raise DeviceError("the key made a credential that is not an ES256 (P-256) key") from None
        return {
            "backend": BACKEND_NAME,
            "rp_id": RP_ID,
            "credential_id": b64url_encode(credential.credential_id),
            "public_key": b64url_encode(cbor.encode(_cose_es256(public_key))),
            "uv": use_uv,
            "discoverable": discoverable,
            "aaguid": str(credential.aaguid),
        }

    def _make_credential(self, info, protocol, interaction, discoverable, use_uv, pin_holder):
        options_ = info.options
        # a PIN-protected key needs a token to make a credential, except a non-discoverable
        # one when it says makeCredUvNotRqd
        for rk in ((True, False) if discoverable else (False,)):
            needs_token = self._uv_available(info) and (
                use_uv or rk or options_.get("makeCredUvNotRqd") is not True)
            token = None
            if needs_token:
                token = self._token(info, protocol, ClientPin.PERMISSION.MAKE_CREDENTIAL, interaction,
                                    pin_holder)
            client_data_hash = os.urandom(32)
            user = {"id": os.urandom(16), "name": USER_NAME, "displayName": USER_NAME}
            with _device_errors():
                try:
                    response = self._ctap.make_credential(
                        client_data_hash,
                        {"id": RP_ID, "name": RP_NAME},
                        user,
                        [{"type": "public-key", "alg": COSE_ES256}],
                        extensions={HMAC_SECRET: True},
                        options={"rk": True} if rk else None,
                        pin_uv_param=protocol.authenticate(token, client_data_hash) if token else None,
                        pin_uv_protocol=protocol.VERSION if token else None,
                        on_keepalive=_keepalive_handler(interaction),
                    )
                except CtapError as exc:
                    if rk and exc.code in (_ERR.KEY_STORE_FULL, _ERR.UNSUPPORTED_OPTION):
                        log.info("the key cannot store a discoverable credential: making a non-discoverable one")
                        continue
                    raise
            return response, rk
        raise DeviceError("the key could not make a credential")  # pragma: no cover

    # --- responses --------------------------------------------------------------------
    def respond(self, challenge: bytes, enrollment: dict, interaction: Interaction) -> bytearray:
        """R = hmac-secret output1 for salt1 = challenge, checked (see module doc)."""
        require_challenge(challenge)
        enrolled = _Enrollment(enrollment)
        info = self._refresh()
        protocol = self._protocol(info)
        if not enrolled.uv and info.options.get("alwaysUv") is True:
            raise DeviceError(_MISMATCH)
        self._check_holds_credential(enrolled.credential_id, enrolled.public_key)
        pin_holder: list = []
        try:
            return self._hmac_assertion(info, protocol, enrolled.credential_id, enrolled.public_key,
                                        enrolled.uv, bytes(challenge), interaction, pin_holder)
        finally:
            pin_holder.clear()

    def _check_holds_credential(self, credential_id, public_key) -> None:
        """Before any PIN is sent: a silent (up=false) assertion must come from the enrolled
        credential, signed by its key. Another key is refused without spending a PIN try."""
        client_data_hash = os.urandom(32)
        with _device_errors():
            try:
                assertion = self._ctap.get_assertion(
                    RP_ID, client_data_hash, [{"type": "public-key", "id": credential_id}],
                    options={"up": False})
            except CtapError as exc:
                if exc.code == CtapError.ERR.NO_CREDENTIALS:
                    raise DeviceError("this key does not hold the sealcodes credential of the profile (another key, or it was "
                                      "reset); no PIN was tried") from None
                raise
        if not _verify(public_key, bytes(assertion.auth_data) + client_data_hash, assertion.signature):
            raise DeviceError("this key's answer is not signed by the enrolled credential (another key, or the "
                              "profile was altered); no PIN was tried")

    def _hmac_assertion(self, info, protocol, credential_id, public_key, use_uv, salt, interaction,
                        pin_holder) -> bytearray:
        token = None
        if use_uv:
            token = self._token(info, protocol, ClientPin.PERMISSION.GET_ASSERTION, interaction, pin_holder)
        key_agreement, shared_secret = self._shared_secret(protocol)
        salt_enc = protocol.encrypt(shared_secret, salt)
        extension = {HMAC_SECRET: {1: key_agreement, 2: salt_enc,
                                   3: protocol.authenticate(shared_secret, salt_enc), 4: protocol.VERSION}}
        client_data_hash = os.urandom(32)
        with _device_errors():
            assertion = self._ctap.get_assertion(
                RP_ID,
                client_data_hash,
                [{"type": "public-key", "id": credential_id}],
                extensions=extension,
                pin_uv_param=protocol.authenticate(token, client_data_hash) if token else None,
                pin_uv_protocol=protocol.VERSION if token else None,
                on_keepalive=_keepalive_handler(interaction),
            )
        auth_data = assertion.auth_data
        # every check before the output is touched (docs/security.md item 12)
        if auth_data.rp_id_hash != _RP_ID_HASH:
            raise DeviceError("the key answered for another RP ID")
        answered_id = (assertion.credential or {}).get("id", credential_id)
        if bytes(answered_id) != bytes(credential_id):
            raise DeviceError("the key answered with another credential")
        if not auth_data.flags & _FLAG.UP:
            raise DeviceError("the key answered without user presence")
        if bool(auth_data.flags & _FLAG.UV) != use_uv:
            raise DeviceError(_MISMATCH)
        if not _verify(public_key, bytes(auth_data) + client_data_hash, assertion.signature):
            raise DeviceError(
                "the key's answer is not signed by the enrolled credential: wrong key, "
                "or the profile was altered"
            )
        encrypted = (auth_data.extensions or {}).get(HMAC_SECRET)
        if not isinstance(encrypted, bytes) or not auth_data.flags & _FLAG.ED:
            raise DeviceError("the key answered without the hmac-secret output")
        try:
            plain = protocol.decrypt(shared_secret, encrypted)
        except Exception:
            raise DeviceError("the key sent a malformed hmac-secret output") from None
        if len(plain) != OUTPUT_LEN:
            raise DeviceError("the key sent a malformed hmac-secret output")
        return bytearray(plain)

    # --- recovery without a profile -------------------------------------------------------
    def _credentials(self, credential_id=None) -> list:
        """Credential ids on RP_ID (discoverable ones, or just credential_id)."""
        if credential_id is not None:
            return [bytes(credential_id)]
        with _device_errors():
            try:
                first = self._ctap.get_assertion(RP_ID, os.urandom(32), options={"up": False})
            except CtapError as exc:
                if exc.code != _ERR.NO_CREDENTIALS:
                    raise
                raise RecoveryUnsupportedError(
                    "no discoverable sealcodes credential on this key: the credential id from the "
                    "profile is needed (or this is not the enrolled key)"
                ) from None
            found = [first]
            for _ in range(1, min(first.number_of_credentials or 1, 32)):
                found.append(self._ctap.get_next_assertion())
        return [bytes(a.credential["id"]) for a in found]

    def _recover_public_key(self, credential_id):
        """The credential's public key, from the signatures of two silent assertions."""
        signed = []
        for _ in range(2):
            cdh = os.urandom(32)
            with _device_errors():
                assertion = self._ctap.get_assertion(
                    RP_ID, cdh, [{"type": "public-key", "id": credential_id}], options={"up": False})
            if assertion.auth_data.rp_id_hash != _RP_ID_HASH:
                raise DeviceError("the key answered for another RP ID")
            signed.append((bytes(assertion.auth_data) + cdh, assertion.signature))
        message, signature = signed[0]
        for x, y in _recover_public_keys(message, signature):
            key = _public_key(x, y)
            if all(_verify(key, m, s) for m, s in signed):
                return key
        raise DeviceError("the key's signatures do not verify under any P-256 key")

    def _candidates(self, challenge: bytes, interaction: Interaction, credential_id: bytes | None = None):
        """Yield (enrollment metadata, R) for every credential and UV state the key allows, lazily
        (each assertion may need a touch, so a caller that finds its match stops asking)."""
        require_challenge(challenge)
        info = self._refresh()
        protocol = self._protocol(info)
        states = []
        if self._uv_available(info):
            states.append(True)
        if info.options.get("alwaysUv") is not True:
            states.append(False)
        pin_holder: list = []
        try:
            for cred_id in self._credentials(credential_id):
                public_key = self._recover_public_key(cred_id)
                for use_uv in states:
                    response = self._hmac_assertion(info, protocol, cred_id, public_key, use_uv,
                                                    bytes(challenge), interaction, pin_holder)
                    enrollment = {
                        "backend": BACKEND_NAME,
                        "rp_id": RP_ID,
                        "credential_id": b64url_encode(cred_id),
                        "public_key": b64url_encode(cbor.encode(_cose_es256(public_key))),
                        "uv": use_uv,
                        "discoverable": credential_id is None,
                        "aaguid": str(info.aaguid),
                    }
                    yield enrollment, response
        finally:
            pin_holder.clear()

    def recover(self, challenge: bytes, interaction: Interaction, credential_id: bytes | None = None,
                accept=None) -> list:
        """Candidate (enrollment, R) pairs for every credential and UV state the key allows.

        For a lost profile: the library derives the fingerprint of each candidate
        and keeps the one printed on the user's sheet. `accept(R) -> bool` may stop
        the search at the first match (sparing touches). Returns a list of dicts
        {"enrollment": metadata as enroll returns it, "response": bytearray R}.
        """
        candidates = []
        for enrollment, response in self._candidates(challenge, interaction, credential_id):
            candidate = {"enrollment": enrollment, "response": response}
            if accept is not None and accept(response):
                for other in candidates:
                    _wipe(other["response"])
                return [candidate]
            candidates.append(candidate)
        return candidates

    def recover_responses(self, challenge: bytes, interaction: Interaction, credential_id: bytes | None = None):
        """Backend protocol: (description, R) per discoverable credential (or the one `credential_id`
        names, e.g. typed from the sheet) and UV state."""
        for enrollment, response in self._candidates(challenge, interaction, credential_id):
            state = "with" if enrollment["uv"] else "without"
            yield f"credential {enrollment['credential_id'][:8]}, {state} user verification", response


def _wipe(buf: bytearray) -> None:
    for i in range(len(buf)):
        buf[i] = 0


def recover_candidates(device, challenge: bytes, interaction: Interaction, credential_id: bytes | None = None,
                       accept=None) -> list:
    """Fido2Backend(device).recover(...): see Fido2Backend.recover."""
    return Fido2Backend(device).recover(challenge, interaction, credential_id=credential_id, accept=accept)
