"""The Verifier: accepts each code of an imported set once, holds no plaintext, resists guessing.

An attempt, in order (docs/verifier.md):

1. the account is locked -> "locked"; it is inside its back-off delay -> "throttled" (no hash);
2. the typed text does not read as a code with a matching check symbol in any format -> "mistyped"
   (no hash, not counted). The formats of the account's sets play no part, so the answer is the
   same whether or not the account exists;
3. one hash per active set whose format reads the code (normally one set: one hash whatever its
   number of codes), outside any lock, at most `hash_slots` at once so memory stays bounded (an
   attempt that finds no free slot within the policy's wait is refused as `Busy`); then stand-in
   Argon2id calls of the policy's one shape, until the attempt has made as many Argon2id calls as
   the account with the most Argon2id sets needs. Every Argon2id set has that shape, so an unknown
   account, an account without a set of that format and an `hmac-sha256` account make the same
   calls with the same parameters as any other;
4. in one transaction holding the account: compare the digest with every digest of the set in
   constant time, without stopping at a match; consume a matching unused code with
   `UPDATE ... WHERE used_at IS NULL`; otherwise (a wrong code, or one already spent) count a
   failure, set the next delay, lock at `max_failures`. The answer is only accepted / rejected /
   locked: never which part was wrong.

Every method takes the `Principal` asking (an API key, or the local CLI) and checks it first
(auth.py); a refusal is audited with the key id. The library never prints; what happens is
returned, written to the audit table, and passed to the `events` callback.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from .. import derivation
from ..errors import InvalidInputError, SealcodesError
from ..formats import FORMATS
from .auth import (
    AUDIT,
    EVERY_ACCOUNT_PATTERN,
    FORCE_REPLACE,
    IMPORT,
    LOCAL,
    LOCAL_KEY_ID,
    REVOKE,
    SCOPE_VERIFY,
    SCOPES,
    STATUS,
    UNLOCK,
    VERIFY,
    Forbidden,
    Principal,
    exact_account_pattern,
    normalize_pattern,
)
from .policy import Policy
from .record import (
    SCHEME_ARGON2ID,
    HashParams,
    VerifierRecord,
    canonical_code,
    code_digest,
    normalize_account,
    pepper_digest,
    pepper_id,
    validate_pepper,
)
from .rotation import verify_proof
from .store import (
    ATTEMPT_HASHES,
    CURRENT_PEPPER,
    AccountState,
    AuditEntry,
    NewSet,
    SetRow,
    SqlStore,
    StoreError,
    account_fold,
)

log = logging.getLogger("sealcodes.verifier")

ACCEPTED = "accepted"
REJECTED = "rejected"
MISTYPED = "mistyped"
LOCKED = "locked"
THROTTLED = "throttled"

EVENT_CODE_USED = "code-used"
EVENT_SET_IMPORTED = "set-imported"
EVENT_ACCOUNT_LOCKED = "account-locked"

API_KEY_PREFIX = "sck"
API_KEY_ID_BYTES = 6
API_KEY_SECRET_BYTES = 32

#: a fixed salt for the stand-in hash that pads an attempt (timing only; its result is dropped)
_STAND_IN_SALT = b"sealcodes-nosalt"
#: records per transaction of a bulk import, by default and at most
IMPORT_BATCH = 1000
IMPORT_BATCH_MAX = 10000
#: what an import key is told when an account already has an active set and no valid proof came
NEEDS_PROOF = "rotating an active set needs the device's proof; an admin may force a replacement"
#: a record that carries a proof which does not verify (wrong device or seed, stale, changed in transit)
PROOF_DOES_NOT_CHECK = ("the record's proof does not check against the active set's commitment (a wrong or stale "
                        "proof); an admin may force a replacement")


class VerifierConfigError(SealcodesError):
    """The configuration does not fit the database (pepper, policy)."""


class Busy(SealcodesError):
    """No hash slot came free within the policy's wait: the attempt was not made (HTTP 503)."""


class RetiredSet(InvalidInputError):
    """The record's set is stored but retired (superseded or revoked): never imported again (HTTP 409)."""


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or taskset's share), not every
    CPU of the machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this system
        return os.cpu_count() or 1


def hash_slots_per_process(processes: int = 1, cpus: int | None = None) -> int:
    """How many attempts one of `processes` server processes hashes at once when the processes
    cannot share one pool (slotpool.py): 2 x `cpus` (default: those this process may use) in all,
    so that a process can still use a CPU its sibling leaves idle, and the memory Argon2id fills
    stays bounded however many processes share the machine."""
    return max(1, -(-2 * (cpus or usable_cpus()) // max(1, processes)))


class HashSlots:
    """At most `size` attempts hash at once; the others queue. The slots are this process's own,
    or `shared` by the server's processes (slotpool.SharedSlots: `size` is then the pool's, for
    them all). `on_change(waiting, running)` hears each change in this process (the server's
    /metrics: the hash queue depth); `on_hashed(seconds)` the CPU time of each block that held a
    slot (the server's /metrics: how much of its CPU goes to hashing)."""

    def __init__(self, size: int, on_change: Callable[[int, int], None] | None = None, shared=None,
                 on_hashed: Callable[[float], None] | None = None):
        self.size = shared.size if shared is not None else size
        self.shared = shared is not None
        self.on_change = on_change
        self.on_hashed = on_hashed
        self._semaphore = shared if shared is not None else threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self.waiting = self.running = 0

    def _moved(self, waiting: int, running: int) -> None:
        # told under the lock: two changes at once reach on_change in the order they were made
        with self._lock:
            self.waiting += waiting
            self.running += running
            if self.on_change is not None:
                self.on_change(self.waiting, self.running)

    @contextlib.contextmanager
    def held(self, timeout: float):
        """A slot for the block; Busy when none came free within `timeout` seconds (or the shared
        pool is gone: the server is stopping)."""
        self._moved(1, 0)
        try:
            acquired = self._semaphore.acquire(timeout=max(0.0, timeout))
        except OSError:  # slotpool.SlotPoolError: removed by a supervisor that stops
            self._moved(-1, 0)
            raise Busy("the verifier is stopping; retry shortly") from None
        except BaseException:
            self._moved(-1, 0)
            raise
        if not acquired:
            self._moved(-1, 0)
            raise Busy("the verifier is busy: no hash slot came free in time; retry shortly")
        started = time.thread_time()
        try:
            self._moved(-1, 1)
            yield
        finally:
            spent = time.thread_time() - started
            self._semaphore.release()
            self._moved(0, -1)
            if self.on_hashed is not None:
                self.on_hashed(spent)


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
    #: an admin replaced an active set without the device's proof
    forced: bool = False


@dataclass(frozen=True)
class ImportSummary:
    """Counts of an import of many records so far."""

    records: int = 0
    imported: int = 0
    unchanged: int = 0
    forced: int = 0
    superseded: int = 0

    def add(self, results: Sequence[ImportResult]) -> "ImportSummary":
        imported = sum(1 for r in results if r.imported)
        return ImportSummary(self.records + len(results), self.imported + imported,
                             self.unchanged + len(results) - imported, self.forced + sum(1 for r in results if r.forced),
                             self.superseded + sum(len(r.superseded_epochs) for r in results))


class ImportStopped(SealcodesError):
    """An import of many records stopped at a record it refused (or could not read): every
    record before it is stored (`summary`), nothing after it."""

    def __init__(self, summary: ImportSummary, record: VerifierRecord | None, cause: SealcodesError):
        super().__init__(str(cause))
        self.summary, self.record, self.cause = summary, record, cause


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
    scope: str
    accounts: str


class Verifier:
    """Checks codes against a store. Thread-safe: the server shares one Verifier across threads.

    `peppers` are every pepper this process knows (docs/verifier.md, "Peppers"): each set is
    checked under the pepper it was imported with, new imports use the database's current one.
    """

    def __init__(self, store: SqlStore, pepper: bytes | Sequence[bytes] | None = None,
                 clock: Callable[[], float] = time.time, events: Callable[[Event], None] | None = None,
                 hash_slots: int | HashSlots | None = None, check_schema: bool = True):
        self.store = store
        self._peppers = _pepper_map(pepper)
        self._clock = clock
        self._events = events
        # attempts that may hash at once (each holds the memory of one Argon2id); a server may hand
        # its slots from one Verifier to the next when it reloads its configuration
        self.hash_slots = hash_slots if isinstance(hash_slots, HashSlots) else \
            HashSlots(hash_slots or usable_cpus())
        if check_schema:
            store.require_current_schema()
            self._check_peppers()
            self.policy = _stored_policy(store)
        else:
            self.policy = Policy()

    # --- set-up -----------------------------------------------------------------------------------

    @classmethod
    def initialise(cls, store: SqlStore, policy: Policy | None = None,
                   pepper: bytes | Sequence[bytes] | None = None, **options) -> "Verifier":
        """Create or migrate the schema, register the pepper of a new database, store the policy
        (when given) and recompute the attempt cost."""
        store.migrate()
        given = _pepper_map(pepper)
        settings = {}
        if store.get_setting(CURRENT_PEPPER) is None:  # a new database: its first pepper, or none
            if len(given) > 1:
                raise VerifierConfigError("give one pepper to a new database; add more with `verifier pepper add`")
            first = next(iter(given), "")
            if first:
                store.add_pepper(first, time.time())
            else:
                settings[CURRENT_PEPPER] = ""
        elif given:
            registered = {row.pepper_id for row in store.peppers()}
            unknown = sorted(set(given) - registered)
            if unknown:
                raise VerifierConfigError(f"pepper {unknown[0]} is not registered in this database, which exists "
                                          "already: make it current with `sealcodes verifier pepper add FILE`")
        if policy is not None:
            settings.update(policy.validate().to_settings())
        elif store.get_setting("max_failures") is None:
            settings.update(Policy().to_settings())
        if settings:
            store.set_settings(settings)
        store.recompute_attempt_hashes()
        return cls(store, pepper=pepper, **options)

    def sets_of_another_shape(self) -> int:
        """Active Argon2id sets stored before the policy's shape (or under another one): attempts on
        their accounts take another time than on the others until they are rotated or revoked."""
        shape = self.policy.shape
        return self.store.sets_of_another_shape(shape.memory_kib, shape.iterations, shape.lanes)

    def attempt_seconds(self) -> float:
        """What one attempt's Argon2id work takes on this machine now (one timed stand-in call,
        times the calls of an attempt): for the capacity warning of `serve`."""
        start = time.perf_counter()
        code_digest(self.policy.shape, _STAND_IN_SALT, "base32-16", "0" * 17)
        calls = max(1, int(self.store.get_setting(ATTEMPT_HASHES) or 0))
        return (time.perf_counter() - start) * calls

    def capacity_warnings(self, attempt_seconds: float | None = None) -> list[str]:
        """Where one client could keep every hash slot busy (docs/verifier.md,
        "Busy"): its rate limit times the attempt's time exceeds the slots, or it has no rate limit
        and no cap on attempts in flight below the slots."""
        seconds = self.attempt_seconds() if attempt_seconds is None else attempt_seconds
        policy, slots, warnings = self.policy, self.hash_slots.size, []
        for who, rate, in_flight, option in (
                ("client address", policy.address_rate, policy.address_in_flight, "--address-rate"),
                ("API key", policy.key_rate, policy.key_in_flight, "--key-rate")):
            capped = 0 < in_flight < slots
            if rate and rate * seconds > slots:
                warnings.append(f"{rate:g} attempts/s per {who} (init {option}) at {seconds * 1000:.0f} ms each keep "
                                f"{rate * seconds:.1f} hash slots busy, and the server has {slots}: one {who} can "
                                "make logins wait, then answer busy" + ("" if capped else
                                f"; its attempts in flight are not capped below {slots} (init --in-flight)"))
            elif not rate and not capped:
                warnings.append(f"no rate limit per {who} and no cap on its attempts in flight below the {slots} "
                                f"hash slots: one {who} can keep every slot busy")
        return warnings

    def _check_peppers(self) -> None:
        """Refuse to start without every pepper an active set (or the next import) needs."""
        needed = self.store.pepper_ids_in_use() | {self.store.get_setting(CURRENT_PEPPER) or ""}
        missing = sorted(needed - set(self._peppers) - {""})
        if not missing:
            return
        if not self._peppers:
            raise VerifierConfigError("this verifier database uses a pepper, and none is configured "
                                      "(--pepper-file or SEALCODES_VERIFIER_PEPPER_FILE)")
        raise VerifierConfigError(f"the configured peppers do not include pepper {missing[0]}, which active sets "
                                  "or new imports use (give its file with --pepper-file)")

    def _pepper(self, pepper_id_: str) -> bytes | None:
        if not pepper_id_:
            return None
        try:
            return self._peppers[pepper_id_]
        except KeyError:
            raise VerifierConfigError(f"pepper {pepper_id_} is not configured in this process") from None

    # --- authority --------------------------------------------------------------------------------

    def authorize(self, principal: Principal, action: str, account: str | None = None) -> None:
        """The one check of who may do what (auth.py); a refusal is audited with the key id."""
        try:
            principal.check(action, account)
        except Forbidden:
            self._audit_refusal(principal, action, account)
            raise

    def _audit_refusal(self, principal: Principal, action: str, account: str | None) -> None:
        self.store.audit_event(self._clock(), "forbidden", account or "",
                               detail=f"key {principal.key_id} ({principal.scope}): {action}")

    # --- import -----------------------------------------------------------------------------------

    def import_record(self, record: VerifierRecord, principal: Principal = LOCAL) -> ImportResult:
        """Store a set, under the import rules of docs/verifier.md ("Who may change codes"):

        - the same record again changes nothing; the record of a set since retired is refused;
        - an account without any active set takes a first set (an epoch not older than one
          already retired for that label), unless another account differing only in case has sets;
        - an account with an active set takes a new set only with a rotation proof that verifies
          under the commitment of the active set it names (and a newer epoch for the same label),
          or from a principal allowed to force a replacement, which is audited as such;
        - an epoch older than the label's (its active set's, or the newest retired one) is imported
          only by a forced replacement: a first set at the last epoch cannot lock a label for good;
        - other codes under an epoch already imported are refused for everyone;
        - an account holds at most `max_sets` active sets, each Argon2id set of the policy's shape.

        Epoch N+1 of an account and label retires every older epoch at once. This is a batch of
        one record: `import_records` applies the same rules, through the same code."""
        results, refusal = self._import_batch([record], principal)
        if refusal is not None:
            raise refusal[1]
        return results[0]

    def import_records(self, records: Iterable[VerifierRecord], principal: Principal = LOCAL,
                       batch_size: int = IMPORT_BATCH, progress: Callable[["ImportSummary"], None] | None = None
                       ) -> "ImportSummary":
        """Store many records (any number: read from `records` as they come, `batch_size` per
        transaction), each under exactly the rules of `import_record`. A batch never holds an
        account twice: a record whose account is already in the batch starts the next one.

        A record refused (or one that `records` cannot read: it raises InvalidInputError) stops
        the import with ImportStopped: every record before it is stored, nothing after it. Run
        again, the same records are "unchanged", so an interrupted import resumes without double
        rows. `progress` is called after each batch with the counts so far."""
        if not 1 <= batch_size <= IMPORT_BATCH_MAX:
            raise InvalidInputError(f"the batch size must be 1 to {IMPORT_BATCH_MAX}")
        summary = ImportSummary()
        batch: list[VerifierRecord] = []
        accounts: set[str] = set()

        def flush() -> None:
            nonlocal summary
            if not batch:
                return
            results, refusal = self._import_batch(batch, principal)
            summary = summary.add(results)
            batch.clear()
            accounts.clear()
            if refusal is not None:
                raise ImportStopped(summary, refusal[0], refusal[1])
            if progress is not None:
                progress(summary)

        iterator = iter(records)
        while True:
            try:
                record = next(iterator)
            except StopIteration:
                break
            except InvalidInputError as exc:  # the input broke off: keep what came before it
                flush()
                raise ImportStopped(summary, None, exc) from None
            if record.account in accounts or len(batch) >= batch_size:
                flush()
            batch.append(record)
            accounts.add(record.account)
        flush()
        return summary

    def _import_batch(self, records: Sequence[VerifierRecord], principal: Principal
                      ) -> tuple[list[ImportResult], tuple[VerifierRecord, SealcodesError] | None]:
        """Import records of distinct accounts in one transaction, in order, up to the first
        refused one: (results of the records stored, (the refused record, why) or None)."""
        # what needs no database first, record after record: the record, the key's scope, the shape
        checked: list[VerifierRecord] = []
        refusal = refused_scope = None
        for record in records:
            try:
                record.validate()
                refuse_code_like_account(record.account)
                principal.check(IMPORT, record.account)
                self.policy.check_params(record.hash)
            except Forbidden as exc:
                refusal, refused_scope = (record, exc), IMPORT
                break
            except InvalidInputError as exc:
                refusal = (record, exc)
                break
            checked.append(record)
        now = self._clock()
        plans: list[tuple[_ImportPlan, tuple[bytes, ...]]] = []
        if checked:
            with self.store.import_transaction([record.account for record in checked]) as tx:
                # the current pepper read here, held until the batch commits: a pepper added and the
                # old one retired meanwhile wait for it, and never leave a set under a retired pepper
                current = tx.current_pepper()
                pepper = self._pepper(current)
                stored = tx.sets_by_account()
                first_sets = sorted({account_fold(r.account) for r in checked if not stored[r.account]})
                folds = tx.accounts_by_fold(first_sets)
                for record in checked:
                    try:
                        plan = _plan_import(record, stored[record.account], principal, self.policy, folds)
                    except Forbidden as exc:
                        refusal, refused_scope = (record, exc), "rotate without proof"
                        break
                    except InvalidInputError as exc:
                        refusal, refused_scope = (record, exc), None
                        break
                    if plan.imported:
                        folds.setdefault(account_fold(record.account), set()).add(record.account)
                    plans.append((plan, tuple(pepper_digest(pepper, d) for d in record.digests)))
                _store_plans(tx, plans, current, now)
        if refused_scope is not None:  # audited once the batch's transaction is over
            self._audit_refusal(principal, refused_scope, refusal[0].account)
        results = []
        for plan, _ in plans:
            record = plan.record
            superseded = tuple(row.epoch for row in plan.replaced)
            results.append(ImportResult(record.account, record.label, record.epoch, plan.imported, superseded,
                                        plan.forced))
            if plan.imported:
                self._emit(Event(EVENT_SET_IMPORTED, record.account, now, record.label, record.epoch,
                                 remaining=record.count,
                                 detail={"superseded_epochs": list(superseded), "forced": plan.forced}))
        return results, refusal

    # --- verify -----------------------------------------------------------------------------------

    def verify(self, account: str, typed_code: str, principal: Principal = LOCAL,
               wait: float | None = None) -> VerifyResult:
        """Check one typed code for `account`; a match is consumed exactly once. The account must be
        given in its normal form (docs/spec.md section 13.5): another spelling is refused, not
        folded. `wait` bounds the wait for a hash slot (default: the policy's); then `Busy`."""
        if not isinstance(typed_code, str):
            raise TypeError("the code must be text")
        check_verify_account(account)
        self.authorize(principal, VERIFY, account)
        now = self._clock()
        view = self.store.attempt_view(account)
        early = self._refusal(view.state, now)
        if early is not None:
            return early
        # mistyped by the rules of every format: the account's own formats would tell it exists
        compact = {fmt: canonical_code(typed_code, fmt) for fmt in FORMATS}
        if all(code is None for code in compact.values()):
            return VerifyResult(MISTYPED)
        sets, calls = view.sets, view.attempt_hashes
        candidates: dict[int, bytes] = {}
        try:
            with self.hash_slots.held(self.policy.attempt_wait_s if wait is None else wait):
                for row in sets:
                    code = compact[row.format]
                    if code is not None:
                        params = _params_of(row)
                        candidates[row.id] = pepper_digest(self._pepper(row.pepper_id),
                                                           code_digest(params, row.salt, row.format, code))
                        calls -= params.scheme == SCHEME_ARGON2ID
                if calls > 0:  # the calls the account with the most sets makes, of the one shape: the same work
                    fmt, code = next((f, c) for f, c in compact.items() if c is not None)
                    for _ in range(calls):
                        code_digest(self.policy.shape, _STAND_IN_SALT, fmt, code)
        finally:
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
            codes = tx.code_rows(sorted(candidates))
            for code in codes:
                # every digest is compared, in constant time, whatever was found before
                equal = hmac.compare_digest(code.digest, candidates[code.set_id])
                if equal and code.used:
                    replay = True
                elif equal and match is None:
                    match = code
            if match is not None and tx.consume(match.set_id, match.idx, now):
                row = by_id[match.set_id]
                # read while the account is held, as every consume holds it: the set's codes
                # unused then are those unused now, but the one just consumed
                remaining = sum(1 for code in codes if code.set_id == match.set_id and not code.used) - 1
                tx.save_account_state(AccountState())
                tx.audit(now, "success", row.label, row.epoch, match.idx, detail=f"{remaining} left")
                result = VerifyResult(ACCEPTED, label=row.label, epoch=row.epoch, code_number=match.idx + 1,
                                      remaining=remaining)
                event = Event(EVENT_CODE_USED, account, now, row.label, row.epoch, match.idx + 1, remaining)
            else:
                # a wrong code, or one already spent (or spent by a concurrent attempt): the same
                # answer, delay and count either way, so a spent code does not tell the account exists
                failures = state.failures + 1
                delay = self.policy.delay_after(failures)
                locked_at = now if failures >= self.policy.max_failures else None
                tx.save_account_state(AccountState(failures, locked_at, now + delay if delay else 0.0))
                tx.audit(now, "replay" if replay or match is not None else "failure", detail=f"{failures} consecutive")
                if locked_at is not None:
                    tx.audit(now, "lockout", detail=f"after {failures} consecutive failures")
                    result = VerifyResult(LOCKED)
                    if sets:  # an account with no set is locked alike, but nobody is told about a made-up name
                        event = Event(EVENT_ACCOUNT_LOCKED, account, now, detail={"failures": failures})
                else:
                    result = VerifyResult(REJECTED, retry_after=delay)
        if event is not None:
            self._emit(event)
        return result

    # --- administration ---------------------------------------------------------------------------

    def status(self, account: str, principal: Principal = LOCAL) -> AccountStatus:
        account = normalize_account(account)
        self.authorize(principal, STATUS, account)
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

    def unlock(self, account: str, principal: Principal = LOCAL) -> bool:
        """Clear the failure counter and the lock; True if the account was locked."""
        account = normalize_account(account)
        self.authorize(principal, UNLOCK, account)
        now = self._clock()
        with self.store.transaction(account) as tx:
            was_locked = tx.account_state().locked
            tx.save_account_state(AccountState())
            tx.audit(now, "unlock", detail=("was locked" if was_locked else "was not locked")
                     + f", key {principal.key_id}")
        return was_locked

    def revoke(self, account: str, label: str | None = None, principal: Principal = LOCAL) -> list[tuple[str, int]]:
        """Retire the active sets of an account (or of one label); returns (label, epoch) of each."""
        account = normalize_account(account)
        label = None if label is None else derivation.normalize_label_text(label)
        self.authorize(principal, REVOKE, account)
        now = self._clock()
        with self.store.transaction(account) as tx:
            sets = [row for row in tx.active_sets() if label is None or row.label == label]
            tx.retire_sets([row.id for row in sets], "revoked", now)
            for row in sets:
                tx.audit(now, "revoke", row.label, row.epoch, detail=f"key {principal.key_id}")
        return [(row.label, row.epoch) for row in sets]

    def audit(self, account: str | None = None, limit: int = 100, principal: Principal = LOCAL):
        if account is None:
            try:
                principal.check_every_account(AUDIT)
            except Forbidden:
                self._audit_refusal(principal, AUDIT, None)
                raise
            return self.store.audit_rows(None, limit)
        account = normalize_account(account)
        self.authorize(principal, AUDIT, account)
        return self.store.audit_rows(account, limit)

    # --- API keys (HTTP service) ------------------------------------------------------------------

    def create_api_key(self, name: str, scope: str = SCOPE_VERIFY, accounts: str = EVERY_ACCOUNT_PATTERN,
                       account: str | None = None) -> tuple[str, str]:
        """A new bearer key: returns (key id, the whole key). Only SHA-256 of the key is stored.
        `accounts` is a pattern; `account` instead limits the key to exactly that account."""
        if scope not in SCOPES:
            raise InvalidInputError(f"the scope must be one of {', '.join(SCOPES)}")
        if account is not None:
            if accounts != EVERY_ACCOUNT_PATTERN:
                raise InvalidInputError("give either an account pattern or one exact account, not both")
            accounts = exact_account_pattern(account)
        else:
            accounts = normalize_pattern(accounts)
        name = normalize_account(name) if name else "unnamed"
        key_id = os.urandom(API_KEY_ID_BYTES).hex()
        secret = base64.urlsafe_b64encode(os.urandom(API_KEY_SECRET_BYTES)).decode().rstrip("=")
        token = f"{API_KEY_PREFIX}_{key_id}_{secret}"
        self.store.add_api_key(key_id, _api_key_digest(token), name, self._clock(), scope, accounts)
        return key_id, token

    def check_api_key(self, token: str) -> Principal | None:
        """Who holds `token` when it is a live API key, else None."""
        parts = token.split("_", 2) if isinstance(token, str) and len(token) < 200 else []
        if len(parts) != 3 or parts[0] != API_KEY_PREFIX or len(parts[1]) != 2 * API_KEY_ID_BYTES:
            return None
        row = self.store.api_key(parts[1])
        expected = row.digest if row is not None else bytes(32)
        ok = hmac.compare_digest(expected, _api_key_digest(token))
        if not ok or row is None or row.revoked_at is not None:
            return None
        return Principal.api_key(row.key_id, row.scope, row.accounts)

    def api_keys(self) -> list[ApiKeyInfo]:
        return [ApiKeyInfo(r.key_id, r.name, r.created_at, r.revoked_at is not None, r.scope, r.accounts)
                for r in self.store.api_keys()]

    def revoke_api_key(self, key_id: str) -> bool:
        return self.store.revoke_api_key(key_id, self._clock())

    # --- peppers ----------------------------------------------------------------------------------

    def add_pepper(self, pepper: bytes) -> tuple[str, bool]:
        """Make `pepper` current for new imports; returns (its id, whether anything changed).
        Older sets keep the pepper they were imported with until they are superseded."""
        new_id = pepper_id(validate_pepper(bytes(pepper)))
        changed = self.store.add_pepper(new_id, self._clock())
        self._peppers[new_id] = bytes(pepper)
        return new_id, changed

    def retire_pepper(self, pepper_id_: str) -> None:
        """Refused while an active set still uses the pepper, and for the current one."""
        self.store.retire_pepper(pepper_id_, self._clock())

    def peppers(self):
        return self.store.peppers()

    # --- events -----------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if self._events is None:
            return
        try:
            self._events(event)
        except Exception:  # a broken hook never changes an answer already committed
            log.warning("event hook failed for %s", event.kind, exc_info=log.isEnabledFor(logging.DEBUG))


@dataclass(frozen=True)
class _ImportPlan:
    """What importing one record does, decided by `_plan_import` before anything is written."""

    record: VerifierRecord
    imported: bool
    key_id: str
    replaced: tuple[SetRow, ...] = ()
    forced: bool = False
    #: why it is forced: "" (not forced), "proof" (an active set, no valid proof) or "older" (an
    #: epoch below the label's)
    forced_why: str = ""
    floor: int | None = None
    #: the Argon2id sets the account holds with this set: the calls of every attempt, at least
    attempt_hashes: int = 0


def _plan_import(record: VerifierRecord, stored: Sequence[SetRow], principal: Principal, policy: Policy,
                 folds: dict[str, set[str]]) -> _ImportPlan:
    """The import rules (docs/verifier.md, "The import rules") for one record, given every set of
    its account (retired or not, in import order) and the accounts that have sets by case fold
    (for a first set); raises Forbidden or InvalidInputError (RetiredSet)."""
    existing = sorted((row for row in stored if row.label == record.label), key=lambda row: row.epoch)
    for row in existing:
        if row.epoch == record.epoch and row.salt == record.salt and row.fingerprint == record.fingerprint:
            if row.retired_at is not None:
                raise RetiredSet(f"this set (epoch {row.epoch}) was {row.retired_why or 'retired'} and is never "
                                 "imported again; rotate to a new epoch")
            return _ImportPlan(record, imported=False, key_id=principal.key_id)
    if any(row.epoch == record.epoch for row in existing):
        raise InvalidInputError(f"epoch {record.epoch} of this account and label is already imported "
                                "with other codes; rotate to a new epoch")
    if not stored and folds.get(account_fold(record.account), set()) - {record.account}:
        raise InvalidInputError("another account that differs from this one only in case has code sets; a first "
                                "set is refused (docs/spec.md section 13.5)")
    active = [row for row in stored if row.retired_at is None]
    replaced = tuple(row for row in active if row.label == record.label)
    # the label's epoch: that of its active set (after a forced import below it, older retired
    # epochs may be higher), else the newest retired one
    floor = max((row.epoch for row in (replaced or existing)), default=None)
    older = floor is not None and record.epoch < floor
    unproven = bool(active) and not _proof_holds(record, active)
    if (unproven or older) and not principal.may(FORCE_REPLACE, record.account):
        hint = " (sealcodes verifier import --force)" if principal.key_id == LOCAL_KEY_ID else ""
        if unproven:
            raise Forbidden((NEEDS_PROOF if record.proof is None else PROOF_DOES_NOT_CHECK) + hint)
        raise InvalidInputError(f"this account and label are already at epoch {floor}; epoch {record.epoch} is "
                                f"older: only a forced replacement may import it{hint}")
    kept = [row for row in active if row.label != record.label]
    if len(kept) + 1 > policy.max_sets:
        raise InvalidInputError(f"with this set the account would hold {len(kept) + 1} active sets; this verifier "
                                f"allows {policy.max_sets}")
    hashes = sum(row.scheme == SCHEME_ARGON2ID for row in kept) + (record.hash.scheme == SCHEME_ARGON2ID)
    return _ImportPlan(record, True, principal.key_id, replaced, unproven or older,
                       "proof" if unproven else ("older" if older else ""), floor, hashes)


def _store_plans(tx, plans: Sequence[tuple[_ImportPlan, tuple[bytes, ...]]], pepper_id_: str, now: float) -> None:
    """The writes of a batch's plans: a few statements for the whole batch."""
    entries, new_sets, retired = [], [], []
    for plan, digests in plans:
        if not plan.imported:
            continue
        record = plan.record
        retired.extend(row.id for row in plan.replaced)
        entries.extend(AuditEntry(record.account, "supersede", row.label, row.epoch, f"by epoch {record.epoch}")
                       for row in plan.replaced)
        new_sets.append(NewSet(record, digests, pepper_id_))
        entries.append(AuditEntry(record.account, "import", record.label, record.epoch,
                                  f"{record.count} codes, {record.format}, {record.hash.scheme}, "
                                  f"key {plan.key_id}"))
        if plan.forced:
            old = ", ".join(str(row.epoch) for row in plan.replaced) or "none of this label"
            why = "without the device's proof" if plan.forced_why == "proof" else \
                f"below the label's epoch {plan.floor}, never imported before"
            entries.append(AuditEntry(record.account, "forced-replace", record.label, record.epoch,
                                      f"key {plan.key_id}: epoch {old} -> {record.epoch}, {why}"))
    if not new_sets:
        return
    tx.retire_sets(retired, "superseded", now)
    tx.insert_sets(new_sets, now)
    tx.raise_attempt_hashes(max(plan.attempt_hashes for plan, _ in plans))
    tx.audit(entries, now)


def _proof_holds(record: VerifierRecord, active: Sequence[SetRow]) -> bool:
    """Whether the record carries a rotation proof (record v2, docs/spec.md section 14.4) that
    verifies under the stored commitment of the active set it names. When the record's label has
    an active set, only that set signs, for a newer epoch; a new label may be signed by any active
    set of the account. A set without commitment (record v1) signs nothing."""
    proof = record.proof
    if proof is None:
        return False
    signer = next((row for row in active if row.label == proof.label and row.epoch == proof.epoch), None)
    if signer is None or signer.commitment is None:
        return False
    if any(row.label == record.label for row in active) and signer.label != record.label:
        return False
    if signer.label == record.label and record.epoch <= signer.epoch:
        return False
    return verify_proof(signer.commitment, record)


def check_verify_account(account: str) -> None:
    """An account as a login gives it: already in its normal form (docs/spec.md section 13.5; a
    spelling that folds to another account is refused, not folded: whatever matched the login's
    user name would otherwise be another name than the one checked), and not a code typed in the
    user-name field, refused before anything is written."""
    if not isinstance(account, str):
        raise TypeError("account must be text (str)")
    if normalize_account(account) != account:
        raise InvalidInputError("the account is not in its normal form (docs/spec.md section 13.5): give it as "
                                "stored")
    refuse_code_like_account(account)


def refuse_code_like_account(account: str) -> None:
    """Refuse an account that reads as a well-formed code of any format: most likely a code typed
    into the user-name field, which must not be stored (the audit trail keeps account names)."""
    if any(canonical_code(account, fmt) is not None for fmt in FORMATS):
        raise InvalidInputError("the account reads as a recovery code; it is refused and not recorded")


def _pepper_map(pepper) -> dict[str, bytes]:
    if pepper is None:
        return {}
    given = [pepper] if isinstance(pepper, (bytes, bytearray)) else list(pepper)
    return {pepper_id(validate_pepper(bytes(p))): bytes(p) for p in given}


def _stored_policy(store: SqlStore) -> Policy:
    try:
        return Policy.from_settings(store.settings())
    except ValueError:
        raise VerifierConfigError("the verifier database holds an invalid policy: run `verifier init` "
                                  "with the limits you want") from None


def _params_of(row: SetRow) -> HashParams:
    return HashParams(row.scheme, row.memory_kib, row.iterations, row.lanes)


def _api_key_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


__all__ = [
    "ACCEPTED", "REJECTED", "MISTYPED", "LOCKED", "THROTTLED", "Verifier", "Policy", "VerifyResult",
    "ImportResult", "ImportSummary", "ImportStopped", "AccountStatus", "SetStatus", "Event", "StoreError",
    "VerifierConfigError", "Forbidden", "Principal", "Busy", "RetiredSet",
]
