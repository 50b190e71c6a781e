"""The learned predictor: a calibrated head trained on hindsight labels, no model call per request.

The judge's verdicts on the small model's past answers (the decision log) or a
recorded evaluation's scores are the labels; the request (and, in ``draft`` mode, the
small model's drafted answer) is the input. A featurizer (word and character TF-IDF,
cues and the task tag by default) feeds a proportional-odds logistic model over the
grades of a :class:`~rpra_agent.core.grades.GradeScale`; scores between grades
(continuous or half scores) are modelled as they are (soft threshold targets). What it
predicts (the small answer's score, or its margin over the large answer) and the
regularisation are chosen by an inner validation on the training data; a second stage
folds a TF-IDF + ridge of the same target (and, in draft mode, the draft's length) into
the head's weights where the inner validation does not rule them out
(:mod:`~rpra_agent.predictors._blend`). Predicting costs about a millisecond.

Example::

    from rpra_agent.evaluation.datasets import load_dataset
    from rpra_agent.predictors.learned import LearnedPredictor

    predictor = LearnedPredictor.from_dataset(load_dataset("mt-bench"))
    predictor.save("artifacts/learned-mt-bench")
    predictor = LearnedPredictor.load("artifacts/learned-mt-bench")   # no pickle
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rpra_agent.core.decision import utcnow
from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.predictors._blend import (
    GAIN_WEIGHT,
    KNN_K,
    KNN_WEIGHT,
    LENGTH_WEIGHT,
    PCR_BLOCK,
    PCR_RANKS,
    PCR_WEIGHT,
    RIDGE_BLOCK,
    RIDGE_BLOCKS,
    RIDGE_WEIGHT,
    Neighbours,
    fit_ridge,
    fold_in,
    length_column,
    ridge_columns,
)
from rpra_agent.predictors._blocksearch import fit_head
from rpra_agent.predictors._learned_io import ARTIFACT_KIND, Persistent
from rpra_agent.predictors._learned_metrics import oof_metrics
from rpra_agent.predictors._ordinal import OrdinalLogit
from rpra_agent.predictors._select import NO_WORSE_SCALE, choose_head, target_positions
from rpra_agent.predictors._training import Mode, pooled_examples, store_examples
from rpra_agent.predictors.data import RecordedDataset
from rpra_agent.predictors.features import Featurizer, Sample, TextFeaturizer, fit_features

if TYPE_CHECKING:
    from rpra_agent.store.base import DecisionFilter, DecisionStore

__all__ = ["ARTIFACT_KIND", "FAST_CS", "NO_WORSE_SCALE", "TARGETS", "LearnedPredictor", "Target"]

logger = logging.getLogger(__name__)

Target = Literal["auto", "small", "gain", "no_worse"]
TARGETS: tuple[str, ...] = ("auto", "small", "gain", "no_worse")


FAST_CS: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0)
"""The regularisation grid searched by default (warm-started, with the target)."""


class LearnedPredictor(Persistent):
    """Predicts the judge's grade distribution from the request (and draft) with a trained head.

    Args:
        featurizer: How samples become features (default :class:`TextFeaturizer`).
        scale: The judge's grade scale of the training scores; inferred from the
            data by :meth:`fit_dataset` / :meth:`fit_store` when not given.
        mode: ``"request"`` (the request alone, before answering) or ``"draft"``
            (also the small model's drafted answer: verify-before-show).
        Cs: Regularisation grid searched by the inner validation.
        C: A fixed regularisation (no search over ``Cs``).
        folds: Inner cross-validation folds.
        seed: Seed of the inner folds.
        block_grid: Candidate weights of the featurizer's blocks (e.g. ``{"task": (1,
            3)}``), searched first by the inner log-loss (slower); ``None`` (default)
            keeps the featurizer's weights.
        ridge_weight: The share of a TF-IDF + ridge member of the same target,
            folded into the head's weights (:mod:`~rpra_agent.predictors._blend`):
            its centred prediction times ``ridge_weight`` standard deviations of the
            head's out-of-fold score per sd of its own. The inner validation leaves it
            out when it routes worse than the head by more than ``1 / sqrt(n)``; 0
            never uses it.
        length_weight: In draft mode, the share of the draft's log length, folded in
            the same way where, on the inner folds, it alone routes at least as well
            as the head; 0 never uses it.
        gain_weight: With ``target="auto"``, where the inner validation keeps the
            ``small`` target, the share of a head of the ``gain`` target (at its own
            best ``C``), folded in the same way where, on the inner folds, it routes at
            least as well as the ``small`` head; 0 (default) never uses it
            (``docs/LEARNED.md``: measured on the held-out pairs).
        pcr_weight: The share of a principal-component regression of the same
            target on the word and character blocks (a ridge on their top 20, 50
            and 100 principal components, averaged: the TF-IDF's broad directions
            without its rare n-grams), folded in and gated as the ridge member; 0
            never uses it (``docs/LEARNED.md``).
        ridge_block: What the ridge member regresses on: ``"chars"`` (default: the
            character n-gram blocks, which held up better on held-out model pairs),
            ``"words"`` (the word TF-IDF blocks, as the TF-IDF + ridge baseline and
            the previous default) or ``"text"`` (both); see ``docs/LEARNED.md``.
        neighbours: An embedding featurizer (e.g. ``SentenceTransformerFeaturizer``
            on a model you supply, or ``LlamaEmbeddingFeaturizer.from_chat_model(small)``)
            for a second-stage member: the similarity-weighted mean target of the
            ``knn_k`` training requests most similar to the request (cosine of their
            embeddings), gated as the ridge member and added to the head's score
            with the share ``knn_weight``. It embeds every request it predicts for,
            and the artifact keeps the training embeddings (``docs/LEARNED.md``).
            ``None`` (default): no embedding model, no such member.
        knn_weight: The neighbour member's share (0 never uses it). ``None``
            (default): :data:`~rpra_agent.predictors._blend.KNN_WEIGHT` in request
            mode, 0 in draft mode, where the draft already says what the neighbours
            would (measured: arena draft 0.607 with it against 0.618 without,
            ``docs/LEARNED.md``).
        knn_k: How many neighbours it averages.
        target: What the head predicts. ``"small"``: the judge's score of the small
            answer (the prediction is on the judge's scale). ``"gain"``: the small
            answer's margin over the large one, ``small - large`` (the prediction is on
            :meth:`GradeScale.margin`; ``p_acceptable`` is P(no worse than the large
            answer)), so deferral is ordered by what it gains; needs the large
            model's scores. ``"no_worse"``: P(small graded at least as well as large)
            on :data:`NO_WORSE_SCALE`. ``"auto"`` (default): ``small`` or ``gain``,
            whichever routes better in the inner validation (``small`` when the large
            scores are missing).
        name: Recorded as the predictor's name (default ``learned``, with ``_draft``
            and ``_<target>`` suffixes for draft mode and an explicit non-small target).
    """

    name: str = "learned"

    def __init__(
        self,
        featurizer: Featurizer | None = None,
        *,
        scale: GradeScale | None = None,
        mode: Mode = "request",
        Cs: Sequence[float] = FAST_CS,
        C: float | None = None,
        folds: int = 3,
        seed: int = 0,
        block_grid: Mapping[str, Sequence[float]] | None = None,
        target: Target = "auto",
        ridge_weight: float = RIDGE_WEIGHT,
        length_weight: float = LENGTH_WEIGHT,
        ridge_block: str = RIDGE_BLOCK,
        gain_weight: float = GAIN_WEIGHT,
        pcr_weight: float = PCR_WEIGHT,
        neighbours: Featurizer | None = None,
        knn_weight: float | None = None,
        knn_k: int = KNN_K,
        name: str | None = None,
    ) -> None:
        if mode not in ("request", "draft"):
            raise ConfigError(f"mode must be 'request' or 'draft', not {mode!r}")
        if target not in TARGETS:
            raise ConfigError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
        if target == "no_worse" and scale is not None and scale != NO_WORSE_SCALE:
            raise ConfigError("target='no_worse' predicts on NO_WORSE_SCALE; do not pass another scale")
        if C is None and not Cs:
            raise ConfigError("give C or a non-empty Cs grid")
        if any(c <= 0 for c in Cs) or (C is not None and C <= 0):
            raise ConfigError("C values must be positive")
        weights = (
            ("ridge_weight", ridge_weight),
            ("length_weight", length_weight),
            ("gain_weight", gain_weight),
            ("pcr_weight", pcr_weight),
            ("knn_weight", 0.0 if knn_weight is None else knn_weight),
        )
        for option, value in weights:
            if not (isinstance(value, int | float) and 0.0 <= float(value) < float("inf")):
                raise ConfigError(f"{option} must be a finite number >= 0, not {value!r}")
        if neighbours is not None and not callable(getattr(neighbours, "vectors", None)):
            raise ConfigError(
                "neighbours must be an embedding featurizer (SentenceTransformerFeaturizer or "
                f"LlamaEmbeddingFeaturizer), not {type(neighbours).__name__}"
            )
        if isinstance(knn_k, bool) or not isinstance(knn_k, int) or knn_k < 1:
            raise ConfigError(f"knn_k must be a positive integer, not {knn_k!r}")
        if ridge_block not in RIDGE_BLOCKS:
            raise ConfigError(f"ridge_block must be one of {', '.join(RIDGE_BLOCKS)}, not {ridge_block!r}")
        self.target_option: Target = target
        self.target: Target = "small" if target == "auto" else target
        self.featurizer: Featurizer = featurizer if featurizer is not None else TextFeaturizer()
        self.data_scale = scale if scale is not None and target != "no_worse" else GradeScale.paper()
        self.scale = NO_WORSE_SCALE if target == "no_worse" else self.data_scale
        self._scale_given = scale is not None
        self.mode: Mode = mode
        suffix = ("_draft" if mode == "draft" else "") + (f"_{target}" if target not in ("auto", "small") else "")
        self.name = name or f"learned{suffix}"
        self._options: dict[str, Any] = {
            "Cs": tuple(Cs) if C is None else (float(C),),
            "folds": folds,
            "seed": seed,
            "ridge_weight": float(ridge_weight),
            "length_weight": float(length_weight),
            "ridge_block": ridge_block,
            "gain_weight": float(gain_weight),
            "pcr_weight": float(pcr_weight),
            "knn_weight": float((KNN_WEIGHT if mode == "request" else 0.0) if knn_weight is None else knn_weight),
            "knn_k": int(knn_k),
        }
        self.neighbours = neighbours
        self.knn: Neighbours | None = None
        self.model = OrdinalLogit(len(self.scale.labels), Cs=self._options["Cs"], folds=folds, seed=seed)
        self.block_grid = {k: tuple(float(x) for x in v) for k, v in (block_grid or {}).items()}
        self.fitted = False
        self.training: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self._version = "unfitted"

    # -- training --------------------------------------------------------------
    def fit(
        self,
        samples: Sequence[Sample],
        scores: Sequence[float] | np.ndarray,
        *,
        large_scores: Sequence[float] | np.ndarray | None = None,
        groups: Sequence[str] | None = None,
        source: str = "samples",
    ) -> LearnedPredictor:
        """Train on samples and the judge's scores of the small model's answers (on :attr:`data_scale`).

        Items whose score is NaN are left out (with a target that needs it, so are
        items without a large score). ``groups`` keeps related items (turns of one
        conversation) together in the inner folds.

        Raises:
            ConfigError: with fewer than two scored samples, drafts missing in draft
                mode, or no large scores for the ``gain`` / ``no_worse`` targets.
        """
        small = np.asarray(scores, dtype=float)
        if len(small) != len(samples):
            raise ConfigError(f"{len(samples)} samples but {len(small)} scores")
        large = None if large_scores is None else np.asarray(large_scores, dtype=float)
        if large is not None and len(large) != len(small):
            raise ConfigError(f"{len(small)} scores but {len(large)} large scores")
        if self.target_option != "no_worse":  # no_worse compares the two scores, on any scale
            self.data_scale.check_scores(small, "scores")
            if large is not None:
                self.data_scale.check_scores(large, "large_scores")
        candidates = target_positions(self.target_option, self.data_scale, small, large)
        needed = np.isnan(small)
        for _, pos in candidates.values():
            needed |= np.isnan(pos)
        if self.target_option == "auto" and "gain" in candidates and needed.sum() > np.isnan(small).sum():
            del candidates["gain"]  # some items lack a large score: keep them all, predict the small score
            needed = np.isnan(small)
        keep = np.flatnonzero(~needed)
        if len(keep) < 2:
            raise ConfigError(f"the learned predictor needs at least 2 judged examples, got {len(keep)}")
        train = [samples[int(i)] for i in keep]
        if self.mode == "draft" and any(s.draft is None for s in train):
            raise ConfigError("draft mode needs every training sample's draft (the small model's answer)")
        kept_groups = None if groups is None else [groups[int(i)] for i in keep]
        start = time.perf_counter()
        search: dict[str, Any] = {}
        if self.block_grid and "small" in candidates:  # the search re-weights the blocks: transform after it
            self.featurizer.fit(train, draft=self.mode == "draft")
            _, search = fit_head(
                self.featurizer, train, np.rint(candidates["small"][1][keep]).astype(int), kept_groups,
                n_labels=len(self.data_scale.labels), options=_head_options(self._options), grid=self.block_grid,
            )  # fmt: skip
            X = self.featurizer.transform(train)
        else:
            X = fit_features(self.featurizer, train, draft=self.mode == "draft")
        weak = small[keep]
        strong = None if large is None or np.isnan(large[keep]).any() else large[keep]
        vectors = None
        if self.neighbours is not None and self._options["knn_weight"] > 0:
            # Unit vectors of the requests alone; the featurizer keeps them, so the folds of
            # a cross-fit sharing one featurizer embed each request once.
            vectors = self.neighbours.vectors(train)  # type: ignore[attr-defined]
        columns = ridge_columns(self.featurizer, X.shape[1], self._options["ridge_block"])
        pcr_cols = ridge_columns(self.featurizer, X.shape[1], PCR_BLOCK)
        choice = choose_head(
            X,
            {t: pos[keep] for t, (_, pos) in candidates.items()},
            {t: len(sc.labels) for t, (sc, _) in candidates.items()},
            weak=weak, strong=strong, groups=kept_groups,
            Cs=self._options["Cs"], folds=self._options["folds"], seed=self._options["seed"],
            ridge_columns=columns, ridge_weight=self._options["ridge_weight"],
            length_column=length_column(self.featurizer), length_weight=self._options["length_weight"],
            gain_weight=self._options["gain_weight"],
            pcr_columns=pcr_cols, pcr_weight=self._options["pcr_weight"], pcr_ranks=PCR_RANKS,
            neighbours=vectors, knn_weight=self._options["knn_weight"], knn_k=self._options["knn_k"],
        )  # fmt: skip
        self.target = choice.target  # type: ignore[assignment]
        self.scale, y = candidates[choice.target][0], candidates[choice.target][1][keep]
        self.model = OrdinalLogit(len(self.scale.labels), Cs=self._options["Cs"], **_inner(self._options))
        self.model.fit_fixed(X, y, choice.C)
        head_beta, head_theta = self.model.beta.copy(), self.model.theta.copy()
        self.knn = None
        for member in choice.blend.used if choice.blend is not None else []:
            if member.name == "knn":  # not linear in X: kept beside the weights, added when predicting
                if vectors is not None:  # always: the member is only tried with embeddings
                    self.knn = Neighbours(vectors, y, self._options["knn_k"], member.scale, member.center)
                continue
            if member.name == "ridge":
                cols, (coef, intercept) = columns, fit_ridge(X[:, columns], y)
            elif member.name == "pcr":
                cols, (coef, intercept) = pcr_cols, fit_ridge(X[:, pcr_cols], y, ranks=PCR_RANKS)
            elif member.name == "gain":  # the gain target's head: its linear score over every column
                scale, positions = candidates["gain"]
                other = OrdinalLogit(len(scale.labels), Cs=self._options["Cs"], **_inner(self._options))
                other.fit_fixed(X, positions[keep], choice.member_C["gain"])
                cols, coef, intercept = np.arange(X.shape[1]), other.beta, 0.0
            else:  # the draft's log length: one column of X, as it is
                cols, coef, intercept = np.array([length_column(self.featurizer)]), np.ones(1), 0.0
            self.model.beta, self.model.theta = fold_in(
                self.model.beta, self.model.theta, cols, coef, intercept, member
            )
        if choice.blend is not None and choice.blend.used:
            self.model.beta, self.model.theta = _keep_spread(
                self.model.beta, self.model.theta, head_theta, float(np.mean(X @ head_beta)), choice.spread
            )
            if self.knn is not None:
                self.knn.scale *= choice.spread
        self.model.oof_cumulative = choice.oof
        labels = [self.scale.labels[int(round(p))] for p in y]
        self.training = {
            "n": len(train),
            "source": source,
            "data_sha256": _data_hash(train, weak),
            "label_counts": {lab: labels.count(lab) for lab in self.scale.labels if lab in labels},
            "trained_at": utcnow(),
            "seconds": round(time.perf_counter() - start, 3),
            "n_features": int(self.model.beta.shape[0]),
            "target": self.target,
            "data_scale": self.data_scale.to_dict(),
            "selection": choice.scores,
            "blend": _blend_record(choice, self._options["ridge_block"], self._options["knn_k"]),
        }
        label_scores = np.interp(y, np.arange(len(self.scale.values)), self.scale.values)
        self.metrics = oof_metrics(self.model, y, label_scores, self.scale)
        if search:
            self.metrics["block_weights"] = search
        self.fitted = True
        self._version = self._fingerprint()
        logger.info(
            "learned predictor %s trained on %d examples from %s (target %s, C=%s, ECE %s)",
            self.version, len(train), source, self.target, self.model.C, self.metrics.get("ece"),
        )  # fmt: skip
        return self

    def fit_dataset(
        self, dataset: RecordedDataset | Sequence[RecordedDataset], *, model: str | None = None
    ) -> LearnedPredictor:
        """Train on a recorded dataset, or several pooled on a normalised 0-1 scale.

        The weak model's scores are the labels (``model`` picks another model of a
        single dataset); the strong model's are the large scores. Pooled datasets'
        scores are mapped to ``(score - low) / (high - low)`` of their own ranges
        (see ``docs/LEARNED.md``).
        """
        datasets = list(dataset) if isinstance(dataset, Sequence) and not isinstance(dataset, str) else [dataset]
        if model is not None:
            if len(datasets) != 1:
                raise ConfigError("model= picks the labelled model of a single dataset")
            from rpra_agent.predictors._training import dataset_examples

            samples, small, groups = dataset_examples(datasets[0], mode=self.mode, model=model)
            large, scale = datasets[0].scores(datasets[0].strong), None
        else:
            samples, small, large, groups, scale = pooled_examples(datasets, mode=self.mode)  # type: ignore[arg-type]
        if not self._scale_given and scale is not None:
            self.data_scale = scale
        if not self._scale_given and model is not None:
            from rpra_agent.predictors.data import scale_of

            self.data_scale = scale_of(datasets[0])  # type: ignore[arg-type]
        names = "+".join(str(getattr(d, "name", "dataset")) for d in datasets)
        return self.fit(samples, small, large_scores=large, groups=groups, source=f"dataset:{names}")

    @classmethod
    def from_dataset(cls, dataset: RecordedDataset | Sequence[RecordedDataset], **options: Any) -> LearnedPredictor:
        """``LearnedPredictor(**options).fit_dataset(dataset)``: a loaded dataset (or several, pooled).

        Load one by name with ``rpra_agent.evaluation.datasets.load_dataset``.
        """
        return cls(**options).fit_dataset(dataset)

    def fit_store(self, store: DecisionStore, *, where: DecisionFilter | None = None) -> LearnedPredictor:
        """Train on judged decisions (hindsight labels) from the decision log.

        The log keeps the bare request only, so a :class:`TextFeaturizer` is switched
        to ``context=False`` (what it sees at prediction time then matches training).
        """
        samples, scores, large, groups, scale_name = store_examples(store, mode=self.mode, where=where)
        if not self._scale_given:
            self.data_scale = GradeScale.named(scale_name)
        if isinstance(self.featurizer, TextFeaturizer):
            self.featurizer.context = False
        if self.target_option in ("gain", "no_worse") and np.isnan(large).all():
            raise ConfigError(
                f"target={self.target_option!r} needs verdicts on the large model's answers too: judge them in "
                "hindsight (`rpra judge --regenerate-large`)"
            )
        return self.fit(samples, scores, large_scores=large, groups=groups, source="store")

    # -- predicting ------------------------------------------------------------
    def predict_proba(self, samples: Sequence[Sample]) -> np.ndarray:
        """Grade distributions (one row per sample, columns in ``scale.labels`` order)."""
        if not self.fitted:
            raise PredictorError("the learned predictor is not trained: fit() or load() it first", predictor=self.name)
        X = self.featurizer.transform(samples)
        if self.knn is None:
            return self.model.proba(X)
        if self.neighbours is None:  # pragma: no cover - loading restores both or neither
            raise PredictorError("the neighbour member has no embedding model", predictor=self.name)
        shift = self.knn.shift(self.neighbours.vectors(samples))  # type: ignore[attr-defined]
        return OrdinalLogit.to_proba(OrdinalLogit.shifted(self.model.cumulative(X), shift))

    def keep_scores(self, samples: Sequence[Sample], metric: str = "expected_score") -> np.ndarray:
        """A keep-score per sample: ``expected_score`` or ``p_acceptable``."""
        proba = self.predict_proba(samples)
        if metric == "expected_score":
            return proba @ np.asarray(self.scale.values, dtype=float)
        if metric == "p_acceptable":
            return proba[:, self.scale.labels.index(self.scale.acceptable_from) :].sum(axis=1)
        raise ConfigError(f"metric must be 'expected_score' or 'p_acceptable', not {metric!r}")

    def predict(self, request: PredictionRequest) -> Prediction:
        """Predict the grade distribution for ``request``.

        Raises:
            PredictorError: when untrained, when draft mode gets no draft, or when
                featurizing fails (the graph then defers).
        """
        start = time.perf_counter()
        sample = Sample.from_request(request)
        if self.mode == "draft" and sample.draft is None:
            raise PredictorError(
                "this learned predictor was trained in draft mode and needs the small model's draft "
                "(use the verify paradigm, or train a request-mode predictor)",
                predictor=self.name,
            )
        try:
            row = self.predict_proba([sample])[0]
        except PredictorError:
            raise
        except Exception as exc:
            raise PredictorError(
                f"{type(exc).__name__} while featurizing the request: {str(exc)[:300]}", predictor=self.name
            ) from exc
        return Prediction.from_distribution(
            {lab: float(p) for lab, p in zip(self.scale.labels, row, strict=True)},
            scale=self.scale,
            predictor=self.name,
            version=self.version,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            method="learned",
        )

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict` (featurizers that call a model run in a thread)."""
        if getattr(self.featurizer, "blocking", False) or self.knn is not None:
            return await asyncio.to_thread(self.predict, request)
        return self.predict(request)


def _keep_spread(
    beta: np.ndarray, theta: np.ndarray, head_theta: np.ndarray, head_mean: float, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """The blend shrunk toward the head's mean score to the head's spread (``spread``: sd head / sd blend).

    Each member adds its share to the head's score, which widens it, and the head's own
    thresholds then put too much mass on the extreme grades. The blend's score ``L``
    (its constants ``theta - head_theta`` included) becomes ``r * L + (1 - r) * m``,
    ``m`` the head's mean score over the training rows: a monotone map, so one model's
    order of keep-scores is unchanged, and the head's thresholds fit again.
    Re-fitting the thresholds on the blend's out-of-fold score instead was measured and
    dropped: it moved them by fold noise (docs/LEARNED.md).
    """
    offset = float(np.mean(theta - head_theta))  # the members' constants: the same for every threshold
    return spread * beta, head_theta + spread * offset + (1.0 - spread) * head_mean


def _blend_record(choice: Any, ridge_block: str, knn_k: int) -> dict[str, Any]:
    """The second stage's record, naming the ridge member's block (older artifacts name none: words).

    ``spread``: where a member took part, the factor that keeps the head's spread (:func:`_keep_spread`).
    """
    record = choice.blend.record() if choice.blend is not None else {"used": []}
    if "ridge" in record:
        record["ridge"]["block"] = ridge_block
    if "gain" in record:
        record["gain"]["C"] = choice.member_C.get("gain")
    if "knn" in record:
        record["knn"]["k"] = int(knn_k)
    if record["used"]:
        record["spread"] = round(float(choice.spread), 6)
    return record


def _inner(options: Mapping[str, Any]) -> dict[str, int]:
    return {"folds": int(options["folds"]), "seed": int(options["seed"])}


def _data_hash(samples: Sequence[Sample], scores: np.ndarray) -> str:
    digest = hashlib.sha256()
    for s, score in zip(samples, scores, strict=True):
        row = [s.request, s.context, s.draft, s.task, s.kind, float(score)]
        digest.update(json.dumps(row, ensure_ascii=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _head_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of the ordinal head alone (``Cs``, ``folds``, ``seed``)."""
    return {k: options[k] for k in ("Cs", "folds", "seed")}
