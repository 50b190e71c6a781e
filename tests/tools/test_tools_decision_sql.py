import sqlite3

import pytest
from langchain_core.tools import ToolException

from rpra_agent.core.decision import Decision
from rpra_agent.store import open_store
from tools.decision_sql import DecisionLogSQL, SQLRefused, check_query


def decision(route="small", reason="predicted_ok", step=0, **kw):
    return Decision(
        run_id="r1",
        step=step,
        kind="answer",
        paradigm="pa",
        prediction=None,
        threshold=0.5,
        route=route,
        reason=reason,
        **kw,
    )


def fill(url, tmp_path):
    store = open_store(url, spool_path=str(tmp_path / "spool.jsonl"))
    for i in range(5):
        store.add(decision(step=i, task="math") if i % 2 else decision("large", "predicted_low", step=i))
    store.flush()
    store.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select route, count(*) from rpra_decisions group by route;",
        "WITH d AS (SELECT * FROM rpra_decisions) SELECT count(*) FROM d",
        "select ';' as semicolon, 'drop table x' as words -- a comment; delete",
        'select "route" from rpra_decisions /* update */',
    ],
)
def test_validation_accepts_single_selects(sql):
    assert check_query(sql)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM rpra_decisions", "only read-only SELECT"),
        ("update rpra_decisions set route = 'large'", "only read-only SELECT"),
        ("insert into rpra_runs values (1)", "only read-only SELECT"),
        ("drop table rpra_decisions", "only read-only SELECT"),
        ("PRAGMA writable_schema = 1", "only read-only SELECT"),
        ("ATTACH DATABASE 'x.db' AS x", "only read-only SELECT"),
        ("select 1; delete from rpra_decisions", "only one statement"),
        ("select 1; select 2", "only one statement"),
        ("with x as (delete from rpra_decisions returning *) select * from x", "delete"),
        ("select * into backup from rpra_decisions", "into"),
        ("select * from rpra_decisions for update", "update"),
        ("select load_extension('evil')", "load_extension"),
        ("select pg_read_file('/etc/passwd')", "pg_read_file"),
        ("select pg_sleep(100)", "pg_sleep"),
        ("select set_config('default_transaction_read_only', 'off', false)", "set_config"),
        ("", "empty"),
        ("select " + "1," * 3000 + "1", "longer than"),
    ],
)
def test_validation_refuses_writes_and_several_statements(sql, message):
    with pytest.raises(SQLRefused, match=message):
        check_query(sql)


def test_sqlite_happy_path_and_row_limit(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    fill(url, tmp_path)
    sql = DecisionLogSQL(url)
    out = sql.query("select route, count(*) as n from rpra_decisions group by route order by route")
    assert out.splitlines() == ["route\tn", "large\t3", "small\t2", "(2 rows)"]
    limited = sql.query("select step from rpra_decisions order by step", limit=2)
    assert limited.splitlines()[1:3] == ["0", "1"] and "limit of 2" in limited


def test_sqlite_connection_itself_refuses_writes_and_other_tables(tmp_path):
    path = tmp_path / "log.db"
    url = f"sqlite:///{path}"
    fill(url, tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("create table secrets (v text)")
        conn.execute("insert into secrets values ('hunter2')")
    sql = DecisionLogSQL(url)
    for statement in (
        "delete from rpra_decisions",
        "select * from secrets",
        "select * from sqlite_master",
        "select randomblob(9)",
    ):
        with pytest.raises(sqlite3.DatabaseError):  # bypassing validation: the connection still says no
            sql._sqlite(statement, 10)
    with sqlite3.connect(path) as conn:
        assert conn.execute("select count(*) from rpra_decisions").fetchone() == (5,)


def test_tool_returns_refusals_and_database_errors_as_messages(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    fill(url, tmp_path)
    tool = DecisionLogSQL(url).tool()
    assert tool.invoke({"sql": "select count(*) from rpra_decisions"}).startswith("count(*)\n5")
    assert tool.invoke({"sql": "delete from rpra_decisions"}).startswith("Error: refused")
    assert tool.invoke({"sql": "select nope from rpra_decisions"}).startswith("Error: the database refused")
    assert "limit" in tool.invoke({"sql": "select 1", "limit": 10_000})


def test_memory_store_urls_are_rejected():
    with pytest.raises(ValueError, match="needs an SQLite file or PostgreSQL"):
        DecisionLogSQL("memory://")


def test_missing_sqlite_file_is_reported_not_created(tmp_path):
    tool = DecisionLogSQL(f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(ToolException, match="does not exist"):
        tool.query("select 1")
    assert not (tmp_path / "none.db").exists()
