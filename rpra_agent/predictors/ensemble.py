"""Combining predictors: logistic stacking of their beliefs, learned on judged data.

:class:`EnsemblePredictor` asks every member (e.g. a zero-shot self-prediction and the
learned predictor) and combines their ``p_acceptable`` (as a logit) and normalised
expected score with weights fitted by logistic regression on judged examples. The
result's ``p_acceptable`` is the stacked probability; its grade distribution is the
members' average, rescaled so that its acceptable mass equals that probability.

When a member raises :class:`~rpra_agent.core.errors.PredictorError` the ensemble uses the
stacker fitted on the surviving members (one is fitted for every subset); with no
such stacker it takes the *lowest* surviving ``p_acceptable`` (fail toward quality).
When every member fails it raises, and the graph defers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest, Predictor, needs_draft

if TYPE_CHECKING:
    from rpra_agent.store.base import DecisionFilter, DecisionStore

__all__ = ["EnsemblePredictor"]

logger = logging.getLogger(__name__)

_MAX_SUBSETS_MEMBERS = 4
_CLIP = 1e-4


def _features(predictions: Sequence[Prediction]) -> list[float]:
    row: list[float] = []
    for p in predictions:
        q = min(max(float(p.p_acceptable), _CLIP), 1 - _CLIP)
        row += [math.log(q / (1 - q)), p.scale.normalize(p.expected_score)]
    return row


class EnsemblePredictor:
    """Stacks several predictors' beliefs with weights learned on judged data.

    Args:
        members: The predictors to combine (all on the same grade scale).
        scale: The grade scale (default: the first member's).
        name: Recorded as the predictor's name.
        C: Inverse L2 strength of the logistic stackers.
    """

    name: str = "ensemble"

    def __init__(
        self, members: Sequence[Predictor], *, scale: GradeScale | None = None, name: str | None = None, C: float = 1.0
    ) -> None:
        if not members:
            raise ConfigError("an EnsemblePredictor needs at least one member")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ConfigError(f"ensemble members need distinct names, got {names}")
        self.members = list(members)
        self.scale = scale or members[0].scale
        for m in members:
            if tuple(m.scale.labels) != tuple(self.scale.labels):
                raise ConfigError(
                    f"member {m.name!r} predicts grades {m.scale.labels}, the ensemble {self.scale.labels}"
                )
        if name:
            self.name = name
        self.C = float(C)
        # subset of member indices -> (weights, intercept)
        self.stackers: dict[tuple[int, ...], tuple[np.ndarray, float]] = {}

    @property
    def needs_draft(self) -> bool:
        """Whether every member needs the small model's draft (a failing member falls back to the others)."""
        return all(needs_draft(m) for m in self.members)

    @property
    def version(self) -> str:
        """The members' versions, and whether the stacker is trained."""
        inner = "+".join(f"{m.name}:{m.version}" for m in self.members)
        return f"ensemble({inner}){'' if self.stackers else '-untrained'}"

    # -- training --------------------------------------------------------------
    def fit(self, requests: Sequence[PredictionRequest], scores: Sequence[float]) -> EnsemblePredictor:
        """Fit the stackers on judged examples: the requests and the judge's scores of the small answers.

        Members that fail on an example leave it out of the stackers that include them.

        Raises:
            ConfigError: when the examples hold only acceptable or only unacceptable answers.
        """
        if len(requests) != len(scores):
            raise ConfigError(f"{len(requests)} requests but {len(scores)} scores")
        ok = np.array([self.scale.is_acceptable(self.scale.label_for(float(s))) for s in scores], dtype=int)
        if ok.min() == ok.max():
            raise ConfigError("the stacker needs both acceptable and unacceptable examples")
        table = [[self._try(m, r) for m in self.members] for r in requests]
        self.stackers = {}
        for subset in self._subsets():
            rows = [i for i, preds in enumerate(table) if all(preds[j] is not None for j in subset)]
            if len(rows) < 2 or ok[rows].min() == ok[rows].max():
                continue
            X = np.array([_features([table[i][j] for j in subset]) for i in rows])  # type: ignore[misc]
            self.stackers[subset] = _fit_logistic(X, ok[rows], self.C)
        if not self.stackers:
            raise ConfigError("no member predicted enough examples to fit the ensemble")
        logger.info("ensemble %s: fitted %d stackers on %d examples", self.name, len(self.stackers), len(requests))
        return self

    def fit_store(
        self, store: DecisionStore, *, where: DecisionFilter | None = None, draft: bool = False
    ) -> EnsemblePredictor:
        """Fit the stackers on the judged decisions of a log (members are asked again for each).

        ``draft=True`` hands members the small answer the decision recorded (skipping
        decisions without one). Use decisions the members did not train on.
        """
        from rpra_agent.predictors._training import store_examples

        samples, scores, _, _, _ = store_examples(store, mode="draft" if draft else "request", where=where)
        return self.fit([s.to_request() for s in samples], scores.tolist())

    def _subsets(self) -> list[tuple[int, ...]]:
        n = len(self.members)
        if n > _MAX_SUBSETS_MEMBERS:
            return [tuple(range(n))]
        return [s for r in range(n, 0, -1) for s in itertools.combinations(range(n), r)]

    @staticmethod
    def _try(member: Predictor, request: PredictionRequest) -> Prediction | None:
        try:
            return member.predict(request)
        except PredictorError as exc:
            logger.debug("ensemble member %s failed: %s", member.name, exc)
            return None

    # -- predicting ------------------------------------------------------------
    def predict(self, request: PredictionRequest) -> Prediction:
        """Ask every member and stack their beliefs (see the module docstring)."""
        start = time.perf_counter()
        return self._combine([self._try(m, request) for m in self.members], start)

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict`: members are asked concurrently."""
        start = time.perf_counter()

        async def one(member: Predictor) -> Prediction | None:
            try:
                return await member.apredict(request)
            except PredictorError as exc:
                logger.debug("ensemble member %s failed: %s", member.name, exc)
                return None

        return self._combine(list(await asyncio.gather(*(one(m) for m in self.members))), start)

    def _combine(self, preds: list[Prediction | None], start: float) -> Prediction:
        alive = tuple(i for i, p in enumerate(preds) if p is not None)
        failed = [self.members[i].name for i, p in enumerate(preds) if p is None]
        if not alive:
            raise PredictorError(f"every ensemble member failed ({', '.join(failed)})", predictor=self.name)
        got = [p for p in preds if p is not None]
        stacker = self.stackers.get(alive)
        if stacker is not None:
            weights, intercept = stacker
            z = float(np.dot(weights, _features(got)) + intercept)
            p_ok, how = 1.0 / (1.0 + math.exp(-max(min(z, 35.0), -35.0))), "stacked"
        else:
            p_ok, how = min(p.p_acceptable for p in got), "min"  # fail toward quality
        dist = _rescale(_mean_distribution(got, self.scale), self.scale, p_ok)
        raw = f"{how} over {','.join(self.members[i].name for i in alive)}"
        if failed:
            raw += f"; failed: {','.join(failed)}"
        return Prediction.from_distribution(
            dist,
            scale=self.scale,
            predictor=self.name,
            version=self.version,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            raw=raw,
            method="ensemble",
        )

    # -- persistence -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The stackers as JSON (members are code; pass them again to :meth:`from_dict`)."""
        return {
            "members": [m.name for m in self.members],
            "scale": self.scale.to_dict(),
            "C": self.C,
            "stackers": [
                {"subset": list(k), "weights": [float(x) for x in w], "intercept": float(b)}
                for k, (w, b) in self.stackers.items()
            ],
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], members: Sequence[Predictor], *, name: str | None = None
    ) -> EnsemblePredictor:
        """Rebuild from :meth:`to_dict` with the same members (matched by name, in order).

        Raises:
            ConfigError: when the members' names differ from the saved ones.
        """
        names = [m.name for m in members]
        if names != list(data.get("members", [])):
            raise ConfigError(f"the saved ensemble combines {data.get('members')}, not {names}")
        self = cls(members, scale=GradeScale.from_dict(data["scale"]), name=name, C=float(data.get("C", 1.0)))
        for row in data.get("stackers", []):
            self.stackers[tuple(int(i) for i in row["subset"])] = (
                np.asarray(row["weights"], dtype=float),
                float(row["intercept"]),
            )
        return self


def _fit_logistic(X: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=1000).fit(X, y)
    return np.asarray(model.coef_[0], dtype=float), float(model.intercept_[0])


def _mean_distribution(preds: Sequence[Prediction], scale: GradeScale) -> dict[str, float]:
    return {lab: float(np.mean([p.distribution.get(lab, 0.0) for p in preds])) for lab in scale.labels}


def _rescale(dist: Mapping[str, float], scale: GradeScale, p_ok: float) -> dict[str, float]:
    """Rescale a distribution so that its acceptable mass is ``p_ok`` (uniform where a side is empty)."""
    good = [lab for lab in scale.labels if scale.is_acceptable(lab)]
    bad = [lab for lab in scale.labels if not scale.is_acceptable(lab)]
    out: dict[str, float] = {}
    for side, mass in ((good, p_ok), (bad, 1.0 - p_ok)):
        total = sum(dist.get(lab, 0.0) for lab in side)
        for lab in side:
            out[lab] = mass * (dist.get(lab, 0.0) / total if total > 0 else 1.0 / len(side))
    return out
