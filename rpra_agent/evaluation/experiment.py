"""The paper's experiment in one call: each paradigm x each predictor, on a train/test split.

:func:`run_experiment` (``rpra experiment``):

1. **split**: the prompts are split into train and test per dataset (the item's
   ``category``), seeded; the split is written to ``split.json`` and reused on resume.
2. **answer**: for each paradigm (PA, RPRA) the RPRA graph runs every prompt in shadow
   mode with the zero-shot predictor: the small model predicts (after reasoning, in
   RPRA), then answers; nothing is deferred. This is the zero-shot arm.
3. **large**: the large model answers every prompt (``AlwaysLarge``).
4. **judge**: every answer to a prompt (the small model's under each paradigm, and the
   large model's) goes to the judge in one call (joint judging, order seeded and
   recorded). The small answer's grade is the label the arms predict.
5. **arms**: on the test items, the graph runs again per paradigm with the report-card
   predictor (its card built from the train items' verdicts only) and the fine-tuned
   predictor (a model trained on the train items: ``sft/`` holds their hindsight set),
   so every arm reasons where its paradigm says so.
6. **figures**: per dataset and overall: exact-match accuracy, macro-F1, confusion
   matrix, relative improvement over zero-shot (and its mean over datasets), and
   deferral at a calibrated threshold; JSON, PNG and HTML in ``out_dir``.

Resumable: each stage skips what the store already holds (run ids
``<experiment id>:<paradigm>:<stage>:<item id>``), and judged prompts are never judged again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rpra_agent.core.decision import Decision, Paradigm
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.judging import Judge
from rpra_agent.core.naming import model_id
from rpra_agent.core.policy import AlwaysLarge, ThresholdPolicy
from rpra_agent.evaluation.datasets import EvalDataset, EvalItem
from rpra_agent.evaluation.datasets.prompts import load_prompts
from rpra_agent.evaluation.experiment_arms import (
    arm_predictor,
    check_no_test_leak,
    judge_items,
    labels_for,
    write_train_sft,
)
from rpra_agent.evaluation.experiment_metrics import Outcome, arm_scores, deferral_figures, improvements
from rpra_agent.evaluation.runs.graphrun import EvalProgress, NullProgress, run_id_for, run_items
from rpra_agent.store import DecisionStore, open_store

__all__ = ["PARADIGMS", "PREDICTORS", "ExperimentOptions", "run_experiment"]

logger = logging.getLogger(__name__)

PARADIGMS = ("pa", "rpra")
PREDICTORS = ("zero_shot", "report_card", "fine_tuned")


@dataclass(frozen=True)
class ExperimentOptions:
    """Knobs of :func:`run_experiment`.

    Attributes:
        paradigms: Paradigms to run (``pa``, ``rpra``).
        predictors: Predictors to run (``zero_shot``, ``report_card``, ``fine_tuned``).
        test_fraction: Share of each dataset's items held out for testing.
        seed: Seed of the split (and of the cross-fitted calibration halves).
        target_rate: Deferral rate the threshold is calibrated to.
        name: The experiment id to resume (default: derived from prompts, models, split).
        fine_tuned_data: The ``sft/`` directory the fine-tuned model was trained on; when
            given, a training set that holds a test item is refused.
        batch_size: Prompts per graph batch (progress is saved after each).
        report: Write PNG and HTML (the JSON is always written).
    """

    paradigms: tuple[str, ...] = PARADIGMS
    predictors: tuple[str, ...] = PREDICTORS
    test_fraction: float = 0.5
    seed: int = 0
    target_rate: float = 0.3
    name: str | None = None
    fine_tuned_data: str | None = None
    batch_size: int = 8
    report: bool = True

    def __post_init__(self) -> None:
        if not self.paradigms or set(self.paradigms) - set(PARADIGMS):
            raise ConfigError(f"paradigms must be among {PARADIGMS}, got {self.paradigms}")
        if "zero_shot" not in self.predictors or set(self.predictors) - set(PREDICTORS):
            raise ConfigError(f"predictors must include zero_shot and be among {PREDICTORS}, got {self.predictors}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got {self.test_fraction}")
        if not 0.0 <= self.target_rate <= 1.0 or self.batch_size < 1:
            raise ConfigError("target_rate must lie in [0, 1] and batch_size be at least 1")


def dataset_of(item: EvalItem) -> str:
    """The dataset an item belongs to: its category (``all`` when it has none)."""
    return item.category or "all"


def split_items(ds: EvalDataset, test_fraction: float, seed: int) -> dict[str, str]:
    """``train`` or ``test`` per item id, per dataset, seeded (every dataset of 2+ items gets both)."""
    out: dict[str, str] = {}
    groups: dict[str, list[EvalItem]] = {}
    for item in ds.items:
        groups.setdefault(dataset_of(item), []).append(item)
    for items in groups.values():
        ranked = sorted(items, key=lambda it: hashlib.sha256(f"{seed}:{it.id}".encode()).hexdigest())
        n_test = round(test_fraction * len(ranked))
        if len(ranked) >= 2:
            n_test = min(max(n_test, 1), len(ranked) - 1)
        for i, item in enumerate(ranked):
            out[item.id] = "test" if i < n_test else "train"
    return out


def _recorded_split(path: Path, split: dict[str, str], meta: dict[str, Any]) -> None:
    record = {**meta, "train": sorted(k for k, v in split.items() if v == "train")}
    record["test"] = sorted(k for k, v in split.items() if v == "test")
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != record:
            raise ConfigError(
                f"{path} records a different split (other prompts, seed or --test-fraction): "
                "resume with the same options, or pass a new --out / --name"
            )
        return
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _done(store: DecisionStore, exp_id: str, phase: str, items: Sequence[EvalItem]) -> dict[str, Decision]:
    """The newest usable decision per item of one phase (a failed small leg is redone)."""
    wanted = {run_id_for(exp_id, phase, it.id): it.id for it in items}
    out: dict[str, Decision] = {}
    for d in store.decisions():
        item = wanted.get(d.run_id)
        if item is not None and not d.error and (phase == "large" or d.route == "small"):
            out[item] = d
    return out


def _stage(
    graph: Any, store: DecisionStore, items: Sequence[EvalItem], phase: str, exp_id: str, batch: int, progress: Any
) -> dict[str, Decision]:
    done = _done(store, exp_id, phase, items)
    progress.stage(f"{phase}: {len(done)} of {len(items)} already done", len(items))
    progress.advance(len(done))
    todo = [it for it in items if it.id not in done]
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        decisions = run_items(graph, chunk, eval_id=exp_id, phase=phase, progress=progress, strict=False)
        store.flush()
        for item, d in zip(chunk, decisions, strict=True):
            if not d.error and (phase == "large" or d.route == "small"):
                done[item.id] = d
    return done


def run_experiment(
    prompts: str | Path | EvalDataset,
    *,
    small: Any,
    large: Any,
    judge: Judge,
    fine_tuned: Any = None,
    out_dir: str | Path = "rpra_experiment",
    store: DecisionStore | str | None = None,
    options: ExperimentOptions | None = None,
    progress: EvalProgress | None = None,
) -> dict[str, Any]:
    """Run the paper's experiment (see the module docstring) and return its figures as a JSON-ready dict.

    Args:
        prompts: A prompts JSONL file (``category`` names the dataset), or a dataset.
        small: The small chat model (answers, reasons and self-predicts).
        large: The large chat model.
        judge: Any :class:`~rpra_agent.core.judging.Judge` (e.g. ``LLMJudge``).
        fine_tuned: A chat model fine-tuned on this experiment's ``sft/`` (train items
            only); without it the fine-tuned arm is skipped, with the reason recorded.
        out_dir: Where the SQLite log, ``split.json``, ``sft/`` and the report go.
        store: A store or URL (default ``sqlite:///<out_dir>/experiment.db``).
        options: See :class:`ExperimentOptions`.
        progress: Progress sink (the CLI draws Rich bars).
    """
    from rpra_agent.graph import build_rpra_graph
    from rpra_agent.predictors import ZeroShotPredictor

    opts = options or ExperimentOptions()
    progress = progress or NullProgress()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds = prompts if isinstance(prompts, EvalDataset) else load_prompts(prompts)
    split = split_items(ds, opts.test_fraction, opts.seed)
    key = "|".join([ds.name, model_id(small), model_id(large), judge.name, str(opts.seed), *sorted(split)])
    exp_id = opts.name or f"exp-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    meta = {"experiment": exp_id, "seed": opts.seed, "test_fraction": opts.test_fraction}
    _recorded_split(out / "split.json", split, meta)
    scale = judge.scale
    owned = store is None or isinstance(store, str)
    db: DecisionStore = open_store(store or f"sqlite:///{(out / 'experiment.db').resolve()}") if owned else store  # type: ignore[assignment,arg-type]
    items = list(ds.items)
    test = [it for it in items if split[it.id] == "test"]
    if fine_tuned is not None and opts.fine_tuned_data:
        check_no_test_leak(Path(opts.fine_tuned_data), [it.id for it in test])
    shadow = ThresholdPolicy(threshold=0.5, shadow=True, name="shadow")
    try:
        answers: dict[str, dict[str, Decision]] = {}
        for p in opts.paradigms:
            graph = build_rpra_graph(
                small=small, large=large, predictor=ZeroShotPredictor(small, scale=scale), policy=shadow,
                paradigm=cast(Paradigm, p), store=db,
            )  # fmt: skip
            answers[p] = _stage(graph, db, items, f"{p}:answer", exp_id, opts.batch_size, progress)
        large_graph = build_rpra_graph(small=small, large=large, policy=AlwaysLarge(), store=db)
        larges = _stage(large_graph, db, items, "large", exp_id, opts.batch_size, progress)
        verdicts = judge_items(judge, db, items, answers, larges, progress=progress)
        labels = labels_for(answers, verdicts, scale)
        sft = write_train_sft(out / "sft", items, split, answers, labels)
        preds: dict[tuple[str, str], dict[str, Decision]] = {}
        skipped: dict[str, str] = {}
        for p in opts.paradigms:
            preds[(p, "zero_shot")] = {it.id: answers[p][it.id] for it in test if it.id in answers[p]}
            for name in opts.predictors:
                if name == "zero_shot":
                    continue
                train = [
                    (answers[p][it.id], verdicts[answers[p][it.id].id])
                    for it in items
                    if split[it.id] == "train" and it.id in labels[p]
                ]
                predictor, why = arm_predictor(name, small, fine_tuned, train, scale, sft_dir=out / "sft")
                if predictor is None:
                    skipped[f"{p}/{name}"] = why
                    continue
                graph = build_rpra_graph(
                    small=small, large=large, predictor=predictor, policy=shadow, paradigm=cast(Paradigm, p), store=db
                )
                preds[(p, name)] = _stage(graph, db, test, f"{p}:{name}", exp_id, opts.batch_size, progress)
        progress.stage("figures and report", None)
        result = _figures(ds, test, answers, larges, verdicts, labels, preds, scale, opts)
        result.update(
            experiment=exp_id, small=model_id(small), large=model_id(large), judge=judge.name, scale=scale.name,
            split={"seed": opts.seed, "test_fraction": opts.test_fraction, "train": sum(v == "train" for v in split.values()),
                   "test": len(test), "file": str(out / "split.json")},
            skipped=skipped, sft=sft,
        )  # fmt: skip
        db.flush()
    finally:
        if owned:
            db.close()
    from rpra_agent.evaluation.experiment_report import write_experiment_report

    result["paths"] = write_experiment_report(result, out, figures=opts.report)
    return result


def _outcomes(
    test: Sequence[EvalItem],
    p: str,
    arm: Mapping[str, Decision],
    labels: Mapping[str, Mapping[str, tuple[str, float]]],
    large_scores: Mapping[str, float],
    larges: Mapping[str, Decision],
) -> list[Outcome]:
    out = []
    for it in test:
        label = labels[p].get(it.id)
        if label is None or it.id not in large_scores:
            continue
        d = arm.get(it.id)
        dist = dict(d.prediction.distribution) if d is not None and d.prediction is not None else None
        tokens = sum(u.input_tokens + u.output_tokens for k, u in larges[it.id].legs.items() if k == "large")
        out.append(Outcome(it.id, dataset_of(it), label[0], dist, label[1], large_scores[it.id], tokens))
    return out


def _figures(
    ds: EvalDataset,
    test: Sequence[EvalItem],
    answers: Mapping[str, Mapping[str, Decision]],
    larges: Mapping[str, Decision],
    verdicts: Mapping[str, Any],
    labels: Mapping[str, Mapping[str, tuple[str, float]]],
    preds: Mapping[tuple[str, str], Mapping[str, Decision]],
    scale: Any,
    opts: ExperimentOptions,
) -> dict[str, Any]:
    large_scores = {
        it.id: float(verdicts[larges[it.id].id].score)
        for it in test
        if it.id in larges and larges[it.id].id in verdicts
    }
    arms: list[dict[str, Any]] = []
    zero: dict[str, Any] = {}
    for (p, name), arm in preds.items():
        outcomes = _outcomes(test, p, arm, labels, large_scores, larges)
        scores = arm_scores(outcomes, scale)
        if name == "zero_shot":
            zero[p] = scores
        arms.append({"paradigm": p, "predictor": name, "scores": scores, "outcomes": outcomes})
    for a in arms:
        a["improvement"] = improvements(a["scores"], zero[a["paradigm"]])
        a["deferral"] = deferral_figures(a["outcomes"], scale, target_rate=opts.target_rate, seed=opts.seed)
        a["scores"] = {k: v.to_dict() for k, v in a["scores"].items()}
        a["n_test"] = len(a.pop("outcomes"))
    datasets = sorted({dataset_of(it) for it in test})
    return {"dataset": ds.name, "datasets": datasets, "labels": list(scale.labels), "arms": arms}
