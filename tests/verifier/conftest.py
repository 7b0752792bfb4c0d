"""Fixtures of the verifier tests: the PostgreSQL server (session), and one store fixture
parametrized over SQLite and PostgreSQL so the same tests run against both."""

from __future__ import annotations

import pytest

from _vsupport import PgBouncer, PostgresServer, store_url


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    return store_url(request, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path):
    return "sqlite:///" + str(tmp_path / "verifier.db")



@pytest.fixture(scope="session")
def pgbouncer(postgres):
    bouncer = PgBouncer(postgres).start()
    yield bouncer
    bouncer.stop()
