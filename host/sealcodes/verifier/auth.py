"""Who may do what on a verifier: API key scopes, account patterns, and the one check that the
HTTP service and the CLI both go through (`Principal.check`, called by every `Verifier` method).

Scopes (docs/verifier.md has the table of endpoints and commands):

    verify   check a code (POST /v1/verify): the key for PAM hosts and login services
    import   import first sets, and rotations that carry the device's proof
    admin    import (and force a replacement without a proof), status, revoke, unlock, audit, metrics
    metrics  read the server's figures (GET /metrics): the key for a Prometheus scraper

A key may also be limited to accounts matching a pattern: `*` matches any run of characters (none
included, `/` included); every other character matches only itself. The pattern is split on the `*`
typed first, then each literal piece is normalised like an account (docs/spec.md section 13.5), so
a character that NFKC turns into `*` (full-width, small asterisk) never becomes a wildcard: it is
refused. The pattern is matched against the normalised account, whole. A key for one exact account
(`--account NAME`, for a self-service portal) has no wildcard at all.

The CLI holds the database, so it acts as the local administrator (key id "cli"), except that a
forced replacement needs `--force`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from ..errors import InvalidInputError, SealcodesError
from .record import normalize_account

SCOPE_VERIFY = "verify"
SCOPE_IMPORT = "import"
SCOPE_ADMIN = "admin"
SCOPE_METRICS = "metrics"
SCOPES = (SCOPE_VERIFY, SCOPE_IMPORT, SCOPE_ADMIN, SCOPE_METRICS)
SCOPE_LOCAL = "local"

# what a request or command does
VERIFY = "verify"
IMPORT = "import"
FORCE_REPLACE = "force-replace"
STATUS = "status"
REVOKE = "revoke"
UNLOCK = "unlock"
AUDIT = "audit"
METRICS = "metrics"
ACTIONS = (VERIFY, IMPORT, FORCE_REPLACE, STATUS, REVOKE, UNLOCK, AUDIT, METRICS)

SCOPE_ACTIONS = {
    SCOPE_VERIFY: frozenset({VERIFY}),
    SCOPE_IMPORT: frozenset({IMPORT}),
    SCOPE_ADMIN: frozenset({IMPORT, FORCE_REPLACE, STATUS, REVOKE, UNLOCK, AUDIT, METRICS}),
    # figures summed over every account: no account is named, so the key's pattern plays no part
    SCOPE_METRICS: frozenset({METRICS}),
}

WILDCARD = "*"
EVERY_ACCOUNT_PATTERN = WILDCARD
LOCAL_KEY_ID = "cli"


class Forbidden(SealcodesError):
    """The key (or command) may not do this: HTTP 403."""


def normalize_pattern(pattern: str) -> str:
    """An account pattern as stored and matched: split on the `*` typed, each literal piece in
    NFKC; a piece whose NFKC holds `*` is refused; the whole must be an account by the rules of
    docs/spec.md section 13.5 (no invisible or control character, no white space at either end,
    1..128 bytes)."""
    if not isinstance(pattern, str):
        raise TypeError("the pattern must be text (str)")
    pieces = [unicodedata.normalize("NFKC", piece) for piece in pattern.split(WILDCARD)]
    if any(WILDCARD in piece for piece in pieces):
        raise InvalidInputError("the pattern holds a character that reads as '*' (a full-width or small asterisk): "
                                "only '*' itself is the wildcard")
    joined = WILDCARD.join(pieces)
    if normalize_account(joined) != joined:
        raise InvalidInputError("the pattern is not in normal form around its '*' (docs/spec.md section 13.5)")
    return joined


def exact_account_pattern(account: str) -> str:
    """The pattern of a key for exactly one account: its normal form, with no wildcard; an account
    whose normal form holds `*` is refused (it could not be told from a pattern)."""
    normal = normalize_account(account)
    if WILDCARD in normal:
        raise InvalidInputError("the account holds '*' (or a character that reads as it): a key cannot be limited "
                                "to it exactly")
    return normal


def pattern_matches(pattern: str, account: str) -> bool:
    """Whether the whole of `account` matches `pattern` (`*`: any run of characters)."""
    parts = pattern.split(WILDCARD)
    if len(parts) == 1:
        return pattern == account
    head, *middle, tail = parts
    if len(account) < len(head) + len(tail) or not account.startswith(head) or not account.endswith(tail):
        return False
    position, end = len(head), len(account) - len(tail)
    for part in middle:  # leftmost match of each piece is enough when `*` is the only wildcard
        found = account.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


@dataclass(frozen=True)
class Principal:
    """Who asks: an API key (its id, never the key) or the local CLI."""

    key_id: str
    scope: str
    accounts: str = EVERY_ACCOUNT_PATTERN
    actions: frozenset = frozenset()

    @classmethod
    def api_key(cls, key_id: str, scope: str, accounts: str = EVERY_ACCOUNT_PATTERN) -> "Principal":
        return cls(key_id, scope, accounts, SCOPE_ACTIONS.get(scope, frozenset()))

    @classmethod
    def local(cls, force: bool = False) -> "Principal":
        """The CLI, which holds the database: everything, a forced replacement only when asked."""
        allowed = set(ACTIONS) - ({FORCE_REPLACE} if not force else set())
        return cls(LOCAL_KEY_ID, SCOPE_LOCAL, EVERY_ACCOUNT_PATTERN, frozenset(allowed))

    def may(self, action: str, account: str | None = None) -> bool:
        if action not in self.actions:
            return False
        return account is None or pattern_matches(self.accounts, account)

    def check(self, action: str, account: str | None = None) -> None:
        """Raise Forbidden unless this principal may do `action` (on `account`, when given)."""
        if action not in self.actions:
            raise Forbidden(f"this API key (scope {self.scope}) may not {_WHAT[action]}")
        if account is not None and not pattern_matches(self.accounts, account):
            raise Forbidden(f"this API key is limited to accounts matching {self.accounts!r}")

    def check_every_account(self, action: str) -> None:
        """For a request about all accounts at once (the whole audit trail)."""
        self.check(action)
        if self.accounts != EVERY_ACCOUNT_PATTERN:
            raise Forbidden(f"this API key is limited to accounts matching {self.accounts!r}: name an account")


_WHAT = {
    VERIFY: "verify codes",
    IMPORT: "import records",
    FORCE_REPLACE: "replace an active set without the device's proof",
    STATUS: "read an account's status",
    REVOKE: "revoke sets",
    UNLOCK: "unlock accounts",
    AUDIT: "read the audit trail",
    METRICS: "read the server's metrics",
}

LOCAL = Principal.local()
