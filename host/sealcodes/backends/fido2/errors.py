"""fido2 backend: every failure of a FIDO key or its link as one clear SealcodesError."""

from __future__ import annotations

import contextlib
import struct
import sys

from fido2.ctap import STATUS, CtapError

from ...errors import DeviceError, PinBlockedError, PinError, SealcodesError
from ...log import get_logger

log = get_logger("sealcodes.backends.fido2")

ERR = CtapError.ERR

NO_CREDENTIAL = ("this key does not hold the sealcodes credential of this profile "
                 "(wrong key, or the key's FIDO application was reset)")
MISMATCH = ("this key answered with a different secret: wrong key, or PIN used differently "
            "than at enrollment")
PIN_AUTH_BLOCKED = "too many wrong PINs in a row: remove the key, insert it again, then retry"


class CredentialNotHeldError(DeviceError):
    """The key answered, and not with the enrolled credential: another key (a link that fails is
    not this: it says nothing about which key is there)."""


_MESSAGES = {
    ERR.NO_CREDENTIALS: NO_CREDENTIAL,
    ERR.INVALID_CREDENTIAL: NO_CREDENTIAL,
    ERR.USER_ACTION_TIMEOUT: "the key was not touched in time",
    ERR.ACTION_TIMEOUT: "the key was not touched in time",
    ERR.OPERATION_DENIED: "the request was refused on the key",
    ERR.NOT_ALLOWED: "the request was refused on the key",
    ERR.KEEPALIVE_CANCEL: "the request was cancelled",
    ERR.PIN_NOT_SET: "this key has no FIDO2 PIN set",
    ERR.PIN_POLICY_VIOLATION: "the PIN does not meet the key's PIN policy",
    ERR.PIN_TOKEN_EXPIRED: "the key's PIN session expired: try again",
    ERR.PUAT_REQUIRED: "the key requires its PIN (or built-in user verification) for this request",
    ERR.UNSUPPORTED_ALGORITHM: "the key cannot make ES256 (P-256) credentials",
    ERR.KEY_STORE_FULL: "the key has no room left for another credential",
    ERR.LIMIT_EXCEEDED: "the key has no room left for another credential",
    ERR.UV_INVALID: "built-in user verification failed",
    ERR.REQUEST_TOO_LARGE: "the request is too large for the key",
    ERR.CHANNEL_BUSY: "the key is busy with another application",
}


def _link_errors() -> tuple:
    errors: tuple = (OSError,)
    try:  # pyscard is a dependency, but only the PC/SC path needs it
        from smartcard.Exceptions import SmartcardException

        errors += (SmartcardException,)
    except ImportError:  # pragma: no cover
        pass
    hid = sys.modules.get("fido2.hid")  # loaded when a key is on USB HID; PC/SC does not need it
    if hid is not None:
        errors += (hid.ConnectionFailure,)
    return errors


@contextlib.contextmanager
def device_errors():
    """Turn every failure of the key or the link into one clear SealcodesError."""
    link_errors = _link_errors()
    try:
        yield
    except SealcodesError:
        raise
    except CtapError as exc:
        code = exc.code
        if code == ERR.PIN_BLOCKED:
            raise PinBlockedError(
                "the FIDO2 PIN of this key is blocked (no attempts left); only a reset of the key's "
                "FIDO application unblocks it, and a reset destroys the sealed secret"
            ) from None
        if code == ERR.PIN_AUTH_BLOCKED:
            raise PinError(PIN_AUTH_BLOCKED) from None
        if code == ERR.UV_BLOCKED:
            raise PinBlockedError("built-in user verification of this key is blocked: use the PIN") from None
        if code == ERR.PIN_INVALID:
            raise PinError("wrong FIDO2 PIN") from None
        if code == ERR.PIN_AUTH_INVALID:
            raise DeviceError("the key rejected the PIN session (try again)") from None
        message = _MESSAGES.get(code)
        if message is None:
            message = f"the key refused the request ({code})"
        raise DeviceError(message) from None
    except link_errors:
        raise DeviceError("the key was removed or stopped answering") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error, RecursionError):
        # CBOR the key sent that does not decode, or decodes to the wrong shapes
        log.debug("malformed answer from the key (%s)", sys.exc_info()[0].__name__)
        raise DeviceError("the key sent a malformed answer") from None


def keepalive_handler(interaction):
    """python-fido2's on_keepalive: tells the user once when the key waits for a touch."""
    prompted = []

    def on_keepalive(status):
        if status == STATUS.UPNEEDED and not prompted:
            prompted.append(True)
            interaction.touch_needed()

    return on_keepalive
