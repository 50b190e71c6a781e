"""Training examples for the learned predictor: from recorded datasets (one, or several pooled) or the decision log."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.predictors.data import RecordedDataset, scale_of
from rpra_agent.predictors.features import Sample
from rpra_agent.predictors.folds import conversation_key

if TYPE_CHECKING:
    from rpra_agent.core.verdict import Verdict
    from rpra_agent.store.base import DecisionFilter, DecisionStore

__all__ = ["Examples", "Mode", "dataset_examples", "pooled_examples", "store_examples"]

logger = logging.getLogger(__name__)

Mode = Literal["request", "draft"]


Examples = tuple[list[Sample], np.ndarray, np.ndarray, list[str], GradeScale]
"""Samples, small scores, large scores (NaN where unjudged), conversation groups, the scores' scale."""


def dataset_examples(
    dataset: RecordedDataset, *, mode: Mode, model: str | None = None
) -> tuple[list[Sample], np.ndarray, list[str]]:
    """Samples, the graded model's scores (NaN where unjudged) and conversation groups.

    Args:
        dataset: The recorded dataset.
        mode: ``"draft"`` puts ``model``'s recorded answer in each sample.
        model: Whose score is the label (and whose answer is the draft); the
            dataset's weak model by default.

    Raises:
        ConfigError: in draft mode when the dataset records no answer texts.
    """
    who = model or dataset.weak
    texts = dataset.texts(who)
    if mode == "draft" and any(t is None for t in texts):
        missing = sum(t is None for t in texts)
        raise ConfigError(
            f"draft mode needs {who}'s answer to every item, but {missing} of {len(texts)} items of "
            f"{dataset.name!r} have none (e.g. MMLU records correctness only): use mode='request'"
        )
    samples = [
        Sample.from_messages(
            item.messages or ({"role": "user", "content": item.prompt},),
            draft=text if mode == "draft" else None,
            task=item.category,
        )
        for item, text in zip(dataset.items, texts, strict=True)
    ]
    return samples, dataset.scores(who), [conversation_key(item) for item in dataset.items]


def pooled_examples(datasets: Sequence[RecordedDataset], *, mode: Mode) -> Examples:
    """Examples of one dataset on its own scale, or of several pooled on a normalised 0-1 scale.

    Pooling maps each dataset's scores to ``(score - low) / (high - low)`` of its own
    score range, so a 1-10 judge score and a 0/1 correctness share a scale; the pooled
    scale is :meth:`GradeScale.continuous` on 0-1, acceptable from the mean of the
    datasets' normalised thresholds. Conversation groups are kept per dataset.

    Raises:
        ConfigError: for no dataset, or draft mode on a dataset without answer texts.
    """
    if not datasets:
        raise ConfigError("give at least one dataset to train on")
    if len(datasets) == 1:
        ds = datasets[0]
        samples, scores, groups = dataset_examples(ds, mode=mode)
        return samples, scores, ds.scores(ds.strong), groups, scale_of(ds)
    pooled_samples: list[Sample] = []
    small: list[np.ndarray] = []
    large: list[np.ndarray] = []
    pooled_groups: list[str] = []
    thresholds: list[float] = []
    for ds in datasets:
        scale = scale_of(ds)
        s, w, g = dataset_examples(ds, mode=mode)
        pooled_samples.extend(s)
        small.append((w - scale.low) / (scale.high - scale.low))
        large.append((ds.scores(ds.strong) - scale.low) / (scale.high - scale.low))
        pooled_groups.extend(f"{ds.name}\x1f{key}" for key in g)
        thresholds.append(scale.normalize(scale.acceptable_value))
    pooled = GradeScale.continuous(0.0, 1.0, float(np.mean(thresholds)), name="normalized01")
    return pooled_samples, np.concatenate(small), np.concatenate(large), pooled_groups, pooled


def _latest(verdicts: list[Verdict]) -> dict[tuple[str, str], Verdict]:
    latest: dict[tuple[str, str], Verdict] = {}
    for v in verdicts:
        if v.judged and v.score is not None:
            key = (v.decision_id, v.subject)
            if key not in latest or latest[key].created_at <= v.created_at:
                latest[key] = v
    return latest


def store_examples(
    store: DecisionStore, *, mode: Mode, where: DecisionFilter | None = None
) -> tuple[list[Sample], np.ndarray, np.ndarray, list[str], str]:
    """Hindsight examples from judged decisions: the small model's answer's verdict is the label.

    A decision's label is its newest verdict with ``subject="small"``, or its newest
    ``"given"`` verdict when the small model took the step. The large model's score
    (for the ``no_worse`` target) is its ``"large"`` verdict, or ``"given"`` when the
    large model took the step (NaN when unjudged). In draft mode the draft is the
    answer the small model gave (or ``metadata["draft"]`` when recorded); decisions
    without it are skipped.

    Returns:
        Samples, small scores, large scores, groups (thread or run) and the verdicts'
        scale name.

    Raises:
        ConfigError: when no decision has a usable verdict, or verdicts mix scales.
    """
    decisions = store.decisions(where)
    latest = _latest(store.verdicts([d.id for d in decisions]))
    samples: list[Sample] = []
    scores: list[float] = []
    large_scores: list[float] = []
    groups: list[str] = []
    scales: set[str] = set()
    skipped = 0
    for d in decisions:
        verdict = latest.get((d.id, "small")) or (latest.get((d.id, "given")) if d.route == "small" else None)
        if verdict is None:
            continue
        draft: str | None = None
        if mode == "draft":
            recorded = d.metadata.get("draft") if isinstance(d.metadata, dict) else None
            draft = d.response if d.route == "small" else (str(recorded) if recorded is not None else None)
            if draft is None:
                skipped += 1
                continue
        samples.append(Sample(request=d.request, draft=draft, task=d.task, kind=d.kind))
        scores.append(float(verdict.score or 0.0))
        large = latest.get((d.id, "large")) or (
            latest.get((d.id, "given")) if d.route == "large" and not d.degraded else None
        )
        large_scores.append(float("nan") if large is None else float(large.score or 0.0))
        groups.append(d.conversation)
        scales.add(verdict.scale)
    if skipped:
        logger.info("learned predictor: %d judged decisions skipped in draft mode (no small answer recorded)", skipped)
    if not samples:
        raise ConfigError(
            "no decision in the store has a verdict on the small model's answer; judge the log first "
            "(`rpra judge`), with hindsight judging of the small answer for deferred steps"
        )
    if len(scales) != 1:
        raise ConfigError(f"verdicts use several grade scales {sorted(scales)}; train on one scale at a time")
    return samples, np.asarray(scores, dtype=float), np.asarray(large_scores, dtype=float), groups, scales.pop()
