"""The read-only SQL tools under fuzzed statements: no write, bounded time, no leak.

``tests/tools/test_tools_decision_sql*.py`` list the refusals and the issue-14 rows one by
one. Here hypothesis builds statements from SQL keywords, quotes (``E'\\''``, dollar
quotes, ``a$b$``), comments, separators and expensive functions. Whatever the tool does
with one (answer, refuse with ``SQLRefused``, report the database's refusal with
``ToolException``), and also when the statement goes straight to the database past the
parser: the SQLite file's bytes stay identical; on PostgreSQL the decision count, the
table list and the large objects stay the same and the secret table's card number never
comes back; every call returns within the time limit plus a small margin. Memory is
bounded in ``test_fuzz_tools_memory.py`` (a subprocess under ``RLIMIT_AS``).
"""

import hashlib
import sqlite3
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.tools import ToolException

from rpra_agent.core.decision import Decision
from rpra_agent.store import open_store
from tools.decision_sql import DecisionLogSQL, SQLRefused, create_reader_role

WORDS = (
    "select * from rpra_decisions rpra_runs sqlite_master customer_secrets where route = 'small' ; ; delete update "
    "insert into values ( ) , 1 'x' \"route\" -- /* */ drop table pragma attach database detach with as returning "
    "create replace vacuum set union all begin commit rollback end savepoint load_extension('x') readfile('/etc/passwd') "
    "writefile('x','y') randomblob(9) count(*) limit order by group $$ $q$ ' \" ` \\ \n trigger index view "
    "temp on conflict do nothing upsert exists not null or and analyze reindex E'\\'' a$b$ E'\\\\' "
    "recursive r(i) r(s) i+1 s||s lo_create(0) set_config('default_transaction_read_only','off',false) "
    "table_to_xml('customer_secrets',true,false,'') database_to_xml(true,false,'') pg_sleep(30) "
    "nextval('rpra_artifacts_id_seq') copy to stdout"
).split(" ")
EXPENSIVE = [
    "printf('%.*c',100000000,'x')",
    "format('%.*c',2000000000,'x')",
    "zeroblob(1000000000)",
    "repeat('x',100000000)",
    "(WITH RECURSIVE r(s) AS (SELECT 'xx' UNION ALL SELECT s||s FROM r) SELECT max(s) FROM r)",
    "(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r) SELECT count(*) FROM r)",
    "(SELECT group_concat(a.reason||b.reason) FROM rpra_decisions a, rpra_decisions b, rpra_decisions c)",
    "(SELECT string_agg(a.reason||b.reason, ',') FROM rpra_decisions a, rpra_decisions b, rpra_decisions c)",
    "instr(hex(zeroblob(400000)),hex(zeroblob(200000))||'1')",
    "length(replace(hex(zeroblob(400000)),'0','00'))",
    "length(replace(hex(zeroblob(250000)),'0',hex(zeroblob(1000))))",  # a 1 GB result: refused before allocating
]
TIMEOUT_S = 1.0
MARGIN_S = 3.0  # one step SQLite cannot interrupt, process start-up, a loaded machine
PG_MARGIN_S = 9.0
"""PostgreSQL checks for cancellation between rows, not while one value doubles toward 1 GB
(docs/RELIABILITY.md, "Tools: not guaranteed"): the doubling CTE overran the 1 s timeout by
3.2 s on a loaded machine. 10 s in all still fails a statement that is never cancelled
(pg_sleep(30), an unbounded recursive count)."""


def statements():
    words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join)
    expensive = st.sampled_from(EXPENSIVE).map(lambda e: f"select {e} from rpra_decisions")
    prefix = st.sampled_from(["", "select 1; ", "commit; ", "with x as (select 1) "])
    return st.one_of(st.tuples(prefix, words).map("".join), expensive)


def _decision(i):
    return Decision(run_id=f"r{i}", step=0, kind="answer", paradigm="pa", prediction=None, threshold=0.5,
                    route="small", reason="predicted_ok")  # fmt: skip


def _timed(fn, *args, margin_s=MARGIN_S):
    started = time.monotonic()
    try:
        out = fn(*args)
    except (SQLRefused, ToolException) as exc:
        out = str(exc)
    except Exception as exc:  # the database driver's own error, past the parser
        out = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_S + margin_s, (elapsed, args)
    return out if isinstance(out, str) else repr(out)


# -- SQLite --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sql") / "log.db"
    store = open_store(f"sqlite:///{path}", spool_path=str(path.parent / "spool.jsonl"))
    for i in range(20):
        store.add(_decision(i))
    store.close()
    with sqlite3.connect(path) as conn:  # one file, no WAL side files, so its bytes are the whole state
        conn.execute("pragma journal_mode=delete")
        conn.execute("create table customer_secrets (card text)")
        conn.execute("insert into customer_secrets values ('4111 1111 1111 1111')")
    return path


@settings(max_examples=150, deadline=None)
@given(statement=statements())
def test_no_fuzzed_statement_writes_or_runs_long_on_sqlite(db_path, statement):
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    sql = DecisionLogSQL(f"sqlite:///{db_path}", timeout_s=TIMEOUT_S)
    outputs = [_timed(sql.query, statement), _timed(sql._sqlite, statement, 5)]  # all guards; the database alone
    assert all("4111" not in out for out in outputs)
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        assert conn.execute("select count(*) from rpra_decisions").fetchone() == (20,)


# -- PostgreSQL ----------------------------------------------------------------------------
@pytest.fixture
def pg(postgres_url, tmp_path):
    import psycopg

    store = open_store(postgres_url, spool_path=str(tmp_path / "spool.jsonl"))
    for i in range(20):
        store.add(_decision(i))
    store.flush()
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customer_secrets (card text)")
        conn.execute("INSERT INTO customer_secrets VALUES ('4111 1111 1111 1111')")
    role = f"rpra_fuzz_{uuid.uuid4().hex[:8]}"
    reader = create_reader_role(postgres_url, role, statement_timeout_ms=int(TIMEOUT_S * 1000))
    yield postgres_url, DecisionLogSQL(reader, timeout_s=TIMEOUT_S)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def _pg_state(admin):
    import psycopg

    with psycopg.connect(admin) as conn:
        return (
            conn.execute("SELECT count(*) FROM rpra_decisions").fetchone(),
            conn.execute("SELECT count(*) FROM customer_secrets").fetchone(),
            conn.execute(
                "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = "
                "'public'::regnamespace"
            ).fetchone(),  # fmt: skip
            conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone(),
            conn.execute("SELECT last_value FROM rpra_artifacts_id_seq").fetchone(),
        )


@pytest.mark.postgres
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statement=statements())
def test_no_fuzzed_statement_writes_leaks_or_runs_long_on_postgres(pg, statement):
    admin, sql = pg
    before = _pg_state(admin)
    outputs = [
        _timed(sql.query, statement, margin_s=PG_MARGIN_S),
        _timed(sql._postgres, statement, 5, margin_s=PG_MARGIN_S),
    ]
    assert all("4111" not in out for out in outputs)
    assert _pg_state(admin) == before
