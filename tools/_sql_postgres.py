"""PostgreSQL side of the SQL tool: a least-privilege reader role, checked and used.

The database, not the tool's parser, keeps the tool read-only:

- the tool connects as a role that may only ``SELECT`` the ``rpra_*`` tables (or views
  named ``rpra_*``); :func:`check_reader_role` refuses any role that can write, create,
  or read another table, so ``table_to_xml('customer_secrets', ...)`` and
  ``database_to_xml(...)`` find nothing to read;
- every query runs on a fresh connection in a ``READ ONLY`` transaction
  (``default_transaction_read_only`` and ``statement_timeout`` are also set on the role by
  :func:`create_reader_role`, and passed as connection options), and it is always
  rolled back;
- the input is embedded as a *subquery* and sent with the extended protocol (a bound
  ``LIMIT`` parameter), which accepts exactly one statement: ``COMMIT; DELETE ...`` is a
  syntax or protocol error, never a second statement;
- rows are limited by the server (``LIMIT``) and every cell is cut server-side
  (``left(col::text, n)``), so the result's size is bounded before it leaves the server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rpra_agent.core.errors import ConfigError

__all__ = ["check_reader_role", "create_reader_role", "reader_role_sql", "run_postgres"]

#: Predefined roles that read or write files, run programs, or read every table.
_DANGEROUS_MEMBERSHIPS = (
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
    "pg_checkpoint",
)
_SYSTEM_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"  # noqa: E501
_WRITABLE = f"""
SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_SYSTEM_SCHEMAS} AND (
  (c.relkind = 'S' AND has_sequence_privilege(c.oid, 'USAGE,UPDATE'))
  OR (c.relkind IN ('r', 'p', 'v', 'm', 'f') AND (
      has_table_privilege(c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
      OR has_any_column_privilege(c.oid, 'INSERT,UPDATE,REFERENCES')
      OR pg_has_role(c.relowner, 'USAGE'))))
ORDER BY 1 LIMIT 10"""
_READABLE_OTHERS = f"""
SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_SYSTEM_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname NOT LIKE 'rpra\\_%'
  AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
ORDER BY 1 LIMIT 10"""
_CREATABLE_SCHEMAS = f"""
SELECT n.nspname FROM pg_namespace n WHERE {_SYSTEM_SCHEMAS} AND has_schema_privilege(n.oid, 'CREATE') ORDER BY 1"""
_ROLE = """
SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls,
       has_database_privilege(current_database(), 'CREATE'),
       ARRAY(SELECT r.rolname::text FROM pg_roles r
             WHERE r.rolname = ANY(%s) AND pg_has_role(current_user, r.oid, 'USAGE') ORDER BY 1),
       ARRAY(SELECT r.rolname::text FROM pg_roles r
             WHERE r.rolname <> current_user AND pg_has_role(current_user, r.oid, 'MEMBER') ORDER BY 1 LIMIT 10)
FROM pg_roles WHERE rolname = current_user"""
_HOW = "create a reader role with tools.decision_sql.create_reader_role() (SQL in docs/RELIABILITY.md, ## Tools)"


def _connect(libpq: str, timeout_s: float) -> Any:
    import psycopg

    ms = max(1, int(timeout_s * 1000))
    options = (
        f"-c default_transaction_read_only=on -c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms * 2}"
    )
    return psycopg.connect(libpq, connect_timeout=max(2, int(timeout_s) + 1), options=options)


def check_reader_role(libpq: str, *, timeout_s: float = 5.0) -> None:
    """Refuse a role that could write, create objects or read tables outside the decision log.

    Args:
        libpq: The tool's connection URL (``postgresql://reader@host/db``).
        timeout_s: Connection and statement time limit.

    Raises:
        ConfigError: naming each privilege too many, and how to make a reader role.
    """
    import psycopg

    try:
        with _connect(libpq, timeout_s) as conn:
            conn.read_only = True
            user = conn.execute("SELECT current_user").fetchone()[0]
            role = conn.execute(_ROLE, (list(_DANGEROUS_MEMBERSHIPS),)).fetchone()
            writable = [r[0] for r in conn.execute(_WRITABLE)]
            readable = [r[0] for r in conn.execute(_READABLE_OTHERS)]
            schemas = [r[0] for r in conn.execute(_CREATABLE_SCHEMAS)]
            conn.rollback()
    except psycopg.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"the SQL tool cannot check its PostgreSQL role: {first}") from None
    problems = [
        label
        for label, bad in zip(
            ("is a superuser", "may create databases", "may create roles", "has REPLICATION", "bypasses RLS"),
            role[:5],
            strict=True,
        )
        if bad
    ]
    if role[5]:
        problems.append("may create schemas in this database (REVOKE CREATE ON DATABASE ...)")
    if role[6]:
        problems.append(f"is a member of {', '.join(role[6])}")
    others = [r for r in role[7] if r not in role[6]]
    if others:
        problems.append(f"is a member of {', '.join(others)} (it could SET ROLE to them)")
    if writable:
        problems.append(f"may write to or owns {', '.join(writable)}")
    if schemas:
        problems.append(f"may create objects in schema {', '.join(schemas)} (REVOKE CREATE ON SCHEMA ... FROM PUBLIC)")
    if readable:
        problems.append(f"may read {', '.join(readable)}, which are not decision-log (rpra_*) tables")
    if problems:
        raise ConfigError(
            f"the SQL tool refuses to start: its PostgreSQL role {user!r} " + "; ".join(problems) + f". {_HOW}, "
            "and give the tool that role's URL"
        )


def reader_role_sql(role: str, database: str, tables: Sequence[str], *, schema: str = "public",
                    statement_timeout_ms: int = 5000) -> list[str]:  # fmt: skip
    """The statements that give ``role`` read-only access to ``tables`` and nothing else.

    The role must already exist (``CREATE ROLE <role> LOGIN PASSWORD '...'``).

    Args:
        role: The reader role's name.
        database: The database holding the decision log.
        tables: The tables (or ``rpra_*`` views) the role may read.
        schema: Their schema.
        statement_timeout_ms: The role's server-side statement time limit.

    Returns:
        SQL statements with quoted identifiers, to run as the tables' owner.
    """
    from psycopg import sql

    def q(name: str) -> str:
        return sql.Identifier(name).as_string()

    statements = [
        f"ALTER ROLE {q(role)} NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS",
        f"ALTER ROLE {q(role)} SET default_transaction_read_only = on",
        f"ALTER ROLE {q(role)} SET statement_timeout = {int(statement_timeout_ms)}",
        f"ALTER ROLE {q(role)} SET idle_in_transaction_session_timeout = {2 * int(statement_timeout_ms)}",
        f"ALTER ROLE {q(role)} SET work_mem = '4MB'",
        f"GRANT CONNECT ON DATABASE {q(database)} TO {q(role)}",
        f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}",
    ]
    statements += [f"GRANT SELECT ON TABLE {q(schema)}.{q(t)} TO {q(role)}" for t in tables]
    return statements


def create_reader_role(admin_url: str, role: str = "rpra_reader", password: str | None = None, *,
                       statement_timeout_ms: int = 5000) -> str:  # fmt: skip
    """Create (or tighten) a role that may only read the decision log, and return its URL.

    Run it once per deployment, as the owner of the ``rpra_*`` tables (the store creates
    them). The statements are :func:`reader_role_sql`'s.

    Args:
        admin_url: A PostgreSQL URL of the decision log's owner.
        role: The reader role's name.
        password: Its password (``None``: no password, for trust or peer authentication).
        statement_timeout_ms: The role's server-side statement time limit.

    Returns:
        ``admin_url`` with the reader role as user: the URL to give the SQL tool.

    Raises:
        ConfigError: when the URL is not PostgreSQL.
    """
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from rpra_agent.store._schema import metadata
    from rpra_agent.store._url import resolve_url

    db = resolve_url(admin_url)
    if db is None or db.dialect != "postgresql":
        raise ConfigError("create_reader_role needs a postgresql:// URL of the decision log's owner")
    with psycopg.connect(db.libpq, autocommit=True) as conn:
        row = conn.execute("SELECT current_database(), current_schema()").fetchone()
        database, schema = (str(row[0]), str(row[1])) if row else ("", "public")
        existing = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        tables = [t.name for t in metadata.sorted_tables if t.name in existing]
        if not tables:
            raise ConfigError(f"no rpra_* tables in {db.masked}: open the store once (it creates them), then retry")
        secret = sql.SQL(" PASSWORD {}").format(sql.Literal(password)) if password is not None else sql.SQL("")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = sql.SQL("ALTER" if exists else "CREATE")
        conn.execute(sql.SQL("{} ROLE {} LOGIN{}").format(verb, sql.Identifier(role), secret))
        for statement in reader_role_sql(
            role, database, tables, schema=schema, statement_timeout_ms=statement_timeout_ms
        ):
            conn.execute(statement)  # type: ignore[arg-type]
    url = make_url(db.libpq).set(username=role, password=password)
    return url.render_as_string(hide_password=False)


def run_postgres(libpq: str, sql_text: str, limit: int, *, timeout_s: float, cell_chars: int,
                 max_columns: int) -> tuple[list[str], list[tuple[Any, ...]]]:  # fmt: skip
    """Run one query as a subquery in a read-only transaction; at most ``limit + 1`` rows.

    Every cell comes back as text cut to ``cell_chars + 1`` characters by the server.

    Raises:
        psycopg.Error: the database's refusal (a privilege, the time limit, a syntax error).
        ValueError: when the query has more than ``max_columns`` columns.
    """
    body = sql_text.replace("%", "%%")  # the query is sent with one bound parameter, the LIMIT
    deadline = time.monotonic() + timeout_s
    with _connect(libpq, timeout_s) as conn:
        conn.read_only = True
        try:
            with conn.cursor() as cur:
                # Extended protocol (a bound parameter): exactly one statement, which is this SELECT.
                cur.execute(f"SELECT * FROM ({body}\n) AS rpra_q LIMIT %s", (0,))  # type: ignore[arg-type]
                names = [d.name for d in cur.description or ()]
                if len(names) > max_columns:
                    raise ValueError(f"the query returns {len(names)} columns; at most {max_columns} are allowed")
                cells = ", ".join(f"left(rpra_q.c{i}::text, {int(cell_chars) + 1})" for i in range(len(names)))
                aliases = ", ".join(f"c{i}" for i in range(len(names)))
                alias = f"rpra_q({aliases})" if names else "rpra_q"
                left_ms = max(1, int((deadline - time.monotonic()) * 1000))  # one time limit for both statements
                cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(left_ms),))
                cur.execute(f"SELECT {cells} FROM ({body}\n) AS {alias} LIMIT %s", (limit + 1,))  # type: ignore[arg-type]
                return names, cur.fetchmany(limit + 1)
        finally:
            conn.rollback()
