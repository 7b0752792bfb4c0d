"""Which store a database URL names: SQLite (a file) or PostgreSQL. Kept apart from store.py, the
interface both stores implement, so the interface never imports its implementations."""

from __future__ import annotations

from .store import SqlStore, StoreError


def open_store(url: str, **options) -> SqlStore:
    """A store for `sqlite:///path` (or a plain path) or `postgresql://...`."""
    if not isinstance(url, str) or not url:
        raise StoreError("no verifier database given (--db sqlite:///PATH or postgresql://...)")
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, **options)
    if url.startswith("sqlite://"):
        from .sqlite import SqliteStore

        # SQLAlchemy's rule: sqlite:///relative.db, sqlite:////absolute/path.db
        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]
        if not path:
            raise StoreError("sqlite URL needs a path: sqlite:///relative.db or sqlite:////absolute/path.db")
        return SqliteStore(path, **options)
    if "://" in url:
        raise StoreError("unknown database URL scheme: use sqlite:///PATH or postgresql://...")
    from .sqlite import SqliteStore

    return SqliteStore(url, **options)
