"""URLs (defaults, drivers, masking) and the Alembic migrations shipped in the package."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from rpra_agent.core.errors import ConfigError
from rpra_agent.store import InMemoryDecisionStore, _migrate, open_store
from rpra_agent.store._schema import metadata
from rpra_agent.store._url import mask_url, resolve_url


def test_default_url_is_env_then_local_sqlite(monkeypatch):
    monkeypatch.delenv("RPRA_DATABASE_URL", raising=False)
    assert resolve_url(None).url.render_as_string() == "sqlite:///rpra.db"
    monkeypatch.setenv("RPRA_DATABASE_URL", "postgresql://u:pw@h:5433/logdb")
    db = resolve_url(None)
    assert (db.dialect, db.url.drivername, db.url.port, db.url.database) == (
        "postgresql",
        "postgresql+psycopg",
        5433,
        "logdb",
    )


@pytest.mark.parametrize(
    ("url", "driver", "database"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg", "db"),
        ("postgres://u@h/db", "postgresql+psycopg", "db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg", "db"),
        ("sqlite:///some/file.db", "sqlite", "some/file.db"),
        ("logs/decisions.db", "sqlite", "logs/decisions.db"),
        ("sqlite://", "sqlite", None),
    ],
)
def test_urls_select_the_driver(url, driver, database):
    db = resolve_url(url)
    assert db.url.drivername == driver and db.url.database == database


def test_memory_url_gives_the_in_memory_store():
    assert isinstance(open_store("memory://"), InMemoryDecisionStore)


def test_libpq_url_for_langgraph_postgres_saver_and_masking():
    db = resolve_url("postgresql://rpra:pw@db.example:5432/rpra?sslmode=require")
    assert db.libpq == "postgresql://rpra:pw@db.example:5432/rpra?sslmode=require"
    assert "pw" not in db.masked.replace("postgresql", "") and "***" in db.masked
    assert mask_url("postgresql://a:b@c/d") == "postgresql://a:***@c/d"
    with pytest.raises(ConfigError):
        _ = resolve_url("sqlite:///x.db").libpq


def test_default_spool_paths(tmp_path, monkeypatch):
    assert resolve_url(f"sqlite:///{tmp_path}/a.db").default_spool_path() == tmp_path / "rpra-spool-a.jsonl"
    monkeypatch.setenv("RPRA_SPOOL_DIR", str(tmp_path / "spools"))
    one = resolve_url("postgresql://u:first@h/db").default_spool_path()
    two = resolve_url("postgresql://u:second@h/db").default_spool_path()
    assert one == two and one.parent == tmp_path / "spools"  # keyed without the password
    assert "first" not in str(one)


def test_unwritable_sqlite_location_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot create"):
        open_store(f"sqlite:///{blocker}/sub/log.db")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_create_exactly_the_declared_schema(backend, tmp_path, request):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'm.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_engine(resolve_url(url).url)
    try:
        assert _migrate.upgrade(engine) == (None, _migrate.head_revision())
        assert _migrate.upgrade(engine) == (_migrate.head_revision(), _migrate.head_revision())  # idempotent
        with engine.connect() as conn:
            opts = {
                "version_table": "rpra_alembic_version",
                "include_object": lambda o, n, t, r, c: t != "table" or n.startswith("rpra_"),
            }
            ctx = MigrationContext.configure(conn, opts=opts)
            assert compare_metadata(ctx, metadata) == []  # _schema.py and the migration agree
        tables = set(inspect(engine).get_table_names())
        assert {"rpra_runs", "rpra_decisions", "rpra_decision_legs", "rpra_verdicts", "rpra_artifacts"} <= tables
        assert "rpra_alembic_version" in tables
        from alembic import command

        with engine.begin() as conn:
            command.downgrade(_migrate._config(conn), "base")
        assert not {
            t for t in inspect(engine).get_table_names() if t.startswith("rpra_") and t != "rpra_alembic_version"
        }
    finally:
        engine.dispose()
