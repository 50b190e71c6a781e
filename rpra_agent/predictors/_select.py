"""Choosing the learned head's target and regularisation by inner validation on routing quality.

The target is ``small`` (the small answer's score) or ``gain`` (the small answer's
margin over the large one, ``small - large``). For each target, ``C`` runs over a short
ascending grid, warm-started along it (a few L-BFGS iterations each). Every candidate's
out-of-fold expected position is a keep-score, scored by its inner APGR
(:func:`~rpra_agent.predictors.ranking.routing_area`; Spearman with the labels when
the large scores are missing): the best ``C`` per target, then the target; the first target (``small``) is kept unless another beats it by more than
``0.5 / sqrt(n)``, about the inner APGR's noise (on 128 MT-bench turns the targets
trade places at random within 0.04). Without the large model's scores only ``small``
is possible. Only the training data take part: an outer cross-fit's held-out items
never choose.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.predictors._blend import KNN_K, PCR_MAX_ROWS, Blend, choose_member, neighbour_oof, ridge_oof
from rpra_agent.predictors._ordinal import OrdinalLogit, RowBasis
from rpra_agent.predictors.folds import fold_ids
from rpra_agent.predictors.ranking import routing_area, spearman

__all__ = ["NO_WORSE_SCALE", "HeadChoice", "choose_head", "target_positions"]

NO_WORSE_SCALE = GradeScale(("worse", "no_worse"), (0.0, 1.0), "no_worse", "no_worse")
"""The scale of ``target="no_worse"``: is the small answer graded at least as well as the large one?"""

logger = logging.getLogger(__name__)


@dataclass
class HeadChoice:
    """The winning candidate and what the inner validation measured.

    Attributes:
        target: The chosen target.
        C: The chosen regularisation.
        scores: Inner APGR (or minus the log-loss) per ``"target@C"``.
        oof: The winner's out-of-fold cumulative probabilities (``None`` without inner CV),
            with the blend's members added when they take part.
        blend: What the inner validation found about the second-stage members (``None`` when not tried).
        member_C: The regularisation of each member that is another target's head (``gain``).
        spread: Where a member takes part, the head's out-of-fold score sd over the
            blend's: the blend is shrunk by it toward the head's mean score, so that its
            spread, and with it the head's calibration, stays the head's (1: no member).
    """

    target: str
    C: float
    scores: dict[str, float] = field(default_factory=dict)
    oof: np.ndarray | None = None
    blend: Blend | None = None
    member_C: dict[str, float] = field(default_factory=dict)
    spread: float = 1.0


def target_positions(
    option: str, data_scale: GradeScale, small: np.ndarray, large: np.ndarray | None
) -> dict[str, tuple[GradeScale, np.ndarray]]:
    """Each candidate target's scale and label positions (NaN where unlabelled) for a target option.

    Raises:
        ConfigError: when ``gain`` or ``no_worse`` is asked for without large scores.
    """
    has_large = large is not None and not np.isnan(large).all()
    if option in ("gain", "no_worse") and not has_large:
        raise ConfigError(f"target={option!r} needs large_scores: the large model's score of every sample")
    out: dict[str, tuple[GradeScale, np.ndarray]] = {}
    if option in ("auto", "small"):
        out["small"] = (data_scale, np.array([data_scale.position(v) for v in small]))
    if large is not None and (option == "gain" or (option == "auto" and has_large)):
        margin = data_scale.margin()
        out["gain"] = (margin, np.array([margin.position(d) for d in small - large]))
    if option == "no_worse" and large is not None:
        no_worse = np.where(np.isnan(small) | np.isnan(large), np.nan, (small >= large).astype(float))
        out["no_worse"] = (NO_WORSE_SCALE, no_worse)
    return out


def _rank_keep(
    keep: np.ndarray, y: np.ndarray, weak: np.ndarray | None, strong: np.ndarray | None, by_area: bool
) -> float:
    value = routing_area(weak, strong, keep) if by_area else spearman(y, keep)  # type: ignore[arg-type]
    return -math.inf if math.isnan(value) else value


def _rank_score(
    cumulative: np.ndarray, y: np.ndarray, weak: np.ndarray | None, strong: np.ndarray | None, by_area: bool
) -> float:
    return _rank_keep(OrdinalLogit.expected_position(cumulative), y, weak, strong, by_area)


def choose_head(
    X: sparse.csr_matrix,
    positions: Mapping[str, np.ndarray],
    n_labels: Mapping[str, int],
    *,
    weak: np.ndarray | None,
    strong: np.ndarray | None,
    groups: Sequence[Any] | None,
    Cs: Sequence[float],
    folds: int,
    seed: int,
    ridge_columns: np.ndarray | None = None,
    ridge_weight: float = 0.0,
    length_column: int | None = None,
    length_weight: float = 0.0,
    gain_weight: float = 0.0,
    pcr_columns: np.ndarray | None = None,
    pcr_weight: float = 0.0,
    pcr_ranks: Sequence[int] = (),
    neighbours: np.ndarray | None = None,
    knn_weight: float = 0.0,
    knn_k: int = KNN_K,
) -> HeadChoice:
    """Score every (target, C) candidate by inner cross-validation and return the best.

    Args:
        X: The training features.
        positions: Each candidate target's label positions (``small``, ``gain`` ...).
        n_labels: Each target's number of grades.
        weak: The small model's scores (for the inner APGR); ``None`` to use log-loss.
        strong: The large model's scores, or ``None``.
        groups: Conversation keys (turns of one conversation share an inner fold).
        Cs: The regularisation grid.
        folds: Inner folds.
        seed: Seed of the inner folds.
        ridge_columns: The columns a ridge member regresses on (``None``: no ridge member).
        ridge_weight: The ridge member's share (:mod:`~rpra_agent.predictors._blend`).
        length_column: The column of the draft's log length (``None``: no length member).
        length_weight: The length member's share.
        gain_weight: Where ``small`` is chosen and ``gain`` is a candidate, the share of
            the ``gain`` head (at its own best ``C``) as a member; it joins only where its
            inner figure is at least the chosen head's.
        pcr_columns: The columns of the principal-component member (``None``: none).
        pcr_weight: Its share; it joins as the ridge does (tried up to
            :data:`~rpra_agent.predictors._blend.PCR_MAX_ROWS` rows).
        pcr_ranks: Its ranks (:data:`~rpra_agent.predictors._blend.PCR_RANKS`).
        neighbours: The training requests' unit embeddings (``None``: no neighbour member).
        knn_weight: The neighbour member's share; it joins as the ridge does.
        knn_k: How many neighbours it averages.
    """
    grid = sorted(float(c) for c in Cs)
    targets = list(positions)
    n = X.shape[0]
    units = len(set(map(str, groups))) if groups is not None else n
    if (len(targets) == 1 and len(grid) == 1) or n < 2 * folds or units < folds:
        return HeadChoice(targets[0], grid[-1] if n < 2 * folds else grid[0])
    fold = fold_ids(n, folds, seed, groups=groups)
    by_area = weak is not None and strong is not None and float(np.mean(strong) - np.mean(weak)) != 0.0
    margin = 0.5 / math.sqrt(n)
    best: HeadChoice | None = None
    best_area = -math.inf
    scores: dict[str, float] = {}
    best_C: dict[str, float] = {}
    oofs = {t: {C: np.zeros((n, n_labels[t] - 1)) for C in grid} for t in targets}
    linear = {t: {C: np.zeros(n) for C in grid} for t in targets}
    for f in range(folds):
        train, test = fold != f, fold == f
        if not test.any() or not train.any():
            continue
        X_train, X_test = X[train], X[test]
        basis = RowBasis.if_faster(X_train)  # shared by every target and C
        for target in targets:
            y, k = positions[target], n_labels[target]
            model, w = OrdinalLogit(k, C=grid[0]), None
            for C in grid:
                w = model.fit_fixed(X_train, y[train], C, start=w, basis=basis)
                oofs[target][C][test] = model.cumulative(X_test)
                linear[target][C][test] = model.score(X_test)
    for target in targets:
        y, oof = positions[target], oofs[target]
        # C by the inner routing quality (APGR; Spearman with the labels without large scores):
        # the log-loss prefers heavy shrinkage where the signal is weak, which ranks worse.
        crit = {C: -_rank_score(oof[C], y, weak, strong, by_area) for C in grid}
        C = best_C[target] = min(grid, key=lambda c: (crit[c], c))
        scores.update({f"{target}@{c:g}": round(-v, 5) for c, v in crit.items()})
        area = -crit[C]
        # The first target is the default; another must route better by more than the noise (0.5/sqrt(n)).
        if best is None or area > best_area + margin:
            best, best_area = HeadChoice(target, C, {}, oof[C]), area
    if best is None:  # pragma: no cover - targets and grid are non-empty
        raise RuntimeError("no head candidate was scored")
    best.scores = scores
    y = positions[best.target]
    head_score = linear[best.target][best.C]

    def rank(keep: np.ndarray) -> float:
        return _rank_keep(keep, y, weak, strong, by_area)

    best.blend = Blend(best_area)
    if ridge_columns is not None and ridge_weight > 0:
        ridge = ridge_oof(X[:, ridge_columns], y, fold)
        best.blend.members.append(
            choose_member("ridge", head_score, best_area, ridge, rank, weight=ridge_weight, tolerance=1 / math.sqrt(n))
        )
    if pcr_columns is not None and pcr_weight > 0 and pcr_ranks and n <= PCR_MAX_ROWS:
        pcr = ridge_oof(X[:, pcr_columns], y, fold, ranks=pcr_ranks)
        best.blend.members.append(
            choose_member("pcr", head_score, best_area, pcr, rank, weight=pcr_weight, tolerance=1 / math.sqrt(n))
        )
    if neighbours is not None and knn_weight > 0:
        knn = neighbour_oof(neighbours, y, fold, knn_k)
        best.blend.members.append(
            choose_member("knn", head_score, best_area, knn, rank, weight=knn_weight, tolerance=1 / math.sqrt(n))
        )
    if length_column is not None and length_weight > 0:
        length = np.asarray(X[:, length_column].toarray()).ravel()
        best.blend.members.append(
            choose_member("length", head_score, best_area, length, rank, weight=length_weight, tolerance=0.0)
        )
    if gain_weight > 0 and best.target == "small" and "gain" in targets:
        # The other target's head errs differently (the margin over the large answer, not the
        # small score); it joins where it routes at least as well on the inner folds.
        member = choose_member(
            "gain", head_score, best_area, linear["gain"][best_C["gain"]], rank, weight=gain_weight, tolerance=0.0
        )
        best.blend.members.append(member)
        best.member_C["gain"] = best_C["gain"]
    shift = best.blend.shift()
    if shift is not None and best.oof is not None:
        # Members widen the score; shrink the blend toward the head's mean to the head's
        # spread (a monotone map), so the head's thresholds stay calibrated:
        # logit = theta + r * (head + shift) + (1 - r) * mean(head).
        blended_sd = float(np.std(head_score + shift))
        best.spread = float(np.std(head_score)) / blended_sd if blended_sd > 1e-12 else 1.0
        r = best.spread
        best.oof = OrdinalLogit.shifted(best.oof, r * shift - (1.0 - r) * (head_score - float(np.mean(head_score))))
    logger.debug("learned head: %s@%s chosen by inner validation (%s)", best.target, best.C, scores)
    return best
