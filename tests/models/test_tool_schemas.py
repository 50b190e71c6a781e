"""No tool schema can crash the process: schemas are sanitised before they become a llama.cpp grammar.

A grammar llama.cpp refuses (``maxLength: 5000`` becomes a repetition above its
limit) used to segfault the whole process, so every schema here runs in a
subprocess: a crash shows up as a negative return code instead of killing pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpra_agent.models._llama_grammar import MAX_REPEAT, check_gbnf, sanitize_schema, tool_grammar

SQL_TOOL_PARAMS = {  # the shape of tools/decision_sql.py's query_decision_log input
    "type": "object",
    "properties": {
        "sql": {"type": "string", "minLength": 1, "maxLength": 5000, "description": "A single SELECT."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    },
    "required": ["sql"],
}

RUNNER = r"""
import json, sys
from rpra_agent.models.llamacpp import ChatLlamaCpp
model = ChatLlamaCpp(model_path=sys.argv[1], n_ctx=1024, n_threads=1, seed=0)
schemas = json.loads(open(sys.argv[2]).read())
for i, params in enumerate(schemas):
    tool = {"type": "function", "function": {"name": "t", "description": "A tool.", "parameters": params}}
    for choice in ("t", "auto"):
        msg = model.bind_tools([tool], tool_choice=choice).invoke("Call the tool.", max_tokens=12)
        assert msg is not None
print("ok", len(schemas))
"""


def _run(random_gguf: Path, schemas: list, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "schemas.json"
    data.write_text(json.dumps(schemas))
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", RUNNER, str(random_gguf), str(data)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_sanitize_drops_bounds_llama_cpp_cannot_hold():
    clean = sanitize_schema(SQL_TOOL_PARAMS)
    assert "maxLength" not in clean["properties"]["sql"] and clean["properties"]["sql"]["minLength"] == 1
    assert sanitize_schema({"type": "array", "maxItems": 10**6, "items": {"$ref": "https://x/y"}}) == {
        "type": "array",
        "items": {},
    }
    assert check_gbnf('root ::= [^"] {0,5000}') and check_gbnf('root ::= "{0,5000}"') is None
    assert check_gbnf(f"root ::= [a-z]{{1,{MAX_REPEAT}}}") is None


def test_the_max_length_5000_tool_schema_gives_a_valid_call_and_no_crash(random_gguf, tmp_path):
    tool = {"type": "function", "function": {"name": "query_decision_log", "parameters": SQL_TOOL_PARAMS}}
    grammar = tool_grammar([tool], "query_decision_log")
    assert grammar is not None and check_gbnf(grammar) is None
    done = _run(random_gguf, [SQL_TOOL_PARAMS, {"type": "string", "pattern": "^[a-z]{1,5000}$"}], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok 2"


_NAMES = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
_BIG = st.integers(min_value=0, max_value=20_000)
_LEAVES = st.one_of(
    st.fixed_dictionaries({"type": st.just("string")}, optional={"minLength": _BIG, "maxLength": _BIG}),
    st.fixed_dictionaries(
        {"type": st.just("string"), "pattern": st.sampled_from(["^[a-z]{1,5000}$", "^a+$", "(ab|cd){2,3000}", "["])}
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={"minimum": st.integers(-(10**9), 10**9), "maximum": st.integers(-(10**9), 10**9)},
    ),
    st.builds(dict, type=st.sampled_from(["boolean", "null", "weird", ["string", "null"]])),
    st.builds(dict, enum=st.lists(st.one_of(st.text(max_size=8), st.integers()), min_size=1, max_size=4)),
    st.builds(dict, const=st.text(max_size=10)),
    st.fixed_dictionaries({"$ref": st.sampled_from(["#/$defs/x", "https://example.com/s.json", "#/nope"])}),
    st.fixed_dictionaries({"type": st.just("string"), "format": st.sampled_from(["date", "uuid", "email", "x"])}),
    st.booleans(),
)


def _compound(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(
            lambda props, extra: {"type": "object", "properties": props, "required": sorted(props)[:1], **extra},
            st.dictionaries(_NAMES, inner, max_size=3),
            st.sampled_from([{}, {"additionalProperties": False}, {"additionalProperties": True}]),
        ),
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": inner}, optional={"minItems": _BIG, "maxItems": _BIG}
        ),
        st.builds(lambda k, xs: {k: xs}, st.sampled_from(["anyOf", "oneOf", "allOf"]), st.lists(inner, max_size=3)),
    )


SCHEMAS = st.recursive(_LEAVES, _compound, max_leaves=8)


def test_fuzzed_tool_schemas_never_crash_the_process(random_gguf, tmp_path):
    schemas: list = []

    @settings(max_examples=80, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(SCHEMAS)
    def collect(schema):
        schemas.append(schema)

    collect()
    done = _run(random_gguf, schemas, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"ok {len(schemas)}"


@pytest.mark.parametrize("params", [None, {}, {"type": "object"}, {"type": "object", "properties": {}}])
def test_tools_without_parameters_still_get_a_grammar(params):
    tool = {"type": "function", "function": {"name": "ping", "parameters": params}}
    grammar = tool_grammar([tool], "required")
    assert grammar is not None and "rpra-call-json" in grammar


def test_a_grammar_llama_cpp_refuses_is_a_clear_error_not_a_crash(random_gguf):
    from rpra_agent.core.errors import ConfigError
    from rpra_agent.models.llamacpp import ChatLlamaCpp

    model = ChatLlamaCpp(model_path=str(random_gguf), n_ctx=512)
    for bad in ("root ::= [a-z] {0,5000}", 'root ::= "a" (', "root ::= undefined-rule"):
        with pytest.raises(ConfigError, match="grammar parser refuses"):
            model.invoke("hi", grammar=bad, max_tokens=2)
    assert model.invoke("hi", grammar='root ::= "yes" | "no"', max_tokens=4).content in ("yes", "no")
