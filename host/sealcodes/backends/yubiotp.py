"""Backend `yubiotp`: a YubiKey OTP slot in HMAC-SHA1 challenge-response mode (docs/spec.md section 3).

Slot 2 by default. Enrollment programs a fresh random 20-byte key into the slot,
only with force=True or after `interaction.confirm(...)`, because whatever the
slot held is overwritten; `adopt=True` uses a slot that is already programmed for
challenge-response (e.g. by `ykman otp chalresp`) without touching it. R is the
20-byte response to the 32-byte challenge, padded to 64 bytes the way yubikit
pads it (the slot must use HMAC_LT64, as yubikit and ykman program it).

Talks to the device through yubikit's YubiOtpSession (optional extra
`sealcodes[yubikey]`), over any sealcodes SmartCardConnection.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..apdu import sw_text
from ..connection import as_connection
from ..errors import DeviceError, InvalidInputError, SealcodesError
from ..memory import wipe
from ..records import Enrollment
from ._yubikit import TouchNotice, new_key, require_yubikit, yubikit_connection
from .base import Backend, Interaction, require_challenge

if TYPE_CHECKING:  # enrollment.py is loaded only to enroll
    from ..enrollment import YubiOtpOptions

RESPONSE_LEN = 20  # HMAC-SHA1
KEY_LEN = 20
ACCESS_CODE_LEN = 6
DEFAULT_SLOT = 2

_SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
_SW_CONDITIONS_NOT_SATISFIED = 0x6985


# module-level name so tests can provision a key they know
_new_key = new_key


def _check_slot(slot) -> int:
    if slot not in (1, 2) or isinstance(slot, bool):
        raise InvalidInputError("the YubiKey OTP slot must be 1 or 2")
    return int(slot)


class YubiOtpBackend(Backend):
    name = "yubiotp"

    @classmethod
    def check_available(cls) -> None:
        require_yubikit()

    def __init__(self, connection):
        """`connection`: an open sealcodes SmartCardConnection (the caller closes it)."""
        require_yubikit()
        self._connection = as_connection(connection)
        self._selected = None  # a session identity() opened, used once by the next operation

    def _open(self):
        """A YubiOtpSession: every operation selects the application anew, except right after
        identity() (the card is held in a transaction: nothing selects another one in between)."""
        session, self._selected = self._selected, None
        if session is not None:
            return session
        from yubikit.core import ApplicationNotAvailableError, CommandError
        from yubikit.yubiotp import YubiOtpSession

        try:
            return YubiOtpSession(yubikit_connection(self._connection))
        except ApplicationNotAvailableError:
            raise DeviceError("this device has no YubiKey OTP application") from None
        except (CommandError, ValueError, IndexError, TypeError, struct.error):
            raise DeviceError("the device answered the OTP SELECT wrongly") from None

    def _serial(self, session):
        from yubikit.core import CommandError

        try:
            serial = session.get_serial()
        except (CommandError, ValueError):
            return None
        return str(serial) if serial else None

    def identity(self) -> dict:
        session = self._open()
        serial = self._serial(session)
        self._selected = session
        return {"serial": serial} if serial is not None else {}

    def wrong_secret_hint(self) -> str:
        return "another YubiKey, or the slot was reprogrammed since"

    def enroll(self, interaction: Interaction, options: YubiOtpOptions | None = None) -> Enrollment:
        options = options if options is not None else self.default_options()
        from yubikit.core import CommandError, NotSupportedError
        from yubikit.core.otp import CommandRejectedError
        from yubikit.yubiotp import HmacSha1SlotConfiguration

        slot, force, adopt, touch = options.slot, options.force, options.adopt, options.touch
        access_code = options.access_code
        slot = _check_slot(slot)
        if access_code is not None and len(access_code) != ACCESS_CODE_LEN:
            raise InvalidInputError(f"a slot access code is {ACCESS_CODE_LEN} bytes")
        session = self._open()
        state = session.get_config_state()
        try:
            programmed = state.is_configured(slot)
        except NotSupportedError:
            raise DeviceError("this YubiKey is too old to report its slot state") from None
        try:
            touch_triggered = programmed and state.is_touch_triggered(slot)
        except NotSupportedError:  # YubiKey 2: cannot tell; challenge-response will show it
            touch_triggered = False

        if adopt:
            if not programmed:
                raise DeviceError(f"slot {slot} is empty: there is no challenge-response secret to adopt")
            if touch_triggered:
                raise DeviceError(
                    f"slot {slot} holds a touch-triggered credential (OTP or static password), "
                    "not challenge-response"
                )
            touch_used = None  # unknown: the slot state does not tell
        else:
            if not force:
                if programmed:
                    what = f"Its current content will be overwritten: whatever uses slot {slot} now stops working."
                else:
                    what = "Its content will be overwritten (the slot looks empty now)."
                message = f"Program YubiKey OTP slot {slot} with a new HMAC-SHA1 challenge-response key? {what}"
                if not interaction.confirm(message):
                    raise SealcodesError(f"enrollment cancelled: slot {slot} left unchanged")
            key = _new_key(KEY_LEN)
            try:
                config = HmacSha1SlotConfiguration(bytes(key)).require_touch(bool(touch))
                session.put_configuration(slot, config, acc_code=access_code, cur_acc_code=access_code)
            except CommandRejectedError:
                raise DeviceError(
                    f"the device refused to program slot {slot} (is it protected by an access code?)"
                ) from None
            except CommandError:
                raise DeviceError(f"the device failed to program slot {slot}") from None
            finally:
                wipe(key)
                config = None
            touch_used = bool(touch)

        return Enrollment(backend=self.name, slot=slot, touch=touch_used, adopted=bool(adopt),
                          serial=self._serial(session))

    def respond(self, challenge: bytes, enrollment: Enrollment, interaction: Interaction) -> bytearray:
        from yubikit.core import CommandError
        from yubikit.core.smartcard import ApduError

        require_challenge(challenge)
        slot = _check_slot(DEFAULT_SLOT if enrollment.slot is None else enrollment.slot)
        session = self._open()
        try:
            with TouchNotice(interaction):
                raw = session.calculate_hmac_sha1(slot, bytes(challenge))
        except ApduError as e:
            if e.sw == _SW_SECURITY_STATUS_NOT_SATISFIED:
                raise DeviceError("the device wanted a touch that did not come (timed out or refused)") from None
            if e.sw == _SW_CONDITIONS_NOT_SATISFIED:
                raise DeviceError(f"slot {slot} is not programmed for HMAC-SHA1 challenge-response") from None
            raise DeviceError(f"the device refused challenge-response on slot {slot} ({sw_text(e.sw)})") from None
        except CommandError:
            raise DeviceError(
                f"the device answered challenge-response on slot {slot} wrongly "
                f"(expected {RESPONSE_LEN} bytes)"
            ) from None
        response = bytearray(raw)
        raw = None
        if len(response) != RESPONSE_LEN:
            n = len(response)
            wipe(response)
            raise DeviceError(f"the device answered challenge-response with {n} bytes instead of {RESPONSE_LEN}")
        return response

    def recover_responses(self, challenge: bytes, interaction: Interaction):
        """Backend protocol: slot 2 (the default), then slot 1, when programmed; each may want a touch."""
        from yubikit.core import NotSupportedError

        state = self._open().get_config_state()
        for slot in (2, 1):
            try:
                if not state.is_configured(slot):
                    continue
                if state.is_touch_triggered(slot):
                    continue  # an OTP or static password, not challenge-response
            except NotSupportedError:  # too old to tell: just ask
                pass
            try:
                response = self.respond(challenge, Enrollment(backend=self.name, slot=slot), interaction)
            except DeviceError:
                continue  # not challenge-response, or no touch: the other slot may still be it
            yield f"slot {slot}", response
