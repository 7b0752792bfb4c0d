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

from .store import SqlStore, StoreError

CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK_ID = 0x5EA1C0DE
#: the first key of the advisory locks that serialize writers of one name (`lock_name`)
NAME_LOCK_CLASS = 0x5EA1


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
        self.url = url
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
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
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

    def _table_exists(self, cursor, name: str) -> bool:
        cursor.execute("SELECT to_regclass(%s)", (name,))
        return cursor.fetchone()[0] is not None

    def lock_name(self, cursor, name: str) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (NAME_LOCK_CLASS, name))

    def _locked_schema_version(self, cursor) -> int:
        # one migrator at a time across the fleet; held until the migration commits
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        return super()._locked_schema_version(cursor)

    def close(self) -> None:
        with self._guard:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
