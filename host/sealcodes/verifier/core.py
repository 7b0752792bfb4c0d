"""The Verifier: accepts each code of an imported set once, holds no plaintext, resists guessing.

An attempt, in order (docs/verifier.md):

1. the account is locked -> "locked"; it is inside its back-off delay -> "throttled" (no hash);
2. the typed text does not read as a code with a matching check symbol for the format of any
   active set of the account -> "mistyped" (no hash, not counted as a guess);
3. one hash per active set (normally one set: one hash whatever its number of codes), outside any
   lock, at most `hash_slots` at once so memory stays bounded;
4. in one transaction holding the account: compare the digest with every digest of the set in
   constant time, without stopping at a match; consume a matching unused code with
   `UPDATE ... WHERE used_at IS NULL`; otherwise count a failure, set the next delay, lock at
   `max_failures`. The answer is only accepted / rejected / locked: never which part was wrong.

The library never prints; what happens is returned, written to the audit table, and passed to the
`events` callback (code used, set imported, account locked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .. import derivation
from ..errors import InvalidInputError, SealcodesError
from ..formats import FORMATS
from .record import (
    HashParams,
    VerifierRecord,
    canonical_code,
    code_digest,
    normalize_account,
    pepper_digest,
    pepper_id,
    validate_pepper,
)
from .store import AccountState, SetRow, SqlStore, StoreError

log = logging.getLogger("sealcodes.verifier")

ACCEPTED = "accepted"
REJECTED = "rejected"
MISTYPED = "mistyped"
LOCKED = "locked"
THROTTLED = "throttled"

EVENT_CODE_USED = "code-used"
EVENT_SET_IMPORTED = "set-imported"
EVENT_ACCOUNT_LOCKED = "account-locked"

#: SP 800-63B: at most 100 consecutive failed attempts per account
MAX_FAILURES_LIMIT = 100
DEFAULT_MAX_FAILURES = 10
DEFAULT_DELAY_BASE_S = 1.0
DEFAULT_DELAY_MAX_S = 300.0
DEFAULT_LOW_CODES = 3

API_KEY_PREFIX = "sck"
API_KEY_ID_BYTES = 6
API_KEY_SECRET_BYTES = 32

#: a fixed salt for the stand-in hash of an account with no active set (timing only)
_STAND_IN_SALT = b"sealcodes-nosalt"


class VerifierConfigError(SealcodesError):
    """The configuration does not fit the database (pepper, policy)."""


@dataclass(frozen=True)
class Policy:
    """Guessing limits, stored in the database so every CLI call, server and PAM agree."""

    max_failures: int = DEFAULT_MAX_FAILURES
    delay_base_s: float = DEFAULT_DELAY_BASE_S
    delay_max_s: float = DEFAULT_DELAY_MAX_S
    low_codes: int = DEFAULT_LOW_CODES

    def validate(self) -> "Policy":
        if isinstance(self.max_failures, bool) or not isinstance(self.max_failures, int) \
                or not 1 <= self.max_failures <= MAX_FAILURES_LIMIT:
            raise InvalidInputError(f"max failures must be 1 to {MAX_FAILURES_LIMIT}")
        if not 0 <= self.delay_base_s <= self.delay_max_s <= 86400:
            raise InvalidInputError("delays must satisfy 0 <= base <= max <= 86400 seconds")
        if not 0 <= self.low_codes <= 100:
            raise InvalidInputError("the low-codes warning must be 0 to 100")
        return self

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failures: base * 2^(failures-1), capped."""
        if failures <= 0 or self.delay_base_s == 0:
            return 0.0
        return min(self.delay_max_s, self.delay_base_s * 2 ** min(failures - 1, 40))

    def to_settings(self) -> dict:
        return {"max_failures": self.max_failures, "delay_base_s": self.delay_base_s,
                "delay_max_s": self.delay_max_s, "low_codes": self.low_codes}

    @classmethod
    def from_store(cls, store: SqlStore) -> "Policy":
        defaults = cls()
        try:
            return cls(
                max_failures=int(store.get_setting("max_failures") or defaults.max_failures),
                delay_base_s=float(store.get_setting("delay_base_s") or defaults.delay_base_s),
                delay_max_s=float(store.get_setting("delay_max_s") or defaults.delay_max_s),
                low_codes=int(store.get_setting("low_codes") or defaults.low_codes),
            ).validate()
        except (ValueError, InvalidInputError):
            raise VerifierConfigError("the verifier database holds an invalid policy: run `verifier init` "
                                      "with the limits you want") from None


@dataclass(frozen=True)
class VerifyResult:
    outcome: str
    #: seconds until the next attempt is considered (throttled, or after a failure)
    retry_after: float | None = None
    #: on success: which set and code, and how many codes of the set remain
    label: str | None = None
    epoch: int | None = None
    code_number: int | None = None
    remaining: int | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED


@dataclass(frozen=True)
class ImportResult:
    account: str
    label: str
    epoch: int
    imported: bool
    superseded_epochs: tuple[int, ...] = ()


@dataclass(frozen=True)
class SetStatus:
    label: str
    epoch: int
    format: str
    count: int
    remaining: int
    fingerprint: str


@dataclass(frozen=True)
class AccountStatus:
    account: str
    locked: bool
    failures: int
    retry_after: float
    sets: tuple[SetStatus, ...]
    low_codes: int

    @property
    def remaining(self) -> int:
        return sum(s.remaining for s in self.sets)

    @property
    def few_left(self) -> bool:
        return bool(self.sets) and self.remaining <= self.low_codes


@dataclass(frozen=True)
class Event:
    """Something an operator may want to hear about; never holds a code or a digest."""

    kind: str
    account: str
    at: float
    label: str | None = None
    epoch: int | None = None
    code_number: int | None = None
    remaining: int | None = None
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"event": self.kind, "account": self.account, "at": self.at, "label": self.label,
                "epoch": self.epoch, "code_number": self.code_number, "remaining": self.remaining, **self.detail}


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    name: str
    created_at: float
    revoked: bool


class Verifier:
    """Checks codes against a store. Thread-safe: the server shares one Verifier across threads."""

    def __init__(self, store: SqlStore, pepper: bytes | None = None, clock: Callable[[], float] = time.time,
                 events: Callable[[Event], None] | None = None, hash_slots: int | None = None,
                 check_schema: bool = True):
        self.store = store
        self._pepper = None if pepper is None else bytes(validate_pepper(bytes(pepper)))
        self._clock = clock
        self._events = events
        self._hash_slots = threading.BoundedSemaphore(hash_slots or max(2, 2 * (os.cpu_count() or 1)))
        if check_schema:
            store.require_current_schema()
            self._check_pepper()
            self.policy = Policy.from_store(store)
        else:
            self.policy = Policy()

    # --- set-up -----------------------------------------------------------------------------------

    @classmethod
    def initialise(cls, store: SqlStore, policy: Policy | None = None, pepper: bytes | None = None,
                   **options) -> "Verifier":
        """Create or migrate the schema, record the pepper's id and (when given) the policy."""
        store.migrate()
        wanted = pepper_id(None if pepper is None else validate_pepper(bytes(pepper)))
        recorded = store.get_setting("pepper_id")
        settings = {}
        if recorded is None:
            settings["pepper_id"] = wanted
        elif recorded != wanted:
            raise VerifierConfigError("this verifier database was initialised with a different pepper "
                                      "(or with none); the pepper cannot change")
        if policy is not None:
            settings.update(policy.validate().to_settings())
        elif store.get_setting("max_failures") is None:
            settings.update(Policy().to_settings())
        if settings:
            store.set_settings(settings)
        return cls(store, pepper=pepper, **options)

    def _check_pepper(self) -> None:
        recorded = self.store.get_setting("pepper_id") or ""
        if recorded != pepper_id(self._pepper):
            if recorded and self._pepper is None:
                raise VerifierConfigError("this verifier database uses a pepper, and none is configured "
                                          "(--pepper-file or SEALCODES_VERIFIER_PEPPER_FILE)")
            raise VerifierConfigError("the configured pepper is not the one this verifier database was "
                                      "initialised with")

    # --- import -----------------------------------------------------------------------------------

    def import_record(self, record: VerifierRecord) -> ImportResult:
        """Store a set. Epoch N+1 of an account and label retires every older epoch at once;
        the same record again changes nothing; an older epoch, or other codes under a known
        epoch, are refused."""
        record.validate()
        stored = [pepper_digest(self._pepper, d) for d in record.digests]
        now = self._clock()
        superseded = []
        with self.store.transaction(record.account) as tx:
            existing = tx.sets_for_label(record.label)
            for row in existing:
                if row.epoch == record.epoch and row.salt == record.salt and row.fingerprint == record.fingerprint:
                    return ImportResult(record.account, record.label, record.epoch, imported=False)
            newest = max((row.epoch for row in existing), default=None)
            if newest is not None and newest > record.epoch:
                raise InvalidInputError(f"this account and label are already at epoch {newest}; "
                                        f"epoch {record.epoch} is older and cannot be imported")
            if newest == record.epoch:
                raise InvalidInputError(f"epoch {record.epoch} of this account and label is already imported "
                                        "with other codes; rotate to a new epoch")
            active = [row for row in existing if row.retired_at is None]
            tx.retire_sets([row.id for row in active], "superseded", now)
            for row in active:
                tx.audit(now, "supersede", row.label, row.epoch, detail=f"by epoch {record.epoch}")
                superseded.append(row.epoch)
            tx.insert_set(record, stored, pepper_id(self._pepper), now)
            tx.audit(now, "import", record.label, record.epoch,
                     detail=f"{record.count} codes, {record.format}, {record.hash.scheme}")
        self._emit(Event(EVENT_SET_IMPORTED, record.account, now, record.label, record.epoch,
                         remaining=record.count, detail={"superseded_epochs": superseded}))
        return ImportResult(record.account, record.label, record.epoch, True, tuple(superseded))

    # --- verify -----------------------------------------------------------------------------------

    def verify(self, account: str, typed_code: str) -> VerifyResult:
        """Check one typed code for `account`; a match is consumed exactly once."""
        account = normalize_account(account)
        if not isinstance(typed_code, str):
            raise TypeError("the code must be text")
        now = self._clock()
        state = self.store.account_state(account)
        early = self._refusal(state, now)
        if early is not None:
            return early
        sets = self.store.active_sets(account)
        formats = sorted({row.format for row in sets}) if sets else list(FORMATS)
        compact = {fmt: canonical_code(typed_code, fmt) for fmt in formats}
        if all(code is None for code in compact.values()):
            return VerifyResult(MISTYPED)
        candidates: dict[int, bytes] = {}
        with self._hash_slots:
            for row in sets:
                code = compact[row.format]
                if code is not None:
                    candidates[row.id] = pepper_digest(self._pepper,
                                                       code_digest(_params_of(row), row.salt, row.format, code))
            if not sets:  # same cost as a real attempt, so answers do not tell which accounts exist
                fmt, code = next((f, c) for f, c in compact.items() if c is not None)
                pepper_digest(self._pepper, code_digest(HashParams.argon2id(), _STAND_IN_SALT, fmt, code))
        compact.clear()
        return self._decide(account, sets, candidates, now)

    def _refusal(self, state: AccountState, now: float) -> VerifyResult | None:
        if state.locked:
            return VerifyResult(LOCKED)
        if now < state.next_attempt_at:
            return VerifyResult(THROTTLED, retry_after=round(state.next_attempt_at - now, 3))
        return None

    def _decide(self, account: str, sets: Sequence[SetRow], candidates: dict[int, bytes], now: float) -> VerifyResult:
        by_id = {row.id: row for row in sets}
        event = None
        with self.store.transaction(account) as tx:
            state = tx.account_state()
            early = self._refusal(state, now)
            if early is not None:
                return early
            match = None
            replay = False
            for code in tx.code_rows(sorted(candidates)):
                # every digest is compared, in constant time, whatever was found before
                equal = hmac.compare_digest(code.digest, candidates[code.set_id])
                if equal and code.used:
                    replay = True
                elif equal and match is None:
                    match = code
            if match is not None and tx.consume(match.set_id, match.idx, now):
                row = by_id[match.set_id]
                remaining = tx.remaining(match.set_id)
                tx.save_account_state(AccountState())
                tx.audit(now, "success", row.label, row.epoch, match.idx, detail=f"{remaining} left")
                result = VerifyResult(ACCEPTED, label=row.label, epoch=row.epoch, code_number=match.idx + 1,
                                      remaining=remaining)
                event = Event(EVENT_CODE_USED, account, now, row.label, row.epoch, match.idx + 1, remaining)
            elif replay or match is not None:
                # a code already spent (or spent by a concurrent attempt) is refused, and is not a guess
                tx.audit(now, "replay")
                result = VerifyResult(REJECTED)
            else:
                failures = state.failures + 1
                delay = self.policy.delay_after(failures)
                locked_at = now if failures >= self.policy.max_failures else None
                tx.save_account_state(AccountState(failures, locked_at, now + delay))
                tx.audit(now, "failure", detail=f"{failures} consecutive")
                if locked_at is not None:
                    tx.audit(now, "lockout", detail=f"after {failures} consecutive failures")
                    result = VerifyResult(LOCKED)
                    event = Event(EVENT_ACCOUNT_LOCKED, account, now, detail={"failures": failures})
                else:
                    result = VerifyResult(REJECTED, retry_after=delay)
        if event is not None:
            self._emit(event)
        return result

    # --- administration ---------------------------------------------------------------------------

    def status(self, account: str) -> AccountStatus:
        account = normalize_account(account)
        state = self.store.account_state(account)
        sets = self.store.active_sets(account)
        remaining = self.store.remaining_by_set([row.id for row in sets])
        now = self._clock()
        return AccountStatus(
            account=account, locked=state.locked, failures=state.failures,
            retry_after=max(0.0, round(state.next_attempt_at - now, 3)),
            sets=tuple(SetStatus(r.label, r.epoch, r.format, r.count, remaining[r.id], r.fingerprint) for r in sets),
            low_codes=self.policy.low_codes,
        )

    def unlock(self, account: str) -> bool:
        """Clear the failure counter and the lock; True if the account was locked."""
        account = normalize_account(account)
        now = self._clock()
        with self.store.transaction(account) as tx:
            was_locked = tx.account_state().locked
            tx.save_account_state(AccountState())
            tx.audit(now, "unlock", detail="was locked" if was_locked else "was not locked")
        return was_locked

    def revoke(self, account: str, label: str | None = None) -> list[tuple[str, int]]:
        """Retire the active sets of an account (or of one label); returns (label, epoch) of each."""
        account = normalize_account(account)
        label = None if label is None else derivation.normalize_label_text(label)
        now = self._clock()
        with self.store.transaction(account) as tx:
            sets = [row for row in tx.active_sets() if label is None or row.label == label]
            tx.retire_sets([row.id for row in sets], "revoked", now)
            for row in sets:
                tx.audit(now, "revoke", row.label, row.epoch)
        return [(row.label, row.epoch) for row in sets]

    def audit(self, account: str | None = None, limit: int = 100):
        return self.store.audit_rows(None if account is None else normalize_account(account), limit)

    # --- API keys (HTTP service) ------------------------------------------------------------------

    def create_api_key(self, name: str) -> tuple[str, str]:
        """A new bearer key: returns (key id, the whole key). Only SHA-256 of the key is stored."""
        name = normalize_account(name) if name else "unnamed"
        key_id = os.urandom(API_KEY_ID_BYTES).hex()
        secret = base64.urlsafe_b64encode(os.urandom(API_KEY_SECRET_BYTES)).decode().rstrip("=")
        token = f"{API_KEY_PREFIX}_{key_id}_{secret}"
        self.store.add_api_key(key_id, _api_key_digest(token), name, self._clock())
        return key_id, token

    def check_api_key(self, token: str) -> str | None:
        """The key id when `token` is a live API key, else None."""
        parts = token.split("_", 2) if isinstance(token, str) and len(token) < 200 else []
        if len(parts) != 3 or parts[0] != API_KEY_PREFIX or len(parts[1]) != 2 * API_KEY_ID_BYTES:
            return None
        row = self.store.api_key(parts[1])
        expected = row.digest if row is not None else bytes(32)
        ok = hmac.compare_digest(expected, _api_key_digest(token))
        return parts[1] if ok and row is not None and row.revoked_at is None else None

    def api_keys(self) -> list[ApiKeyInfo]:
        return [ApiKeyInfo(r.key_id, r.name, r.created_at, r.revoked_at is not None) for r in self.store.api_keys()]

    def revoke_api_key(self, key_id: str) -> bool:
        return self.store.revoke_api_key(key_id, self._clock())

    # --- events -----------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if self._events is None:
            return
        try:
            self._events(event)
        except Exception:  # a broken hook never changes an answer already committed
            log.warning("event hook failed for %s", event.kind, exc_info=log.isEnabledFor(logging.DEBUG))


def _params_of(row: SetRow) -> HashParams:
    return HashParams(row.scheme, row.memory_kib, row.iterations, row.lanes)


def _api_key_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


__all__ = [
    "ACCEPTED", "REJECTED", "MISTYPED", "LOCKED", "THROTTLED", "Verifier", "Policy", "VerifyResult",
    "ImportResult", "AccountStatus", "SetStatus", "Event", "StoreError", "VerifierConfigError",
]
