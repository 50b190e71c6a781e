"""``rpra eval --predictor`` and ``--operating-router``: the routers of a run, and which one sets the operating point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets import EvalDataset, EvalItem, ModelResponse, save_dataset
from rpra_agent.evaluation.report.results import PredictorRow
from rpra_agent.evaluation.runs.routers import (
    PREDICTORS,
    RouterScores,
    auto_candidates,
    choose_operating_router,
    select_routers,
)
from tests.evaluation.toy_data import toy_dataset

runner = CliRunner()


def _eval(tmp_path: Path, dataset: Path, *extra: str) -> tuple[int, str]:
    args = ["eval", "-d", str(dataset), "-o", str(tmp_path / "o"), "--folds", "3", "--db", "memory://", *extra]
    result = runner.invoke(app, args)
    return result.exit_code, result.output


@pytest.fixture
def toy_file(tmp_path: Path) -> Path:
    return save_dataset(toy_dataset(36), tmp_path / "toy.jsonl")


@pytest.mark.parametrize(
    ("specs", "names"),
    [
        (None, PREDICTORS),
        (["card"], ("report_card",)),
        (["length,learned"], ("report_card", "answer_length", "learned", "learned_draft")),
        (["tfidf_request", "learned_request"], ("report_card", "tfidf", "learned")),
    ],
)
def test_select_routers_names_and_aliases(specs: list[str] | None, names: tuple[str, ...]) -> None:
    assert select_routers(specs).names == names


def test_select_routers_rejects_an_unknown_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown --predictor 'vibes'.*trained artifact"):
        select_routers(["vibes"])


def test_auto_operating_router_is_the_best_grade_predictor() -> None:
    rows = [PredictorRow("report_card", "predictor", 0.6), PredictorRow("learned", "predictor", 0.7)]
    rows.append(PredictorRow("answer_length", "baseline", 0.9))
    available = ["report_card", "learned", "answer_length"]
    assert choose_operating_router("auto", rows, available, ["report_card", "learned"]) == "learned"
    assert choose_operating_router("length", rows, available, ["report_card", "learned"]) == "answer_length"
    with pytest.raises(ConfigError, match="reads the recorded scores"):
        choose_operating_router("oracle", rows, available, ["report_card"])


def test_unknown_predictor_is_a_clear_exit_2(tmp_path: Path, toy_file: Path) -> None:
    code, out = _eval(tmp_path, toy_file, "--predictor", "gpt-judge")
    assert code == 2 and "unknown --predictor 'gpt-judge'" in out


def test_unknown_operating_router_is_a_clear_exit_2(tmp_path: Path, toy_file: Path) -> None:
    code, out = _eval(tmp_path, toy_file, "--predictor", "card", "--operating-router", "learned_draft")
    assert code == 2 and "unknown --operating-router 'learned_draft'" in out and "report_card" in out


def test_an_operating_router_the_run_will_not_compute_is_refused_before_any_work(tmp_path: Path) -> None:
    from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval

    for options in (ReplayOptions(operating_router="vibes"), ReplayOptions(learned=False, operating_router="learned")):
        with pytest.raises(ConfigError, match="unknown --operating-router"):
            run_replay_eval(toy_dataset(36), out_dir=tmp_path / "o", options=options)
        assert not (tmp_path / "o").exists()  # refused before the output directory, the log or any graph run


def test_operating_router_is_said_and_can_be_a_baseline(tmp_path: Path, toy_file: Path) -> None:
    code, out = _eval(tmp_path, toy_file, "--predictor", "card,length", "--operating-router", "length")
    assert code == 0, out
    flat = " ".join(out.split())
    assert "operating point: answer_length" in flat and "set by │ answer_length (--operating-router length)" in flat
    assert "answer_length *" in out  # the table marks the row
    data = json.loads((tmp_path / "o" / "eval.json").read_text())
    assert data["operating"]["predictor"] == "answer_length" and data["operating"]["details"]["computed"] is True
    page = (tmp_path / "o" / "eval.html").read_text()
    assert (
        "<th>answer_length *</th>" in page and "* sets the operating point: answer_length (--operating-router" in page
    )


def test_default_operating_router_is_auto_and_said(tmp_path: Path, toy_file: Path) -> None:
    code, out = _eval(tmp_path, toy_file, "--no-learned")
    assert code == 0, out
    data = json.loads((tmp_path / "o" / "eval.json").read_text())
    graded = [r for r in data["rows"] if r["name"] in ("report_card", "tfidf", "tfidf_draft")]
    best = max(graded, key=lambda r: r["apgr"])["name"]  # the TF-IDF rows route through the graph as grades too
    assert data["operating"]["predictor"] == best and "computed" not in data["operating"]["details"]
    assert f"sets the operating point: {best} (auto: the best cross-fitted APGR" in " ".join(out.split())


def _artifact(tmp_path: Path, binary: bool = False) -> Path:
    learned = pytest.importorskip("rpra_agent.predictors.learned")
    from rpra_agent.predictors.features import TextFeaturizer

    predictor = learned.LearnedPredictor(TextFeaturizer(), mode="request", C=1.0)
    predictor.fit_dataset(toy_dataset(45, seed=3, binary=binary))
    return predictor.save(tmp_path / ("art01" if binary else "art10"))


def test_a_trained_artifact_is_a_row_and_can_route_the_graph(tmp_path: Path, toy_file: Path) -> None:
    art = _artifact(tmp_path)
    code, out = _eval(tmp_path, toy_file, "--predictor", f"card,{art}", "--operating-router", f"artifact:{art.name}")
    assert code == 0, out
    data = json.loads((tmp_path / "o" / "eval.json").read_text())
    row = next(r for r in data["rows"] if r["name"] == f"artifact:{art.name}")
    assert row["apgr"] is not None and "not cross-fitted" in row["note"]
    op = data["operating"]
    assert op["predictor"] == f"artifact:{art.name}" and "computed" not in op["details"]  # the graph routed


def test_an_artifact_on_another_score_scale_is_a_clear_exit_2(tmp_path: Path) -> None:
    art = _artifact(tmp_path, binary=False)  # trained on 1-10 scores
    binary = save_dataset(toy_dataset(36, binary=True), tmp_path / "binary.jsonl")
    code, out = _eval(tmp_path, binary, "--predictor", str(art))
    assert code == 2
    assert "was trained on score scale 'ten'" in out and "'correct01'" in out and "rpra train-predictor" in out


def test_the_graph_routes_with_the_learned_predictors_cross_fitted_predictions(tmp_path: Path) -> None:
    pytest.importorskip("rpra_agent.predictors.learned")
    from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval
    from rpra_agent.store import InMemoryDecisionStore

    store = InMemoryDecisionStore()
    opts = ReplayOptions(
        folds=3, report=False, routers=select_routers(["card", "learned_request"]), operating_router="learned"
    )
    result = run_replay_eval(toy_dataset(36), out_dir=tmp_path, store=store, options=opts)
    op = result.operating
    assert op is not None and op.predictor == "learned" and "computed" not in op.details
    assert "route_mismatches" not in op.details  # the graph deferred exactly the items below the threshold
    assert op.quality == pytest.approx(op.details["expected_quality"])
    routed = [d for d in store.decisions() if ":route:" in d.run_id]
    assert len(routed) == 36 and {d.prediction.predictor for d in routed if d.prediction} == {"learned"}


def _gain_dataset(n: int = 90) -> EvalDataset:
    """Correctness data where the large model fails a third of the items too (GSM8K's shape).

    ``easy`` items: both right; ``hard``: the small model wrong, the large right;
    ``unsolvable``: both wrong. The small score ties hard and unsolvable items; only the
    gain over the large answer tells that deferring an unsolvable item gains nothing.
    """
    kinds = ("easy", "hard", "unsolvable")
    items = []
    for i in range(n):
        kind = kinds[i % 3]
        prompt = f"word problem {i}: {kind} {kind} case"
        items.append(
            EvalItem(
                id=f"p{i}",
                prompt=prompt,
                messages=({"role": "user", "content": prompt},),
                category="maths",
                responses={
                    "small": ModelResponse(text=f"answer {i}", score=float(kind == "easy"), tokens=10),
                    "large": ModelResponse(text=f"answer {i}", score=float(kind != "unsolvable"), tokens=40),
                },
            )
        )
    return EvalDataset(
        name="gainy", items=tuple(items), weak="small", strong="large", score_range=(0.0, 1.0), attribution="test"
    )


def test_auto_candidates_are_the_cross_fitted_routers_with_distributions() -> None:
    grades, margin = GradeScale.binary(), GradeScale.binary().margin()
    keep = np.zeros(2)
    scores = [
        RouterScores("report_card", keep, [{"0": 0.5, "1": 0.5}] * 2, grades),
        RouterScores("learned", keep, [{"-1": 0.2, "0": 0.7, "1": 0.1}] * 2, margin),
        RouterScores("learned_draft", keep),  # folds chose different targets: percentiles, no distribution
        RouterScores("artifact:a", keep, [{"0": 0.5, "1": 0.5}] * 2, grades),
        RouterScores("fine_tuned", keep, [{"0": 0.5, "1": 0.5}] * 2, grades),
    ]
    assert auto_candidates(scores, grades, fixed_threshold=False) == ["report_card", "learned"]
    assert auto_candidates(scores, grades, fixed_threshold=True) == ["report_card"]  # a fixed threshold is a grade
    assert scores[0].grades_on(grades) and not scores[1].grades_on(grades) and not scores[2].grades_on(grades)


def test_auto_routes_the_graph_with_the_learned_gain_target_where_it_is_best(tmp_path: Path) -> None:
    """On correctness data the learned predictor predicts the gain; auto used to skip it for the card."""
    pytest.importorskip("rpra_agent.predictors.learned")
    from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval
    from rpra_agent.store import InMemoryDecisionStore

    store = InMemoryDecisionStore()
    opts = ReplayOptions(folds=3, report=False, routers=select_routers(["card", "learned_request", "tfidf_request"]))
    result = run_replay_eval(_gain_dataset(), out_dir=tmp_path, store=store, options=opts)
    rows = {r.name: r for r in result.rows}
    assert "target gain" in rows["learned"].note
    assert rows["learned"].accuracy is None and rows["tfidf"].accuracy is not None  # no grade agreement for a margin
    assert rows["learned"].apgr > max(rows["report_card"].apgr, rows["tfidf"].apgr)
    op = result.operating
    assert op is not None and op.predictor == "learned" and "computed" not in op.details
    assert op.details["threshold_scale"] == "margin:correct01" and op.threshold < 0
    assert op.quality == pytest.approx(op.details["expected_quality"]) and "route_mismatches" not in op.details
    assert op.details["operating_router_choice"].startswith("auto: the best cross-fitted APGR among the routers")
    routed = [d for d in store.decisions() if ":route:" in d.run_id]
    assert {d.prediction.scale.name for d in routed if d.prediction} == {"margin:correct01"}
    # at 50% deferred, every hard item (the only ones the large model improves) is among them
    deferred = {d.run_id.rsplit(":", 1)[-1] for d in routed if d.route == "large"}
    assert {f"p{i}" for i in range(1, 90, 3)} <= deferred and len(deferred) == 45

    fixed = ReplayOptions(
        folds=3, report=False, routers=select_routers(["card", "learned_request", "tfidf_request"]), threshold=0.5
    )
    op = run_replay_eval(
        _gain_dataset(), out_dir=tmp_path / "f", store=InMemoryDecisionStore(), options=fixed
    ).operating
    assert op is not None and op.predictor in ("report_card", "tfidf") and "threshold_scale" not in op.details
    assert "since --threshold is a grade" in op.details["operating_router_choice"]


def test_a_gain_artifact_routes_the_graph_on_its_margin_scale(tmp_path: Path) -> None:
    learned = pytest.importorskip("rpra_agent.predictors.learned")
    from rpra_agent.predictors.features import TextFeaturizer

    predictor = learned.LearnedPredictor(TextFeaturizer(), mode="request", target="gain")
    art = predictor.fit_dataset(_gain_dataset(60)).save(tmp_path / "gain")
    data_file = save_dataset(_gain_dataset(), tmp_path / "gainy.jsonl")
    code, out = _eval(tmp_path, data_file, "--predictor", f"card,{art}", "--operating-router", "artifact:gain")
    assert code == 0, out
    data = json.loads((tmp_path / "o" / "eval.json").read_text())
    row = next(r for r in data["rows"] if r["name"] == "artifact:gain")
    # deferring the hard third first is the best order there is: APGR 1/6 + 2/3 = 0.833
    assert row["apgr"] > 0.8 and row["accuracy"] is None  # a margin, so no agreement with the judge's grades
    op = data["operating"]
    assert op["predictor"] == "artifact:gain" and "computed" not in op["details"]  # the graph routed with it
    assert op["details"]["threshold_scale"] == "margin:correct01"
    assert op["quality"] == pytest.approx(op["details"]["expected_quality"])


def test_a_router_that_reads_the_draft_is_routed_in_verify_and_pays_for_the_draft(tmp_path: Path) -> None:
    """The small model answers every item before a draft router decides: its tokens and cost count when deferred."""
    from rpra_agent.evaluation.metrics.costs import PriceTable
    from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval
    from rpra_agent.store import InMemoryDecisionStore

    prices = PriceTable.parse(["weak-7b=1.0/call", "strong-xl=10.0/call"])
    points = {}
    for router in ("tfidf", "tfidf_draft"):
        store = InMemoryDecisionStore()
        opts = ReplayOptions(
            folds=3, report=False, routers=select_routers(["card", "tfidf"]), operating_router=router, prices=prices
        )
        op = run_replay_eval(toy_dataset(36), out_dir=tmp_path / router, store=store, options=opts).operating
        assert op is not None and op.predictor == router and "computed" not in op.details
        routed = [d for d in store.decisions() if ":route:" in d.run_id]
        deferred = sum(d.deferred for d in routed)
        assert 0 < deferred < 36
        drafted = sum("small" in d.legs for d in routed)
        points[router] = (op, deferred, drafted)
    op, deferred, drafted = points["tfidf"]  # request only: a deferred item never reaches the small model
    assert "route_paradigm" not in op.details and drafted == 36 - deferred
    assert op.cost == pytest.approx(((36 - deferred) * 1.0 + deferred * 10.0) / 36)
    op, deferred, drafted = points["tfidf_draft"]
    assert op.details["route_paradigm"].startswith("verify: tfidf_draft reads the small model's answer")
    assert drafted == 36  # the small model drafted every item, the deferred ones too
    assert op.cost == pytest.approx((36 * 1.0 + deferred * 10.0) / 36)
