"""The fido2 backend, in parts with one job each:

- backend.py     Fido2Backend: enroll, respond, recover (the Backend protocol)
- assertion.py   PIN/UV tokens and the checked hmac-secret assertion
- enrollment.py  what the profile records of a credential, and its checked form
- p256.py        ES256 keys, signature checks, public-key recovery from signatures
- errors.py      CTAP and link failures as one clear SealcodesError

python-fido2 is imported only when this package is (a command that uses the fido2 backend).
"""

from .backend import UV_CHOICES, UV_DISCOURAGED, UV_REQUIRED, Fido2Backend
from .enrollment import RP_ID, b64url_decode, b64url_encode

__all__ = ["Fido2Backend", "RP_ID", "UV_CHOICES", "UV_DISCOURAGED", "UV_REQUIRED", "b64url_decode", "b64url_encode"]
