"""Alembic environment for the decision log (run programmatically by rpra_agent.store._migrate)."""

from __future__ import annotations

from alembic import context

from rpra_agent.store._schema import VERSION_TABLE, metadata

config = context.config


def _include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    # Share the database politely: only our own tables are ours to compare.
    return type_ != "table" or str(name).startswith("rpra_")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `rpra db upgrade` or rpra_agent.store.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=_include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run `rpra db upgrade`")
run_migrations_online()
