"""Backend `ykoath`: the OATH applet of a YubiKey, Nitrokey or sealtoken (docs/spec.md section 3).

Enrollment stores a fresh random 32-byte HMAC-SHA256 key as the TOTP credential
named `sealcodes` (other credentials are never touched); R is the full
CALCULATE response (P2=00) over the 32-byte challenge. The OATH access code,
when one is set, comes from `interaction.request_pin("ykoath")`.

The everyday path, SELECT + CALCULATE on an application without an access code, is sent by
sealcodes' own APDU layer: `generate` needs no yubikit. Enrollment, the access code (VALIDATE)
and listing go through yubikit's OathSession (optional extra `sealcodes[yubikey]`), over any
sealcodes SmartCardConnection.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import const
from ..apdu import ApduError, SmartCardProtocol, encode_tlv, find_tlv, parse_tlvs, sw_text
from ..connection import as_connection
from ..errors import DeviceError, PinError, SealcodesError
from ..memory import wipe
from ..records import Enrollment
from ._yubikit import TouchNotice, new_key, require_yubikit, yubikit_connection
from .base import Backend, Interaction, require_challenge, take_pin

if TYPE_CHECKING:  # enrollment.py is loaded only to enroll
    from ..enrollment import YkoathOptions

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

_MAX_RESPONSE = 1024  # a SELECT or CALCULATE answer is under 100 bytes


@dataclass(frozen=True)
class OathApplication:
    """What the OATH application's SELECT answer tells."""

    device_id: str  # yubikit's spelling: base64 of SHA-256(salt)[:16], no padding
    locked: bool  # an access code is set: VALIDATE first


def device_id_of(salt: bytes) -> str:
    return b64encode(hashlib.sha256(salt).digest()[:16]).replace(b"=", b"").decode()


class YkoathBackend(Backend):
    name = "ykoath"
    pin_name = "OATH access code"

    def __init__(self, connection):
        """`connection`: an open sealcodes SmartCardConnection (the caller closes it)."""
        self._connection = as_connection(connection)
        self._protocol = SmartCardProtocol(self._connection, _MAX_RESPONSE, const.OATH_INS_SEND_REMAINING)
        self._serial = None
        self._serial_read = False
        self._selected = None  # the application matches() selected, used once by respond()

    # --- plumbing ---------------------------------------------------------------
    def _select_application(self) -> OathApplication:
        """SELECT through sealcodes' APDU layer (no yubikit)."""
        try:
            answer = self._protocol.select(const.AID_OATH)
        except ApduError as e:
            if e.sw == const.SW.FILE_NOT_FOUND:
                raise DeviceError("this device has no OATH application") from None
            raise DeviceError(f"the device refused the OATH SELECT ({sw_text(e.sw)})") from None
        tlvs = parse_tlvs(answer, "the OATH application")
        salt = find_tlv(tlvs, const.OATH_TAG_NAME)
        if salt is None or find_tlv(tlvs, const.OATH_TAG_VERSION) is None:
            raise DeviceError("the device answered the OATH SELECT wrongly")
        return OathApplication(device_id_of(salt), find_tlv(tlvs, const.OATH_TAG_CHALLENGE) is not None)

    def _calculate(self, name: bytes, challenge: bytes) -> bytearray:
        """CALCULATE (full response) on the application just selected, through sealcodes' APDU layer."""
        data = encode_tlv(const.OATH_TAG_NAME, name) + encode_tlv(const.OATH_TAG_CHALLENGE, bytes(challenge))
        answer = bytearray(self._protocol.send_apdu(const.CLA_ISO, const.OATH_INS_CALCULATE, 0, 0, data))
        try:
            # 75 len digits || HMAC: the answer buffer is wiped once the HMAC is copied out of it (the
            # APDU layer's own short-lived copies below cannot be: docs/host-security.md)
            if len(answer) < 3 or answer[0] != const.OATH_TAG_RESPONSE or answer[1] != len(answer) - 2:
                raise DeviceError("the device answered CALCULATE wrongly")
            return bytearray(answer[3:])
        finally:
            wipe(answer)

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
        self._selected = None
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
            application = self._select_application()
            if application.device_id != enrollment.device_id:
                return False
            self._selected = application
            return True
        return super().matches(enrollment)

    def wrong_secret_hint(self) -> str:
        return f"another device, or its OATH credential '{CREDENTIAL_NAME}' was replaced (enroll --force) since"

    def enroll(self, interaction: Interaction, options: YkoathOptions | None = None) -> Enrollment:
        options = options if options is not None else self.default_options()
        require_yubikit()
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
        require_challenge(challenge)
        name = (enrollment.credential_name or CREDENTIAL_NAME).encode()
        application, self._selected = self._selected, None
        if application is None:
            application = self._select_application()
        if enrollment.device_id is not None and application.device_id != enrollment.device_id:
            raise DeviceError("this OATH application is not the enrolled one (its device id differs: another "
                              "device, or it was reset); no access code was tried")
        if application.locked:  # VALIDATE first: yubikit's OathSession does the access-code handshake
            return self._respond_unlocked(name, challenge, enrollment, interaction)
        try:
            with TouchNotice(interaction):
                response = self._calculate(name, challenge)
        except ApduError as e:
            raise self._calculate_error(e.sw, name) from None
        return self._checked(response)

    def _respond_unlocked(self, name, challenge, enrollment, interaction) -> bytearray:
        require_yubikit()
        return self._session_calculate(self._open(interaction, enrollment.device_id), name, challenge, interaction)

    def _session_calculate(self, session, name: bytes, challenge: bytes, interaction) -> bytearray:
        """CALCULATE through an open (unlocked) yubikit OathSession."""
        from yubikit.core import CommandError
        from yubikit.core.smartcard import ApduError as YkApduError

        try:
            with TouchNotice(interaction):
                raw = session.calculate(name, bytes(challenge))
        except YkApduError as e:
            raise self._calculate_error(e.sw, name) from None
        except (CommandError, ValueError, IndexError):
            raise DeviceError("the device answered CALCULATE wrongly") from None
        response = bytearray(raw)
        raw = None
        return self._checked(response)

    @staticmethod
    def _calculate_error(sw: int, name: bytes) -> DeviceError:
        if sw == _SW_DATA_INVALID:
            return DeviceError(f"this device has no OATH credential named '{name.decode(errors='replace')}': "
                               "wrong device, or it was deleted")
        if sw == _SW_SECURITY_STATUS_NOT_SATISFIED:
            return DeviceError("the device wanted a touch that did not come (timed out or refused)")
        return DeviceError(f"the device refused CALCULATE ({sw_text(sw)})")

    @staticmethod
    def _checked(response: bytearray) -> bytearray:
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
        require_yubikit()
        from yubikit.core import CommandError

        session = self._open(interaction)
        try:
            present = any(c.id == CREDENTIAL_NAME.encode() for c in session.list_credentials())
        except (CommandError, KeyError, ValueError, IndexError):
            raise DeviceError("the device could not list its OATH credentials") from None
        if present:  # on the session just unlocked: the access code is asked (and sent) once
            require_challenge(challenge)
            yield f"OATH credential {CREDENTIAL_NAME}", self._session_calculate(
                session, CREDENTIAL_NAME.encode(), challenge, interaction)
