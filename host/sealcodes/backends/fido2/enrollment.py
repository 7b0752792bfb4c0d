"""The fido2 enrollment data: what the profile records of a credential, and its checked form."""

from __future__ import annotations

import base64

from fido2 import cbor

from ...errors import ProfileError
from ...records import Enrollment
from .p256 import COSE_ES256, cose_es256, public_key

BACKEND_NAME = "fido2"
RP_ID = "sealcodes:"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_enrollment(credential_id: bytes, key, uv: bool, discoverable: bool, aaguid: str) -> Enrollment:
    """The Enrollment record of a credential (no secrets: id, public key, UV state)."""
    return Enrollment(backend=BACKEND_NAME, rp_id=RP_ID, credential_id=b64url_encode(credential_id),
                      public_key=b64url_encode(cbor.encode(cose_es256(key))), uv=uv,
                      discoverable=discoverable, aaguid=aaguid)


class CheckedEnrollment:
    """The parts of an Enrollment a response needs, checked: credential id, public key, UV."""

    def __init__(self, enrollment: Enrollment):
        def damaged(what):
            return ProfileError(f"the fido2 enrollment in the profile is damaged ({what})")

        if not isinstance(enrollment, Enrollment):
            raise damaged("not an enrollment")
        if enrollment.backend != BACKEND_NAME:
            raise damaged("another backend")
        if (enrollment.rp_id or RP_ID) != RP_ID:
            raise damaged("RP ID")
        try:
            self.credential_id = b64url_decode(enrollment.credential_id)
        except (ValueError, TypeError):
            raise damaged("credential id") from None
        if not 1 <= len(self.credential_id) <= 1023:
            raise damaged("credential id")
        try:
            cose = cbor.decode(b64url_decode(enrollment.public_key))
            if cose.get(1) != 2 or cose.get(3) != COSE_ES256 or cose.get(-1) != 1:
                raise ValueError
            x, y = cose[-2], cose[-3]
            if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 32):
                raise ValueError
            self.public_key = public_key(int.from_bytes(x, "big"), int.from_bytes(y, "big"))
        except Exception:
            raise damaged("public key") from None
        if not isinstance(enrollment.uv, bool):
            raise damaged("user verification state")
        self.uv = enrollment.uv
