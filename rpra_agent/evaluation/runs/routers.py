"""The routers an evaluation compares, by name, and the one that sets the operating point.

Every router gives each item a keep-score (higher: keep the small answer), computed
in the run, cross-fitted where it learns from the dataset:

=================  ===============================================================
``report_card``    the small model's report card per category (cross-fitted cards)
``learned``        the learned predictor on the request (cross-fitted)
``learned_draft``  the learned predictor on the request + the small answer
``tfidf``          TF-IDF + ridge regression on the request (cross-fitted)
``tfidf_draft``    TF-IDF + ridge regression on the request + the small answer
``answer_length``  shortest small answers deferred first
``random``         random routing (its exact expectation)
``oracle``         reads both answers' scores: an upper bound, never an operating router
=================  ===============================================================

plus ``artifact:NAME`` for a trained predictor artifact given by path (trained
elsewhere, so not cross-fitted). ``--predictor`` picks which of them run
(:func:`select_routers`); ``--operating-router`` picks the one whose calibrated
threshold the graph routes with (:func:`choose_operating_router`; by default the
best cross-fitted APGR among the predictors).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.evaluation.report.results import PredictorRow
from rpra_agent.evaluation.runs._replay_index import ReplayIndex

__all__ = [
    "ALIASES",
    "BASELINES",
    "PREDICTORS",
    "ROUTERS",
    "ReplayedPredictor",
    "RouterOptions",
    "RouterScores",
    "RouterSelection",
    "auto_candidates",
    "choose_operating_router",
    "distributions_on",
    "select_routers",
]

#: Every built-in router name and what it is.
ROUTERS: Mapping[str, str] = {
    "report_card": "the report card per category, cross-fitted",
    "learned": "learned predictor on the request, cross-fitted",
    "learned_draft": "learned predictor on the request + the small answer, cross-fitted",
    "tfidf": "TF-IDF + ridge on the request, cross-fitted",
    "tfidf_draft": "TF-IDF + ridge on the request + the small answer, cross-fitted",
    "answer_length": "shortest small answers deferred first",
    "random": "random routing (its expectation)",
    "oracle": "reads both answers' scores (upper bound)",
}
#: Routers that predict (the rest are reference baselines, always in the table).
PREDICTORS = ("report_card", "learned", "learned_draft", "tfidf", "tfidf_draft", "answer_length")
#: The simple baselines, which a predictor's lead is measured against (``--predictor baselines``).
BASELINES = ("tfidf", "tfidf_draft", "answer_length")

#: Short names accepted on the command line.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "card": ("report_card",),
    "category": ("report_card",),
    "length": ("answer_length",),
    "shortest": ("answer_length",),
    "learned": ("learned", "learned_draft"),
    "learned_request": ("learned",),
    "tfidf": ("tfidf", "tfidf_draft"),
    "tfidf_request": ("tfidf",),
    "baselines": BASELINES,
    "all": PREDICTORS,
}
#: Routers that can never set the operating point.
NOT_OPERATING = ("oracle", "random")


@dataclass(frozen=True)
class RouterSelection:
    """Which routers a run computes.

    Attributes:
        names: Built-in router names (``report_card`` always runs: the graph's log needs it).
        artifacts: Paths of trained predictor artifacts to evaluate too.
    """

    names: tuple[str, ...] = PREDICTORS
    artifacts: tuple[Path, ...] = ()

    def wants(self, name: str) -> bool:
        """Whether router ``name`` runs."""
        return name in self.names

    def without_learned(self) -> RouterSelection:
        """The same selection without the learned predictor's routers (``--no-learned``)."""
        return RouterSelection(tuple(n for n in self.names if not n.startswith("learned")), self.artifacts)


@dataclass(frozen=True)
class RouterOptions:
    """The router knobs that the replay and the live run share (their options extend it).

    Attributes:
        learned: Evaluate the learned predictor when it is installed (``False`` drops
            it from ``routers``).
        routers: The routers to compute (``rpra eval --predictor``).
        operating_router: The router whose calibrated threshold sets the operating point
            (``None``/``auto``: the cross-fitted router with distributions and the best APGR).
        neighbours: A sentence-transformers model (a name or a local directory) whose
            embeddings feed the learned predictor's neighbour member (``rpra eval
            --neighbours``); ``None``: no embedding model.
    """

    learned: bool = True
    routers: RouterSelection = field(default_factory=RouterSelection)
    operating_router: str | None = None
    neighbours: str | None = None

    def selected_routers(self) -> RouterSelection:
        """``routers``, without the learned predictor when ``learned`` is off."""
        return self.routers if self.learned else self.routers.without_learned()


@dataclass
class RouterScores:
    """One router's keep-scores in a run (and its distributions when it has them).

    ``distributions`` are on ``scale``: the judge's grades for a grade predictor, or the
    margin of the small answer over the large one for the learned predictor's ``gain``
    target (its keep-score is then the expected margin). Either way the graph can route
    with them (:class:`ReplayedPredictor`); agreement figures against the judge come only
    with grades (:meth:`grades_on`).
    """

    name: str
    keep: np.ndarray
    distributions: list[dict[str, float]] | None = None
    scale: GradeScale | None = None
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def reads_draft(self) -> bool:
        """Whether the router reads the small model's answer (``extra["mode"] == "draft"``).

        Such a router needs the small model to answer every request first (the
        ``verify`` paradigm), including the ones it then defers.
        """
        return self.extra.get("mode") == "draft"

    def threshold_scale(self, scale: GradeScale) -> str | None:
        """The scale a threshold on this router's expected score is on, where it is not the judge's ``scale``.

        The learned ``gain`` target's margin (``margin:correct01``); ``None`` for grades
        on ``scale`` or a router without distributions. The operating point records it.
        """
        if self.distributions is None or self.scale is None or self.grades_on(scale):
            return None
        return self.scale.name

    def grades_on(self, scale: GradeScale) -> bool:
        """Whether the distributions are grades on ``scale`` (the judge's), not a margin."""
        return (
            self.distributions is not None
            and self.scale is not None
            and self.scale.name == scale.name
            and tuple(self.scale.labels) == tuple(scale.labels)
        )


def distributions_on(
    proba: np.ndarray, predicted: GradeScale, scale: GradeScale
) -> tuple[list[dict[str, float]], GradeScale]:
    """Rows of a predictor's ``proba`` as distributions, and the scale they are on.

    On the judge's ``scale`` where the predictor's labels are its grades; otherwise on
    the predictor's own scale (the learned ``gain`` target's margin over the large answer).
    """
    on = scale if tuple(predicted.labels) == tuple(scale.labels) else predicted
    return [dict(zip(on.labels, (float(p) for p in row), strict=True)) for row in proba], on


def auto_candidates(scores: Sequence[RouterScores], scale: GradeScale, *, fixed_threshold: bool) -> list[str]:
    """The routers ``--operating-router auto`` may choose: cross-fitted, with distributions the graph routes with.

    Trained artifacts and a fine-tuned model are left out (they may have seen the items).
    With a fixed ``--threshold``, only grade predictors on the judge's ``scale``: the
    threshold is a grade, and a margin's threshold would mean something else.
    """
    return [
        s.name
        for s in scores
        if s.distributions is not None
        and s.name != "fine_tuned"
        and ":" not in s.name
        and (not fixed_threshold or s.grades_on(scale))
    ]


def select_routers(specs: Sequence[str] | None) -> RouterSelection:
    """The routers named by ``--predictor`` values (names, aliases or artifact paths).

    ``None`` or empty: every built-in router. ``report_card`` is always included.

    Raises:
        ConfigError: for a name that is neither a router, an alias nor an existing path.
    """
    if not specs:
        return RouterSelection()
    names: list[str] = ["report_card"]
    artifacts: list[Path] = []
    for spec in specs:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if part in ALIASES:
                names.extend(ALIASES[part])
            elif part in ROUTERS:
                names.append(part)
            elif Path(part).exists():
                artifacts.append(Path(part))
            else:
                raise ConfigError(
                    f"unknown --predictor {part!r}: use a router ({', '.join(PREDICTORS)}), a short name "
                    f"({', '.join(a for a in ALIASES if a not in ROUTERS)}) or the path of a trained artifact "
                    "(`rpra train-predictor --out DIR`)"
                )
    return RouterSelection(tuple(dict.fromkeys(n for n in names if n in PREDICTORS)), tuple(dict.fromkeys(artifacts)))


def choose_operating_router(
    requested: str | None, rows: Sequence[PredictorRow], available: Sequence[str], graded: Sequence[str]
) -> str:
    """The router whose calibrated threshold sets the operating point.

    Args:
        requested: ``--operating-router`` (``None`` or ``auto``: among the routers that
            predict a distribution, the best cross-fitted APGR in this run).
        rows: The run's table rows.
        available: Routers that can set it (computed in this run, not oracle/random).
        graded: Those of them that ``auto`` may choose (:func:`auto_candidates`):
            cross-fitted routers that predict a distribution, of the judge's grade or
            of the learned gain over the large model (the graph can route with them;
            the others' operating point is computed from the recording).

    Raises:
        ConfigError: for a name that is not among ``available``.
    """
    if requested in (None, "", "auto"):
        scored = [r for r in rows if r.name in graded and r.apgr is not None]
        return max(scored, key=lambda r: r.apgr or 0.0).name if scored else "report_card"
    name = requested
    if name in ALIASES and len(ALIASES[name]) == 1:
        name = ALIASES[name][0]
    if name not in available:
        why = " (it reads the recorded scores)" if name in NOT_OPERATING else ""
        raise ConfigError(
            f"unknown --operating-router {requested!r}{why}: choose auto or one of this run's routers: "
            f"{', '.join(available)}"
        )
    return name


class ReplayedPredictor:
    """A :class:`~rpra_agent.core.prediction.Predictor` that answers with a run's cross-fitted predictions.

    The route pass of an evaluation runs the graph with the operating router; a
    router cross-fitted earlier in the same run (each item predicted by the model of
    the other folds) is replayed here, looked up by the item id the replay models tag
    every request with. Real distributions on the dataset's scale only: a keep-score
    that is not a grade (answer length) sets a computed operating point instead.

    Args:
        name: The router's name (recorded with every decision).
        predictions: Item id -> its grade distribution.
        scale: The distributions' scale.
        index: The run's replay index (finds a request's item).
    """

    def __init__(
        self, name: str, predictions: Mapping[str, Mapping[str, float]], scale: GradeScale, index: ReplayIndex
    ) -> None:
        self.name = name
        self.scale = scale
        self._predictions = dict(predictions)
        self._index = index

    @property
    def version(self) -> str:
        """``crossfit``: the predictions come from the run's cross-fitted models."""
        return "crossfit"

    def predict(self, request: PredictionRequest) -> Prediction:
        """The item's cross-fitted distribution.

        Raises:
            PredictorError: when the request is not one of the run's items.
        """
        start = time.perf_counter()
        try:
            dist = self._predictions[self._index.find(request.messages).id]
        except (KeyError, LookupError) as exc:
            raise PredictorError(f"no cross-fitted prediction for this request: {exc}", predictor=self.name) from None
        return Prediction.from_distribution(
            dist,
            scale=self.scale,
            predictor=self.name,
            version=self.version,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            method="learned",
        )

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict` (no I/O)."""
        return self.predict(request)
