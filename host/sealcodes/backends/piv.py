"""Backend `piv`: the key-management key (slot 9D) of a PIV card, through an ECDH (docs/spec.md section 11).

R comes from the card's private key times a point hashed from the challenge
(sealcodes.backends.ecdh). Enrollment adopts the ECC key already in slot 9D
(`adopt=True`) or generates one on the card with the user's consent (`force=True`
replaces an existing key); the profile records the public key's fingerprint and
every use checks it before the PIN is sent.

Talks through yubikit's PivSession (optional extra `sealcodes[yubikey]`). The
public key comes from the slot metadata where the card has it (YubiKey 5.3+,
sealtoken), else (GET METADATA answered in any way but a security status) from the
certificate in the slot's data object; on such cards a generated key gets a
placeholder certificate (signed by a throwaway key) so the public key can be read
back later.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from ..connection import as_connection
from ..errors import DeviceError, InvalidInputError, PinBlockedError, PinError, SealcodesError
from ..memory import wipe
from . import ecdh
from ..apdu import sw_text
from ..records import Enrollment
from ._yubikit import TouchNotice, require_yubikit, yubikit_connection
from .base import Backend, Interaction, require_challenge, take_pin

if TYPE_CHECKING:  # enrollment.py is loaded only to enroll
    from ..enrollment import PivOptions

PIN_PURPOSE = "piv"
SLOT_NAME = "9D"
DEFAULT_CURVE = "P-256"
# the well-known default management key, repeated to the length of the card's key type
_DEFAULT_MGMT_PATTERN = bytes(range(1, 9)) * 4

_KIND_TEXT = {"rsa": "an RSA key", "unsupported": "a key of another type"}

_SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
_SW_AUTH_BLOCKED = 0x6983
_SW_FILE_NOT_FOUND = 0x6A82
_SW_REFERENCED_DATA_NOT_FOUND = 0x6A88


class _SlotKey:
    """What slot 9D holds: kind 'ec' / 'rsa' / other, the public key (ec), the policies (if known).
    Kind 'unknown': the card would not describe the slot and has no certificate there (`why`)."""

    def __init__(self, kind, public=None, pin_policy=None, touch_policy=None, why=""):
        self.kind = kind
        self.public = public
        self.pin_policy = pin_policy
        self.touch_policy = touch_policy
        self.why = why


def _unreadable(why: str) -> str:
    return (f"the card does not describe PIV slot 9D ({why}) and holds no certificate there, so the slot's "
            "public key cannot be read")


class PivBackend(Backend):
    name = "piv"

    @classmethod
    def check_available(cls) -> None:
        require_yubikit()

    def __init__(self, connection):
        """`connection`: an open sealcodes SmartCardConnection (the caller closes it)."""
        require_yubikit()
        self._connection = as_connection(connection)

    # --- plumbing ---------------------------------------------------------------------
    def _session(self):
        from yubikit.core import ApplicationNotAvailableError, CommandError
        from yubikit.piv import PivSession

        try:
            return PivSession(yubikit_connection(self._connection))
        except ApplicationNotAvailableError:
            raise DeviceError("this card has no PIV application") from None
        except (CommandError, ValueError, KeyError, IndexError):
            raise DeviceError("the card answered the PIV SELECT wrongly") from None

    def _slot_key(self, session):
        """The key in slot 9D (_SlotKey), or None when the slot is empty.

        From GET METADATA (YubiKey 5.3+, sealtoken), whose 6A88 says the slot is empty. When the
        card answers it in any other way but a security status (no such instruction: other PIV
        cards; an error: PivApplet answers 6F00 for an imported key; a malformed answer), from the
        certificate in the slot's data object; with neither, kind 'unknown'."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        from yubikit.core import CommandError, NotSupportedError
        from yubikit.core.smartcard import ApduError
        from yubikit.piv import ALGORITHM, SLOT

        try:
            meta = session.get_slot_metadata(SLOT.KEY_MANAGEMENT)
        except NotSupportedError:
            return self._certificate_key(session, "no GET METADATA on this card")
        except ApduError as e:
            if e.sw == _SW_REFERENCED_DATA_NOT_FOUND:
                return None
            if e.sw == _SW_SECURITY_STATUS_NOT_SATISFIED:
                raise DeviceError(f"the card refused to describe slot 9D ({sw_text(e.sw)})") from None
            return self._certificate_key(session, f"GET METADATA answered {sw_text(e.sw)}")
        except (CommandError, ValueError, KeyError, IndexError):
            return self._certificate_key(session, "GET METADATA answered malformed data")
        if meta.key_type.algorithm == ALGORITHM.RSA:
            return _SlotKey("rsa")
        if meta.key_type.name not in ("ECCP256", "ECCP384"):
            return _SlotKey("unsupported")
        try:
            public = meta.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        except (ValueError, KeyError):
            raise DeviceError("the card's public key in slot 9D is malformed") from None
        return _SlotKey("ec", public, int(meta.pin_policy), int(meta.touch_policy))

    @staticmethod
    def _certificate_key(session, why):
        """The key whose certificate is in slot 9D's data object; kind 'unknown' without one."""
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        from yubikit.core import BadResponseError, CommandError, NotSupportedError
        from yubikit.core.smartcard import ApduError
        from yubikit.piv import SLOT

        try:
            certificate = session.get_certificate(SLOT.KEY_MANAGEMENT)
        except ApduError as e:
            if e.sw in (_SW_FILE_NOT_FOUND, _SW_REFERENCED_DATA_NOT_FOUND):
                return _SlotKey("unknown", why=why)
            raise DeviceError(f"the card refused to read the slot 9D certificate ({sw_text(e.sw)})") from None
        except (BadResponseError, NotSupportedError, CommandError, ValueError):
            raise DeviceError("the certificate in slot 9D cannot be read") from None
        key = certificate.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"):
            return _SlotKey("ec", key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
        return _SlotKey("rsa" if isinstance(key, rsa.RSAPublicKey) else "unsupported")

    @staticmethod
    def _serial(session):
        try:
            return str(session.get_serial())
        except SealcodesError:
            raise
        except Exception:  # not a YubiKey-style card: no serial command
            return None

    def _verify_pin(self, session, interaction):
        from yubikit.core import InvalidPinError
        from yubikit.core.smartcard import ApduError

        given = take_pin(interaction.request_pin(PIN_PURPOSE))
        # a verified PIV PIN must not outlive this session: the card is reset when it is released
        self._connection.reset_on_close()
        try:
            if not given:
                raise PinError("the PIV PIN is needed; none was given")
            try:
                pin = given.decode("utf-8")  # yubikit's verify_pin takes a str: a short-lived copy
            except UnicodeDecodeError:
                raise InvalidInputError("the PIV PIN is not UTF-8 text") from None
        finally:
            wipe(given)
        try:
            session.verify_pin(pin)
        except InvalidPinError as e:
            if e.attempts_remaining == 0:
                raise PinBlockedError("the PIV PIN is blocked (unblock it with the PUK)") from None
            raise PinError(f"wrong PIV PIN ({e.attempts_remaining} tries left)", e.attempts_remaining) from None
        except ValueError:
            raise InvalidInputError("a PIV PIN is at most 8 characters") from None
        except ApduError as e:
            raise DeviceError(f"the card refused the PIN ({sw_text(e.sw)})") from None

    def _ecdh(self, session, curve, point, interaction) -> bytearray:
        from cryptography.hazmat.primitives.asymmetric import ec
        from yubikit.core import CommandError
        from yubikit.core.smartcard import ApduError
        from yubikit.piv import SLOT

        peer = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1() if curve.name == "P-256" else ec.SECP384R1(), point)
        try:
            with TouchNotice(interaction):
                return bytearray(session.calculate_secret(SLOT.KEY_MANAGEMENT, peer))
        except ApduError as e:
            if e.sw == _SW_SECURITY_STATUS_NOT_SATISFIED:
                raise DeviceError("the card wanted the PIN or a touch that did not come (timed out or refused)") \
                    from None
            raise DeviceError(f"the card refused the ECDH with slot 9D ({sw_text(e.sw)})") from None
        except (CommandError, ValueError, KeyError, IndexError):
            raise DeviceError("the card answered the ECDH wrongly") from None

    def _response(self, session, key, challenge, interaction, enrollment=None) -> bytearray:
        if enrollment is not None:
            curve = ecdh.require_enrolled_key(key.public, enrollment, "PIV slot 9D")
        else:
            curve = ecdh.curve_of_public_key(key.public)
        point = ecdh.request_point(curve, challenge)
        if key.pin_policy != 1:  # PIN_POLICY.NEVER: the card would not ask
            self._verify_pin(session, interaction)
        shared = self._ecdh(session, curve, point, interaction)
        return ecdh.derive_response(curve, key.public, challenge, shared)

    # --- Backend ----------------------------------------------------------------------
    def identity(self) -> dict:
        serial = self._serial(self._session())
        return {"serial": serial} if serial else {}

    def enroll(self, interaction: Interaction, options: PivOptions | None = None) -> Enrollment:
        options = options if options is not None else self.default_options()
        force, adopt, curve = options.force, options.adopt, options.curve or DEFAULT_CURVE
        if curve not in ("P-256", "P-384"):
            raise InvalidInputError("the PIV key must be P-256 or P-384")
        session = self._session()
        serial = self._serial(session)
        key = self._slot_key(session)
        unknown = ""
        if key is not None and key.kind == "unknown":
            if adopt:
                raise DeviceError(f"{_unreadable(key.why)}: put the key's certificate in slot 9D (for example "
                                  "`yubico-piv-tool -a import-certificate -s 9d`) and enroll --adopt again, or "
                                  "enroll without --adopt to make a new key there")
            unknown, key = " (this card cannot tell whether the slot already holds a key: one would be lost)", None
        if key is not None and key.kind != "ec":
            if adopt or not force:
                raise DeviceError(f"PIV slot 9D holds {_KIND_TEXT[key.kind]}; sealcodes needs an ECC key "
                                  "(P-256 or P-384) for its ECDH. --force replaces it with a new ECC key "
                                  "(the old key is lost)")
        elif key is not None and not force:
            if not adopt:
                raise DeviceError("PIV slot 9D already holds an ECC key: use --adopt to use it as it is, "
                                  "or --force to replace it (the old key is lost)")
        elif key is None and adopt:
            raise DeviceError("PIV slot 9D holds no key to adopt (enroll without --adopt to generate one)")
        generated = False
        if key is None or force:
            what = "replace the key in PIV slot 9D" if key is not None else "generate a new key in PIV slot 9D"
            if not interaction.confirm(f"sealcodes will {what} ({curve}){unknown}. Go on?"):
                raise DeviceError(f"not confirmed: did not {what}")
            key = self._generate(session, curve)
            generated = True
        return Enrollment(backend=self.name, key=SLOT_NAME, curve=ecdh.curve_of_public_key(key.public).name,
                          key_fingerprint=ecdh.key_fingerprint(key.public), generated=generated, serial=serial)

    def _generate(self, session, curve_name):
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        from yubikit.core import BadResponseError, CommandError, NotSupportedError
        from yubikit.core.smartcard import ApduError
        from yubikit.piv import KEY_TYPE, SLOT

        key_len = session.management_key_type.key_len
        mgmt = bytearray(_DEFAULT_MGMT_PATTERN[:key_len])
        self._connection.reset_on_close()  # nor does an authenticated management key
        try:
            session.authenticate(bytes(mgmt))
        except (ApduError, BadResponseError):
            raise DeviceError("the card's PIV management key is not the default one, so sealcodes cannot make a "
                              "key: generate an ECC key in slot 9D with your card's tools, then enroll with "
                              "--adopt") from None
        finally:
            wipe(mgmt)
        key_type = KEY_TYPE.ECCP256 if curve_name == "P-256" else KEY_TYPE.ECCP384
        try:
            public = session.generate_key(SLOT.KEY_MANAGEMENT, key_type)
        except NotSupportedError:
            raise DeviceError(f"this card cannot make {curve_name} keys") from None
        except ApduError as e:
            raise DeviceError(f"the card refused to generate a {curve_name} key ({sw_text(e.sw)})") from None
        except (CommandError, ValueError, KeyError):
            raise DeviceError("the card answered GENERATE wrongly") from None
        point = public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        key = self._slot_key(session)
        if key is None or key.public != point:
            # no metadata on this card: leave the public key readable in the slot's certificate
            self._store_certificate(session, public)
            key = self._slot_key(session)
        if key is None or key.public != point:
            raise DeviceError("the generated key cannot be read back from the card")
        return key

    @staticmethod
    def _store_certificate(session, public):
        """A placeholder certificate for `public` (issuer: a throwaway key) in slot 9D's data object."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from yubikit.core.smartcard import ApduError
        from yubikit.piv import SLOT

        signer = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "sealcodes PIV 9D key")])
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
                       .serial_number(x509.random_serial_number()).not_valid_before(now)
                       .not_valid_after(now + datetime.timedelta(days=365 * 100)).sign(signer, hashes.SHA256()))
        try:
            session.put_certificate(SLOT.KEY_MANAGEMENT, certificate)
        except ApduError as e:
            raise DeviceError(f"the card refused to store the slot 9D certificate ({sw_text(e.sw)})") from None

    def respond(self, challenge: bytes, enrollment: Enrollment, interaction: Interaction) -> bytearray:
        challenge = require_challenge(challenge)
        session = self._session()
        key = self._slot_key(session)
        if key is None:
            raise DeviceError("PIV slot 9D holds no key: wrong card, or the key was deleted; no PIN was sent")
        if key.kind == "unknown":
            raise DeviceError(f"{_unreadable(key.why)}: wrong card, or its certificate was deleted; no PIN was sent")
        if key.kind != "ec":
            raise DeviceError(f"PIV slot 9D holds {_KIND_TEXT[key.kind]}, not the enrolled ECC key; "
                              "no PIN was sent")
        return self._response(session, key, challenge, interaction, enrollment)

    def recover_responses(self, challenge: bytes, interaction: Interaction):
        challenge = require_challenge(challenge)
        session = self._session()
        key = self._slot_key(session)
        if key is None or key.kind != "ec":
            return
        yield f"PIV slot 9D ({ecdh.curve_of_public_key(key.public).name})", \
            self._response(session, key, challenge, interaction)
