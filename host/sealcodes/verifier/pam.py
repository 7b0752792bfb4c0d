"""Break-glass login through PAM: `sealcodes verifier pam` run by pam_exec.so with expose_authtok.

pam_exec gives the user in PAM_USER and writes the typed password (the code) to our stdin,
followed by a NUL byte. We answer with the exit status only: 0 lets the user in, anything else
refuses. Every failure (no user, no code, database or verifier unreachable, bad configuration,
an unexpected error) is a refusal: the path fails closed.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import BinaryIO

from ..errors import SealcodesError
from .core import ACCEPTED, Verifier

#: a code is at most a few dozen characters; anything longer is refused unread
MAX_AUTHTOK_BYTES = 256
HTTP_TIMEOUT_S = 10.0

PAM_OK = 0
PAM_REFUSED = 1


class PamRefusal(SealcodesError):
    """Why a PAM attempt was refused (for the log; never holds the code)."""


def read_authtok(stream: BinaryIO) -> bytearray:
    """The code pam_exec wrote to stdin: up to the first NUL or end of line. Caller wipes it."""
    raw = bytearray(stream.read(MAX_AUTHTOK_BYTES + 1))
    try:
        if len(raw) > MAX_AUTHTOK_BYTES:
            raise PamRefusal("the password on stdin is too long")
        end = len(raw)
        for stop in (b"\x00", b"\n", b"\r"):
            found = raw.find(stop)
            if found != -1:
                end = min(end, found)
        token = bytearray(raw[:end])
        return token
    finally:
        raw[:] = bytes(len(raw))


def pam_user(environ) -> str:
    user = environ.get("PAM_USER", "")
    if not user:
        raise PamRefusal("PAM_USER is not set: run under pam_exec.so")
    pam_type = environ.get("PAM_TYPE", "auth")
    if pam_type != "auth":
        raise PamRefusal(f"only the auth phase is handled (got PAM_TYPE {pam_type!r})")
    return user


def check_local(verifier: Verifier, user: str, code: str) -> str:
    """Outcome of one attempt against a local store."""
    return verifier.verify(user, code).outcome


def check_remote(url: str, api_key: str, user: str, code: str, timeout: float = HTTP_TIMEOUT_S,
                 cafile: str | None = None) -> str:
    """Outcome of one attempt against a verifier service (POST /v1/verify)."""
    if not url.startswith(("https://", "http://")):
        raise PamRefusal("the verifier URL must start with https:// (or http:// for loopback)")
    body = json.dumps({"account": user, "code": code}).encode("utf-8")
    request = urllib.request.Request(url.rstrip("/") + "/v1/verify", data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            answer = json.loads(response.read(65536))
    except urllib.error.HTTPError as exc:
        raise PamRefusal(f"the verifier answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PamRefusal(f"the verifier is unreachable or answered badly ({type(exc).__name__})") from None
    outcome = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(outcome, str):
        raise PamRefusal("the verifier's answer has no result")
    return outcome


def is_accepted(outcome: str) -> bool:
    return outcome == ACCEPTED
