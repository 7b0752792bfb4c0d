"""The fido2 backend, in parts with one job each:

- backend.py     Fido2Backend: enroll, respond, recover (the Backend protocol)
- assertion.py   PIN/UV tokens and the checked hmac-secret assertion
- pin.py         PIN/UV auth protocols 1 and 2, the clientPin requests
- nfcctap.py     getInfo, clientPin, getAssertion over a smartcard connection (responses on PC/SC)
- enrollment.py  what the profile records of a credential, and its checked form
- p256.py        ES256 keys, signature checks, public-key recovery from signatures
- errors.py      CTAP and link failures as one clear SealcodesError

python-fido2 is imported only when this package is (a command that uses the fido2 backend), and
its Ctap2 / WebAuthn layer only for USB HID, enrollment and recovery.
"""

from .backend import UV_CHOICES, UV_DISCOURAGED, UV_REQUIRED, Fido2Backend
from .enrollment import RP_ID, b64url_decode, b64url_encode

__all__ = ["Fido2Backend", "RP_ID", "UV_CHOICES", "UV_DISCOURAGED", "UV_REQUIRED", "b64url_decode", "b64url_encode"]
