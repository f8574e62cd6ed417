"""Fixtures: a real PostgreSQL, a database cloned from a schema template per test, the app.

Thin on purpose: what they build comes from tests/support/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from astegni.core.database import Database
from astegni.core.settings import Settings
from tests import pg
from tests.support.factories import Factory
from tests.support.live import LiveServer, app_client, make_settings
from tests.support.mail import MailServer
from tests.throwaway_pg import ThrowawayServer

# How many tests a -m or -k expression left out in this run.
_DESELECTED = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def pg_url() -> str:
    return pg.server_url()


@pytest.fixture(scope="session")
def template_db(pg_url: str) -> Iterator[str]:
    """A database holding the schema, built once per run and cloned by every test."""
    name = pg.new_name("astegni_tmpl")
    pg.apply_schema_at(pg.create_database(pg_url, name))
    yield name
    pg.drop_database(pg_url, name)


@pytest.fixture
def db_url(pg_url: str, template_db: str) -> Iterator[str]:
    with pg.scratch_database(pg_url, template_db) as url:
        yield url


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, pool_size=4)
    yield database
    database.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with app_client(settings) as test_client:
        yield test_client


@pytest.fixture
def factory(client: TestClient, db: Database) -> Factory:
    return Factory(client, db)


@pytest.fixture(scope="module")
def shared_db(pg_url: str, template_db: str) -> Iterator[str]:
    """One database for a module whose tests share slow-to-start servers."""
    with pg.scratch_database(pg_url, template_db) as url:
        yield url


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    """A PostgreSQL of the module's own, which its fault tests may stop and restart."""
    server = ThrowawayServer(tmp_path_factory.mktemp("own-pg") / "pg")
    yield server
    server.close()


@pytest.fixture
def mail() -> Iterator[MailServer]:
    """An SMTP server on a free port that keeps what it receives (tests.support.mail)."""
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_server(db_url: str) -> Iterator[LiveServer]:
    server = LiveServer(db_url)
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A browser test starts Chromium and drives a live server: slow, whoever wrote it.
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)
    # Playwright's sync API keeps an event loop running on the main thread for the rest of the
    # session once it starts, and asyncio.run() refuses to start under it: browser tests go last.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash[_DESELECTED] = config.stash.get(_DESELECTED, 0) + len(items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # `make test-fast` on a module whose tests are all slow selects none of them: that is a pass
    # (exit 0), not pytest's "no tests collected" (exit 5), which a mistyped path still gets.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(_DESELECTED, 0):
        session.exitstatus = pytest.ExitCode.OK
