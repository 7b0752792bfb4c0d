"""Backend `ykoath`: the OATH applet of a YubiKey, Nitrokey or sealtoken (docs/spec.md section 3).

Enrollment stores a fresh random 32-byte HMAC-SHA256 key as the TOTP credential
named `sealcodes` (other credentials are never touched); R is the full
CALCULATE response (P2=00) over the 32-byte challenge. The OATH access code,
when one is set, comes from `interaction.request_pin("ykoath")`.

Talks to the device through yubikit's OathSession (optional extra
`sealcodes[yubikey]`), over any sealcodes SmartCardConnection.
"""

from __future__ import annotations


from ..apdu import sw_text
from ..connection import as_connection
from ..errors import DeviceError, InvalidInputError, PinError, SealcodesError
from ..memory import wipe
from ..records import Enrollment, YkoathOptions
from ._yubikit import TouchNotice, new_key, require_yubikit, yubikit_connection
from .base import Backend, Interaction, require_challenge, take_pin

CREDENTIAL_NAME = "sealcodes"
RESPONSE_LEN = 32  # HMAC-SHA256
KEY_LEN = 32
PIN_PURPOSE = "ykoath"

_SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
_SW_DATA_INVALID = 0x6984
_SW_WRONG_DATA = 0x6A80
_SW_NO_SPACE = 0x6A84


# module-level name so tests can provision a key they know
_new_key = new_key


class YkoathBackend(Backend):
    name = "ykoath"
    options_type = YkoathOptions
    pin_name = "OATH access code"

    def __init__(self, connection):
        """`connection`: an open sealcodes SmartCardConnection (the caller closes it)."""
        require_yubikit()
        self._connection = as_connection(connection)
        self._serial = None
        self._serial_read = False
        self._selected = None  # an OathSession matches() opened, used once by respond()

    # --- plumbing ---------------------------------------------------------------
    def _select(self):
        from yubikit.core import ApplicationNotAvailableError, CommandError
        from yubikit.oath import OathSession

        try:
            return OathSession(yubikit_connection(self._connection))
        except ApplicationNotAvailableError:
            raise DeviceError("this device has no OATH application") from None
        except (CommandError, KeyError, ValueError, IndexError, TypeError):
            raise DeviceError("the device answered the OATH SELECT wrongly") from None

    def _open(self, interaction: Interaction, device_id: str | None = None):
        """An unlocked OathSession (asks for the access code if one is set).

        Every operation selects the application anew (the card is held in a transaction, so
        nothing can select another one in between): the session matches() just opened is
        taken as is.
        """
        session, self._selected = self._selected, None
        if session is None:
            session = self._select()
        if device_id is not None and session.device_id != device_id:
            # never hand an access-code answer to an application the profile does not belong to
            raise DeviceError("this OATH application is not the enrolled one (its device id differs: another "
                              "device, or it was reset); no access code was tried")
        if session.locked:
            self._unlock(session, interaction)
        return session

    def _unlock(self, session, interaction):
        from yubikit.core import BadResponseError, CommandError
        from yubikit.core.smartcard import ApduError

        given = take_pin(interaction.request_pin(PIN_PURPOSE))
        self._connection.reset_on_close()  # an unlocked OATH application must not outlive us
        try:
            if not given:
                raise PinError("the OATH application is protected by an access code; none was given")
            try:
                # yubikit's derive_key takes a str: a short-lived copy outside the wiped buffer
                key = session.derive_key(given.decode("utf-8"))
            except UnicodeDecodeError:
                raise PinError("wrong OATH access code") from None
        finally:
            wipe(given)
        try:
            session.validate(key)
        except ApduError as e:
            if e.sw in (_SW_WRONG_DATA, _SW_DATA_INVALID):
                raise PinError("wrong OATH access code") from None
            raise DeviceError(f"the device refused the OATH access code ({sw_text(e.sw)})") from None
        except BadResponseError:
            raise DeviceError("the device did not prove it knows the OATH access code") from None
        except CommandError:
            raise DeviceError("the device answered VALIDATE wrongly") from None

    def _read_serial(self):
        """The device serial as text, or None.

        The OATH application has none: ask the management application (YubiKey 5),
        then the OTP application (older YubiKeys, sealtoken). Selecting them ends
        the OATH session, so this runs before it is opened, and once.
        """
        if self._serial_read:
            return self._serial
        self._serial_read = True
        yk = yubikit_connection(self._connection)
        try:
            from yubikit.management import ManagementSession

            serial = ManagementSession(yk).read_device_info().serial
        except SealcodesError:
            raise
        except Exception:  # no management application, or an old device
            serial = None
        if serial is None:
            try:
                from yubikit.yubiotp import YubiOtpSession

                serial = YubiOtpSession(yk).get_serial()
            except SealcodesError:
                raise
            except Exception:  # no OTP application, or the serial is not visible
                serial = None
        self._serial = str(serial) if serial else None
        return self._serial

    def _credential_exists(self, session) -> bool:
        from yubikit.core import CommandError

        try:
            credentials = session.list_credentials()
        except CommandError:
            raise DeviceError("the device could not list its OATH credentials") from None
        except (KeyError, ValueError, IndexError):
            raise DeviceError("the device answered LIST wrongly") from None
        return any(c.id == CREDENTIAL_NAME.encode() for c in credentials)

    # --- Backend ---------------------------------------------------------------------
    def identity(self) -> dict:
        serial = self._read_serial()
        out = {}
        if serial is not None:
            out["serial"] = serial
        return out

    def matches(self, enrollment: Enrollment) -> bool:
        """The OATH application's own id (in its SELECT answer) tells it, with no other SELECT."""
        if enrollment.device_id:
            session = self._select()
            if session.device_id != enrollment.device_id:
                return False
            self._selected = session
            return True
        return super().matches(enrollment)

    def wrong_secret_hint(self) -> str:
        return f"another device, or its OATH credential '{CREDENTIAL_NAME}' was replaced (enroll --force) since"

    def enroll(self, interaction: Interaction, options: YkoathOptions = YkoathOptions()) -> Enrollment:
        from yubikit.core import CommandError
        from yubikit.core.smartcard import ApduError
        from yubikit.oath import HASH_ALGORITHM, OATH_TYPE, CredentialData

        force, touch = options.force, options.touch
        serial = self._read_serial()
        session = self._open(interaction)
        if self._credential_exists(session) and not force:
            raise DeviceError(
                f"this device already holds an OATH credential named '{CREDENTIAL_NAME}'; "
                "replacing it destroys the codes made with it (use --force to replace it)"
            )
        key = _new_key(KEY_LEN)
        try:
            data = CredentialData(
                name=CREDENTIAL_NAME,
                oath_type=OATH_TYPE.TOTP,  # TOTP: CALCULATE uses our challenge, HOTP would use a counter
                hash_algorithm=HASH_ALGORITHM.SHA256,
                secret=bytes(key),
            )
            session.put_credential(data, touch_required=bool(touch))
        except ApduError as e:
            if e.sw == _SW_NO_SPACE:
                raise DeviceError("no space left on the device for another OATH credential") from None
            raise DeviceError(f"the device refused to store the OATH credential ({sw_text(e.sw)})") from None
        except CommandError:
            raise DeviceError("the device answered PUT wrongly") from None
        finally:
            wipe(key)
            data = None
        return Enrollment(backend=self.name, credential_name=CREDENTIAL_NAME, algorithm="HMAC-SHA256",
                          touch=bool(touch), device_id=session.device_id, serial=serial)

    def respond(self, challenge: bytes, enrollment: Enrollment, interaction: Interaction) -> bytearray:
        from yubikit.core import CommandError
        from yubikit.core.smartcard import ApduError

        require_challenge(challenge)
        name = enrollment.credential_name or CREDENTIAL_NAME
        session = self._open(interaction, enrollment.device_id)
        try:
            with TouchNotice(interaction):
                raw = session.calculate(name.encode(), bytes(challenge))
        except ApduError as e:
            if e.sw == _SW_DATA_INVALID:
                raise DeviceError(
                    f"this device has no OATH credential named '{name}': wrong device, or it was deleted"
                ) from None
            if e.sw == _SW_SECURITY_STATUS_NOT_SATISFIED:
                raise DeviceError("the device wanted a touch that did not come (timed out or refused)") from None
            raise DeviceError(f"the device refused CALCULATE ({sw_text(e.sw)})") from None
        except (CommandError, ValueError, IndexError):
            raise DeviceError("the device answered CALCULATE wrongly") from None
        response = bytearray(raw)
        raw = None
        if len(response) != RESPONSE_LEN:
            n = len(response)
            wipe(response)
            raise DeviceError(
                f"the device answered CALCULATE with {n} bytes instead of {RESPONSE_LEN} "
                "(is the credential HMAC-SHA256?)"
            )
        return response

    def recover_responses(self, challenge: bytes, interaction: Interaction):
        """Backend protocol: the credential sealcodes always creates has a fixed name."""
        from yubikit.core import CommandError

        session = self._open(interaction)
        try:
            present = any(c.id == CREDENTIAL_NAME.encode() for c in session.list_credentials())
        except (CommandError, KeyError, ValueError, IndexError):
            raise DeviceError("the device could not list its OATH credentials") from None
        if present:
            yield f"OATH credential {CREDENTIAL_NAME}", self.respond(
                challenge, Enrollment(backend=self.name, credential_name=CREDENTIAL_NAME, device_id=session.device_id), interaction)
