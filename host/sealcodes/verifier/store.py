"""The verifier's storage: one interface, two SQL implementations (SQLite, PostgreSQL) sharing the
schema, the migrations and every statement but a few words of dialect.

The Verifier (core.py) holds the rules; a store only reads and writes rows. Everything that must
be atomic happens inside `Store.transaction(account)`, which serializes all writers of one account:
SQLite takes the database write lock (BEGIN IMMEDIATE), PostgreSQL locks the account's row
(SELECT ... FOR UPDATE). Consuming a code is one statement in both:
`UPDATE codes SET used_at = ? WHERE ... AND used_at IS NULL RETURNING idx`.

Nothing here ever sees a code: only digests (already peppered when a pepper is configured).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Sequence

from ..errors import InvalidInputError, SealcodesError


class StoreError(SealcodesError):
    """The database is unreachable, foreign, newer than this release, or refused a statement."""


#: the settings row holding the most Argon2id sets any account holds: every attempt makes that many
#: Argon2id calls (see `ImportTransaction.raise_attempt_hashes`)
ATTEMPT_HASHES = "attempt_hashes"
#: the settings row naming the pepper of new imports ("" for none)
CURRENT_PEPPER = "pepper_id"
#: why a set was retired by the account-name migration
RETIRED_ACCOUNT_NAME = "account-name"


def _recompute_attempt_hashes(store: "SqlStore", cursor) -> None:
    # the row is locked first, so an import committing meanwhile raises it after this write
    cursor.execute(store.sql("INSERT INTO settings (name, value) VALUES (?, '0') ON CONFLICT (name) DO NOTHING"),
                   (ATTEMPT_HASHES,))
    cursor.execute(store.sql("SELECT value FROM settings WHERE name = ?" + store.ROW_LOCK), (ATTEMPT_HASHES,))
    cursor.fetchone()
    cursor.execute("SELECT COALESCE(MAX(n), 0) FROM (SELECT account, COUNT(*) AS n FROM code_sets "
                   "WHERE retired_at IS NULL AND scheme = 'argon2id' GROUP BY account) counts")
    cursor.execute(store.sql("UPDATE settings SET value = ? WHERE name = ?"),
                   (str(int(cursor.fetchone()[0])), ATTEMPT_HASHES))


def account_fold(account: str) -> str:
    """What two accounts that differ only in case share (str.casefold of the normal form)."""
    return account.casefold()


def _fold_accounts(store: "SqlStore", cursor) -> None:
    """Fill `account_fold` of the sets stored before it existed."""
    cursor.execute("SELECT DISTINCT account FROM code_sets")
    for (name,) in cursor.fetchall():
        cursor.execute(store.sql("UPDATE code_sets SET account_fold = ? WHERE account = ?"), (account_fold(name), name))


def _normalise_account_names(store: "SqlStore", cursor) -> None:
    """Accounts stored before docs/spec.md section 13.5 take their normalised name. An account whose
    name is refused by the rule, or whose normalised name is taken (by an account already written
    that way, or by another spelling), cannot be renamed safely: its active sets are retired
    (retired_why "account-name"), audited, so no two spellings a person reads as one stay usable."""
    from .record import normalize_account

    cursor.execute("SELECT DISTINCT account FROM code_sets")
    names = [row[0] for row in cursor.fetchall()]
    normal = {}
    for name in names:
        try:
            normal[name] = normalize_account(name)
        except (InvalidInputError, TypeError):
            normal[name] = None
    targets: dict[str, int] = {}
    for name, target in normal.items():
        if target is not None:
            targets[target] = targets.get(target, 0) + 1
    now = _migration_time()
    for name, target in sorted(normal.items()):
        if target == name:
            continue
        if target is None or targets[target] > 1:  # refused, or another stored spelling has this name
            reason = "the name is refused by docs/spec.md section 13.5" if target is None else \
                "another spelling of this name is stored"
            cursor.execute(store.sql("UPDATE code_sets SET retired_at = ?, retired_why = ? WHERE account = ? "
                                     "AND retired_at IS NULL"), (now, RETIRED_ACCOUNT_NAME, name))
            cursor.execute(store.sql("INSERT INTO audit (at, event, account, detail) VALUES (?, ?, ?, ?)"),
                           (now, "account-retired", name, f"sets retired: {reason}"))
            store.migration_notes.append(("retired", name, target))
            continue
        for table in ("code_sets", "audit"):
            cursor.execute(store.sql(f"UPDATE {table} SET account = ? WHERE account = ?"), (target, name))
        _merge_account_state(store, cursor, name, target)
        cursor.execute(store.sql("INSERT INTO audit (at, event, account, detail) VALUES (?, ?, ?, ?)"),
                       (now, "account-renamed", target, "renamed from a spelling that normalises to this name"))
        store.migration_notes.append(("renamed", name, target))


def _merge_account_state(store: "SqlStore", cursor, name: str, target: str) -> None:
    """Carry the failure counter and lock of `name` over to `target`, keeping the stricter of both."""
    cursor.execute(store.sql(_ACCOUNT_STATE), (name,))
    old = cursor.fetchone()
    if old is None:
        return
    cursor.execute(store.sql("DELETE FROM accounts WHERE account = ?"), (name,))
    cursor.execute(store.sql(_ACCOUNT_INSERT), (target,))
    cursor.execute(store.sql(_ACCOUNT_STATE), (target,))
    new = cursor.fetchone()
    locked = [t for t in (old[1], new[1]) if t is not None]
    cursor.execute(store.sql(_ACCOUNT_UPDATE),
                   (max(old[0], new[0]), min(locked) if locked else None, max(old[2], new[2]), target))


def _migration_time() -> float:
    import time

    return time.time()


#: the schema, as ordered migrations; version n = the first n steps applied. Never edit a released
#: step: add a new one. {id} {blob} {real} {bigint} are filled in per dialect; a step may also be a
#: function (store, cursor) for data that SQL alone cannot move.
MIGRATIONS: tuple[tuple[str | Callable, ...], ...] = (
    (  # 1: code sets, codes, accounts (guessing limits), audit trail, settings
        "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE code_sets (
            id {id},
            account TEXT NOT NULL,
            label TEXT NOT NULL,
            epoch {bigint} NOT NULL,
            format TEXT NOT NULL,
            count INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            scheme TEXT NOT NULL,
            memory_kib INTEGER,
            iterations INTEGER,
            lanes INTEGER,
            salt {blob} NOT NULL,
            pepper_id TEXT NOT NULL,
            imported_at {real} NOT NULL,
            retired_at {real},
            retired_why TEXT,
            UNIQUE (account, label, epoch))""",
        "CREATE INDEX code_sets_active ON code_sets (account, retired_at)",
        """CREATE TABLE codes (
            set_id {bigint} NOT NULL REFERENCES code_sets (id),
            idx INTEGER NOT NULL,
            digest {blob} NOT NULL,
            used_at {real},
            PRIMARY KEY (set_id, idx))""",
        """CREATE TABLE accounts (
            account TEXT PRIMARY KEY,
            failures INTEGER NOT NULL DEFAULT 0,
            locked_at {real},
            next_attempt_at {real} NOT NULL DEFAULT 0)""",
        """CREATE TABLE audit (
            id {id},
            at {real} NOT NULL,
            event TEXT NOT NULL,
            account TEXT NOT NULL,
            label TEXT,
            epoch {bigint},
            code_index INTEGER,
            detail TEXT)""",
        "CREATE INDEX audit_account ON audit (account, id)",
    ),
    (  # 2: API keys of the HTTP service, stored as SHA-256 of the whole key
        """CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            digest {blob} NOT NULL,
            name TEXT NOT NULL,
            created_at {real} NOT NULL,
            revoked_at {real})""",
    ),
    (  # 3: API key scopes (existing keys become verify-only) and account patterns; the rotation
        #    commitment of each set (NULL for record v1); several peppers; the attempt cost that
        #    every attempt is padded to; account names normalised (docs/spec.md section 13.5).
        #    The key digest column is renamed so that a server of schema 2 still running after the
        #    migration fails closed: its key lookup names `digest`, errors, and answers 503 to every
        #    request, instead of applying the flat model of schema 2 to keys made for one scope.
        "ALTER TABLE api_keys RENAME COLUMN digest TO key_sha256",
        "ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'verify'",
        "ALTER TABLE api_keys ADD COLUMN accounts TEXT NOT NULL DEFAULT '*'",
        "ALTER TABLE code_sets ADD COLUMN commitment {blob}",
        """CREATE TABLE peppers (
            pepper_id TEXT PRIMARY KEY,
            added_at {real} NOT NULL,
            retired_at {real})""",
        "INSERT INTO peppers (pepper_id, added_at) SELECT value, 0 FROM settings WHERE name = 'pepper_id' "
        "AND value <> ''",
        "CREATE INDEX code_sets_pepper ON code_sets (pepper_id, retired_at)",
        _normalise_account_names,
        # accounts that differ only in case: a first set may not take one beside another (spec 13.5);
        # on PostgreSQL, imports lock a row per case fold so that two cannot both take one
        "ALTER TABLE code_sets ADD COLUMN account_fold TEXT",
        _fold_accounts,
        "CREATE INDEX code_sets_fold ON code_sets (account_fold)",
        "CREATE TABLE account_folds (fold TEXT PRIMARY KEY)",
        _recompute_attempt_hashes,
    ),
    (  # 4: at a million accounts, the peppers of active sets (read at every start) come from a
        #    partial index, one probe per pepper; an account's sets are found through the
        #    (account, label, epoch) key, so the index on (account, retired_at) goes
        "DROP INDEX code_sets_pepper",
        "DROP INDEX code_sets_active",
        "CREATE INDEX code_sets_active_pepper ON code_sets (pepper_id) WHERE retired_at IS NULL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class SetRow:
    id: int
    account: str
    label: str
    epoch: int
    format: str
    count: int
    fingerprint: str
    scheme: str
    memory_kib: int | None
    iterations: int | None
    lanes: int | None
    salt: bytes
    pepper_id: str
    imported_at: float
    retired_at: float | None
    retired_why: str | None
    #: H(K) of the set's rotation key (record v2); None for a record v1 set
    commitment: bytes | None = None


class CodeRow(NamedTuple):
    """One code of a set. A NamedTuple, not a frozen dataclass: a verify reads every code of the
    sets it tries (a hundred rows), and building them as dataclasses took twice the CPU."""

    set_id: int
    idx: int
    digest: bytes
    used: bool


@dataclass(frozen=True)
class AccountState:
    failures: int = 0
    locked_at: float | None = None
    next_attempt_at: float = 0.0

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


@dataclass(frozen=True)
class AttemptView:
    """What an attempt reads before its hash: the account's counters, its active sets, and how
    many Argon2id calls every attempt makes (the setting ATTEMPT_HASHES)."""

    state: AccountState
    sets: list
    attempt_hashes: int


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: float
    event: str
    account: str
    label: str | None
    epoch: int | None
    code_index: int | None
    detail: str | None


@dataclass(frozen=True)
class ApiKeyRow:
    key_id: str
    digest: bytes
    name: str
    created_at: float
    revoked_at: float | None
    scope: str
    accounts: str


@dataclass(frozen=True)
class PepperRow:
    pepper_id: str
    added_at: float
    retired_at: float | None
    current: bool
    active_sets: int


_SET_COLUMNS = ("id, account, label, epoch, format, count, fingerprint, scheme, memory_kib, iterations, lanes, "
                "salt, pepper_id, imported_at, retired_at, retired_why, commitment")
_API_KEY_COLUMNS = "key_id, key_sha256, name, created_at, revoked_at, scope, accounts"
_ACCOUNT_STATE = "SELECT failures, locked_at, next_attempt_at FROM accounts WHERE account = ?"
#: an account's row made when missing (its counters start clean)
_ACCOUNT_INSERT = "INSERT INTO accounts (account) VALUES (?) ON CONFLICT (account) DO NOTHING"
_ACCOUNT_UPDATE = "UPDATE accounts SET failures = ?, locked_at = ?, next_attempt_at = ? WHERE account = ?"
_ACTIVE_SETS = f"SELECT {_SET_COLUMNS} FROM code_sets WHERE account = ? AND retired_at IS NULL ORDER BY id"
_SETTING = "SELECT value FROM settings WHERE name = ?"
#: an attempt's view in one statement (one round trip, one snapshot): a row per active set, or one
#: row of NULL set columns; each row carries the account's counters (NULL: no row yet) and a setting
_ATTEMPT_VIEW = (
    f"SELECT a.failures, a.locked_at, a.next_attempt_at, ({_SETTING}), "
    + ", ".join(f"s.{column.strip()}" for column in _SET_COLUMNS.split(","))
    + " FROM (SELECT CAST(? AS TEXT) AS account) k LEFT JOIN accounts a ON a.account = k.account "
    "LEFT JOIN code_sets s ON s.account = k.account AND s.retired_at IS NULL ORDER BY s.id")


def _set_row(row) -> SetRow:
    values = list(row)
    values[11] = bytes(values[11])
    if values[16] is not None:
        values[16] = bytes(values[16])
    return SetRow(*values)


def _api_key_row(row) -> ApiKeyRow:
    key_id, digest, name, created_at, revoked_at, scope, accounts = row
    return ApiKeyRow(key_id, bytes(digest), name, created_at, revoked_at, scope, accounts)


class Transaction:
    """The statements the Verifier runs while it holds one account (see `Store.transaction`)."""

    def __init__(self, store: "SqlStore", cursor, account: str, state: AccountState):
        """`state`: the account's row as the statement that locked it read it."""
        self._store, self._cursor, self.account = store, cursor, account
        self._state = state

    def _run(self, sql: str, params: Sequence = ()):
        self._cursor.execute(self._store.sql(sql), tuple(params))
        return self._cursor

    def account_state(self) -> AccountState:
        # read when the row was locked; nobody else writes it until this transaction ends
        return self._state

    def save_account_state(self, state: AccountState) -> None:
        if state == self._state:  # a success on a clean account: nothing to write
            return
        self._run(_ACCOUNT_UPDATE,
                  (state.failures, state.locked_at, state.next_attempt_at, self.account))
        self._state = state

    def active_sets(self) -> list[SetRow]:
        return [_set_row(r) for r in self._run(_ACTIVE_SETS, (self.account,)).fetchall()]

    def code_rows(self, set_ids: Sequence[int]) -> list[CodeRow]:
        """Every code of these sets (used or not) while they are still active, in a fixed order."""
        found = []
        for set_id in set_ids:
            rows = self._run("SELECT c.set_id, c.idx, c.digest, c.used_at FROM codes c JOIN code_sets s "
                             "ON s.id = c.set_id WHERE c.set_id = ? AND s.retired_at IS NULL ORDER BY c.idx",
                             (set_id,)).fetchall()
            found.extend(CodeRow(r[0], r[1], bytes(r[2]), r[3] is not None) for r in rows)
        return found

    def consume(self, set_id: int, idx: int, now: float) -> bool:
        """Mark one code used; False when it already was (another attempt won)."""
        row = self._run("UPDATE codes SET used_at = ? WHERE set_id = ? AND idx = ? AND used_at IS NULL "
                        "RETURNING idx", (now, set_id, idx)).fetchone()
        return row is not None

    def retire_sets(self, set_ids: Sequence[int], why: str, now: float) -> None:
        for set_id in set_ids:
            self._run("UPDATE code_sets SET retired_at = ?, retired_why = ? WHERE id = ? AND retired_at IS NULL",
                      (now, why, set_id))

    def audit(self, now: float, event: str, label: str | None = None, epoch: int | None = None,
              code_index: int | None = None, detail: str | None = None) -> None:
        self._run("INSERT INTO audit (at, event, account, label, epoch, code_index, detail) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", (now, event, self.account, label, epoch, code_index, detail))

    def setting(self, name: str) -> str | None:
        row = self._run(_SETTING, (name,)).fetchone()
        return row[0] if row else None


@dataclass(frozen=True)
class NewSet:
    """A set an import stores: the record, its digests as stored (peppered), its pepper's id."""

    record: object  # a VerifierRecord
    digests: tuple[bytes, ...]
    pepper_id: str


@dataclass(frozen=True)
class AuditEntry:
    account: str
    event: str
    label: str | None = None
    epoch: int | None = None
    detail: str | None = None


class ImportTransaction:
    """What an import runs while it holds a batch of accounts (see `SqlStore.import_transaction`):
    one read of their sets, then the writes of the whole batch in a few statements."""

    def __init__(self, store: "SqlStore", cursor, accounts: Sequence[str]):
        self._store, self._cursor, self.accounts = store, cursor, tuple(accounts)

    def sets_by_account(self) -> dict[str, list[SetRow]]:
        """Every set of the held accounts, retired or not, in the order they were imported."""
        found: dict[str, list[SetRow]] = {account: [] for account in self.accounts}
        if not self.accounts:
            return found
        where, params = self._store.in_list("account", self.accounts)
        self._cursor.execute(self._store.sql(f"SELECT {_SET_COLUMNS} FROM code_sets WHERE {where} ORDER BY id"),
                             params)
        for row in self._cursor.fetchall():
            found[row[1]].append(_set_row(row))
        return found

    def retire_sets(self, set_ids: Sequence[int], why: str, now: float) -> None:
        if set_ids:
            self._cursor.executemany(
                self._store.sql("UPDATE code_sets SET retired_at = ?, retired_why = ? WHERE id = ? "
                                "AND retired_at IS NULL"), [(now, why, set_id) for set_id in set_ids])

    def insert_sets(self, sets: Sequence[NewSet], now: float) -> None:
        if sets:
            self._store.insert_sets(self._cursor, sets, now)

    def audit(self, entries: Sequence[AuditEntry], now: float) -> None:
        if entries:
            self._store.insert_audit(self._cursor, [(now, e.event, e.account, e.label, e.epoch, None, e.detail)
                                                    for e in entries])

    def current_pepper(self) -> str:
        """The id of the pepper new imports use ("" for none), read inside this transaction and held
        (shared) until it ends: `pepper add` and `pepper retire` wait for it."""
        self._cursor.execute(self._store.sql(_SETTING + self._store.SHARE_LOCK), (CURRENT_PEPPER,))
        row = self._cursor.fetchone()
        return row[0] if row else ""

    def accounts_by_fold(self, folds: Sequence[str]) -> dict[str, set[str]]:
        """The accounts that have (or had) sets, by their case fold, for these folds (held since
        the transaction began: `SqlStore.import_transaction`)."""
        found: dict[str, set[str]] = {}
        if folds:
            where, params = self._store.in_list("account_fold", tuple(folds))
            self._cursor.execute(self._store.sql(f"SELECT DISTINCT account_fold, account FROM code_sets WHERE {where}"),
                                 params)
            for fold, account in self._cursor.fetchall():
                found.setdefault(fold, set()).add(account)
        return found

    def raise_attempt_hashes(self, hashes: int) -> None:
        """The most Argon2id sets of any account, never lowered here (`verifier init` recomputes
        it): every attempt makes that many Argon2id calls, so its time does not tell which accounts
        exist."""
        self._cursor.execute(self._store.sql(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = "
            "CASE WHEN CAST(settings.value AS BIGINT) < CAST(excluded.value AS BIGINT) "
            "THEN excluded.value ELSE settings.value END"), (ATTEMPT_HASHES, str(int(hashes))))


def set_insert_values(new: NewSet, now: float) -> tuple:
    record, params = new.record, new.record.hash
    return (record.account, record.label, record.epoch, record.format, record.count, record.fingerprint,
            params.scheme, params.memory_kib, params.iterations, params.lanes, bytes(record.salt), new.pepper_id,
            now, None if record.commitment is None else bytes(record.commitment), account_fold(record.account))


SET_INSERT_COLUMNS = ("account, label, epoch, format, count, fingerprint, scheme, memory_kib, iterations, lanes, "
                       "salt, pepper_id, imported_at, commitment, account_fold")
_AUDIT_INSERT = "INSERT INTO audit (at, event, account, label, epoch, code_index, detail) VALUES (?, ?, ?, ?, ?, ?, ?)"


class SqlStore:
    """What both stores share; subclasses give the dialect and the connections."""

    #: dialect words filled into MIGRATIONS
    TYPES: dict = {}
    #: appended to the SELECT that takes an account's row inside a transaction
    ROW_LOCK = ""
    #: appended to a SELECT whose row must not change until the transaction ends (readers share it)
    SHARE_LOCK = ""
    PLACEHOLDER = "?"
    url: str = ""

    # --- provided by the dialect ---

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        raise NotImplementedError

    @contextlib.contextmanager
    def _write_transaction(self, connection) -> Iterator:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def in_list(self, column: str, values: Sequence) -> tuple[str, tuple]:
        """A condition `column` is one of `values` (never empty), and its parameters."""
        return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)

    def _hold_accounts(self, cursor, accounts: Sequence[str]) -> None:
        """Make sure the accounts' rows exist and hold them until the transaction ends (SQLite:
        BEGIN IMMEDIATE holds the whole database already)."""
        cursor.executemany(self.sql(_ACCOUNT_INSERT), [(account,) for account in accounts])

    def insert_sets(self, cursor, sets: Sequence["NewSet"], now: float) -> None:
        """Store new sets and their codes (one statement per set, one batch for the codes)."""
        codes = []
        for new in sets:
            cursor.execute(self.sql(f"INSERT INTO code_sets ({SET_INSERT_COLUMNS}) "
                                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"),
                           set_insert_values(new, now))
            set_id = cursor.fetchone()[0]
            codes.extend((set_id, idx, digest) for idx, digest in enumerate(new.digests))
        cursor.executemany(self.sql("INSERT INTO codes (set_id, idx, digest) VALUES (?, ?, ?)"), codes)

    def insert_audit(self, cursor, rows: Sequence[tuple]) -> None:
        cursor.executemany(self.sql(_AUDIT_INSERT), rows)

    def _hold_names(self, cursor, names: Sequence[str]) -> None:
        """Serialize, until the transaction ends, the writers that take any of `names` (the case
        folds of the accounts an import holds). SQLite's write transactions are serialized already."""

    # --- shared ---

    def sql(self, statement: str) -> str:
        return statement if self.PLACEHOLDER == "?" else statement.replace("?", self.PLACEHOLDER)

    def _fetch(self, statement: str, params: Sequence = ()) -> list:
        """The rows of one statement, on a connection taken from the pool for it."""
        with self._connection() as connection:
            cursor = connection.cursor()
            cursor.execute(self.sql(statement), tuple(params))
            return cursor.fetchall()

    def _table_exists(self, cursor, name: str) -> bool:
        raise NotImplementedError

    def schema_version(self) -> int:
        with self._connection() as connection:
            cursor = connection.cursor()
            if not self._table_exists(cursor, "settings"):
                return 0
            cursor.execute(self.sql("SELECT value FROM settings WHERE name = ?"), ("schema_version",))
            row = cursor.fetchone()
            return int(row[0]) if row else 0

    #: what the last `migrate` did to stored accounts: ("renamed" | "retired", old name, new name or None)
    migration_notes: list = ()

    def migrate(self) -> int:
        """Bring the schema to SCHEMA_VERSION, in one transaction; returns the version found."""
        self.migration_notes = []
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                found = self._locked_schema_version(cursor)
                if found > SCHEMA_VERSION:
                    raise StoreError(f"the database has schema version {found}; this release knows up to "
                                     f"{SCHEMA_VERSION}: upgrade sealcodes")
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[version - 1]:
                        if callable(statement):
                            statement(self, cursor)
                        else:
                            cursor.execute(statement.format(**self.TYPES))
                    cursor.execute(self.sql("INSERT INTO settings (name, value) VALUES (?, ?) "
                                            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
                                   ("schema_version", str(version)))
        return found

    def _locked_schema_version(self, cursor) -> int:
        if not self._table_exists(cursor, "settings"):
            return 0
        cursor.execute(self.sql("SELECT value FROM settings WHERE name = ?"), ("schema_version",))
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def require_current_schema(self) -> None:
        version = self.schema_version()
        if version == 0:
            raise StoreError("the verifier database is not initialised: run `sealcodes verifier init`")
        if version != SCHEMA_VERSION:
            raise StoreError(f"the verifier database has schema version {version}, this release uses "
                             f"{SCHEMA_VERSION}: run `sealcodes verifier init` to migrate")

    def get_setting(self, name: str) -> str | None:
        rows = self._fetch(_SETTING, (name,))
        return rows[0][0] if rows else None

    def settings(self) -> dict[str, str]:
        return dict(self._fetch("SELECT name, value FROM settings"))

    def recompute_attempt_hashes(self) -> int:
        """Set the Argon2id calls of an attempt to the most of any account as it is now (after revocations)."""
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                _recompute_attempt_hashes(self, cursor)
        return int(self.get_setting(ATTEMPT_HASHES) or 0)

    def sets_of_another_shape(self, memory_kib: int, iterations: int, lanes: int) -> int:
        """Active Argon2id sets whose parameters are not (memory_kib, iterations, lanes)."""
        rows = self._fetch("SELECT COUNT(*) FROM code_sets WHERE retired_at IS NULL AND scheme = 'argon2id' AND "
                           "NOT (memory_kib = ? AND iterations = ? AND lanes = ?)", (memory_kib, iterations, lanes))
        return rows[0][0]

    def audit_event(self, now: float, event: str, account: str, detail: str | None = None) -> None:
        """An audit row that holds no account (no failure counter is touched)."""
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                cursor.execute(self.sql("INSERT INTO audit (at, event, account, detail) VALUES (?, ?, ?, ?)"),
                               (now, event, account, detail))

    def set_settings(self, values: dict) -> None:
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                for name, value in values.items():
                    cursor.execute(self.sql("INSERT INTO settings (name, value) VALUES (?, ?) "
                                            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
                                   (name, str(value)))

    @contextlib.contextmanager
    def transaction(self, account: str) -> Iterator[Transaction]:
        """Hold `account` for a read-check-write: no other writer of it runs until this commits."""
        lock = self.sql(_ACCOUNT_STATE + self.ROW_LOCK)
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                # the lock's statement reads the row: the newest version, which it waited for
                row = cursor.execute(lock, (account,)).fetchone()
                if row is None:  # a first attempt: the row is made, then locked (one statement fewer otherwise)
                    cursor.execute(self.sql(_ACCOUNT_INSERT), (account,))
                    row = cursor.execute(lock, (account,)).fetchone()
                yield Transaction(self, cursor, account, AccountState(*row))

    @contextlib.contextmanager
    def import_transaction(self, accounts: Sequence[str]) -> Iterator[ImportTransaction]:
        """Hold several accounts at once for an import, as `transaction` holds one: their rows are
        created when missing and locked in a fixed order (sorted), so that two imports never wait
        on each other in a circle; then their case folds, so that two imports never give a first
        set each to two accounts that differ only in case."""
        accounts = sorted(set(accounts))
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                if accounts:
                    self._hold_accounts(cursor, accounts)
                    self._hold_names(cursor, sorted({account_fold(account) for account in accounts}))
                yield ImportTransaction(self, cursor, accounts)

    # reads outside a transaction (no write lock): what an attempt needs before its hash

    def account_state(self, account: str) -> AccountState:
        rows = self._fetch(_ACCOUNT_STATE, (account,))
        return AccountState(*rows[0]) if rows else AccountState()

    def active_sets(self, account: str) -> list[SetRow]:
        return [_set_row(r) for r in self._fetch(_ACTIVE_SETS, (account,))]

    def attempt_view(self, account: str) -> AttemptView:
        """account_state, active_sets and the setting ATTEMPT_HASHES in one statement: a verify
        waits once for a pooled connection before its hash, and makes one round trip."""
        rows = self._fetch(_ATTEMPT_VIEW, (ATTEMPT_HASHES, account))
        failures, locked_at, next_attempt_at, hashes = rows[0][:4]
        state = AccountState() if failures is None else AccountState(failures, locked_at, next_attempt_at)
        return AttemptView(state, [_set_row(row[4:]) for row in rows if row[4] is not None],
                           int(hashes) if hashes is not None else 0)

    def remaining_by_set(self, set_ids: Sequence[int]) -> dict[int, int]:
        found = {}
        for set_id in set_ids:
            rows = self._fetch("SELECT COUNT(*) FROM codes WHERE set_id = ? AND used_at IS NULL", (set_id,))
            found[set_id] = rows[0][0]
        return found

    def audit_rows(self, account: str | None = None, limit: int = 100) -> list[AuditRow]:
        columns = "id, at, event, account, label, epoch, code_index, detail"
        if account is None:
            rows = self._fetch(f"SELECT {columns} FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._fetch(f"SELECT {columns} FROM audit WHERE account = ? ORDER BY id DESC LIMIT ?",
                               (account, limit))
        return [AuditRow(*r) for r in reversed(rows)]

    def accounts(self) -> list[str]:
        rows = self._fetch("SELECT DISTINCT account FROM code_sets ORDER BY account")
        return [r[0] for r in rows]

    # API keys

    def add_api_key(self, key_id: str, digest: bytes, name: str, now: float, scope: str, accounts: str) -> None:
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                cursor.execute(self.sql("INSERT INTO api_keys (key_id, key_sha256, name, created_at, scope, accounts) "
                                        "VALUES (?, ?, ?, ?, ?, ?)"), (key_id, digest, name, now, scope, accounts))

    def api_key(self, key_id: str) -> ApiKeyRow | None:
        rows = self._fetch(f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        return _api_key_row(rows[0]) if rows else None

    def api_keys(self) -> list[ApiKeyRow]:
        return [_api_key_row(r) for r in self._fetch(f"SELECT {_API_KEY_COLUMNS} FROM api_keys ORDER BY created_at")]

    def revoke_api_key(self, key_id: str, now: float) -> bool:
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                cursor.execute(self.sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL "
                                        "RETURNING key_id"), (now, key_id))
                return cursor.fetchone() is not None

    # peppers

    def peppers(self) -> list[PepperRow]:
        current = self.get_setting(CURRENT_PEPPER) or ""
        rows = self._fetch("SELECT p.pepper_id, p.added_at, p.retired_at, (SELECT COUNT(*) FROM code_sets s "
                           "WHERE s.pepper_id = p.pepper_id AND s.retired_at IS NULL) FROM peppers p "
                           "ORDER BY p.added_at, p.pepper_id")
        return [PepperRow(r[0], r[1], r[2], r[0] == current, r[3]) for r in rows]

    def pepper_ids_in_use(self) -> set[str]:
        """Peppers of active sets ("" stands for sets stored without a pepper): one index probe per
        pepper (a loose index scan), however many sets use each."""
        rows = self._fetch(
            "WITH RECURSIVE found (pepper_id) AS ("
            "SELECT (SELECT pepper_id FROM code_sets WHERE retired_at IS NULL ORDER BY pepper_id LIMIT 1) "
            "UNION ALL SELECT (SELECT s.pepper_id FROM code_sets s WHERE s.retired_at IS NULL "
            "AND s.pepper_id > found.pepper_id ORDER BY s.pepper_id LIMIT 1) FROM found "
            "WHERE found.pepper_id IS NOT NULL) "
            "SELECT pepper_id FROM found WHERE pepper_id IS NOT NULL")
        return {r[0] for r in rows}

    def _current_pepper_locked(self, cursor) -> str | None:
        """The current pepper's id, its settings row held until the transaction ends."""
        cursor.execute(self.sql(_SETTING + self.ROW_LOCK), (CURRENT_PEPPER,))
        row = cursor.fetchone()
        return None if row is None else row[0]

    def add_pepper(self, pepper_id: str, now: float) -> bool:
        """Register a pepper and make it current for new imports; False when it was current already."""
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                if self._current_pepper_locked(cursor) == pepper_id:
                    return False
                cursor.execute(self.sql("INSERT INTO peppers (pepper_id, added_at) VALUES (?, ?) "
                                        "ON CONFLICT (pepper_id) DO UPDATE SET retired_at = NULL"), (pepper_id, now))
                cursor.execute(self.sql("INSERT INTO settings (name, value) VALUES (?, ?) "
                                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
                               (CURRENT_PEPPER, pepper_id))
                return True

    def retire_pepper(self, pepper_id: str, now: float) -> None:
        """Mark a pepper retired: refused for the current one and while an active set uses it."""
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                if self._current_pepper_locked(cursor) == pepper_id:
                    raise InvalidInputError("this pepper is the current one: add a new pepper first")
                cursor.execute(self.sql("SELECT COUNT(*) FROM code_sets WHERE pepper_id = ? AND retired_at IS NULL"),
                               (pepper_id,))
                in_use = cursor.fetchone()[0]
                if in_use:
                    raise InvalidInputError(f"{in_use} active set(s) still use this pepper: rotate or revoke them "
                                            "first")
                cursor.execute(self.sql("UPDATE peppers SET retired_at = ? WHERE pepper_id = ? AND retired_at IS NULL "
                                        "RETURNING pepper_id"), (now, pepper_id))
                if cursor.fetchone() is None:
                    raise InvalidInputError("no registered, unretired pepper has this id")
