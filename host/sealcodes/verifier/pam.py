"""Break-glass login through PAM: `sealcodes verifier pam` run by pam_exec.so with expose_authtok.

pam_exec gives the user in PAM_USER and writes the typed password (the code) to our stdin,
followed by a NUL byte. We answer with the exit status only: 0 lets the user in, anything else
refuses. Every failure (no user, no code, database or verifier unreachable, bad configuration,
an unexpected error) is a refusal: the path fails closed.

PAM_USER is checked against the system before any code is: it must be in the verifier's normal
form (docs/spec.md section 13.5) and be exactly the name the system's user database gives that
user, so the account whose codes are checked is the user who logs in. With `--url`, the key and
the code go only to https://, or to http:// on a loopback address and a port below the system's
first unprivileged port (a port only root can listen on: any local user can listen on the others
while the verifier is down), and the whole exchange has one deadline.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import BinaryIO

from ..errors import InvalidInputError, SealcodesError
from .core import ACCEPTED, Verifier
from .record import normalize_account

#: a code is at most a few dozen characters; anything longer is refused unread
MAX_AUTHTOK_BYTES = 256
#: the whole exchange with a verifier service, connection to last byte
HTTP_TIMEOUT_S = 10.0
#: where Linux says the first port any user may listen on is (per network namespace)
UNPRIVILEGED_PORT_START_FILE = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
DEFAULT_UNPRIVILEGED_PORT_START = 1024

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


def check_system_user(user: str) -> None:
    """Refuse unless PAM_USER is in normal form and is, exactly, the system's name of that user: a
    spelling the verifier would fold, or that a case-insensitive user database maps to another
    name, would check the codes of another account than the one logging in."""
    try:
        normal = normalize_account(user)
    except InvalidInputError:
        normal = None
    if normal != user:
        raise PamRefusal("PAM_USER is not an account name in normal form (docs/spec.md section 13.5)")
    import pwd  # POSIX only: the module stays importable elsewhere

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PamRefusal("PAM_USER is not a user of this system") from None
    if entry.pw_name != user:
        raise PamRefusal("the system's name of this user is not PAM_USER as given")


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


def unprivileged_port_start() -> int:
    """The first port any user may listen on (Linux: ip_unprivileged_port_start; 1024 elsewhere)."""
    try:
        with open(UNPRIVILEGED_PORT_START_FILE, encoding="ascii") as handle:
            return max(0, min(65536, int(handle.read(16).strip())))
    except (OSError, ValueError):
        return DEFAULT_UNPRIVILEGED_PORT_START


def check_url(url: str, first_unprivileged_port: int | None = None) -> urllib.parse.SplitResult:
    """The verifier's URL: https://, or http:// to a loopback address (the key and the code would
    cross the network in clear otherwise) and a privileged port: below the first port any local
    user may listen on, or whoever listens there while the verifier is down answers "accepted"."""
    parts = urllib.parse.urlsplit(url)
    try:
        # ASCII digits (urllib's rule), for https too: http.client, which connects, reads '٤٤٣' and
        # '4_43' as 443
        port = parts.port
    except ValueError:
        raise PamRefusal("the verifier URL has an invalid port") from None
    if parts.scheme == "https" and parts.hostname:
        return parts
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        port = port if port is not None else 80
        first = unprivileged_port_start() if first_unprivileged_port is None else first_unprivileged_port
        if port < first:
            return parts
        raise PamRefusal(f"http:// to port {port} is refused: any local user may listen there (ports from {first}); "
                         f"use a port below {first}, or https:// with --cafile")
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
    answer = _exchange(opener, request, timeout)
    try:
        answer = json.loads(answer)
    except ValueError as exc:
        raise PamRefusal(f"the verifier is unreachable or answered badly ({type(exc).__name__})") from None
    outcome = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(outcome, str):
        raise PamRefusal("the verifier's answer has no result")
    return outcome


def _exchange(opener, request, timeout: float) -> bytes:
    """The answer's body, within one deadline for the whole exchange: a socket timeout alone holds
    only per read, and a server dripping a byte at a time would hold the login for as long as it
    likes. The exchange runs in a daemon thread; past the deadline it is left behind (the helper
    exits right after the refusal)."""
    outcome: dict = {}

    def run():
        try:
            with opener.open(request, timeout=timeout) as response:
                outcome["body"] = response.read(65536)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="sealcodes-pam-exchange", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise PamRefusal(f"the verifier did not answer within {timeout:g} s")
    error = outcome.get("error")
    if isinstance(error, urllib.error.HTTPError):
        raise PamRefusal(f"the verifier answered HTTP {error.code}")
    if error is not None:
        raise PamRefusal(f"the verifier is unreachable or answered badly ({type(error).__name__})")
    return outcome["body"]


def is_accepted(outcome: str) -> bool:
    return outcome == ACCEPTED
