"""``rpra data convert --join``: results kept in several files (scores, prompts, answers) become one dataset.

The first test converts the real arena-bench-v1 recordings that ship with the
benchmarks (``benchmarks/data/arena_bench_v1``: gzipped, as published in three files)
and checks the result against the bundled ``arena`` dataset, built from the same
files by another path, item for item.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.core.errors import ConfigError, DatasetError
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.datasets.convert import read_table
from rpra_agent.evaluation.datasets.convert_join import join_tables

ARENA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "arena_bench_v1"
runner = CliRunner()


def _run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def _jsonl(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_the_published_arena_bench_files_convert_to_the_bundled_arena_dataset(tmp_path: Path) -> None:
    out = tmp_path / "arena.jsonl.gz"
    code, text = _run(
        "data", "convert", ARENA / "judgments.csv.gz", "--long", "-o", out,
        "--join", ARENA / "prompts.jsonl.gz", "--join", ARENA / "outputs.jsonl.gz",
        "--id-col", "question_id", "--prompt-col", "prompt", "--model-col", "model",
        "--response-col", "outputs", "--score-col", "score", "--score-range", "1,10", "--acceptable", "7",
        "--model", "mistralai/Mixtral-8x7B-Instruct-v0.1", "--model", "gpt-4-1106-preview",
    )  # fmt: skip
    assert code == 0, text
    assert "300 items" in text
    bundled, converted = load_dataset("arena"), load_dataset(out).judged()

    def content(ds):  # type: ignore[no-untyped-def]
        return {
            it.id: (it.prompt, it.category, {m: (r.text, r.score) for m, r in sorted(it.responses.items())})
            for it in ds.items
        }

    assert len(bundled) == 293 and content(converted) == content(bundled)
    assert (converted.weak, converted.strong, converted.score_range) == (bundled.weak, bundled.strong, (1.0, 10.0))


def test_a_wide_table_takes_its_prompts_from_a_side_table(tmp_path: Path) -> None:
    main = _csv(
        tmp_path / "scores.csv", ["qid", "a", "s", "b", "t"], [[2, "small 2", 3, "large 2", 9], [1, "s1", 8, "l1", 9]]
    )
    side = _jsonl(
        tmp_path / "q.jsonl", [{"qid": 1, "text": "one?", "topic": "x"}, {"qid": 2, "text": "two?", "topic": "y"}]
    )
    out = tmp_path / "d.jsonl"
    code, text = _run(
        "data", "convert", main, "-o", out, "--join", side, "--id-col", "qid", "--prompt-col", "text",
        "--category-col", "topic", "--model", "small=a:s", "--model", "large=b:t", "--score-range", "1,10",
    )  # fmt: skip
    assert code == 0, text
    ds = load_dataset(out)
    assert [(it.id, it.prompt, it.category, it.responses["small"].score) for it in ds.items] == [
        ("2", "two?", "y", 3.0),
        ("1", "one?", "x", 8.0),
    ]  # JSON's integer ids match the CSV's text ids; the main table's order is kept


def test_a_long_side_table_is_joined_on_item_and_model(tmp_path: Path) -> None:
    main = _csv(
        tmp_path / "j.csv",
        ["question_id", "model", "score", "idx"],
        [["q1", "small", 4, 0], ["q1", "large", 9, 0], ["q2", "small", 8, 1], ["q2", "large", "", 1]],
    )
    answers = _csv(
        tmp_path / "answers.csv",
        ["question_id", "model", "answer", "idx"],
        [["q1", "small", "s1", 99], ["q1", "large", "l1", 99], ["q2", "small", "", 99], ["q2", "large", "l2", 99]],
    )
    prompts = _jsonl(
        tmp_path / "p.jsonl", [{"question_id": "q1", "prompt": "P1"}, {"question_id": "q2", "prompt": "P2"}]
    )
    out = tmp_path / "d.jsonl"
    code, text = _run(
        "data", "convert", main, "--long", "-o", out, "--join", prompts, "--join", answers,
        "--id-col", "question_id", "--prompt-col", "prompt", "--model-col", "model",
        "--response-col", "answer", "--score-col", "score", "--score-range", "1,10",
    )  # fmt: skip
    assert code == 0, text
    ds = load_dataset(out)
    got = {it.id: {m: (r.text, r.score) for m, r in it.responses.items()} for it in ds.items}
    assert got == {
        "q1": {"small": ("s1", 4.0), "large": ("l1", 9.0)},
        "q2": {"small": ("", 8.0), "large": ("l2", None)},  # an empty answer stays empty; an empty score is unjudged
    }
    rows = list(join_tables(read_table(main), [answers], id_col="question_id", model_col="model"))
    assert [r["idx"] for _, r in rows] == ["0", "0", "1", "1"]  # the main table's own columns win


def test_an_object_of_answers_is_read_at_each_rows_model(tmp_path: Path) -> None:
    main = _jsonl(
        tmp_path / "long.jsonl",
        [
            {"id": 1, "m": "small", "s": 0.2, "p": "q", "out": {"small": "tiny", "large": "big"}},
            {"id": 1, "m": "large", "s": 0.9, "p": "q", "out": {"small": "tiny", "large": "big"}},
            {"id": 2, "m": "small", "s": 0.5, "p": "r", "out": {"large": "only large"}},
            {"id": 2, "m": "large", "s": 1.0, "p": "r", "out": {"large": "only large"}},
        ],
    )
    out = tmp_path / "d.jsonl"
    code, text = _run(
        "data", "convert", main, "--long", "-o", out, "--id-col", "id", "--prompt-col", "p",
        "--model-col", "m", "--response-col", "out", "--score-col", "s",
    )  # fmt: skip
    assert code == 0, text
    ds = load_dataset(out)
    assert [(it.responses["small"].text, it.responses["large"].text) for it in ds.items] == [
        ("tiny", "big"),
        (None, "only large"),  # a model the object lacks: not recorded
    ]


def test_an_object_or_list_where_text_belongs_is_refused_not_stringified(tmp_path: Path) -> None:
    rows = [{"p": {"text": "q"}, "a": "x", "s": 1, "b": "y", "t": 1}]
    code, text = _run(
        "data", "convert", _jsonl(tmp_path / "o.jsonl", rows), "-o", tmp_path / "o.out.jsonl",
        "--prompt-col", "p", "--model", "small=a:s", "--model", "large=b:t",
    )  # fmt: skip
    assert code == 2 and "line 1" in text and "'p'" in text and "holds a JSON object" in text and "--long" in text
    rows = [{"p": "q", "a": ["turn 1", "turn 2"], "s": 1, "b": "y", "t": 1}]
    code, text = _run(
        "data", "convert", _jsonl(tmp_path / "l.jsonl", rows), "-o", tmp_path / "l.out.jsonl",
        "--prompt-col", "p", "--model", "small=a:s", "--model", "large=b:t",
    )  # fmt: skip
    assert code == 2 and "holds a JSON list" in text and "'a'" in text


@pytest.mark.parametrize(
    ("side_rows", "fragment"),
    [
        ([{"qid": 1, "text": "one?"}], "item '2' has no row in"),
        (
            [{"qid": 1, "text": "a"}, {"qid": 2, "text": "b"}, {"qid": 1, "text": "c"}],
            "a second row for id '1' (first on line 1)",
        ),
        ([{"id": 1, "text": "one?"}], "no column 'qid'"),
        ([], "the side table has no rows"),
    ],
)
def test_join_errors_name_the_file_and_line(tmp_path: Path, side_rows: list[dict], fragment: str) -> None:  # type: ignore[type-arg]
    main = _csv(tmp_path / "scores.csv", ["qid", "s", "t"], [[1, 3, 9], [2, 8, 9]])
    side = tmp_path / "q.jsonl"
    side.write_text("".join(json.dumps(r) + "\n" for r in side_rows), encoding="utf-8")
    code, text = _run(
        "data", "convert", main, "-o", tmp_path / "d.jsonl", "--join", side, "--id-col", "qid",
        "--prompt-col", "text", "--model", "small=:s", "--model", "large=:t", "--score-range", "1,10",
    )  # fmt: skip
    assert code == 2 and fragment in text, text
    assert not (tmp_path / "d.jsonl").exists()


def test_join_needs_an_id_column_and_an_existing_file(tmp_path: Path) -> None:
    main = _csv(tmp_path / "scores.csv", ["q", "s", "t"], [["one?", 3, 9]])
    side = _jsonl(tmp_path / "side.jsonl", [{"q": "one?"}])
    code, text = _run(
        "data", "convert", main, "-o", tmp_path / "d.jsonl", "--join", side,
        "--prompt-col", "q", "--model", "small=:s", "--model", "large=:t", "--score-range", "1,10",
    )  # fmt: skip
    assert code == 2 and "--join needs --id-col" in text
    code, text = _run(
        "data", "convert", main, "-o", tmp_path / "d.jsonl", "--join", tmp_path / "missing.jsonl", "--id-col", "q",
        "--prompt-col", "q", "--model", "small=:s", "--model", "large=:t", "--score-range", "1,10",
    )  # fmt: skip
    assert code == 2 and "missing.jsonl" in text
    with pytest.raises(ConfigError, match="--join needs --id-col"):
        list(join_tables(read_table(main), [side], id_col=None))
    with pytest.raises(DatasetError, match="no row in"):
        list(join_tables([(7, {"q": "two?"})], [side], id_col="q", source="mine.csv"))


def test_gzipped_tables_read_as_their_inner_extension(tmp_path: Path) -> None:
    plain = _csv(tmp_path / "t.csv", ["a", "b"], [["1", "x,y"], ["2", "z"]])
    packed = tmp_path / "t.csv.gz"
    packed.write_bytes(gzip.compress(("\ufeff" + plain.read_text(encoding="utf-8")).encode("utf-8")))
    assert (
        list(read_table(packed)) == list(read_table(plain)) == [(2, {"a": "1", "b": "x,y"}), (3, {"a": "2", "b": "z"})]
    )
    lines = tmp_path / "t.jsonl.gz"
    lines.write_bytes(gzip.compress(b'{"a": 1}\n\n{"a": 2}\n'))
    assert list(read_table(lines)) == [(1, {"a": 1}), (3, {"a": 2})]
    named = tmp_path / "named.csv.gz"  # a name that says gzip over a file that is not: read as it is
    named.write_bytes(plain.read_bytes())
    assert list(read_table(named)) == list(read_table(plain))


def test_a_file_that_is_not_utf8_or_not_gzip_is_a_clear_exit_2(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("p,s,t\nok,1,0\ncafé,1,0\n".encode("latin-1"))
    args = ("-o", tmp_path / "d.jsonl", "--prompt-col", "p", "--model", "a=:s", "--model", "b=:t")
    code, text = _run("data", "convert", latin, *args)
    assert code == 2 and "not UTF-8 text (byte 0xe9" in text and "save it as UTF-8" in text, text
    broken = tmp_path / "broken.csv.gz"
    packed = gzip.compress(("p,s,t\n" + "".join(f"question {i * 7919 % 1000},1,0\n" for i in range(500))).encode())
    broken.write_bytes(packed[: len(packed) // 2])  # cut off in transfer
    code, text = _run("data", "convert", broken, *args)
    assert code == 2 and "broken.csv.gz" in text and "cannot read the file" in text, text
    assert not (tmp_path / "d.jsonl").exists()


def test_a_table_given_where_a_dataset_belongs_points_to_rpra_data_convert(tmp_path: Path) -> None:
    table = _csv(tmp_path / "results.csv", ["p", "s", "t"], [["q", 1, 0]])
    for given in (table, ARENA / "judgments.csv.gz"):
        with pytest.raises(DatasetError, match="a CSV table, not an rpra dataset: convert it first with `rpra data"):
            load_dataset(given)
    code, text = _run("eval", "--dataset", table, "-o", tmp_path / "e")
    assert code == 2 and "rpra data convert" in text
