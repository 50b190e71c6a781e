"""The dataset format: loading, writing, malformed input, and the bundled recordings."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from rpra_agent.core.errors import DatasetError
from rpra_agent.evaluation.datasets import (
    BUNDLED,
    EvalDataset,
    EvalItem,
    ModelResponse,
    load_dataset,
    render_messages,
    save_dataset,
)

HEADER = {"rpra_dataset": {"name": "t", "weak": "s", "strong": "L", "score_range": [1, 10], "attribution": "me"}}
GOOD = {"id": "a", "prompt": "hi", "responses": {"s": {"text": "yo", "score": 3}, "L": {"text": "hello", "score": 9}}}


def _write(tmp_path: Path, lines: list[object], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_load_minimal_dataset(tmp_path):
    item2 = {
        "id": 7,
        "messages": [
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
        ],
        "category": "chat",
        "responses": {"s": "just text", "L": {"correct": None, "score": None, "tokens": 5, "cost": 0.5}},
        "meta": {"turn": 2},
    }
    ds = load_dataset(_write(tmp_path, [HEADER, GOOD, "", item2]))
    assert (ds.name, ds.weak, ds.strong, ds.score_range, ds.attribution) == ("t", "s", "L", (1.0, 10.0), "me")
    assert len(ds) == 2 and ds.models == ("s", "L")
    a, b = ds.items
    assert a.messages == ({"role": "user", "content": "hi"},) and a.category is None
    assert a.responses["L"] == ModelResponse("hello", 9.0, None, None)
    assert b.id == "7" and b.prompt == "User: q1\n\nAssistant: a1\n\nUser: q2" and b.metadata == {"turn": 2}
    assert b.responses["s"] == ModelResponse(text="just text")
    assert b.responses["L"] == ModelResponse(None, None, 5, 0.5)
    np.testing.assert_array_equal(ds.scores("s"), [3.0, np.nan])
    assert ds.texts("L") == ["hello", None]
    assert len(ds.judged()) == 1
    assert ds.acceptable == 5.5


def test_a_header_without_a_name_is_named_after_the_file_and_require_judged_counts_scores(tmp_path):
    header = {"rpra_dataset": {k: v for k, v in HEADER["rpra_dataset"].items() if k != "name"}}
    only_small = {"id": "b", "prompt": "hm", "responses": {"s": {"text": "x", "score": 4}}}
    ds = load_dataset(_write(tmp_path, [header, only_small], name="my-eval.jsonl"))
    assert ds.name == "my-eval"
    with pytest.raises(
        DatasetError,
        match=r"'my-eval' has no item scored for both models \(of 1 items, scores for weak 's' on 1, strong 'L' on 0\)",
    ):
        ds.require_judged()
    with gzip.open(tmp_path / "packed.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(header) + "\n" + json.dumps(GOOD) + "\n")
    packed = load_dataset(tmp_path / "packed.jsonl.gz")
    assert packed.name == "packed" and [i.id for i in packed.require_judged().items] == ["a"]


def test_save_and_load_round_trip(tmp_path):
    items = (
        EvalItem("x", "p", ({"role": "user", "content": "p"},), "c", {"s": ModelResponse("t", 2.5, 3, 0.1)}),
        EvalItem(
            "y",
            "custom prompt",
            ({"role": "system", "content": "sys"}, {"role": "user", "content": "u"}),
            None,
            {"L": ModelResponse(score=10.0)},
            {"k": [1, 2]},
        ),
    )
    ds = EvalDataset("rt", items, "s", "L", (1.0, 10.0), "attr", {"models": ["s", "L"], "acceptable": 7})
    for name in ("rt.jsonl", "rt.jsonl.gz"):
        back = load_dataset(save_dataset(ds, tmp_path / name))
        assert back == ds
    assert (tmp_path / "rt.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_correct_maps_to_scores(tmp_path):
    header = {"rpra_dataset": {"weak": "s", "strong": "L", "score_range": [0, 1]}}
    item = {"id": "a", "prompt": "q", "responses": {"s": {"correct": False}, "L": {"correct": True}}}
    ds = load_dataset(_write(tmp_path, [header, item]))
    assert ds.scores("s")[0] == 0.0 and ds.scores("L")[0] == 1.0 and ds.acceptable == 0.5


def _bad(**changes: object) -> dict[str, object]:
    item = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value
    return item


MALFORMED = [
    # (lines after the header, expected line, expected field, message fragment)
    (["{not json"], 2, None, "not valid JSON"),
    (["[1, 2]"], 2, None, "expected a JSON object"),
    ([_bad(id=None)], 2, "id", "needs an id"),
    ([_bad(id="")], 2, "id", "needs an id"),
    ([_bad(prompt=None)], 2, "prompt", "prompt (text) or messages"),
    ([_bad(prompt=5)], 2, "prompt", "must be a string"),
    ([GOOD, GOOD], 3, "id", "duplicate id 'a' (first on line 2)"),
    ([_bad(responses={"s": {"score": "9/10"}})], 2, "responses.s.score", "score must be a number, got '9/10'"),
    (
        [_bad(responses={"s": {"score": True}})],
        2,
        "responses.s.score",
        "must be a number, got true: write 1/0, or use correct: true/false",
    ),
    ([_bad(responses={"s": {"score": 11}})], 2, "responses.s.score", "outside the header's score_range"),
    ([_bad(responses={"gpt-5": {"score": 3}})], 2, "responses.gpt-5", "unknown model 'gpt-5'"),
    ([_bad(responses={"s": {"score": 3, "grade": "ok"}})], 2, "responses.s.grade", "unknown field"),
    ([_bad(responses={"s": {"correct": "yes"}})], 2, "responses.s.correct", "true/false"),
    ([_bad(responses={"s": {"score": 3, "correct": True}})], 2, "responses.s.correct", "not both"),
    ([_bad(responses={"s": {"tokens": -1}})], 2, "responses.s.tokens", "non-negative integer"),
    ([_bad(responses={"s": {"cost": "free"}})], 2, "responses.s.cost", "non-negative number"),
    ([_bad(responses=[1])], 2, "responses", "must be an object"),
    ([_bad(response={})], 2, "response", "unknown field"),
    ([_bad(messages=[{"role": "robot", "content": "x"}])], 2, "messages[0]", "role"),
    ([_bad(messages=[])], 2, "messages", "non-empty list"),
    ([_bad(category=3)], 2, "category", "string or null"),
    ([GOOD, "oops"], 3, None, "not valid JSON"),
]


@pytest.mark.parametrize(("lines", "line", "field", "fragment"), MALFORMED)
def test_malformed_items_name_line_and_field(tmp_path, lines, line, field, fragment):
    path = _write(tmp_path, [HEADER, *lines])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert fragment in str(err) and str(path) in str(err) and f"line {line}" in str(err)


@pytest.mark.parametrize(
    ("header", "field", "fragment"),
    [
        ({"id": "a", "prompt": "x"}, "rpra_dataset", "first line must be the header"),
        ({"rpra_dataset": {"strong": "L", "score_range": [0, 1]}}, "weak", "needs 'weak'"),
        ({"rpra_dataset": {"weak": "L", "strong": "L", "score_range": [0, 1]}}, "strong", "same model"),
        ({"rpra_dataset": {"weak": "s", "strong": "L", "score_range": [1, 1]}}, "score_range", "lowest < highest"),
        ({"rpra_dataset": {"weak": "s", "strong": "L", "score_range": "1-10"}}, "score_range", "[lowest, highest]"),
        ({"rpra_dataset": {"weak": "s", "strong": "L", "score_range": [0, 1], "format": 9}}, "format", "version"),
        (
            {"rpra_dataset": {"weak": "s", "strong": "L", "score_range": [0, 1], "acceptable": "ok"}},
            "acceptable",
            "number",
        ),
    ],
)
def test_malformed_header(tmp_path, header, field, fragment):
    with pytest.raises(DatasetError, match="line 1") as info:
        load_dataset(_write(tmp_path, [header]))
    assert info.value.field == field and fragment in str(info.value)


def test_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset file.*bundled: mt-bench"):
        load_dataset(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(_write(tmp_path, [""]))
    bad_gz = tmp_path / "bad.jsonl.gz"
    bad_gz.write_bytes(gzip.compress(b'{"rpra_dataset": {}}')[:12])
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(bad_gz)


def test_render_messages():
    assert render_messages([{"role": "user", "content": "hi"}]) == "hi"
    assert (
        render_messages([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
        == "System: s\n\nUser: u"
    )


# -- bundled data -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "n", "lo", "hi", "has_text"),
    [
        ("mt-bench", 160, 1.0, 10.0, True),
        ("mt-bench-question", 80, 1.0, 10.0, True),
        ("gsm8k", 1319, 0.0, 1.0, True),
        ("mmlu", 14042, 0.0, 1.0, False),
        ("arena", 293, 1.0, 10.0, True),
    ],
)
def test_bundled_datasets(name, n, lo, hi, has_text):
    ds = load_dataset(name)
    assert len(ds) == n and ds.score_range == (lo, hi)
    assert ds.weak == "mistralai/Mixtral-8x7B-Instruct-v0.1" and ds.strong == "gpt-4-1106-preview"
    assert "Apache-2.0" in ds.attribution and "github.com/" in ds.attribution
    assert len(ds.judged()) == n  # every bundled item is judged for both models
    assert all((t is not None) == has_text for t in ds.texts(ds.weak))
    assert len({item.id for item in ds.items}) == n


def test_bundled_mt_bench_shapes():
    turns = load_dataset("mt-bench")
    first, second = turns.items[0], turns.items[1]
    assert first.id.endswith("-t1") and second.id.endswith("-t2")
    assert [m["role"] for m in second.messages] == ["user", "assistant", "user"]
    assert second.messages[0]["content"] == first.prompt
    assert second.messages[1]["content"] == first.responses[turns.weak].text
    assert second.prompt.startswith("User: ") and first.category == second.category
    questions = load_dataset("mt-bench-question")
    q = questions.items[0]
    for model in (turns.weak, turns.strong):
        mean = (first.responses[model].score + second.responses[model].score) / 2
        assert q.responses[model].score == pytest.approx(mean)
    assert q.prompt == first.prompt


def test_bundled_files_and_attribution_ship_in_the_package():
    data = Path(__file__).resolve().parents[2] / "rpra_agent" / "data"
    for file in BUNDLED.values():
        assert (data / file).is_file()
    notice = (data / "NOTICE.md").read_text(encoding="utf-8")
    assert "0b64fdafe049e596a3f5657c219329f24af24198" in notice and "arena-hard-auto" in notice
    assert "Apache License" in (data / "LICENSE-Apache-2.0.txt").read_text(encoding="utf-8")
    total = sum(p.stat().st_size for p in data.iterdir())
    assert total < 5_000_000
