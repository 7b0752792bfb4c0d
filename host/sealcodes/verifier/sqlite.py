"""The embedded store: one SQLite file (stdlib sqlite3) in WAL mode.

One connection per thread (sqlite3 connections must not be shared); writers serialize with
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


class SqliteStore(SqlStore):
    TYPES = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "real": "REAL", "bigint": "INTEGER"}
    ROW_LOCK = ""  # BEGIN IMMEDIATE already holds the whole database
    PLACEHOLDER = "?"

    def __init__(self, path: str, create: bool = True):
        self.path = os.path.abspath(path)
        self.url = "sqlite:///" + self.path
        if not create and not os.path.exists(self.path):
            raise StoreError(f"no verifier database at {self.path}: run `sealcodes verifier init`")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        try:
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            fresh = not os.path.exists(self.path)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)  # used by one thread; closed by close()
            if fresh:
                os.chmod(self.path, 0o600)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # a consumed code stays consumed after a power cut
            connection.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the verifier database {self.path}: {_reason(exc)}") from None
        with self._guard:
            self._all.append(connection)
        return connection

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        try:
            yield connection
        except sqlite3.Error as exc:
            raise StoreError(f"verifier database error: {_reason(exc)}") from None

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
        with self._guard:
            connections, self._all = self._all, []
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
        self._local = threading.local()


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
