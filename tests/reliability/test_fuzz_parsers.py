"""Fuzzing the parsers that read untrusted text: only the documented error types ever escape.

- grades: ``GradeScale.parse_label`` never raises; ``distribution_from_logprobs`` returns
  ``None`` or a proper distribution; the judge's reply parser raises only ``Malformed``.
- model strings: only ``ModelStringError`` / ``ConfigError``.
- datasets: only ``DatasetError`` (with a line number when a line is at fault).
- the OpenAI request body: only ``APIError`` with a 400 status.
"""

import json
import math

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage

from rpra_agent.core.errors import ConfigError, DatasetError, ModelStringError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets._jsonl import parse_lines
from rpra_agent.feedback._parse import Malformed, parse_judge_reply
from rpra_agent.feedback.rubric import PAPER_RUBRIC
from rpra_agent.models.registry import load_chat_model, parse_model_string
from rpra_agent.predictors._parse import distribution_from_logprobs
from rpra_agent.service._openai import APIError, parse_request, to_langchain

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCALES = [GradeScale.paper(), GradeScale.ten_point()]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
grade_words = st.sampled_from(["great", "ok", "bad", "Great", " great", "gre", "1", "10", "7", "", "\n", "OK."])


def _label_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.builds(lambda a, w, b: a + w + b, st.text(max_size=3), grade_words, st.text(max_size=3)),
    )


@FUZZ
@given(_label_text(), st.sampled_from(SCALES))
def test_parse_label_returns_a_label_or_none(text, scale):
    label = scale.parse_label(text)
    assert label is None or label in scale.labels
    if label is not None:  # it named the label exactly, apart from case and edge punctuation
        assert label.lower() in text.lower()


_token = st.one_of(grade_words, st.text(max_size=6), json_scalars)
_logprob = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-50, 5), st.text(max_size=4), st.none()
)
_alt = st.fixed_dictionaries({"token": _token, "logprob": _logprob}) | json_values
_entry = st.fixed_dictionaries(
    {"token": _token, "logprob": _logprob}, optional={"top_logprobs": st.lists(_alt, max_size=6) | json_values}
)
logprobs_payloads = st.one_of(
    json_values, st.fixed_dictionaries({"content": st.lists(_entry | json_values, max_size=4) | json_values})
)


@FUZZ
@given(logprobs_payloads, st.sampled_from(SCALES))
def test_distribution_from_logprobs_is_none_or_a_distribution(payload, scale):
    dist = distribution_from_logprobs(payload, scale)
    if dist is not None:
        assert set(dist) == set(scale.labels)
        assert all(math.isfinite(p) and p >= 0 for p in dist.values())
        assert math.isclose(sum(dist.values()), 1.0, rel_tol=1e-9)


def _verdict_entries() -> st.SearchStrategy[object]:
    entry = st.fixed_dictionaries(
        {},
        optional={
            "response": st.one_of(st.integers(-2, 4), st.text(max_size=3), st.none(), st.floats()),
            "grade": st.one_of(grade_words, json_scalars),
            "rationale": json_values,
            "weakest": json_values,
        },
    )
    return st.one_of(
        st.fixed_dictionaries({"verdicts": st.lists(entry | json_values, max_size=3) | json_values}),
        st.lists(entry, max_size=3),
        entry,
        json_values,
    )


@FUZZ
@given(
    st.one_of(
        st.text(max_size=60),
        _verdict_entries().map(json.dumps),
        _verdict_entries().map(lambda v: "```json\n" + json.dumps(v) + "\n```"),
        _verdict_entries().map(lambda v: AIMessage(json.dumps(v))),
        _verdict_entries().map(lambda v: {"raw": AIMessage(json.dumps(v)), "parsed": None}),
        st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(
            lambda args: AIMessage("", tool_calls=[{"name": "grade", "args": args, "id": "c1"}])
        ),
        _verdict_entries(),
    ),
    st.integers(1, 3),
    st.sampled_from(SCALES),
)
@example(reply='{"verdicts": [{"response": Infinity, "grade": "ok"}]}', n=1, scale=SCALES[0])  # json reads Infinity
def test_judge_reply_parser_raises_only_malformed(reply, n, scale):
    try:
        grades = parse_judge_reply(reply, scale, PAPER_RUBRIC, n)
    except Malformed:
        return
    assert len(grades) == n and all(g.grade in scale.labels for g in grades)


model_strings = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda scheme, target, query: f"{scheme}:{target}{query}",
        st.sampled_from(["openai", "OPENAI", "gguf", "hf", "", "openai "]),
        st.text(max_size=15),
        st.one_of(st.just(""), st.text(max_size=20).map(lambda q: "?" + q)),
    ),
)


@FUZZ
@given(model_strings)
def test_model_string_parser_raises_only_model_string_errors(spec):
    try:
        scheme, target, options = parse_model_string(spec)
    except ModelStringError:
        return
    assert scheme in ("openai", "gguf") and target and isinstance(options, dict)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],  # the env stays cleared
)
@given(
    target=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="?&#"), min_size=1, max_size=15),
    options=st.dictionaries(
        st.sampled_from(["temperature", "timeout", "max_retries", "base_url", "top_p", "seed", "bogus", "model"]),
        st.text(max_size=10),
        max_size=3,
    ),
)
def test_openai_model_strings_build_a_model_or_raise_config_error(target, options, monkeypatch_env):
    query = "&".join(f"{k}={v}" for k, v in options.items())
    spec = f"openai:{target}" + (f"?{query}" if query else "")
    try:
        model = load_chat_model(spec, base_url="http://127.0.0.1:9/v1")
    except ConfigError:  # ModelStringError is a ConfigError
        return
    assert model is not None  # constructing never touches the network


@pytest.fixture
def monkeypatch_env(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


HEADER = json.dumps(
    {"rpra_dataset": {"name": "fz", "weak": "w", "strong": "s", "score_range": [0, 1], "attribution": "x"}}
)
GOOD = json.dumps({"id": "a", "prompt": "p", "responses": {"w": {"score": 1}, "s": {"score": 0}}})


def _item_lines() -> st.SearchStrategy[str]:
    field_values = {
        "id": st.one_of(st.text(max_size=5), json_scalars),
        "prompt": st.one_of(st.text(max_size=10), json_scalars),
        "messages": json_values,
        "category": json_values,
        "responses": st.one_of(
            json_values,
            st.dictionaries(
                st.sampled_from(["w", "s", "other"]),
                st.one_of(
                    json_values,
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "score": json_scalars,
                            "text": json_scalars,
                            "tokens": json_scalars,
                            "cost": json_scalars,
                            "correct": json_scalars,
                        },
                    ),
                ),
                max_size=3,
            ),
        ),
        "meta": json_values,
    }
    item = st.fixed_dictionaries({}, optional=field_values)
    return st.one_of(item.map(json.dumps), json_values.map(json.dumps), st.text(max_size=30))


@FUZZ
@given(st.lists(_item_lines(), min_size=1, max_size=4), st.integers(0, 3))
def test_dataset_lines_load_or_fail_with_a_dataset_error_naming_the_line(bad_lines, position):
    lines = [HEADER, GOOD, json.dumps({"id": "b", "prompt": "q", "responses": {"w": {"score": 0}}})]
    lines[position:position] = bad_lines
    assume(all("\n" not in line and "\r" not in line for line in bad_lines))
    try:
        dataset = parse_lines([line + "\n" for line in lines], "fuzz.jsonl")
    except DatasetError as exc:
        assert exc.path == "fuzz.jsonl"
        if position > 0:  # the header was intact: a line is to blame, and it is named
            assert exc.line is not None and 1 <= exc.line <= len(lines)
        return
    # accepted: nothing was silently dropped (every non-blank line but the header is an item)
    assert len(dataset.items) == sum(1 for line in lines if line.strip()) - 1


message = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["system", "developer", "user", "assistant", "tool"]), json_scalars)},
    optional={
        "content": st.one_of(
            st.text(max_size=20),
            st.lists(
                st.one_of(
                    st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]), "text": json_scalars}),
                    json_values,
                ),
                max_size=2,
            ),
            json_scalars,
        ),
        "tool_call_id": json_scalars,
        "name": json_scalars,
        "tool_calls": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {
                        "id": st.text(max_size=4),
                        "function": st.fixed_dictionaries(
                            {"name": st.text(max_size=6), "arguments": st.one_of(st.text(max_size=12), json_values)}
                        ),
                    }
                ),
                max_size=2,
            ),
        ),
    },
)
request_bodies = st.fixed_dictionaries(
    {
        "model": st.one_of(st.just("rpra"), json_scalars),
        "messages": st.one_of(st.lists(message, max_size=3), json_values),
    },
    optional={
        "stream": json_scalars,
        "n": json_scalars,
        "tools": json_values,
        "tool_choice": json_values,
        "metadata": json_values,
        "stream_options": json_values,
    },
)


@FUZZ
@given(
    st.one_of(
        request_bodies.map(lambda b: json.dumps(b).encode()),
        json_values.map(lambda b: json.dumps(b).encode()),
        st.binary(max_size=40),
    )
)
def test_openai_request_bodies_parse_or_get_a_400(raw):
    try:
        request = parse_request(raw)
        messages = to_langchain(request.messages)
    except APIError as exc:
        assert exc.status == 400 and exc.message
        return
    assert len(messages) == len(request.messages) >= 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), gz=st.booleans())
def test_dataset_files_of_random_bytes_fail_with_a_dataset_error(tmp_path, data, gz):
    import gzip

    from rpra_agent.evaluation.datasets import load_dataset

    path = tmp_path / ("fuzz.jsonl.gz" if gz else "fuzz.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        load_dataset(path)
    except DatasetError as exc:
        assert str(path) in str(exc)
