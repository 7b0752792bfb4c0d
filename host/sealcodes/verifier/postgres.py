"""The fleet store: PostgreSQL through psycopg 3, connections from a pool (psycopg_pool).

Same schema and statements as SQLite (store.py). A transaction on an account first makes sure its
row exists, then locks it (SELECT ... FOR UPDATE): attempts on one account queue, attempts on
different accounts run in parallel, and a code is consumed by
`UPDATE ... WHERE used_at IS NULL RETURNING`, so it is spent once even across several servers.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from .store import SET_INSERT_COLUMNS, SqlStore, StoreError, set_insert_values

CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK_ID = 0x5EA1C0DE
#: our own URL parameter (libpq never sees it): `prepared_statements=off` for a pooler in
#: transaction mode (PgBouncer before 1.21), where a statement prepared on one server connection is
#: missing on the next; psycopg prepares a statement run five times on a connection
PREPARED_STATEMENTS = "prepared_statements"


class PostgresStore(SqlStore):
    TYPES = {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "blob": "BYTEA",
             "real": "DOUBLE PRECISION", "bigint": "BIGINT"}
    ROW_LOCK = " FOR UPDATE"
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
                    timeout=CONNECT_TIMEOUT_S + 5,
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

        try:
            with self._get_pool().connection() as connection:
                yield connection
        except psycopg_pool.PoolTimeout as exc:
            raise StoreError(f"no database connection available: {_reason(exc)}") from None
        except psycopg.Error as exc:
            raise StoreError(f"verifier database error: {_reason(exc)}") from None

    @contextlib.contextmanager
    def _write_transaction(self, connection) -> Iterator:
        with connection.transaction():
            with connection.cursor() as cursor:
                yield cursor

    # --- imports in batches: arrays instead of one statement per row, COPY for the codes ---

    def in_list(self, column: str, values) -> tuple[str, tuple]:
        return f"{column} = ANY(%s)", (list(values),)

    def _hold_accounts(self, cursor, accounts) -> None:
        # rows created and locked in sorted order: two imports never wait on each other in a circle
        cursor.execute("INSERT INTO accounts (account) SELECT a FROM unnest(%s::text[]) AS a ORDER BY a "
                       "ON CONFLICT (account) DO NOTHING", (list(accounts),))
        cursor.execute("SELECT account FROM accounts WHERE account = ANY(%s) ORDER BY account FOR UPDATE",
                       (list(accounts),))
        cursor.fetchall()

    def insert_sets(self, cursor, sets, now: float) -> None:
        columns = list(zip(*(set_insert_values(new, now) for new in sets)))
        cursor.execute(
            f"INSERT INTO code_sets ({SET_INSERT_COLUMNS}) SELECT * FROM unnest(%s::text[], %s::text[], "
            "%s::bigint[], %s::text[], %s::integer[], %s::text[], %s::text[], %s::integer[], %s::integer[], "
            "%s::integer[], %s::bytea[], %s::text[], %s::double precision[], %s::bytea[]) "
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

    def _locked_schema_version(self, cursor) -> int:
        # one migrator at a time across the fleet; held until the migration commits
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        return super()._locked_schema_version(cursor)

    def close(self) -> None:
        with self._guard:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


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
