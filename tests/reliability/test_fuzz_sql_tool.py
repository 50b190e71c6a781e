"""The read-only SQL tool under fuzzed statements: it never changes the database.

``tests/tools/test_tools_decision_sql.py`` lists the refusals (writes, several
statements, file and server functions) and the read-only connection. Here hypothesis
builds statements from SQL keywords, quotes, comments and separators; whatever the
tool does with one (answer, refuse with ``SQLRefused``, report the database's
refusal with ``ToolException``), the SQLite file's bytes stay identical.
"""

import hashlib
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.tools import ToolException

from rpra_agent.core.decision import Decision
from rpra_agent.store import open_store
from tools.decision_sql import DecisionLogSQL, SQLRefused

WORDS = (
    "select * from rpra_decisions rpra_runs sqlite_master where route = 'small' ; ; delete update insert into "
    "values ( ) , 1 'x' \"route\" -- /* */ drop table pragma attach database detach with as returning create "
    "replace vacuum set union all begin commit rollback savepoint load_extension('x') readfile('/etc/passwd') "
    "writefile('x','y') randomblob(9) count(*) limit order by group $$ $q$ ' \" ` \\ \n trigger index view "
    "temp on conflict do nothing upsert exists not null or and analyze reindex"
).split(" ")


def _db(tmp_path):
    path = tmp_path / "log.db"
    store = open_store(f"sqlite:///{path}", spool_path=str(tmp_path / "spool.jsonl"))
    for i in range(3):
        store.add(Decision(run_id="r", step=i, kind="answer", paradigm="pa", prediction=None, threshold=0.5,
                           route="small", reason="predicted_ok"))  # fmt: skip
    store.close()
    with sqlite3.connect(path) as conn:  # one file, no WAL side files, so its bytes are the whole state
        conn.execute("pragma journal_mode=delete")
    return path


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return _db(tmp_path_factory.mktemp("sql"))


@settings(max_examples=150, deadline=None)
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=14), prefix=st.sampled_from(["", "select 1; "]))
def test_no_fuzzed_statement_changes_the_database(db_path, words, prefix):
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    sql = DecisionLogSQL(f"sqlite:///{db_path}", timeout_s=2.0)
    statement = prefix + " ".join(words)
    try:
        sql.query(statement)  # all three guards
    except (SQLRefused, ToolException):
        pass
    try:
        sql._sqlite(statement, 5)  # validation bypassed: the read-only connection and authorizer alone
    except (sqlite3.Error, sqlite3.Warning):
        pass
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        assert conn.execute("select count(*) from rpra_decisions").fetchone() == (3,)
