"""The learned predictor in the evaluation, cross-fitted, when it is installed."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.runs.routers import RouterScores, distributions_on

__all__ = ["learned_available", "learned_scores", "target_note"]

logger = logging.getLogger(__name__)

MODES: tuple[tuple[Literal["request", "draft"], str, str], ...] = (
    ("request", "learned", "request only"),
    ("draft", "learned_draft", "request + the small answer"),
)


def learned_available() -> bool:
    """Whether the learned predictor (``rpra_agent.predictors.crossfit``) is installed."""
    try:
        import rpra_agent.predictors.crossfit  # noqa: F401
    except ImportError:
        return False
    return True


def target_note(targets: Sequence[str]) -> str:
    """The router note's account of the target each outer fold chose.

    Where the folds disagree it says how often each target won and warns that the choice
    flipped: cross-fitting scores such a choice on the complement of the folds that made
    it, which can put the figure below both targets forced (docs/LEARNED.md, held-out pairs).
    """
    counts = Counter(targets)
    if len(counts) <= 1:
        return f"target {'/'.join(counts) or 'none'}"
    chosen = ", ".join(f"{t} in {n}" for t, n in sorted(counts.items()))
    return (
        f"target {chosen} of {len(targets)} folds: the folds disagree, which can lower this cross-fitted figure, "
        "see docs/LEARNED.md"
    )


def learned_scores(
    ds: EvalDataset,
    scale: GradeScale,
    *,
    folds: np.ndarray,
    seed: int,
    names: Sequence[str] = ("learned", "learned_draft"),
    neighbours: str | None = None,
) -> list[RouterScores]:
    """The learned predictor's cross-fitted keep-scores in request-only and draft modes, on the run's folds.

    Its target (the small model's score, or its gain over the large one) is chosen by
    inner validation per fold. Where every fold chose the same target, its distributions
    come with it, so the graph can route with it: the small model's grade on the
    dataset's scale (with agreement figures against the judge), or the margin over the
    large answer on the margin scale. Where the folds chose different targets, the
    keep-scores are within-fold percentiles and no distribution is kept. Draft mode
    needs the small model's answer texts; datasets without them (MMLU) get the
    request-only router alone. Nothing when the learned predictor is not installed.
    With ``neighbours`` (a sentence-transformers model: a name or a local directory),
    each fold's predictor has the neighbour member on that model's embeddings; one
    embedding featurizer serves every fold, so each request is embedded once.

    Raises:
        ConfigError: when ``neighbours`` names a model that cannot be loaded.
    """
    if not learned_available():
        logger.info("the learned predictor is not installed; skipping it")
        return []
    has_text = all(t is not None for t in ds.texts(ds.weak))
    modes = [m for m in MODES if m[1] in names and (m[0] == "request" or has_text)]
    if not has_text and "learned_draft" in names:
        logger.info("dataset %s has no small-answer texts: no draft-mode learned predictor", ds.name)
    out: list[RouterScores] = []
    factory, with_knn = None, ""
    if neighbours is not None and modes:
        from rpra_agent.predictors.embeddings import SentenceTransformerFeaturizer
        from rpra_agent.predictors.learned import LearnedPredictor

        embedder = SentenceTransformerFeaturizer(neighbours)
        embedder.check()

        def factory(mode: str, target: str) -> LearnedPredictor:
            return LearnedPredictor(mode=mode, target=target, seed=seed, neighbours=embedder)  # type: ignore[arg-type]

        with_knn = f", with the kNN member on {neighbours} embeddings"  # request mode only: its default
    for mode, name, what in modes:
        from rpra_agent.predictors.crossfit import crossfit_predictions

        try:
            fit = crossfit_predictions(ds, factory, mode=mode, seed=seed, folds=folds, k=int(folds.max()) + 1)
        except ConfigError as exc:
            logger.warning("learned predictor (%s) skipped: %s", mode, exc)
            continue
        dists, on = None, None
        if fit.proba is not None and fit.scale is not None and len(set(fit.targets)) == 1:
            dists, on = distributions_on(fit.proba, fit.scale, scale)
        knn = with_knn if mode == "request" else ""
        note = f"{what}; learned predictor ({target_note(fit.targets)}{knn}), cross-fitted on the run's folds"
        out.append(RouterScores(name, np.asarray(fit.keep, dtype=float), dists, on, note, extra={"mode": mode}))
    return out
