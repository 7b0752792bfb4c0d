"""The fleet store: PostgreSQL through psycopg 3, connections from a pool (psycopg_pool).

Same schema and statements as SQLite (store.py). A transaction on an account first makes sure its
row exists, then locks it (SELECT ... FOR UPDATE): attempts on one account queue, attempts on
different accounts run in parallel, and a code is consumed by
`UPDATE ... WHERE used_at IS NULL RETURNING`, so it is spent once even across several servers.

A database that goes away (a restart, a failover) is noticed by the first request that loses its
connection, or waits too long for one. From then on every request is answered at once with a
StoreError (HTTP 503), but for one connection attempt every PROBE_INTERVAL_S; once one succeeds,
a fresh pool replaces the old one (whose retries back off for minutes), so the store recovers
within about a second of the database's return, with no restart and no manual step.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

from .store import SET_INSERT_COLUMNS, SqlStore, StoreError, set_insert_values

CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK_ID = 0x5EA1C0DE
#: how long a request waits for a pooled connection (in slices, so a database found down meanwhile
#: ends the wait at once)
POOL_WAIT_S = 5.0
WAIT_SLICE_S = 0.25
#: while the database is down: one connection attempt per process this often
PROBE_INTERVAL_S = 0.5
#: a pooled connection idle this long is tried before use (one round trip); busier ones are not
IDLE_CHECK_S = 1.0
#: our own URL parameter (libpq never sees it): `prepared_statements=off` for a pooler in
#: transaction mode (PgBouncer before 1.21), where a statement prepared on one server connection is
#: missing on the next; psycopg prepares a statement run five times on a connection
PREPARED_STATEMENTS = "prepared_statements"


class PostgresStore(SqlStore):
    TYPES = {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "blob": "BYTEA",
             "real": "DOUBLE PRECISION", "bigint": "BIGINT"}
    ROW_LOCK = " FOR UPDATE"
    SHARE_LOCK = " FOR SHARE"
    PLACEHOLDER = "%s"

    def __init__(self, url: str, pool_size: int = 4, create: bool = True):
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise StoreError("PostgreSQL needs psycopg 3: pip install 'sealcodes[server]'") from None
        self.url, self._prepare_threshold = _prepare_option(url)
        self._pool_size = max(1, pool_size)
        self._pool = None
        self._guard = threading.Lock()
        #: the database was found unreachable, and has not answered a probe since
        self._down = False
        self._probing = threading.Lock()
        self._next_probe = 0.0
        #: id(connection) -> when it went back to the pool
        self._returned: dict[int, float] = {}

    def _get_pool(self):
        import psycopg
        import psycopg_pool

        with self._guard:
            if self._pool is None:
                try:  # one direct try first: an unreachable server fails now, not after the pool's retries
                    psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S).close()
                except psycopg.Error as exc:
                    raise StoreError(f"cannot reach the verifier database: {_reason(exc)}") from None
                pool = psycopg_pool.ConnectionPool(
                    self.url, min_size=1, max_size=self._pool_size, open=False,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                            "prepare_threshold": self._prepare_threshold},
                    timeout=POOL_WAIT_S,
                    # a connection the server dropped (a restart, a failover) is replaced before use
                    check=self._check_if_idle,
                )
                try:
                    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S + 5)
                except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                    pool.close()
                    raise StoreError(f"cannot reach the verifier database: {_reason(exc)}") from None
                self._pool = pool
            return self._pool

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        import psycopg
        import psycopg_pool

        if self._down:
            self._probe()
        pool = self._get_pool()
        try:
            connection = self._wait_for_connection(pool)
        except psycopg_pool.PoolTimeout as exc:
            self._down = True
            raise StoreError(f"no database connection available: {_reason(exc)}") from None
        try:
            with connection:
                yield connection
        except psycopg.Error as exc:
            if connection.broken or (getattr(exc, "sqlstate", None) or "")[:2] in ("08", "57"):
                self._down = True  # the connection or the server went (class 08: connection, 57: shutdown)
            raise StoreError(f"verifier database error: {_reason(exc)}") from None
        finally:
            if len(self._returned) > 8 * self._pool_size:  # ids of connections long discarded
                self._returned.clear()
            self._returned[id(connection)] = time.monotonic()
            pool.putconn(connection)

    def _check_if_idle(self, connection) -> None:
        """The pool's check before it hands out a connection: one idle for a while may have been
        dropped by the server, so it is tried; one in use a moment ago costs no round trip."""
        import psycopg_pool

        if time.monotonic() - self._returned.get(id(connection), 0.0) > IDLE_CHECK_S:
            psycopg_pool.ConnectionPool.check_connection(connection)

    def _wait_for_connection(self, pool):
        import psycopg_pool

        deadline = time.monotonic() + POOL_WAIT_S
        while True:
            try:
                return pool.getconn(timeout=max(0.01, min(WAIT_SLICE_S, deadline - time.monotonic())))
            except psycopg_pool.PoolTimeout:
                if self._down or time.monotonic() >= deadline:
                    raise

    def _probe(self) -> None:
        """While the database is down: StoreError at once, but for one connection attempt every
        PROBE_INTERVAL_S; when it succeeds, a fresh pool takes the old one's place."""
        import psycopg

        if not self._probing.acquire(blocking=False):
            raise StoreError("the verifier database is unreachable")
        try:
            if not self._down:
                return
            if time.monotonic() < self._next_probe:
                raise StoreError("the verifier database is unreachable")
            self._next_probe = time.monotonic() + PROBE_INTERVAL_S
            try:
                psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S).close()
            except psycopg.Error as exc:
                raise StoreError(f"the verifier database is unreachable: {_reason(exc)}") from None
            with self._guard:
                old, self._pool = self._pool, None
                self._down = False
        finally:
            self._probing.release()
        if old is not None:  # its connections in use are closed as they come back
            threading.Thread(target=old.close, name="old-pool", daemon=True).start()

    @contextlib.contextmanager
    def _write_transaction(self, connection) -> Iterator:
        with connection.transaction():
            with connection.cursor() as cursor:
                yield cursor

    # --- imports in batches: arrays instead of one statement per row, COPY for the codes ---

    def in_list(self, column: str, values) -> tuple[str, tuple]:
        return f"{column} = ANY(%s)", (list(values),)

    def _hold_accounts(self, cursor, accounts) -> None:
        _hold_rows(cursor, "accounts", "account", accounts)

    def insert_sets(self, cursor, sets, now: float) -> None:
        columns = list(zip(*(set_insert_values(new, now) for new in sets)))
        cursor.execute(
            f"INSERT INTO code_sets ({SET_INSERT_COLUMNS}) SELECT * FROM unnest(%s::text[], %s::text[], "
            "%s::bigint[], %s::text[], %s::integer[], %s::text[], %s::text[], %s::integer[], %s::integer[], "
            "%s::integer[], %s::bytea[], %s::text[], %s::double precision[], %s::bytea[], %s::text[]) "
            "RETURNING id, account, label, epoch", [list(column) for column in columns])
        ids = {(account, label, epoch): set_id for set_id, account, label, epoch in cursor.fetchall()}
        with cursor.copy("COPY codes (set_id, idx, digest) FROM STDIN") as copy:
            for new in sets:
                record = new.record
                set_id = ids[(record.account, record.label, record.epoch)]
                copy.write("".join(f"{set_id}\t{idx}\t\\\\x{digest.hex()}\n"
                                   for idx, digest in enumerate(new.digests)))

    def insert_audit(self, cursor, rows) -> None:
        columns = list(zip(*rows))
        cursor.execute("INSERT INTO audit (at, event, account, label, epoch, code_index, detail) "
                       "SELECT * FROM unnest(%s::double precision[], %s::text[], %s::text[], %s::text[], "
                       "%s::bigint[], %s::integer[], %s::text[])", [list(column) for column in columns])

    def _table_exists(self, cursor, name: str) -> bool:
        # the catalog read with the statement's snapshot, not to_regclass: that answers from the
        # backend's catalog cache, which (taking no lock) may not know yet a table that another
        # `init` committed while this one waited for the migration lock
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                       "ON n.oid = c.relnamespace WHERE c.relname = %s AND n.nspname = current_schema())", (name,))
        return cursor.fetchone()[0]

    def _hold_names(self, cursor, names) -> None:
        # row locks, as for the accounts (an advisory lock per name would fill the server's lock
        # table with a batch of thousands)
        _hold_rows(cursor, "account_folds", "fold", names)

    def _locked_schema_version(self, cursor) -> int:
        # one migrator at a time across the fleet; held until the migration commits
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        return super()._locked_schema_version(cursor)

    def close(self) -> None:
        with self._guard:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _hold_rows(cursor, table: str, column: str, values) -> None:
    """Rows keyed by `values` created when missing and locked (FOR UPDATE), both in sorted order:
    two transactions holding some of the same rows never wait on each other in a circle."""
    cursor.execute(f"INSERT INTO {table} ({column}) SELECT v FROM unnest(%s::text[]) AS v ORDER BY v "
                   f"ON CONFLICT ({column}) DO NOTHING", (list(values),))
    cursor.execute(f"SELECT {column} FROM {table} WHERE {column} = ANY(%s) ORDER BY {column} FOR UPDATE",
                   (list(values),))
    cursor.fetchall()


def _prepare_option(url: str) -> tuple[str, int | None]:
    """The URL without `prepared_statements=on|off`, and psycopg's prepare_threshold for it."""
    import urllib.parse

    head, mark, query = url.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    values = [value for name, value in pairs if name == PREPARED_STATEMENTS]
    if not values:
        return url, 5
    if len(values) > 1 or values[0] not in ("on", "off"):
        raise StoreError(f"the database URL's {PREPARED_STATEMENTS} must be given once, as on or off")
    rest = urllib.parse.urlencode([(name, value) for name, value in pairs if name != PREPARED_STATEMENTS])
    return head + (mark + rest if rest else ""), (None if values[0] == "off" else 5)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
