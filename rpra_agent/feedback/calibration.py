"""Calibrate the deferral threshold from judged data, with a finite-sample guarantee.

Two modes, both returning a frozen :class:`Calibration` that is stored as a versioned
artifact (``kind="calibration"``) and turned into a
:class:`~rpra_agent.core.policy.ThresholdPolicy` by :func:`load_calibrated_policy`:

- **Target deferral rate** (:func:`calibrate_deferral_rate`): the threshold is a
  quantile of the keep-score distribution, as RouteLLM calibrates.
- **Target quality** (:func:`calibrate_quality`): the cheapest (least-deferring)
  threshold whose quality loss against always-large is at most ``epsilon`` with
  confidence ``1 - delta``.

The guarantee of the quality mode. Let the judged calibration items and future
requests be i.i.d. draws from one distribution (same small model, predictor and
judge). For a threshold ``t`` (defer when ``keep < t``), the per-item loss is
``L(t) = (q_large - q_small)_+ / (hi - lo) * 1{keep >= t}``: the normalised amount by
which keeping the small answer falls short of the large one. Its mean
``R(t) = E[L(t)]`` does not increase with ``t``. The threshold ``t_hat`` is the
lowest candidate such that a valid test (Hoeffding-Bentkus by default, exact binomial
for 0/1 scores; see :mod:`rpra_agent.feedback.bounds`) rejects ``R(t') >= epsilon``
at level ``delta`` for *every* threshold ``t' >= t_hat``: a fixed-sequence scan from
"defer everything" downward that stops at the first failure. Then, with probability
at least ``1 - delta`` over the calibration set,

    ``E[q_large - q_routed(t_hat)] <= E[(q_large - q_small)_+ * 1{keep >= t_hat}] <= epsilon``

(score units): the expected quality of the routed answers on a new request is within
``epsilon`` of always-large. The proof is that of risk-controlling prediction sets
(Bates et al., 2021, Thm. 1): if ``R(t_hat) > epsilon``, the test at the fixed
point ``t* = inf{t: R(t) <= epsilon}`` (where the null holds) rejected, which happens
with probability at most ``delta``. It is a bound on the expected loss, not on the
mean over a particular finite batch. If even "defer everything that was observed"
fails the test (too few judged items for this epsilon), the result is the most
deferring threshold with ``certified=False``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from rpra_agent.core.decision import utcnow
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.policy import ThresholdPolicy
from rpra_agent.core.prediction import Predictor
from rpra_agent.feedback.bounds import BOUNDS, BoundName, pvalues, upper_bound
from rpra_agent.store.base import DecisionStore

__all__ = [
    "ARTIFACT_KIND",
    "Calibration",
    "calibrate_deferral_rate",
    "calibrate_quality",
    "load_calibrated_policy",
    "load_calibration",
    "save_calibration",
    "warn_off_scale",
]

logger = logging.getLogger(__name__)

ARTIFACT_KIND = "calibration"
Mode = Literal["deferral_rate", "quality"]
POLICY_METRICS = ("p_acceptable", "expected_score")


@dataclass(frozen=True)
class Calibration:
    """A calibrated threshold and the evidence behind it.

    Attributes:
        threshold: Defer when the keep-score is below this.
        metric: What the keep-score is: ``p_acceptable`` or ``expected_score`` (usable
            by :class:`~rpra_agent.core.policy.ThresholdPolicy`), or another keep-score name.
        mode: ``deferral_rate`` or ``quality``.
        target: The target deferral rate, or ``epsilon`` in quality mode.
        n: Judged items the calibration used.
        deferral_rate: The deferral rate the threshold achieves on those items.
        epsilon: Tolerated expected quality loss against always-large (score units).
        delta: Allowed probability that the guarantee fails.
        bound: The ``1 - delta`` upper confidence bound of the loss at ``threshold``
            (score units).
        empirical_loss: The mean loss ``(q_large - q_small)_+`` over kept items,
            averaged over all ``n`` items (score units).
        certified: False when no threshold passed the test (quality mode).
        method: ``quantile`` or the bound used (``hoeffding-bentkus``, ``binomial`` ...).
        score_range: The judge's score range.
        predictor: Name of the predictor that produced the keep-scores.
        source: Where the judged data came from (dataset name or store URL).
        created_at: When the calibration was made.
        version: The artifact version once stored (``None`` before).
    """

    threshold: float
    metric: str
    mode: Mode
    target: float
    n: int
    deferral_rate: float
    epsilon: float | None = None
    delta: float | None = None
    bound: float | None = None
    empirical_loss: float | None = None
    certified: bool = True
    method: str = "quantile"
    score_range: tuple[float, float] = (0.0, 1.0)
    predictor: str = ""
    source: str = ""
    created_at: str = field(default_factory=utcnow)
    version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (the artifact payload)."""
        data = asdict(self)
        data["score_range"] = list(self.score_range)
        data.pop("version")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], version: int | None = None) -> Calibration:
        """Rebuild from :meth:`to_dict` output."""
        known = {f for f in cls.__dataclass_fields__ if f != "version"}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["score_range"] = tuple(float(x) for x in data.get("score_range", (0.0, 1.0)))
        return cls(**kwargs, version=version)

    def to_policy(self, **overrides: Any) -> ThresholdPolicy:
        """A :class:`ThresholdPolicy` with this threshold (``overrides`` set its other fields).

        Raises:
            ConfigError: if the keep-score is not a prediction metric a policy can read.
        """
        if self.metric not in POLICY_METRICS:
            raise ConfigError(
                f"this calibration is on keep-score {self.metric!r}, which a ThresholdPolicy cannot read; "
                f"calibrate a predictor's {' or '.join(POLICY_METRICS)}"
            )
        name = f"calibrated:v{self.version}" if self.version is not None else "calibrated"
        kwargs: dict[str, Any] = {"threshold": float(self.threshold), "metric": self.metric, "name": name}
        kwargs.update(overrides)
        return ThresholdPolicy(**kwargs)


def _keep_vector(keep_scores: ArrayLike) -> np.ndarray:
    keep = np.asarray(keep_scores, dtype=float)
    if keep.ndim != 1 or len(keep) == 0:
        raise ConfigError("calibration needs a non-empty list of keep-scores")
    if not np.all(np.isfinite(keep)):
        raise ConfigError("keep-scores contain NaN or infinite values; drop items without a prediction")
    return keep


def _upper_for(metric: str, upper: float | None) -> float | None:
    if upper is not None:
        return float(upper)
    return 1.0 if metric == "p_acceptable" else None


def _top_threshold(u_max: float, upper: float | None) -> float | None:
    """A threshold above every observed score (defers everything seen), if representable."""
    if upper is None:
        return float(np.nextafter(u_max, math.inf))
    return upper if upper > u_max else None


def calibrate_deferral_rate(
    keep_scores: ArrayLike,
    target_rate: float,
    *,
    metric: str = "p_acceptable",
    upper: float | None = None,
    predictor: str = "",
    source: str = "",
) -> Calibration:
    """The threshold whose deferral rate on ``keep_scores`` is closest to ``target_rate``.

    Candidates are the observed scores (a threshold at a score defers everything
    below it) and one above them all; ties go to the higher deferral rate.

    Args:
        keep_scores: The predictor's keep-score per judged (or unjudged) request.
        target_rate: Share of requests to defer, in [0, 1].
        metric: What the keep-scores are (``p_acceptable`` caps thresholds at 1).
        upper: The highest threshold allowed (default 1 for ``p_acceptable``).
        predictor: Recorded predictor name.
        source: Recorded data source.
    """
    if not 0.0 <= target_rate <= 1.0:
        raise ConfigError(f"the target deferral rate must lie in [0, 1], got {target_rate}")
    keep = _keep_vector(keep_scores)
    n = len(keep)
    values = np.unique(keep)
    thresholds = list(values)
    rates = list(np.searchsorted(np.sort(keep), values, side="left") / n)
    top = _top_threshold(float(values[-1]), _upper_for(metric, upper))
    if top is not None:
        thresholds.append(top)
        rates.append(float(np.mean(keep < top)))
    best = min(range(len(thresholds)), key=lambda i: (abs(rates[i] - target_rate), -rates[i]))
    return Calibration(
        threshold=float(thresholds[best]),
        metric=metric,
        mode="deferral_rate",
        target=float(target_rate),
        n=n,
        deferral_rate=float(rates[best]),
        method="quantile",
        predictor=predictor,
        source=source,
    )


def calibrate_quality(
    keep_scores: ArrayLike,
    small_quality: ArrayLike,
    large_quality: ArrayLike,
    *,
    epsilon: float,
    delta: float = 0.1,
    score_range: tuple[float, float] = (0.0, 1.0),
    metric: str = "p_acceptable",
    upper: float | None = None,
    bound: BoundName | Literal["auto"] = "auto",
    predictor: str = "",
    source: str = "",
) -> Calibration:
    """The cheapest threshold whose quality loss against always-large is at most ``epsilon`` w.p. ``1 - delta``.

    See the module docstring for the exact guarantee.

    Args:
        keep_scores: The predictor's keep-score per judged item.
        small_quality: The judge's score of the small answer per item.
        large_quality: The judge's score of the large answer per item.
        epsilon: Tolerated expected quality loss, in score units (e.g. 0.02 on 0/1
            correctness is two accuracy points).
        delta: Allowed failure probability of the guarantee, in (0, 1).
        score_range: ``(lo, hi)`` of the judge's scores.
        metric: What the keep-scores are (``p_acceptable`` caps thresholds at 1).
        upper: The highest threshold allowed (default 1 for ``p_acceptable``).
        bound: ``auto`` (exact ``binomial`` for 0/1 losses, else ``hoeffding-bentkus``)
            or a test from :mod:`rpra_agent.feedback.bounds`.
        predictor: Recorded predictor name.
        source: Recorded data source.
    """
    keep = _keep_vector(keep_scores)
    n = len(keep)
    small = np.asarray(small_quality, dtype=float)
    large = np.asarray(large_quality, dtype=float)
    if small.shape != keep.shape or large.shape != keep.shape:
        raise ConfigError(
            f"keep, small and large scores need one value per item ({n}), got {small.shape} and {large.shape}"
        )
    if not (np.all(np.isfinite(small)) and np.all(np.isfinite(large))):
        raise ConfigError("quality scores contain NaN; calibrate on items judged for both models")
    lo, hi = float(score_range[0]), float(score_range[1])
    if not hi > lo:
        raise ConfigError(f"score_range must be (lo, hi) with lo < hi, got {score_range}")
    if not 0.0 < epsilon < hi - lo:
        raise ConfigError(f"epsilon must lie in (0, {hi - lo}) score units, got {epsilon}")
    if not 0.0 < delta < 1.0:
        raise ConfigError(f"delta must lie in (0, 1), got {delta}")
    loss = np.clip((large - small) / (hi - lo), 0.0, 1.0)
    binary = bool(np.all((loss == 0.0) | (loss == 1.0)))
    if bound not in ("auto", *BOUNDS):
        raise ConfigError(f"unknown bound {bound!r}; use auto or one of {', '.join(BOUNDS)}")
    if bound == "auto":
        bound = "binomial" if binary else "hoeffding-bentkus"
    if bound == "binomial" and not binary:
        raise ConfigError("the binomial bound needs 0/1 losses (correctness data); use hoeffding-bentkus")
    eps = epsilon / (hi - lo)

    order = np.argsort(keep, kind="stable")
    sorted_keep, sorted_loss = keep[order], loss[order]
    values, first = np.unique(sorted_keep, return_index=True)
    suffix = np.r_[np.cumsum(sorted_loss[::-1])[::-1], 0.0]
    # Candidates from most to least deferral: (threshold, risk, deferral rate).
    cand_t = list(values[::-1])
    cand_r = list(suffix[first][::-1] / n)
    cand_d = list(first[::-1] / n)
    top = _top_threshold(float(values[-1]), _upper_for(metric, upper))
    if top is not None:
        cand_t.insert(0, top)
        cand_r.insert(0, 0.0)
        cand_d.insert(0, 1.0)
    passed = pvalues(cand_r, n, eps, bound) <= delta
    failures = np.flatnonzero(~passed)
    stop = int(failures[0]) if len(failures) else len(cand_t)
    certified = stop > 0
    pick = stop - 1 if certified else 0
    if not certified:
        logger.warning(
            "no threshold meets epsilon=%s at delta=%s with n=%d judged items; deferring everything observed",
            epsilon,
            delta,
            n,
        )
    return Calibration(
        threshold=float(cand_t[pick]),
        metric=metric,
        mode="quality",
        target=float(epsilon),
        n=n,
        deferral_rate=float(cand_d[pick]),
        epsilon=float(epsilon),
        delta=float(delta),
        bound=upper_bound(cand_r[pick], n, delta, bound) * (hi - lo),
        empirical_loss=float(cand_r[pick]) * (hi - lo),
        certified=certified,
        method=str(bound),
        score_range=(lo, hi),
        predictor=predictor,
        source=source,
    )


def save_calibration(store: DecisionStore, calibration: Calibration, name: str = "default") -> Calibration:
    """Store ``calibration`` as a new version of artifact ``("calibration", name)``.

    Returns:
        The calibration with its ``version`` set.
    """
    artifact = store.put_artifact(ARTIFACT_KIND, name, calibration.to_dict())
    logger.info(
        "stored calibration %s v%d: threshold %.4f on %s (%s)",
        name,
        artifact.version,
        calibration.threshold,
        calibration.metric,
        calibration.mode,
    )
    return replace(calibration, version=artifact.version)


def load_calibration(store: DecisionStore, name: str = "default") -> Calibration | None:
    """The latest stored calibration named ``name``, or ``None``."""
    artifact = store.latest_artifact(ARTIFACT_KIND, name)
    if artifact is None:
        return None
    return Calibration.from_dict(artifact.payload, version=artifact.version)


def load_calibrated_policy(store: DecisionStore, name: str = "default", **overrides: Any) -> ThresholdPolicy:
    """A :class:`ThresholdPolicy` at the latest calibrated threshold named ``name``.

    Args:
        store: The decision store holding the calibration artifact.
        name: The calibration's name.
        **overrides: Other ThresholdPolicy fields (``max_deferrals``, ``shadow`` ...).

    Raises:
        ConfigError: if no calibration of that name is stored, or it is not on a
            prediction metric.
    """
    calibration = load_calibration(store, name)
    if calibration is None:
        raise ConfigError(f"no calibration named {name!r} in the store; run `rpra calibrate --name {name} ...` first")
    if not calibration.certified:
        logger.warning("calibration %s v%s is not certified (too little judged data)", name, calibration.version)
    return calibration.to_policy(**overrides)


def warn_off_scale(policy: ThresholdPolicy, predictor: Predictor, calibration: str) -> bool:
    """Log a WARNING when a calibrated expected-score threshold lies off the predictor's scale.

    Such a threshold was calibrated on another predictor's scores (another grade scale,
    or a gain predictor's margin): every step would be kept, or every one deferred.

    Returns:
        Whether it warned.
    """
    scale = getattr(predictor, "scale", None)
    if policy.metric != "expected_score" or scale is None or scale.low <= policy.threshold <= scale.high:
        return False
    logger.warning(
        "calibration %r: threshold %.4g on expected_score lies outside predictor %s's scale %s (%g to %g), so every "
        "step will be %s; calibrate on decisions this predictor made (rpra calibrate --db URL --name %s)",
        calibration, policy.threshold, predictor.name, scale.name, scale.low, scale.high,
        "deferred" if policy.threshold > scale.high else "kept", calibration,
    )  # fmt: skip
    return True
