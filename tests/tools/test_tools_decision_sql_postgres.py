"""The PostgreSQL SQL tool on a real throwaway cluster: the database keeps it read-only.

Issue 14's rows: ``SELECT E'\\''; COMMIT; DELETE ...`` emptied the decision log, and
``table_to_xml('customer_secrets', ...)`` returned a card number. Each attack is run
three ways: through the tool (the parser refuses it first), past the parser straight
to the database as the reader role (``_postgres``: the role, the read-only transaction
and the extended protocol refuse it), and as a model's tool call through the graph.
"""

import time
import uuid

import pytest
from langchain_core.tools import ToolException

from rpra_agent import ConfigError
from rpra_agent.core.decision import Decision
from rpra_agent.store import open_store
from tests.tools._graph import tool_results_through_graph
from tools.decision_sql import DecisionLogSQL, SQLRefused, create_reader_role

pytestmark = pytest.mark.postgres
CARD = "4111 1111 1111 1111"
ATTACKS = [
    "SELECT E'\\''; COMMIT; DELETE FROM rpra_decisions; --'",
    "SELECT 1 AS a$b$; COMMIT; CREATE TABLE pwned(x int); --",
    "SELECT 1; DELETE FROM rpra_decisions",
    "COMMIT",
    "DELETE FROM rpra_decisions",
    "WITH d AS (DELETE FROM rpra_decisions RETURNING *) SELECT count(*) FROM d",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT lo_create(0)",
    "SELECT nextval('rpra_artifacts_id_seq')",
    "SELECT * INTO pwned FROM rpra_decisions",
]
LEAKS = [
    "SELECT table_to_xml('customer_secrets', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT schema_to_xml('public', true, false, '')",
    "SELECT query_to_xml('select * from customer_secrets', true, false, '')",
    "SELECT * FROM customer_secrets",
    "SELECT pg_read_file('/etc/hostname')",
]


def _decision(i):
    return Decision(run_id=f"r{i // 3}", step=i % 3, kind="answer", paradigm="pa", prediction=None,
                    threshold=0.5, route="small", reason="predicted_ok")  # fmt: skip


def _state(conn):
    decisions = conn.execute("SELECT count(*) FROM rpra_decisions").fetchone()[0]
    tables = sorted(r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return decisions, tables, conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]


@pytest.fixture
def db(postgres_url, tmp_path):
    """30 decisions, a customer_secrets table, and a reader role's URL."""
    import psycopg

    store = open_store(postgres_url, spool_path=str(tmp_path / "spool.jsonl"))
    for i in range(30):
        store.add(_decision(i))
    store.flush()
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customer_secrets (name text, card text)")
        conn.execute("INSERT INTO customer_secrets VALUES ('alice', %s)", (CARD,))
    role = f"rpra_reader_{uuid.uuid4().hex[:8]}"
    reader = create_reader_role(postgres_url, role, "s3cret-pw", statement_timeout_ms=2000)
    yield postgres_url, reader, role
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def test_reader_role_answers_queries(db):
    _, reader, role = db
    assert role in reader and "s3cret-pw" in reader
    sql = DecisionLogSQL(reader)
    assert sql.query("select route, count(*) as n from rpra_decisions group by route").splitlines()[1] == "small\t30"
    out = sql.query("select step from rpra_decisions order by run_id, step", limit=3)
    assert out.splitlines()[1:4] == ["0", "1", "2"] and "limit of 3" in out
    assert sql.query("select 'a%b' like 'a%' as pct, 100 % 7 as m").splitlines()[1] == "true\t2"
    assert sql.query("select from rpra_decisions limit 1").splitlines()[-1] == "(1 row)"


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_attack_writes_even_past_the_parser(db, attack):
    import psycopg

    admin, reader, _ = db
    with psycopg.connect(admin) as conn:
        before = _state(conn)
    sql = DecisionLogSQL(reader)
    with pytest.raises((SQLRefused, ToolException)):
        sql.query(attack)  # the parser refuses first, or the database does
    try:  # straight to the database as the reader role
        sql._postgres(attack, 10)
    except psycopg.Error:
        pass
    else:  # a session setting on a connection closed right after, or a large object rolled back
        assert attack.startswith(("SELECT set_config", "SELECT lo_create"))
    with psycopg.connect(admin) as conn:
        assert _state(conn) == before == (30, before[1], 0) and "pwned" not in before[1]


@pytest.mark.parametrize("leak", LEAKS)
def test_other_tables_cannot_be_read_even_past_the_parser(db, leak):
    import psycopg

    sql = DecisionLogSQL(db[1])
    try:
        out = sql.query(leak)
    except (SQLRefused, ToolException) as exc:
        out = str(exc)
    assert CARD not in out
    try:
        names, rows = sql._postgres(leak, 10)
    except psycopg.Error as exc:  # permission denied
        assert "permission denied" in str(exc)
    else:  # database_to_xml lists only what the role may read: the rpra tables
        assert CARD not in repr(rows) and "customer_secrets" not in repr(rows)


def test_a_role_that_can_write_or_read_other_tables_is_refused_at_start(db):
    import psycopg
    from sqlalchemy.engine import make_url

    admin, reader, role = db
    with pytest.raises(ConfigError, match="refuses to start.*superuser.*create_reader_role"):
        DecisionLogSQL(admin)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'GRANT INSERT ON rpra_decisions TO "{role}"')
    with pytest.raises(ConfigError, match="may write to or owns public.rpra_decisions"):
        DecisionLogSQL(reader)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'REVOKE INSERT ON rpra_decisions FROM "{role}"')
        conn.execute(f'GRANT SELECT ON customer_secrets TO "{role}"')
    with pytest.raises(ConfigError, match="may read public.customer_secrets"):
        DecisionLogSQL(reader)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'REVOKE SELECT ON customer_secrets FROM "{role}"')
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    with pytest.raises(ConfigError, match="may create objects in schema public"):
        DecisionLogSQL(reader)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'REVOKE CREATE ON SCHEMA public FROM "{role}"')
    writer = f"{role}_w"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{writer}" NOLOGIN')
        conn.execute(f'GRANT "{writer}" TO "{role}"')
    try:
        with pytest.raises(ConfigError, match="could SET ROLE"):
            DecisionLogSQL(reader)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{writer}"')
    DecisionLogSQL(reader)  # back to read-only: it starts
    wrong = make_url(reader).set(password="x", port=1).render_as_string(hide_password=False)
    with pytest.raises(ConfigError, match="cannot check its PostgreSQL role"):
        DecisionLogSQL(wrong)


def test_time_rows_and_bytes_are_bounded_by_the_server(db):
    import psycopg

    sql = DecisionLogSQL(db[1], timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
        sql._postgres("select pg_sleep(30)", 5)  # pg_sleep is refused by the parser: go past it
    assert time.monotonic() - started < 5
    names, rows = sql._postgres("select repeat('x', 10000000) as big, step from rpra_decisions", 5)
    assert names == ["big", "step"] and len(rows) == 6  # LIMIT limit + 1, server-side
    assert all(len(big) == sql.cell_chars + 1 for big, _ in rows)  # cut by the server
    out = sql.query("select repeat('x', 10000000) from rpra_decisions", limit=200)
    assert len(out.encode()) < 31 * (sql.cell_chars + 2) + 100


def test_the_attacks_as_a_model_s_tool_calls_through_the_graph(db):
    import psycopg

    admin, reader, _ = db
    tool = DecisionLogSQL(reader).tool()
    calls = [("query_decision_log", {"sql": s}) for s in ATTACKS[:2] + LEAKS[:2]]
    calls.append(("query_decision_log", {"sql": "select count(*) as n from rpra_decisions"}))
    results, decisions = tool_results_through_graph([tool], calls)
    assert [r.status for r in results] == ["error"] * 4 + ["success"]
    assert all(CARD not in r.content for r in results)
    assert results[-1].content.splitlines()[:2] == ["n", "30"]
    assert [d.kind for d in decisions] == ["action"] * 5 + ["answer"]
    with psycopg.connect(admin) as conn:
        assert _state(conn)[0] == 30
