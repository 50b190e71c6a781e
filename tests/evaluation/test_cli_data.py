"""``rpra data list|convert`` and ``rpra calibrate`` through the real Typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.core.decision import Decision
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.datasets.convert import ColumnMapping, ModelColumns, convert_table
from rpra_agent.feedback.calibration import load_calibrated_policy, load_calibration

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_data_list_shows_every_bundled_dataset_and_attribution():
    code, out = _run("data", "list", "--baselines")
    assert code == 0
    for name in ("mt-bench", "mt-bench-question", "gsm8k", "mmlu", "arena", "14042", "1319"):
        assert name in out
    assert "0b64fdafe049e596a3f5657c219329f24af24198" in out and "arena-hard-auto" in out and "Apache-2.0" in out
    assert "1.024" in out and "1.125" in out and "1.285" in out and "0.872" in out and "0.563" in out


CSV = """qid,question,topic,small_answer,small_ok,big_answer,big_ok,big_tokens
1,What is 2+2?,math,4,true,4,True,3
2,"Capital of France, please",geo,Lyon,false,Paris,1,5
3,Spell cat,chat,,,c-a-t,1,
"""


def test_convert_csv_round_trips_through_the_strict_loader(tmp_path):
    src = tmp_path / "table.csv"
    src.write_text(CSV, encoding="utf-8")
    out = tmp_path / "out.jsonl.gz"
    code, text = _run(
        "data", "convert", str(src), "--out", str(out), "--id-col", "qid", "--prompt-col", "question",
        "--category-col", "topic", "--model", "small=small_answer:small_ok",
        "--model", "big=big_answer:big_ok:big_tokens", "--attribution", "test",
    )  # fmt: skip
    assert code == 0, text
    assert "3 items" in text and "inferred" in text
    ds = load_dataset(out)
    assert (ds.name, ds.weak, ds.strong, ds.score_range, ds.attribution) == (
        "table",
        "small",
        "big",
        (0.0, 1.0),
        "test",
    )
    assert [i.id for i in ds.items] == ["1", "2", "3"] and ds.items[1].prompt == "Capital of France, please"
    np.testing.assert_array_equal(ds.scores("small"), [1.0, 0.0, np.nan])
    assert ds.items[0].responses["big"].tokens == 3 and ds.items[2].responses["small"].text == ""  # empty stays empty
    assert ds.categories() == ["math", "geo", "chat"]


def test_convert_jsonl_with_explicit_range(tmp_path):
    src = tmp_path / "t.jsonl"
    rows = [{"p": f"q{i}", "a": f"a{i}", "s": i + 2, "b": "x", "t": 9, "c": 0.01} for i in range(4)]
    src.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    out = tmp_path / "t.out.jsonl"
    code, text = _run(
        "data", "convert", str(src), "-o", str(out), "--prompt-col", "p", "--model", "m1=b:t::c",
        "--model", "m0=a:s", "--weak", "m0", "--strong", "m1", "--score-range", "1,10", "--acceptable", "7",
    )  # fmt: skip
    assert code == 0, text
    ds = load_dataset(out)
    assert ds.weak == "m0" and ds.score_range == (1.0, 10.0) and ds.acceptable == 7.0
    assert [i.id for i in ds.items] == ["1", "2", "3", "4"]
    assert ds.items[0].responses["m1"].cost == 0.01


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (
            ["--model", "small=nope:small_ok", "--model", "big=big_answer:big_ok"],
            "line 2: field 'nope': no column 'nope'",
        ),
        (
            ["--model", "small=small_answer:topic", "--model", "big=big_answer:big_ok"],
            "line 2: field 'topic': not a number: 'math'",
        ),
        (["--model", "small=small_answer:small_ok"], "at least two models"),
        (["--model", "small"], "bad --model"),
        (["--model", "a=small_answer:", "--model", "b=big_answer:", "--weak", "zz"], "--weak 'zz'"),
        (["--model", "a=:small_ok", "--model", "b=:big_ok", "--score-range", "5"], "LO,HI"),
        (["--model", "a=:small_ok", "--model", "b=:big_tokens", "--score-range", "0,1"], "outside the score range"),
        (["--id-col", "topic", "--model", "a=:small_ok", "--model", "b=:big_ok"], None),
    ],
)
def test_convert_errors_name_row_and_column(tmp_path, extra, fragment):
    src = tmp_path / "table.csv"
    src.write_text(CSV, encoding="utf-8")
    code, out = _run(
        "data", "convert", str(src), "--out", str(tmp_path / "o.jsonl"), "--prompt-col", "question", *extra
    )
    if fragment is None:
        assert code == 0
        return
    assert code == 2 and "error:" in out and fragment in " ".join(out.split())


def test_convert_duplicate_ids(tmp_path):
    src = tmp_path / "d.csv"
    src.write_text("id,p,a,b\n1,x,1,0\n1,y,0,1\n", encoding="utf-8")
    with pytest.raises(Exception, match="duplicate id '1'"):
        convert_table(src, ColumnMapping("p", (ModelColumns("a", score="a"), ModelColumns("b", score="b")), id="id"))


def test_calibrate_from_dataset_prints_and_stores(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    code, out = _run(
        "calibrate", "--dataset", "mt-bench", "--epsilon", "0.5", "--delta", "0.1", "--db", db, "--name", "mt"
    )
    assert code == 0, out
    assert "Calibration 'mt' v1" in out and "certified" in out and "hoeffding-bentkus" in out
    from rpra_agent.store import open_store

    store = open_store(db)
    try:
        cal = load_calibration(store, "mt")
        assert cal is not None and cal.n == 160 and cal.certified and cal.source == "mt-bench"
        policy = load_calibrated_policy(store, "mt")
        assert policy.threshold == cal.threshold and policy.metric == "p_acceptable"
    finally:
        store.close()


def test_calibrate_target_rate_without_store_writes_json(tmp_path):
    out_file = tmp_path / "cal.json"
    code, out = _run(
        "calibrate", "--dataset", "gsm8k", "--predictor", "length", "--target-rate", "0.3", "--out", str(out_file)
    )
    assert code == 0, out
    data = json.loads(out_file.read_text())
    assert data["metric"] == "answer_chars" and abs(data["deferral_rate"] - 0.3) < 0.01 and data["version"] is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--dataset", "mt-bench"], "exactly one of"),
        (["--dataset", "mt-bench", "--target-rate", "0.2", "--epsilon", "0.1"], "exactly one of"),
        (["--dataset", "nope", "--target-rate", "0.2"], "no such dataset file"),
        (["--dataset", "mmlu", "--predictor", "length", "--target-rate", "0.2"], "cannot run on dataset 'mmlu'"),
        (["--dataset", "mt-bench", "--epsilon", "50"], "epsilon must lie in"),
    ],
)
def test_calibrate_errors(args, fragment):
    code, out = _run("calibrate", *args)
    assert code == 2 and fragment in " ".join(out.split())


def test_calibrate_from_store_decisions_and_verdicts(tmp_path):
    from rpra_agent.store import open_store

    db = f"sqlite:///{tmp_path / 's.db'}"
    scale = GradeScale.paper()
    rng = np.random.default_rng(0)
    store = open_store(db)
    verdicts = []
    for i in range(300):
        p_ok = float(rng.random())
        pred = Prediction.from_distribution({"bad": 1 - p_ok, "great": p_ok}, scale=scale, predictor="zs")
        d = Decision(f"run{i}", 0, "answer", "pa", pred, 0.5, "small", "predicted_ok", task="t")
        store.add(d)
        small = "great" if rng.random() < p_ok else "bad"
        verdicts += [
            Verdict(d.id, small, scale.value(small), "paper3", "j", "1", subject="given"),
            Verdict(d.id, "great", 1.0, "paper3", "j", "1", subject="large"),
        ]
    store.add_verdicts(verdicts)
    store.close()
    code, out = _run("calibrate", "--db", db, "--epsilon", "0.1", "--delta", "0.1", "--task", "t")
    assert code == 0, out
    assert "binomial" in out and "300" in out
    code, out = _run("calibrate", "--db", db, "--target-rate", "0.25", "--name", "rate")
    assert code == 0, out
    store = open_store(db)
    try:
        quality = load_calibration(store)
        assert quality is not None and quality.certified and 0 < quality.deferral_rate < 1
        rate = load_calibrated_policy(store, "rate")
        assert rate.threshold == pytest.approx(
            np.quantile([d.prediction.p_acceptable for d in store.decisions()], 0.25), abs=0.02
        )
    finally:
        store.close()
