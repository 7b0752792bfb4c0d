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
from typing import Iterator, Sequence

from ..errors import SealcodesError


class StoreError(SealcodesError):
    """The database is unreachable, foreign, newer than this release, or refused a statement."""


#: the schema, as ordered migrations; version n = the first n steps applied. Never edit a released
#: step: add a new one. {id} {blob} {real} {bigint} are filled in per dialect.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
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


@dataclass(frozen=True)
class CodeRow:
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


_SET_COLUMNS = ("id, account, label, epoch, format, count, fingerprint, scheme, memory_kib, iterations, lanes, "
                "salt, pepper_id, imported_at, retired_at, retired_why")


def _set_row(row) -> SetRow:
    values = list(row)
    values[11] = bytes(values[11])
    return SetRow(*values)


class Transaction:
    """The statements the Verifier runs while it holds one account (see `Store.transaction`)."""

    def __init__(self, store: "SqlStore", cursor, account: str):
        self._store, self._cursor, self.account = store, cursor, account

    def _run(self, sql: str, params: Sequence = ()):
        self._cursor.execute(self._store.sql(sql), tuple(params))
        return self._cursor

    def account_state(self) -> AccountState:
        row = self._run("SELECT failures, locked_at, next_attempt_at FROM accounts WHERE account = ?",
                        (self.account,)).fetchone()
        return AccountState(row[0], row[1], row[2]) if row else AccountState()

    def save_account_state(self, state: AccountState) -> None:
        self._run("UPDATE accounts SET failures = ?, locked_at = ?, next_attempt_at = ? WHERE account = ?",
                  (state.failures, state.locked_at, state.next_attempt_at, self.account))

    def active_sets(self) -> list[SetRow]:
        rows = self._run(f"SELECT {_SET_COLUMNS} FROM code_sets WHERE account = ? AND retired_at IS NULL "
                         "ORDER BY id", (self.account,)).fetchall()
        return [_set_row(r) for r in rows]

    def sets_for_label(self, label: str) -> list[SetRow]:
        rows = self._run(f"SELECT {_SET_COLUMNS} FROM code_sets WHERE account = ? AND label = ? ORDER BY epoch",
                         (self.account, label)).fetchall()
        return [_set_row(r) for r in rows]

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

    def remaining(self, set_id: int) -> int:
        return self._run("SELECT COUNT(*) FROM codes WHERE set_id = ? AND used_at IS NULL", (set_id,)).fetchone()[0]

    def insert_set(self, record, digests: Sequence[bytes], pepper_id: str, now: float) -> int:
        params = record.hash
        set_id = self._run(
            "INSERT INTO code_sets (account, label, epoch, format, count, fingerprint, scheme, memory_kib, "
            "iterations, lanes, salt, pepper_id, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (record.account, record.label, record.epoch, record.format, record.count, record.fingerprint,
             params.scheme, params.memory_kib, params.iterations, params.lanes, record.salt, pepper_id, now),
        ).fetchone()[0]
        for idx, digest in enumerate(digests):
            self._run("INSERT INTO codes (set_id, idx, digest) VALUES (?, ?, ?)", (set_id, idx, digest))
        return set_id

    def retire_sets(self, set_ids: Sequence[int], why: str, now: float) -> None:
        for set_id in set_ids:
            self._run("UPDATE code_sets SET retired_at = ?, retired_why = ? WHERE id = ? AND retired_at IS NULL",
                      (now, why, set_id))

    def audit(self, now: float, event: str, label: str | None = None, epoch: int | None = None,
              code_index: int | None = None, detail: str | None = None) -> None:
        self._run("INSERT INTO audit (at, event, account, label, epoch, code_index, detail) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", (now, event, self.account, label, epoch, code_index, detail))


class SqlStore:
    """What both stores share; subclasses give the dialect and the connections."""

    #: dialect words filled into MIGRATIONS
    TYPES: dict = {}
    #: appended to the SELECT that takes an account's row inside a transaction
    ROW_LOCK = ""
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

    # --- shared ---

    def sql(self, statement: str) -> str:
        return statement if self.PLACEHOLDER == "?" else statement.replace("?", self.PLACEHOLDER)

    def _fetch(self, statement: str, params: Sequence = ()) -> list:
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

    def migrate(self) -> int:
        """Bring the schema to SCHEMA_VERSION, one step per transaction; returns the version found."""
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                found = self._locked_schema_version(cursor)
                if found > SCHEMA_VERSION:
                    raise StoreError(f"the database has schema version {found}; this release knows up to "
                                     f"{SCHEMA_VERSION}: upgrade sealcodes")
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[version - 1]:
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
        rows = self._fetch("SELECT value FROM settings WHERE name = ?", (name,))
        return rows[0][0] if rows else None

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
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                cursor.execute(self.sql("INSERT INTO accounts (account) VALUES (?) ON CONFLICT (account) DO NOTHING"),
                               (account,))
                cursor.execute(self.sql("SELECT failures FROM accounts WHERE account = ?" + self.ROW_LOCK),
                               (account,))
                cursor.fetchone()
                yield Transaction(self, cursor, account)

    # reads outside a transaction (no write lock): what an attempt needs before its hash

    def account_state(self, account: str) -> AccountState:
        rows = self._fetch("SELECT failures, locked_at, next_attempt_at FROM accounts WHERE account = ?", (account,))
        return AccountState(*rows[0]) if rows else AccountState()

    def active_sets(self, account: str) -> list[SetRow]:
        rows = self._fetch(f"SELECT {_SET_COLUMNS} FROM code_sets WHERE account = ? AND retired_at IS NULL "
                           "ORDER BY id", (account,))
        return [_set_row(r) for r in rows]

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

    def add_api_key(self, key_id: str, digest: bytes, name: str, now: float) -> None:
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                cursor.execute(self.sql("INSERT INTO api_keys (key_id, digest, name, created_at) VALUES (?, ?, ?, ?)"),
                               (key_id, digest, name, now))

    def api_key(self, key_id: str) -> ApiKeyRow | None:
        rows = self._fetch("SELECT key_id, digest, name, created_at, revoked_at FROM api_keys WHERE key_id = ?",
                           (key_id,))
        if not rows:
            return None
        key_id, digest, name, created_at, revoked_at = rows[0]
        return ApiKeyRow(key_id, bytes(digest), name, created_at, revoked_at)

    def api_keys(self) -> list[ApiKeyRow]:
        rows = self._fetch("SELECT key_id, digest, name, created_at, revoked_at FROM api_keys ORDER BY created_at")
        return [ApiKeyRow(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    def revoke_api_key(self, key_id: str, now: float) -> bool:
        with self._connection() as connection:
            with self._write_transaction(connection) as cursor:
                cursor.execute(self.sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL "
                                        "RETURNING key_id"), (now, key_id))
                return cursor.fetchone() is not None
