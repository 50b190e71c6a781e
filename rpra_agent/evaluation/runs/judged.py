"""Judged data for calibration: keep-scores with the small and large answers' scores.

Two sources: a recorded dataset with a built-in keep-score
(:func:`judged_from_dataset`), or a decision store's decisions and verdicts
(:func:`judged_from_store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.datasets.scales import scale_for
from rpra_agent.evaluation.metrics.baselines import KEEP_SCORERS, keep_scores
from rpra_agent.evaluation.runs.artifacts import artifact_scores
from rpra_agent.store.base import DecisionFilter, DecisionStore

__all__ = ["JudgedSet", "judged_from_dataset", "judged_from_store", "keep_from_store"]


@dataclass(frozen=True)
class JudgedSet:
    """Aligned arrays, one entry per judged item.

    Attributes:
        keep: The predictor's keep-score.
        small: The judge's score of the small answer.
        large: The judge's score of the large answer.
        metric: What ``keep`` is (``p_acceptable``, ``expected_score`` ...).
        score_range: ``(lo, hi)`` of the judge's scores.
        predictor: The predictor's name.
        source: Where the data came from.
    """

    keep: np.ndarray
    small: np.ndarray
    large: np.ndarray
    metric: str
    score_range: tuple[float, float]
    predictor: str = ""
    source: str = ""

    @property
    def n(self) -> int:
        """Number of judged items."""
        return len(self.keep)


def judged_from_dataset(dataset: EvalDataset, predictor: str = "category") -> JudgedSet:
    """The judged items of ``dataset`` with a keep-score.

    Args:
        dataset: The recorded dataset.
        predictor: A built-in keep-score (see ``baselines.KEEP_SCORERS``), or the
            directory of a trained predictor artifact (its expected grade).

    Raises:
        ConfigError: for an unknown keep-score or an artifact on another score scale.
        DatasetError: for a dataset without an item scored for both models.
    """
    judged = dataset.require_judged()
    if predictor not in KEEP_SCORERS and Path(predictor).exists():
        scores = artifact_scores(judged, predictor, scale_for(judged))
        keep, metric, predictor = scores.keep, "expected_score", scores.name
    elif predictor not in KEEP_SCORERS:
        raise ConfigError(
            f"unknown --predictor {predictor!r}: a built-in keep-score ({', '.join(KEEP_SCORERS)}) or the "
            "directory of a trained artifact (`rpra train-predictor --out DIR`)"
        )
    else:
        keep, metric = keep_scores(judged, predictor)
    return JudgedSet(
        keep=keep,
        small=judged.scores(judged.weak),
        large=judged.scores(judged.strong),
        metric=metric,
        score_range=judged.score_range,
        predictor=predictor,
        source=dataset.name,
    )


def judged_from_store(
    store: DecisionStore,
    *,
    metric: str = "p_acceptable",
    where: DecisionFilter | None = None,
    source: str = "",
) -> JudgedSet:
    """Decisions that carry a prediction and verdicts on both the small and the large answer.

    The small answer's score is a verdict with ``subject="small"``, or ``"given"`` on a
    decision the small model took; the large answer's is ``subject="large"``, or
    ``"given"`` on a decision the large model took (degraded decisions' ``given``
    verdicts are skipped). The newest verdict wins. Decisions lacking either score
    are left out: judge the other answer in hindsight to include them.

    Raises:
        ConfigError: on an unknown metric, mixed or unknown grade scales, or no usable decision.
    """
    if metric not in ("p_acceptable", "expected_score"):
        raise ConfigError(f"metric must be 'p_acceptable' or 'expected_score', not {metric!r}")
    decisions = [d for d in store.decisions(where) if d.prediction is not None]
    latest: dict[tuple[str, str], Verdict] = {}
    for v in store.verdicts([d.id for d in decisions]):
        if v.judged and v.score is not None:
            key = (v.decision_id, v.subject)
            if key not in latest or latest[key].created_at <= v.created_at:
                latest[key] = v
    rows: list[tuple[float, float, float]] = []
    scales: set[str] = set()
    predictors: set[str] = set()
    for d in decisions:
        given = latest.get((d.id, "given")) if not d.degraded else None
        small = latest.get((d.id, "small")) or (given if d.route == "small" else None)
        large = latest.get((d.id, "large")) or (given if d.route == "large" else None)
        if small is None or large is None or d.prediction is None:
            continue
        keep = d.prediction.p_acceptable if metric == "p_acceptable" else d.prediction.expected_score
        rows.append((float(keep), float(small.score or 0.0), float(large.score or 0.0)))
        scales.update((small.scale, large.scale))
        predictors.add(d.prediction.predictor)
    if not rows:
        raise ConfigError(
            "no decision in the store has a prediction and verdicts on both the small and the large answer; "
            "judge both answers (hindsight judging) before calibrating for quality"
        )
    if len(scales) != 1:
        raise ConfigError(f"verdicts use several grade scales {sorted(scales)}; calibrate one scale at a time")
    name = scales.pop()
    # the verdicts record their scale's name; a prediction on that scale carries the scale itself
    # (continuous, correct01, int0-100 ... are not built-in names)
    on_it = [d.prediction.scale for d in decisions if d.prediction is not None and d.prediction.scale.name == name]
    scale = on_it[0] if on_it else GradeScale.named(name)
    arr = np.array(rows, dtype=float)
    return JudgedSet(
        keep=arr[:, 0],
        small=arr[:, 1],
        large=arr[:, 2],
        metric=metric,
        score_range=(scale.low, scale.high),
        predictor=",".join(sorted(predictors)),
        source=source,
    )


def keep_from_store(
    store: DecisionStore, *, metric: str = "p_acceptable", where: DecisionFilter | None = None
) -> np.ndarray:
    """The keep-score of every stored decision that has a prediction (judged or not).

    Enough for a target-deferral-rate calibration, which needs no verdicts.

    Raises:
        ConfigError: on an unknown metric or no decision with a prediction.
    """
    if metric not in ("p_acceptable", "expected_score"):
        raise ConfigError(f"metric must be 'p_acceptable' or 'expected_score', not {metric!r}")
    keep = [
        d.prediction.p_acceptable if metric == "p_acceptable" else d.prediction.expected_score
        for d in store.decisions(where)
        if d.prediction is not None
    ]
    if not keep:
        raise ConfigError("no decision in the store carries a prediction; run the graph with a predictor first")
    return np.asarray(keep, dtype=float)
