"""``rpra data convert``: scores kept as they are, empty answers kept, long tables, and bad input named by line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.core.errors import DatasetError
from rpra_agent.evaluation.datasets import load_dataset, scale_for
from rpra_agent.evaluation.datasets.convert import read_table

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def _jsonl(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


CONTINUOUS = [0.37, 0.5, 1.0, 0.0, 0.81, 0.5, 0.12, 0.66, 0.93, 0.25, 0.5, 0.74]


def test_continuous_scores_stay_continuous_and_rpra_eval_accepts_the_file(tmp_path: Path) -> None:
    rows = [
        {"p": f"question {i}", "c": "ab"[i % 2], "a": f"small {i}", "s": s, "b": f"large {i}", "t": min(1.0, s + 0.3)}
        for i, s in enumerate(CONTINUOUS)
    ]
    src = _jsonl(tmp_path / "cont.jsonl", rows)
    out = tmp_path / "cont.out.jsonl"
    code, text = _run(
        "data", "convert", str(src), "-o", str(out), "--prompt-col", "p", "--category-col", "c",
        "--model", "small=a:s", "--model", "large=b:t",
    )  # fmt: skip
    assert code == 0, text
    ds = load_dataset(out)
    np.testing.assert_array_equal(ds.scores("small"), CONTINUOUS)  # no rounding, 0.5 stays 0.5
    assert ds.score_range == (0.0, 1.0) and scale_for(ds).name == "continuous:0-1"
    code, text = _run(
        "eval", "-d", str(out), "-o", str(tmp_path / "e"), "--folds", "2", "--db", "memory://",
        "--predictor", "card,length",
    )  # fmt: skip
    assert code == 0, text
    data = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert data["scale"] == "continuous:0-1" and data["operating"]["quality_small"] == pytest.approx(
        np.mean(CONTINUOUS)
    )


def test_a_range_that_cannot_be_inferred_is_a_clear_exit_2(tmp_path: Path) -> None:
    rows = [{"p": f"q{i}", "s": 2 + i, "t": 9} for i in range(4)]
    src = _jsonl(tmp_path / "t.jsonl", rows)
    code, text = _run(
        "data", "convert", str(src), "-o", str(tmp_path / "o.jsonl"), "--prompt-col", "p",
        "--model", "a=:s", "--model", "b=:t",
    )  # fmt: skip
    assert code == 2
    assert "the scores span 2 to 9" in text and "--score-range 1,10" in text
    assert not (tmp_path / "o.jsonl").exists()


def test_empty_answers_stay_empty_text_and_null_is_not_recorded(tmp_path: Path) -> None:
    rows = [{"p": "q1", "a": "", "s": 1, "b": "yes", "t": 1}, {"p": "q2", "a": None, "s": 0, "b": "no", "t": 1}]
    src = _jsonl(tmp_path / "e.jsonl", rows)
    out = tmp_path / "e.out.jsonl"
    code, text = _run(
        "data", "convert", str(src), "-o", str(out), "--prompt-col", "p", "--model", "a=a:s", "--model", "b=b:t"
    )
    assert code == 0, text
    ds = load_dataset(out)
    assert ds.texts("a") == ["", None]


LONG = """qid,question,topic,model,answer,grade
1,What is 2+2?,math,small-7b,4,6
1,What is 2+2?,math,gpt-4,4,9
2,Capital of France?,geo,gpt-4,Paris,10
2,Capital of France?,geo,small-7b,,3
2,Capital of France?,geo,other,Lyon,1
3,Spell cat,chat,small-7b,c-a-t,8
"""


def _long(tmp_path: Path, table: str, *extra: str) -> tuple[int, str, Path]:
    src = tmp_path / "long.csv"
    src.write_text(table, encoding="utf-8")
    out = tmp_path / "long.jsonl"
    code, text = _run(
        "data", "convert", str(src), "-o", str(out), "--long", "--prompt-col", "question", "--id-col", "qid",
        "--model-col", "model", "--response-col", "answer", "--score-col", "grade", "--category-col", "topic",
        "--score-range", "1,10", *extra,
    )  # fmt: skip
    return code, text, out


def test_long_table_joins_rows_per_item(tmp_path: Path) -> None:
    code, text, out = _long(tmp_path, LONG)
    assert code == 0, text
    ds = load_dataset(out)
    assert (ds.weak, ds.strong, len(ds)) == ("small-7b", "gpt-4", 3)
    assert ds.metadata["models"] == ["small-7b", "gpt-4", "other"]
    np.testing.assert_array_equal(ds.scores("gpt-4"), [9, 10, np.nan])
    assert ds.texts("small-7b") == ["4", "", "c-a-t"]  # the empty answer is kept
    assert ds.categories() == ["math", "geo", "chat"]


def test_long_table_keeps_only_the_named_models(tmp_path: Path) -> None:
    code, text, out = _long(tmp_path, LONG, "--model", "gpt-4", "--model", "other")
    assert code == 0, text
    ds = load_dataset(out)
    assert (ds.weak, ds.strong, ds.metadata["models"]) == ("gpt-4", "other", ["gpt-4", "other"])


@pytest.mark.parametrize(
    ("table", "extra", "fragment"),
    [
        (LONG + "1,What is 2+2?,math,gpt-4,four,8\n", (), "line 8: a second row for item '1' and model 'gpt-4'"),
        (LONG + "3,Spell dog,chat,gpt-4,d-o-g,8\n", (), "line 8: field 'question': item '3' has another prompt"),
        (LONG, ("--model", "claude"), "--model 'claude' has no row"),
        (LONG, ("--model", "a=b:c"), "plain model NAME"),
    ],
)
def test_long_table_errors_name_the_line(tmp_path: Path, table: str, extra: tuple[str, ...], fragment: str) -> None:
    code, text, _ = _long(tmp_path, table, *extra)
    assert code == 2 and fragment in text, text


def test_a_composite_id_joins_columns_for_tables_with_a_row_per_turn(tmp_path: Path) -> None:
    """MT-bench's published judgments have one row per question, model and turn."""
    turns = """question_id,turn,question,model,score
81,1,Write a blog post,small,6
81,1,Write a blog post,large,9
81,2,Rewrite it in limericks,small,4
81,2,Rewrite it in limericks,large,8
"""
    src = tmp_path / "turns.csv"
    src.write_text(turns, encoding="utf-8")
    args = ("data", "convert", str(src), "--long", "--prompt-col", "question", "--model-col", "model",
            "--score-col", "score", "--score-range", "1,10")  # fmt: skip
    code, text = _run(*args, "-o", str(tmp_path / "a.jsonl"), "--id-col", "question_id")
    assert code == 2 and "has another prompt" in text  # one id, two turns
    code, text = _run(*args, "-o", str(tmp_path / "b.jsonl"), "--id-col", "question_id, turn")
    assert code == 0, text
    ds = load_dataset(tmp_path / "b.jsonl")
    assert [i.id for i in ds.items] == ["81-1", "81-2"] and ds.scores("small").tolist() == [6, 4]
    same = turns.replace("Rewrite it in limericks", "Write a blog post")  # same text both turns: a second row
    src.write_text(same, encoding="utf-8")
    code, text = _run(*args, "-o", str(tmp_path / "c.jsonl"), "--id-col", "question_id")
    assert code == 2 and "a second row for item '81' and model 'small'" in text and "--id-col question_id,turn" in text
    wide = tmp_path / "wide.csv"  # the wide form takes the same composite id, and names a missing part
    wide.write_text("q,t,p,s,l\n1,1,a,3,9\n1,2,b,4,8\n", encoding="utf-8")
    wide_args = ("data", "convert", str(wide), "-o", str(tmp_path / "w.jsonl"), "--prompt-col", "p",
                 "--model", "s=:s", "--model", "l=:l", "--score-range", "1,10")  # fmt: skip
    code, text = _run(*wide_args, "--id-col", "q")
    assert code == 2 and "duplicate id '1' (first on line 2)" in text and "composite id" in text
    code, text = _run(*wide_args, "--id-col", "q,t")
    assert code == 0 and [i.id for i in load_dataset(tmp_path / "w.jsonl").items] == ["1-1", "1-2"]
    code, text = _run(*wide_args, "--id-col", "q,turn")
    assert code == 2 and "no column 'turn'" in text


def test_long_needs_its_columns(tmp_path: Path) -> None:
    src = tmp_path / "l.csv"
    src.write_text(LONG, encoding="utf-8")
    code, text = _run(
        "data", "convert", str(src), "-o", str(tmp_path / "x.jsonl"), "--long", "--prompt-col", "question"
    )
    assert code == 2 and "--model-col" in text


# -- parsers: bad input is a DatasetError with file and line, never a crash or silent loss ----------------
def _dataset_file(path: Path, item_line: str) -> Path:
    header = {"rpra_dataset": {"format": 1, "name": "x", "weak": "a", "strong": "b", "score_range": [0, 1]}}
    ok = {"id": "1", "prompt": "p", "responses": {"a": {"score": 1}, "b": {"score": 0}}}
    path.write_text(json.dumps(header) + "\n" + json.dumps(ok) + "\n" + item_line + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("[" * 5000 + "]" * 5000, "nested deeper than"),
        ('{"id": "2", "prompt": "p", "responses": {"a": {"score": ' + "9" * 5000 + "}}}", "5000 digits"),
        ('{"id": "2", "prompt": "p", "responses": {"a": {"score": NaN}}}', "NaN is not a JSON number"),
        ('{"id": "2", "prompt": "p"', "not valid JSON"),
    ],
)
def test_dataset_loader_refuses_deep_huge_and_malformed_json(tmp_path: Path, line: str, fragment: str) -> None:
    path = _dataset_file(tmp_path / "bad.jsonl", line)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert info.value.line == 3 and str(path) in str(info.value) and fragment in str(info.value)


def test_convert_refuses_deep_json_with_its_line(tmp_path: Path) -> None:
    src = tmp_path / "deep.jsonl"
    src.write_text('{"p": "q", "s": 1, "t": 0}\n{"p": ' + "[" * 5000 + "]" * 5000 + "}\n", encoding="utf-8")
    code, text = _run(
        "data", "convert", str(src), "-o", str(tmp_path / "o.jsonl"), "--prompt-col", "p",
        "--model", "a=:s", "--model", "b=:t",
    )  # fmt: skip
    assert code == 2 and "line 2" in text and "nested deeper" in text


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        (
            'id,p,a,b\n1,"unterminated,1,0\n2,fine,0,1\n3,also fine,1,1\n',
            "line 2: malformed CSV (unexpected end of data)",
        ),
        ('id,p,a,b\n1,x,1,0\n2,"quo"ted",0,1\n', "line 3: malformed CSV"),
        ("id,p,a,b\n1,x,1,0\n2,y,0,1,extra\n", "line 3: the row has 5 cells but the header has 4"),
        ("id,p,a,b\n1,x,1\n", "line 2: the row has 3 cells"),
    ],
)
def test_csv_with_malformed_quoting_or_cells_is_refused(tmp_path: Path, table: str, fragment: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(table, encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        list(read_table(src))
    assert fragment in str(info.value)
    code, text = _run(
        "data", "convert", str(src), "-o", str(tmp_path / "o.jsonl"), "--prompt-col", "p", "--id-col", "id",
        "--model", "a=:a", "--model", "b=:b",
    )  # fmt: skip
    assert code == 2 and ("malformed" in text or "cells" in text)
    assert not (tmp_path / "o.jsonl").exists()


def test_csv_quoted_line_breaks_keep_their_line_numbers(tmp_path: Path) -> None:
    src = tmp_path / "ok.csv"
    src.write_text('id,p\n1,"two\nlines"\n2,x\n', encoding="utf-8")
    assert [(line, row["id"]) for line, row in read_table(src)] == [(2, "1"), (4, "2")]


def test_spreadsheet_exports_read_as_written(tmp_path: Path) -> None:
    """A byte-order mark, a semicolon-separated export and pandas' missing markers."""
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffid,p,s,l\n1,q,3,9\n2,r,N/A,8\n3,t,NaN,7\n4,u,null,6\n".encode())
    code, text = _run(
        "data", "convert", str(bom), "-o", str(tmp_path / "b.jsonl"), "--prompt-col", "p", "--id-col", "id",
        "--model", "s=:s", "--model", "l=:l", "--score-range", "1,10",
    )  # fmt: skip
    assert code == 0, text
    ds = load_dataset(tmp_path / "b.jsonl")
    assert [i.id for i in ds.items] == ["1", "2", "3", "4"]
    assert ds.scores("s")[0] == 3 and np.isnan(ds.scores("s")[1:]).all() and ds.scores("l").tolist() == [9, 8, 7, 6]
    semi = tmp_path / "semi.csv"
    semi.write_text('id;p;s;l\n1;"a; b";3;9\n2;c;4;8\n', encoding="utf-8")
    assert [row for _, row in read_table(semi)][0] == {"id": "1", "p": "a; b", "s": "3", "l": "9"}
    (tmp_path / "dec.csv").write_text("id;p;s;l\n1;q;7,5;9\n", encoding="utf-8")
    code, text = _run(
        "data", "convert", str(tmp_path / "dec.csv"), "-o", str(tmp_path / "d.jsonl"), "--prompt-col", "p",
        "--model", "s=:s", "--model", "l=:l", "--score-range", "1,10",
    )  # fmt: skip
    assert code == 2 and "not a number: '7,5' (a decimal comma" in text  # never guessed: 1,000 tokens is 1000
    comma = tmp_path / "comma.csv"  # a header with a comma stays comma-separated, semicolons and all
    comma.write_text("id,p;x\n1,a;b\n", encoding="utf-8")
    assert [row for _, row in read_table(comma)] == [{"id": "1", "p;x": "a;b"}]
    code, text = _run(
        "data", "convert", str(bom), "-o", str(tmp_path / "c.jsonl"), "--prompt-col", "p", "--id-col", "id",
        "--model", "s=:p", "--model", "l=:l", "--score-range", "1,10",
    )  # fmt: skip
    assert code == 2 and "not a number: 'q'" in text  # other text in a score column is still an error
    with_bom = tmp_path / "bom.jsonl"  # a dataset saved by an editor that writes a byte-order mark
    with_bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "b.jsonl").read_bytes())
    assert [i.id for i in load_dataset(with_bom).items] == ["1", "2", "3", "4"]


def test_long_columns_without_long_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "w.csv"
    src.write_text("p,a,b\nq,1,0\n", encoding="utf-8")
    code, text = _run(
        "data", "convert", str(src), "-o", str(tmp_path / "o.jsonl"), "--prompt-col", "p",
        "--model", "a=:a", "--model", "b=:b", "--model-col", "model",
    )  # fmt: skip
    assert code == 2 and "--model-col belongs to a long table: add --long" in text


def test_calibrate_a_continuous_dataset_uses_a_bound_for_continuous_losses(tmp_path: Path) -> None:
    rows = [{"p": f"q{i}", "c": "ab"[i % 2], "s": (i % 10) / 10 + 0.05, "t": 0.97} for i in range(60)]
    src = _jsonl(tmp_path / "c.jsonl", rows)
    out = tmp_path / "c.out.jsonl"
    code, text = _run(
        "data", "convert", str(src), "-o", str(out), "--prompt-col", "p", "--category-col", "c",
        "--model", "small=:s", "--model", "large=:t",
    )  # fmt: skip
    assert code == 0, text
    cal = tmp_path / "cal.json"
    code, text = _run(
        "calibrate", "--dataset", str(out), "--predictor", "category", "--epsilon", "0.2", "--out", str(cal)
    )
    assert code == 0, text
    data = json.loads(cal.read_text())
    assert data["method"] == "hoeffding-bentkus" and data["score_range"] == [0.0, 1.0] and data["mode"] == "quality"


def test_long_jsonl_with_tokens_and_cost_and_the_prompt_as_key(tmp_path: Path) -> None:
    rows = [
        {"q": "hi?", "m": "s", "a": "hello", "g": 0.4, "n": 3, "usd": 0.001},
        {"q": "hi?", "m": "l", "a": "hello there", "g": 0.9, "n": 5, "usd": 0.01},
        {"q": "bye?", "m": "l", "a": "", "g": 0.2, "n": 0, "usd": 0.01},
    ]
    src = _jsonl(tmp_path / "long.jsonl", rows)
    out = tmp_path / "o.jsonl"
    code, text = _run(
        "data", "convert", str(src), "-o", str(out), "--long", "--prompt-col", "q", "--model-col", "m",
        "--response-col", "a", "--score-col", "g", "--tokens-col", "n", "--cost-col", "usd",
    )  # fmt: skip
    assert code == 0, text
    ds = load_dataset(out)
    assert [i.prompt for i in ds.items] == ["hi?", "bye?"] and (ds.weak, ds.strong) == ("s", "l")
    assert ds.items[0].responses["l"].tokens == 5 and ds.items[0].responses["s"].cost == 0.001
    assert ds.texts("l") == ["hello there", ""] and ds.texts("s") == ["hello", None]  # no row: not recorded
    np.testing.assert_array_equal(ds.scores("s"), [0.4, np.nan])
