"""A trained predictor artifact on a dataset: ``rpra eval --predictor DIR`` and ``rpra calibrate --predictor DIR``.

The artifact was trained elsewhere (``rpra train-predictor --out DIR``), so its
predictions are not cross-fitted: evaluated on the data it was trained on, its figures
are optimistic. It must predict on the dataset's score scale; an artifact trained on
another scale is refused with a clear error, never silently rescaled.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.runs.routers import RouterScores, distributions_on

logger = logging.getLogger(__name__)

__all__ = ["NORMALIZED", "artifact_name", "artifact_scores", "check_scale", "in_sample", "load_artifact"]

#: The scale name of an artifact trained on several datasets pooled after normalisation.
NORMALIZED = "normalized01"


def artifact_name(path: str | Path) -> str:
    """The table name of an artifact: ``artifact:<directory name>``."""
    return f"artifact:{Path(path).name or Path(path).resolve().name}"


def load_artifact(path: str | Path) -> Any:
    """The trained :class:`~rpra_agent.predictors.learned.LearnedPredictor` saved in ``path``.

    Raises:
        ConfigError: when the learned predictor is not installed, or the artifact is
            missing, corrupt or incompatible.
    """
    try:
        from rpra_agent.predictors.learned import LearnedPredictor
    except ImportError as exc:
        raise ConfigError(
            f"evaluating an artifact needs the learned predictor: pip install 'rpra-agent[learned]' ({exc})"
        ) from exc
    return LearnedPredictor.load(path)


def check_scale(predictor: Any, scale: GradeScale, dataset: EvalDataset, path: str | Path) -> bool:
    """Whether the artifact predicts on the dataset's own scale (``False``: a pooled, normalised 0-1 artifact).

    An artifact trained on several datasets pooled (``rpra train-predictor --dataset A
    --dataset B``) predicts normalised scores, ``(score - low) / (high - low)``: its
    keep-scores rank any dataset's items, in normalised units.

    Raises:
        ConfigError: when it was trained on one dataset of another scale, naming both
            scales and what to do.
    """
    theirs: GradeScale = getattr(predictor, "data_scale", predictor.scale)
    if tuple(theirs.labels) == tuple(scale.labels) and tuple(theirs.values) == tuple(scale.values):
        return True
    if theirs.name == NORMALIZED:
        return False
    raise ConfigError(
        f"{path} was trained on score scale {theirs.name!r} ({theirs.low:g}-{theirs.high:g}, {len(theirs.labels)} "
        f"grades) but dataset {dataset.name!r} is on {scale.name!r} ({scale.low:g}-{scale.high:g}, "
        f"{len(scale.labels)} grades): evaluate it on a dataset of its own scale, train one on this dataset "
        f"(`rpra train-predictor --dataset {dataset.name} --out DIR`), or pool datasets of several scales "
        "(`rpra train-predictor --dataset A --dataset B`)"
    )


def in_sample(source: str, dataset: EvalDataset) -> bool:
    """Whether an artifact's training source (``dataset:a+b``) names ``dataset``: then it saw these items."""
    return source.startswith("dataset:") and dataset.name in source.removeprefix("dataset:").split("+")


def artifact_scores(dataset: EvalDataset, path: str | Path, scale: GradeScale) -> RouterScores:
    """The artifact's keep-score and distribution for every item.

    The distribution is the judge's grade on the dataset's own scale, or, for an
    artifact trained with the ``gain`` target, the margin over the large answer (the
    graph can route with either); a pooled, normalised artifact gives keep-scores only.

    Raises:
        ConfigError: on an unloadable artifact, another score scale, or a draft-mode
            artifact on a dataset without the small model's answers.
    """
    from rpra_agent.predictors.features import Sample

    predictor = load_artifact(path)
    own_scale = check_scale(predictor, scale, dataset, path)
    texts = dataset.texts(dataset.weak)
    draft = predictor.mode == "draft"
    if draft and any(t is None for t in texts):
        raise ConfigError(
            f"{path} is a draft-mode predictor, but dataset {dataset.name!r} records no answer text for some items "
            "of the small model: evaluate a request-mode artifact on it"
        )
    samples = [
        Sample.from_messages(
            item.messages or ({"role": "user", "content": item.prompt},),
            draft=text if draft else None,
            task=item.category,
        )
        for item, text in zip(dataset.items, texts, strict=True)
    ]
    keep = np.asarray(predictor.keep_scores(samples), dtype=float)
    dists, on = None, None
    if own_scale:  # grades on the dataset's scale, or a gain artifact's margin over the large answer
        dists, on = distributions_on(np.asarray(predictor.predict_proba(samples), dtype=float), predictor.scale, scale)
    source = predictor.training.get("source", "?") if isinstance(predictor.training, dict) else "?"
    units = "" if own_scale else "; normalised 0-1 scores (pooled training)"
    note = f"trained artifact {predictor.version} ({predictor.mode} mode, trained on {source}){units}; not cross-fitted"
    if in_sample(source, dataset):
        note += "; IN-SAMPLE: it was trained on a dataset of this name, so its figures are optimistic"
        logger.warning(
            "%s was trained on %s, a dataset named like %r: scored on its own training items, its APGR and any "
            "threshold calibrated on them are optimistic; use held-out data or `rpra eval --predictor learned` "
            "(cross-fitted)",
            path, source, dataset.name,
        )  # fmt: skip
    return RouterScores(artifact_name(path), keep, dists, on, note, extra={"mode": predictor.mode})
