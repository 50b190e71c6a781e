"""A trained predictor artifact on a dataset: ``rpra eval --predictor DIR`` and ``rpra calibrate --predictor DIR``.

The artifact was trained elsewhere (``rpra train-predictor --out DIR``), so its
predictions are not cross-fitted: evaluated on the data it was trained on, its figures
are optimistic. It must predict on the dataset's score scale; an artifact trained on
another scale is refused with a clear error, never silently rescaled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.runs.routers import RouterScores

__all__ = ["artifact_name", "artifact_scores", "check_scale", "load_artifact"]


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


def check_scale(predictor: Any, scale: GradeScale, dataset: EvalDataset, path: str | Path) -> None:
    """Refuse an artifact whose grade scale is not the dataset's.

    Raises:
        ConfigError: naming both scales and what to do.
    """
    theirs: GradeScale = predictor.scale
    if tuple(theirs.labels) == tuple(scale.labels) and tuple(theirs.values) == tuple(scale.values):
        return
    raise ConfigError(
        f"{path} was trained on score scale {theirs.name!r} ({theirs.low:g}-{theirs.high:g}, {len(theirs.labels)} "
        f"grades) but dataset {dataset.name!r} is on {scale.name!r} ({scale.low:g}-{scale.high:g}, "
        f"{len(scale.labels)} grades): evaluate it on a dataset of its own scale, or train one on this dataset "
        f"(`rpra train-predictor --dataset {dataset.name} --out DIR`)"
    )


def artifact_scores(dataset: EvalDataset, path: str | Path, scale: GradeScale) -> RouterScores:
    """The artifact's grade distribution and expected grade for every item of ``dataset``.

    Raises:
        ConfigError: on an unloadable artifact, another score scale, or a draft-mode
            artifact on a dataset without the small model's answers.
    """
    from rpra_agent.predictors.features import Sample

    predictor = load_artifact(path)
    check_scale(predictor, scale, dataset, path)
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
    proba = np.asarray(predictor.predict_proba(samples), dtype=float)
    dists = [dict(zip(scale.labels, (float(p) for p in row), strict=True)) for row in proba]
    keep = proba @ np.asarray(scale.values, dtype=float)
    source = predictor.training.get("source", "?") if isinstance(predictor.training, dict) else "?"
    note = f"trained artifact {predictor.version} ({predictor.mode} mode, trained on {source}); not cross-fitted"
    return RouterScores(artifact_name(path), keep, dists, scale, note)
