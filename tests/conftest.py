"""Test fixtures: real databases on both dialects, the apps over ASGI and over loopback HTTP.

Every storage test runs once per backend chosen with ``--db`` (``sqlite``, ``postgresql`` or
``all``, the default). PostgreSQL comes from ``COHORTBRIDGE_TEST_POSTGRES_URL`` (default: the
local server of ../shared/README.md); each run creates its own database and drops it at the end.
Where no PostgreSQL answers, its runs are skipped with the reason shown, except under CI,
where that is an error.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cohortbridge.analytics.app import create_app as create_analytics
from cohortbridge.analytics.projects import service as projects
from cohortbridge.analytics.tables import metadata as analytics_metadata
from cohortbridge.config import Settings, Side
from cohortbridge.db import migrate
from cohortbridge.db.engine import Database
from cohortbridge.engage.app import create_app as create_engage
from cohortbridge.engage.tables import metadata as engage_metadata
from cohortbridge.engage.workspaces import service as workspace_service

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("COHORTBRIDGE_TEST_DB", "all"),
        choices=("sqlite", "postgresql", "all"),
        help="Which database backends storage tests run on.",
    )


def _backends(config: pytest.Config) -> list[str]:
    chosen = config.getoption("--db")
    return ["sqlite", "postgresql"] if chosen == "all" else [chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", _backends(metafunc.config), scope="session")


class PostgresServer:
    """One throwaway database per test session on the configured server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.name = f"cb_test_{uuid.uuid4().hex[:12]}"
        self.error: str | None = None

    def _admin_dsn(self) -> str:
        url = make_url(self.base_url)
        return (
            f"host={url.host or '127.0.0.1'} port={url.port or 5432} "
            f"user={url.username or 'postgres'} dbname={url.database or 'postgres'}"
            + (f" password={url.password}" if url.password else "")
        )

    def create(self) -> str:
        with psycopg.connect(self._admin_dsn(), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return make_url(self.base_url).set(database=self.name).render_as_string(False)

    def drop(self) -> None:
        with psycopg.connect(self._admin_dsn(), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _template(side: Side, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of one side for the session: a SQLite file to copy, or a PG one."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("template") / f"{side}.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate.upgrade(side, url)
        yield url
        return
    server = PostgresServer(os.environ.get("COHORTBRIDGE_TEST_POSTGRES_URL", DEFAULT_PG))
    try:
        url = server.create()
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL not reachable at {server.base_url}: {error}".strip()
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the PostgreSQL suite)")
        pytest.skip(reason)
    migrate.upgrade(side, url)
    yield url
    server.drop()


@pytest.fixture(scope="session")
def engage_template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _template("engage", backend, tmp_path_factory)


@pytest.fixture(scope="session")
def analytics_template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _template("analytics", backend, tmp_path_factory)


# Rows the migrations seed (the built-in partner) survive the per-test cleanup.
SEEDED_TABLES = frozenset({"partners"})


async def _truncate_postgres(db: Database) -> None:
    names = ", ".join(
        f'"{t.name}"' for t in engage_metadata.sorted_tables if t.name not in SEEDED_TABLES
    )
    async with db.transaction() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await conn.execute(text("DELETE FROM partners WHERE slug <> 'amplitude'"))


@pytest.fixture
async def engage_db(backend: str, engage_template: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A clean, migrated engage database for one test."""
    if backend == "sqlite":
        source = Path(engage_template.removeprefix("sqlite+aiosqlite:///"))
        target = tmp_path / "engage.db"
        shutil.copyfile(source, target)
        db = Database.connect(f"sqlite+aiosqlite:///{target}")
    else:
        db = Database.connect(engage_template)
        await _truncate_postgres(db)
    yield db
    await db.dispose()


# PostgreSQL's job queue (procrastinate) lives beside analytics' tables.
QUEUE_TABLES = ("procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs",
                "procrastinate_workers")  # fmt: skip


async def _truncate_analytics(db: Database) -> None:
    names = ", ".join([*(f'"{t.name}"' for t in analytics_metadata.sorted_tables), *QUEUE_TABLES])
    async with db.transaction() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def analytics_db(
    backend: str, analytics_template: str, tmp_path: Path
) -> AsyncIterator[Database]:
    """A clean, migrated analytics database for one test."""
    if backend == "sqlite":
        source = Path(analytics_template.removeprefix("sqlite+aiosqlite:///"))
        target = tmp_path / "analytics.db"
        shutil.copyfile(source, target)
        db = Database.connect(f"sqlite+aiosqlite:///{target}")
    else:
        db = Database.connect(analytics_template)
        await _truncate_analytics(db)
    yield db
    await db.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
async def engage(settings: Settings, engage_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The engage app over ASGI (no sockets), for wire tests."""
    app = create_engage(settings, engage_db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://engage.test") as client:
        yield client


@pytest.fixture
async def workspace(engage_db: Database) -> dict[str, Any]:
    """A bootstrapped workspace: ids and a REST API key with every permission."""
    async with engage_db.transaction() as conn:
        result = await workspace_service.bootstrap(conn, "Test Workspace", "http://engage.test")
    return result.model_dump()


@pytest.fixture
def auth(workspace: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {workspace['rest_api_key']}"}


class LiveServer:
    """A real uvicorn server on loopback, in a thread with its own event loop and engine."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live_engage(settings: Settings, engage_db: Database) -> Iterator[LiveServer]:
    """engage served over real HTTP on 127.0.0.1, on the test's database."""
    served = settings.model_copy(update={"engage_database_url": engage_db.url})
    with LiveServer(create_engage(served)) as server:
        yield server


@pytest.fixture
async def analytics(settings: Settings, analytics_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The analytics app over ASGI (no sockets), for wire tests."""
    app = create_analytics(settings, analytics_db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics.test") as client:
        yield client


@pytest.fixture
async def project(analytics_db: Database) -> dict[str, Any]:
    """A project: its id, API key and secret key."""
    async with analytics_db.transaction() as conn:
        created = await projects.create_project(conn, "Test Project")
    return created.model_dump()


@pytest.fixture
def live_analytics(settings: Settings, analytics_db: Database) -> Iterator[LiveServer]:
    """analytics served over real HTTP on 127.0.0.1, on the test's database."""
    served = settings.model_copy(update={"analytics_database_url": analytics_db.url})
    with LiveServer(create_analytics(served)) as server:
        yield server
