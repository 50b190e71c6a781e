import sqlite3
import time

import pytest
from langchain_core.tools import ToolException

from rpra_agent.core.decision import Decision
from rpra_agent.store import open_store
from tests.tools._graph import tool_results_through_graph
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
        "select case when route = 'small' then 1 else 0 end as small from rpra_decisions",
        "select E'it''s', E'a\\'b', $$x; y$$, $t$z$t$ from rpra_decisions",
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
        ("SELECT E'\\''; COMMIT; DELETE FROM rpra_decisions; --'", "only one statement"),
        ("SELECT 1 AS a$b$; COMMIT; CREATE TABLE pwned(x int); --", "only one statement"),
        ("select table_to_xml('customer_secrets', true, false, '')", "table_to_xml"),
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


def _big_db(tmp_path, n=200):
    path = tmp_path / "log.db"
    store = open_store(f"sqlite:///{path}", spool_path=str(tmp_path / "spool.jsonl"))
    for i in range(n):
        store.add(decision(step=i))
    store.close()
    return path


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        # issue 14: 48 s and 5 GB of RSS. printf's time grows with its precision, which no
        # progress handler interrupts, so the authorizer does not allow it.
        ("SELECT printf('%.*c',100000000,'x') FROM rpra_decisions", "not authorized"),
        ("SELECT format('%.*c',100000000,'x') FROM rpra_decisions", "not authorized"),
        # every string is bounded by SQLite's limit API (SQLITE_LIMIT_LENGTH)
        ("WITH RECURSIVE r(s) AS (SELECT 'xx' UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r", "too big"),
        ("SELECT length(group_concat(hex(a.reason) || b.run_id)) FROM "
         "rpra_decisions AS a, rpra_decisions AS b, rpra_decisions AS c", "too big|interrupted"),
        # the time limit holds inside one statement (progress handler)
        ("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r", "interrupted"),
        ("SELECT zeroblob(1000000000)", "not authorized"),
    ],
)  # fmt: skip
def test_sqlite_time_and_size_are_bounded(tmp_path, sql, message):
    sql_tool = DecisionLogSQL(f"sqlite:///{_big_db(tmp_path)}", timeout_s=1.0, max_value_bytes=100_000)
    started = time.monotonic()
    with pytest.raises(ToolException, match=message):
        sql_tool.query(sql, limit=200)
    assert time.monotonic() - started < 3.0


def test_sqlite_string_functions_are_linear(tmp_path):
    sql_tool = DecisionLogSQL(f"sqlite:///{_big_db(tmp_path, 3)}", timeout_s=5.0)
    a_million = "(WITH RECURSIVE r(s) AS (SELECT 'aaaa' UNION ALL SELECT s || s FROM r WHERE length(s) < 500000) SELECT max(s) FROM r)"
    half = "(WITH RECURSIVE r(s) AS (SELECT 'aaaa' UNION ALL SELECT s || s FROM r WHERE length(s) < 250000) SELECT max(s) || 'b' FROM r)"
    started = time.monotonic()
    out = sql_tool.query(
        f"SELECT instr({a_million}, {half}), length(replace({a_million}, {half}, 'x')), length(trim({a_million}, {half}))"
    )
    assert out.splitlines()[1] == "0\t524288\t0" and time.monotonic() - started < 2.0  # SQLite's own: O(n*m), seconds
    assert (
        sql_tool.query(
            "SELECT instr('abc', 'c'), replace('abc', 'b', 'x'), trim('  a '), ltrim('xxa', 'x')"
        ).splitlines()[1]
        == "3\taxc\ta\ta"
    )
    assert sql_tool.query("SELECT rtrim('axx', 'x'), hex(trim(x'0061', x'00')), trim(5)").splitlines()[1] == "a\t61\t5"
    b_then_a = "(WITH RECURSIVE r(s) AS (SELECT 'bbbb' UNION ALL SELECT s || s FROM r WHERE length(s) < 250000) SELECT max(s) || 'a' FROM r)"
    started = time.monotonic()  # every character of the text is in the set, found last: str.strip is O(n*m) here
    assert sql_tool.query(f"SELECT length(trim({a_million}, {b_then_a}))").splitlines()[1] == "0"
    assert time.monotonic() - started < 2.0


def test_sqlite_rows_are_cut_as_they_are_fetched(tmp_path):
    path = _big_db(tmp_path, 3)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE rpra_decisions SET reason = ?", ("y" * 900_000,))
    sql_tool = DecisionLogSQL(f"sqlite:///{path}")
    names, rows = sql_tool._sqlite("SELECT reason, step FROM rpra_decisions", 10)
    assert names == ["reason", "step"] and [len(r[0]) for r in rows] == [201] * 3
    with pytest.raises(ToolException, match="too big"):
        DecisionLogSQL(f"sqlite:///{path}", max_value_bytes=100_000).query("SELECT reason FROM rpra_decisions")


def test_sqlite_attacks_as_a_model_s_tool_calls_through_the_graph(tmp_path):
    path = _big_db(tmp_path, 30)
    tool = DecisionLogSQL(f"sqlite:///{path}", timeout_s=1.0).tool()
    calls = [
        ("query_decision_log", {"sql": "SELECT printf('%.*c',100000000,'x') FROM rpra_decisions"}),
        ("query_decision_log", {"sql": "SELECT E'\\''; COMMIT; DELETE FROM rpra_decisions; --'"}),
        ("query_decision_log", {"sql": "SELECT 1 AS a$b$; COMMIT; CREATE TABLE pwned(x int); --"}),
        ("query_decision_log", {"sql": "SELECT count(*) AS n FROM rpra_decisions"}),
    ]
    started = time.monotonic()
    results, _ = tool_results_through_graph([tool], calls)
    assert time.monotonic() - started < 10
    assert [r.status for r in results] == ["error"] * 3 + ["success"]
    assert results[-1].content.splitlines()[:2] == ["n", "30"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM rpra_decisions").fetchone() == (30,)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'pwned'").fetchone() == (0,)


def test_tool_schema_has_no_long_max_length():
    import json

    schema = json.dumps(DecisionLogSQL("sqlite:///x.db").tool().tool_call_schema.model_json_schema())
    lengths = [int(x) for x in __import__("re").findall(r'"maxLength": (\d+)', schema)]
    assert lengths and max(lengths) <= 1000


def test_the_documented_reader_role_sql_is_the_helper_s():
    import re
    from pathlib import Path

    from rpra_agent.store._schema import metadata
    from tools.decision_sql import reader_role_sql

    docs = (Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md").read_text()
    block = re.search(r"```sql\n(.*?)```", docs[docs.index("## Tools") :], re.S).group(1)
    expected = ["CREATE ROLE \"rpra_reader\" LOGIN PASSWORD 'reader-password';"]
    expected += [s + ";" for s in reader_role_sql("rpra_reader", "rpra", [t.name for t in metadata.sorted_tables])]
    assert block.strip().splitlines() == expected


def test_sqlite_replace_checks_its_result_size_before_allocating(tmp_path):
    import tracemalloc

    sql_tool = DecisionLogSQL(f"sqlite:///{_big_db(tmp_path, 3)}", max_value_bytes=1_000_000)

    def doubled(limit):
        return f"(WITH RECURSIVE r(s) AS (SELECT 'aaaa' UNION ALL SELECT s || s FROM r WHERE length(s) < {limit}) SELECT max(s) FROM r)"

    tracemalloc.start()
    try:
        started = time.monotonic()
        with pytest.raises(ToolException, match="raised exception|too big"):  # 524,288 * 2,048: a 1 GB string
            sql_tool.query(f"SELECT length(replace({doubled(500_000)}, 'a', {doubled(2000)}))")
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0 and peak < 50_000_000
    assert sql_tool.query("SELECT replace(x'616161', x'61', x'62') = x'626262'").splitlines()[1] == "1"
