"""Break-glass login through PAM: `sealcodes verifier pam` run by pam_exec.so with expose_authtok.

pam_exec gives the user in PAM_USER and writes the typed password (the code) to our stdin,
followed by a NUL byte. We answer with the exit status only: 0 lets the user in, anything else
refuses. Every failure (no user, no code, database or verifier unreachable, bad configuration,
an unexpected error) is a refusal: the path fails closed.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.error
import urllib.parse
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


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def check_url(url: str) -> urllib.parse.SplitResult:
    """The verifier's URL: https://, or http:// to a loopback address only (the key and the code
    would cross the network in clear otherwise)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return parts
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return parts
    raise PamRefusal("the verifier URL must start with https:// (http:// only for a loopback address)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer we refuse: following it would send the key and the code elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def check_remote(url: str, api_key: str, user: str, code: str, timeout: float = HTTP_TIMEOUT_S,
                 cafile: str | None = None) -> str:
    """Outcome of one attempt against a verifier service (POST /v1/verify). No redirect is
    followed, no proxy from the environment is used; with `cafile`, the server's certificate
    must chain to those CA certificates only (not the system's)."""
    check_url(url)
    body = json.dumps({"account": user, "code": code}).encode("utf-8")
    request = urllib.request.Request(url.rstrip("/") + "/v1/verify", data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise PamRefusal(f"cannot load the CA file ({type(exc).__name__})") from None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(),
                                         urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(request, timeout=timeout) as response:
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
