"""Live evaluation: the paper's experiment on your own small, large and judge models.

:func:`run_live_eval` (``rpra eval --small ... --large ... --judge ... --dataset prompts.jsonl``):

1. **answer**: the RPRA graph runs every prompt in shadow mode with the zero-shot
   predictor: the small model predicts its grade, then answers (never deferred);
   every decision goes to the store.
2. **large**: the graph runs every prompt with ``AlwaysLarge`` (needed for the
   routing metrics; skipped with ``judge_large=False``).
3. **judge**: the judge grades the small and the large answer to each prompt
   together in one call (joint judging, as the paper did); verdicts go to the store.
4. **predict**: the report-card predictor (the card cross-fitted: built from the
   other folds' verdicts) and, when given, the fine-tuned predictor predict every
   prompt; predictions go to a journal in ``out_dir``.
5. **routers**: the small and large answers with their verdicts form a judged
   dataset, and the routers selected with ``--predictor`` (learned, learned_draft,
   tfidf, tfidf_draft, answer_length, trained artifacts; see
   :mod:`~rpra_agent.evaluation.runs.routers`) score it as the replay does,
   cross-fitted on the run's folds. A router that cannot be fitted on the judged
   items (fewer than the folds) is a row saying why, not an error.
6. **metrics and report**: the paper's grade accuracy and the other agreement
   figures per predictor, routing figures, baselines, a calibrated operating point
   for the ``--operating-router`` (by default the best cross-fitted router with
   distributions; computed from the predictions, not re-run), PNG/HTML/JSON.

Resumable: every stage skips what the store or the journal already holds, so after
an interruption the same command continues; judged items are never judged again.
Run ids are ``<eval id>:<stage>:<item id>`` with an eval id derived from the
dataset and the models (or ``options.name``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpra_agent.core.decision import Decision, Paradigm
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.judging import Judge
from rpra_agent.core.naming import model_id
from rpra_agent.core.policy import AlwaysLarge, ThresholdPolicy
from rpra_agent.evaluation.datasets.prompts import load_prompts
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.report.html import write_report
from rpra_agent.evaluation.report.results import EvalResult
from rpra_agent.evaluation.runs._journal import PredictionJournal
from rpra_agent.evaluation.runs._live_steps import judge_pending, live_rows, predict_pending
from rpra_agent.evaluation.runs.calibrate import check_operating_options
from rpra_agent.evaluation.runs.graphrun import EvalProgress, NullProgress, masked_url, run_id_for, run_items
from rpra_agent.evaluation.runs.routers import RouterOptions, choose_operating_router
from rpra_agent.graph import build_rpra_graph
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.store import DecisionStore, open_store

__all__ = ["LiveOptions", "run_live_eval"]


@dataclass(frozen=True)
class LiveOptions(RouterOptions):
    """Knobs of :func:`run_live_eval`.

    The router knobs of :class:`RouterOptions` need the large answers (``judge_large``):
    the routers are cross-fitted on the judged items.

    Attributes:
        folds: Cross-fitting folds of the report card.
        seed: Seed of the fold assignment.
        judge_large: Answer with the large model too and judge it (routing metrics).
        threshold: A fixed threshold for the operating point (on the expected grade).
        target_rate: Or calibrate it to defer this share (default 0.5).
        epsilon: Or bound the quality loss (needs the calibration module).
        delta: Confidence parameter of ``epsilon``.
        scale: The judge's grade scale when the judge is given as a chat model.
        paradigm: The graph's paradigm for the answer stage.
        batch_size: Prompts per graph batch (progress is saved after each).
        max_concurrency: Concurrent graph runs (llama.cpp models serialise anyway).
        judge_batch: Judge tasks per batch (verdicts are saved after each).
        name: The eval id to resume (default: derived from dataset and models).
        report: Write PNG/HTML/JSON.
    """

    folds: int = 5
    seed: int = 0
    judge_large: bool = True
    threshold: float | None = None
    target_rate: float | None = None
    epsilon: float | None = None
    delta: float = 0.1
    scale: GradeScale | None = None
    paradigm: Paradigm = "pa"
    batch_size: int = 8
    max_concurrency: int = 1
    judge_batch: int = 8
    name: str | None = None
    report: bool = True

    def __post_init__(self) -> None:
        check_operating_options(self.threshold, self.target_rate, self.epsilon, self.delta)
        if self.paradigm not in ("pa", "rpra"):
            raise ConfigError(f"paradigm must be 'pa' or 'rpra' for a live evaluation, not {self.paradigm!r}")
        if self.batch_size < 1 or self.max_concurrency < 1 or self.judge_batch < 1:
            raise ConfigError("batch_size, max_concurrency and judge_batch must be at least 1")
        if not self.judge_large and self.operating_router not in (None, "", "auto"):
            raise ConfigError(
                f"--operating-router {self.operating_router} needs routing figures, so the large answers: "
                "drop --no-large"
            )


def _as_judge(judge: Any, scale: GradeScale | None) -> Judge:
    """A :class:`Judge` as given, or an ``LLMJudge`` over a chat model."""
    if isinstance(judge, Judge):
        return judge
    from rpra_agent.feedback import LLMJudge

    return LLMJudge(judge, scale=scale or GradeScale.paper(), backoff_s=0.5)


def _check_routers(opts: LiveOptions, ds: EvalDataset, scale: GradeScale, fine_tuned: Any) -> None:
    """Refuse an unknown ``--operating-router`` or an artifact on another scale before any model runs.

    Raises:
        ConfigError: saying what to fix.
    """
    from rpra_agent.evaluation.runs.artifacts import artifact_name, check_scale, load_artifact

    selection = opts.selected_routers()
    for path in selection.artifacts:
        check_scale(load_artifact(path), scale, ds, path)
    if not opts.judge_large:
        return
    possible = ["zero_shot", "report_card", *(["fine_tuned"] if fine_tuned is not None else [])]
    possible += [n for n in selection.names if n not in possible]
    possible += [artifact_name(p) for p in selection.artifacts]
    choose_operating_router(opts.operating_router, [], possible, [])


def _eval_id(ds: EvalDataset, small: Any, large: Any, name: str | None) -> str:
    if name:
        return name
    key = "|".join([ds.name, model_id(small), model_id(large), *(i.id for i in ds.items)])
    return f"live-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _latest_ok(store: DecisionStore, eval_id: str, stage: str, items: Sequence[Any]) -> dict[str, Decision]:
    """The newest usable decision per item of one stage (a failed small leg is redone)."""
    wanted = {run_id_for(eval_id, stage, it.id): it.id for it in items}
    out: dict[str, Decision] = {}
    for d in store.decisions():
        item = wanted.get(d.run_id)
        if item is None or (stage == "answer" and (d.route != "small" or d.error)):
            continue
        out[item] = d
    return out


def _run_stage(
    graph: Any, store: DecisionStore, items: Sequence[Any], stage: str, eval_id: str, opts: LiveOptions, progress: Any
) -> dict[str, Decision]:
    done = _latest_ok(store, eval_id, stage, items)
    progress.stage(f"{stage}: {len(done)} of {len(items)} already done", len(items))
    progress.advance(len(done))
    todo = [it for it in items if it.id not in done]
    for start in range(0, len(todo), opts.batch_size):
        chunk = todo[start : start + opts.batch_size]
        decisions = run_items(
            graph,
            chunk,
            eval_id=eval_id,
            phase=stage,
            progress=progress,
            max_concurrency=opts.max_concurrency,
            strict=False,
        )
        store.flush()
        done.update(
            {it.id: d for it, d in zip(chunk, decisions, strict=True) if stage != "answer" or d.route == "small"}
        )
    return done


def run_live_eval(
    prompts: str | Path | EvalDataset,
    *,
    small: Any,
    large: Any,
    judge: Any,
    fine_tuned: Any = None,
    out_dir: str | Path = "rpra_out",
    store: DecisionStore | str | None = None,
    options: LiveOptions | None = None,
    progress: EvalProgress | None = None,
) -> EvalResult:
    """Run the paper's experiment on live models (see the module docstring).

    Args:
        prompts: A dataset (bundled name, file or object) or a prompts JSONL file.
        small: The small chat model (answers and self-predicts).
        large: The large chat model.
        judge: An :class:`~rpra_agent.feedback.LLMJudge`, or a chat model to wrap in one.
        fine_tuned: A hindsight fine-tuned chat model for ``FineTunedPredictor``.
        out_dir: Where the SQLite log, the prediction journal and the report go.
        store: A store or URL (default ``sqlite:///<out_dir>/eval.db``).
        options: See :class:`LiveOptions`.
        progress: Progress sink.

    Returns:
        The figures per predictor and baseline, with the paper's grade accuracy.
    """
    opts = options or LiveOptions()
    progress = progress or NullProgress()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds = prompts if isinstance(prompts, EvalDataset) else load_prompts(prompts)
    judge = _as_judge(judge, opts.scale)
    scale: GradeScale = judge.scale
    if len(ds) < opts.folds:
        raise ConfigError(f"{len(ds)} prompts cannot be cross-fitted in {opts.folds} folds: use fewer --folds")
    _check_routers(opts, ds, scale, fine_tuned)
    owned = store is None or isinstance(store, str)
    db: DecisionStore = open_store(store or f"sqlite:///{(out / 'eval.db').resolve()}") if owned else store  # type: ignore[assignment, arg-type]
    eval_id = _eval_id(ds, small, large, opts.name)
    journal = PredictionJournal(out / f"{eval_id}.predictions.jsonl")
    try:
        shadow = ThresholdPolicy(threshold=0.5, shadow=True, name="shadow")
        answer_graph = build_rpra_graph(
            small=small,
            large=large,
            predictor=ZeroShotPredictor(small, scale=scale),
            policy=shadow,
            paradigm=opts.paradigm,
            store=db,
        )
        answers = _run_stage(answer_graph, db, ds.items, "answer", eval_id, opts, progress)
        larges: dict[str, Decision] = {}
        if opts.judge_large:
            large_graph = build_rpra_graph(small=small, large=large, policy=AlwaysLarge(), store=db)
            larges = _run_stage(large_graph, db, ds.items, "large", eval_id, opts, progress)
        verdicts = judge_pending(judge, db, ds, answers, larges, batch=opts.judge_batch, progress=progress)
        preds = predict_pending(
            small,
            fine_tuned,
            ds,
            answers,
            verdicts,
            journal,
            scale=scale,
            folds=opts.folds,
            seed=opts.seed,
            progress=progress,
        )
        progress.stage("routers (cross-fitting), metrics and report", None)
        result = live_rows(db, ds, answers, verdicts, preds, scale=scale, opts=opts, eval_id=eval_id, larges=larges)
        result.weak, result.strong = model_id(small), model_id(large)
        result.paths["db"] = masked_url(store) if isinstance(store, str) else str(getattr(db, "url", type(db).__name__))
        result.paths["journal"] = str(journal.path)
        db.flush()
    finally:
        if owned:
            db.close()
    if opts.report:
        write_report(result, out, stem="live")
    return result
