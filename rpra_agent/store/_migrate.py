"""Alembic migrations shipped inside the package, run programmatically.

The first use of a database upgrades it to the newest revision; concurrent first uses
(several worker processes) are serialised with a PostgreSQL advisory lock or, for
SQLite, an exclusive write transaction.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from rpra_agent.store._schema import VERSION_TABLE

__all__ = ["current_revision", "head_revision", "upgrade"]

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x52505241  # "RPRA"


def _config(connection: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def head_revision() -> str:
    """The newest revision shipped with this version of rpra_agent."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover  (the package always ships revisions)
        raise RuntimeError("no migrations found in " + str(_MIGRATIONS))
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` when it has no decision log yet."""
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade the database to ``revision``.

    Args:
        engine: The store's engine.
        revision: An Alembic revision (``head`` by default).

    Returns:
        ``(revision before, revision after)``.
    """
    from alembic import command

    with engine.connect() as conn:
        if revision == "head" and current_revision(conn) == head_revision():
            return head_revision(), head_revision()
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if postgres:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
        else:
            conn.execution_options(rpra_write=True)  # BEGIN IMMEDIATE: one migrator at a time
        try:
            before = current_revision(conn)
            if before != revision and not (revision == "head" and before == head_revision()):
                logger.info("upgrading the decision log schema from %s to %s", before or "nothing", revision)
                command.upgrade(_config(conn), revision)
            conn.commit()
            after = current_revision(conn)
            conn.commit()
        finally:
            if postgres:
                _pg_unlock(conn)
    return before, after or ""


def _pg_unlock(conn: Connection) -> None:
    try:
        conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
        conn.commit()
    except Exception as exc:  # noqa: BLE001  (the lock dies with the session anyway)
        logger.debug("could not release the migration lock: %s", type(exc).__name__)
