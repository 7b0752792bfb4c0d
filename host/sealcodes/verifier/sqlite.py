"""The embedded store: one SQLite file (stdlib sqlite3) in WAL mode.

Connections come from a small bounded pool, each used by one caller at a time; writers serialize with
BEGIN IMMEDIATE, which takes the database's write lock before the first read, so two attempts
can never both read "unused" and both consume. A busy timeout makes writers queue rather than fail.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from typing import Iterator

from .store import SqlStore, StoreError

BUSY_TIMEOUT_S = 30.0
DEFAULT_POOL_SIZE = 8


class SqliteStore(SqlStore):
    TYPES = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "real": "REAL", "bigint": "INTEGER"}
    ROW_LOCK = ""  # BEGIN IMMEDIATE already holds the whole database
    PLACEHOLDER = "?"

    def __init__(self, path: str, create: bool = True, pool_size: int = DEFAULT_POOL_SIZE):
        self.path = os.path.abspath(path)
        self.url = "sqlite:///" + self.path
        if not create and not os.path.exists(self.path):
            raise StoreError(f"no verifier database at {self.path}: run `sealcodes verifier init`")
        # A bounded pool, not one connection per thread: a server's worker threads come and go,
        # and connections tied to them would pile up (each holds 2-3 descriptors) until the
        # process runs out. A connection serves one caller at a time, whichever thread it is.
        self._pool_size = max(1, pool_size)
        self._idle: list[sqlite3.Connection] = []
        self._opened = 0
        # close() ends a generation: connections in use then are closed when they come back
        self._generation = 0
        self._born: dict[int, int] = {}
        self._available = threading.Condition()

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        try:
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            fresh = not os.path.exists(self.path)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)  # one caller at a time, from the pool
            try:
                if fresh:
                    os.chmod(self.path, 0o600)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")  # a consumed code stays consumed after a power cut
                connection.execute("PRAGMA foreign_keys=ON")
            except BaseException:
                connection.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the verifier database {self.path}: {_reason(exc)}") from None
        return connection

    def _acquire(self) -> sqlite3.Connection:
        with self._available:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._opened < self._pool_size:
                    self._opened += 1
                    generation = self._generation
                    break
                if not self._available.wait(timeout=BUSY_TIMEOUT_S):
                    raise StoreError("no verifier database connection became free in time")
        try:
            connection = self._connect()
        except BaseException:
            with self._available:
                self._opened -= 1
                self._available.notify()
            raise
        with self._available:
            self._born[id(connection)] = generation
        return connection

    def _release(self, connection: sqlite3.Connection) -> None:
        with self._available:
            if self._born.get(id(connection)) == self._generation:
                self._idle.append(connection)
                self._available.notify()
                return
            self._born.pop(id(connection), None)
            self._opened -= 1
            self._available.notify()
        with contextlib.suppress(sqlite3.Error):
            connection.close()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection = self._acquire()
        try:
            yield connection
        except sqlite3.Error as exc:
            raise StoreError(f"verifier database error: {_reason(exc)}") from None
        finally:
            if connection.in_transaction:  # never hand on a connection inside a transaction
                with contextlib.suppress(sqlite3.Error):
                    connection.rollback()
            self._release(connection)

    @contextlib.contextmanager
    def _write_transaction(self, connection) -> Iterator[sqlite3.Cursor]:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            connection.rollback()
            raise
        else:
            cursor.execute("COMMIT")

    def _table_exists(self, cursor, name: str) -> bool:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return cursor.fetchone() is not None

    def close(self) -> None:
        """Close every connection (those in use when they come back); the store may be used again."""
        with self._available:
            self._generation += 1
            idle, self._idle = self._idle, []
            self._opened -= len(idle)
            for connection in idle:
                self._born.pop(id(connection), None)
            self._available.notify_all()
        for connection in idle:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
