"""A calibrated ordinal classifier: cumulative (proportional-odds) logistic regression.

For grades ``0 < 1 < ... < K-1`` the model is ``P(grade >= k) = sigmoid(x . beta + theta_k)``
for every threshold ``k = 1 .. K-1``: one weight vector shared by the thresholds (so a
grade seen rarely still borrows strength from the others) and one intercept per
threshold. It minimises the all-threshold log-loss (each threshold is a calibrated
logistic regression) plus an L2 penalty, with L-BFGS. Differencing the cumulative
probabilities gives the grade distribution. With two grades it is plain logistic
regression.

Labels are *positions* on the scale (:meth:`~rpra_agent.core.grades.GradeScale.position`):
a whole number is a grade's index, a fraction lies between two grades (a score of 8.5
on 1-10, or 0.37 on a continuous 0-1 scale), and its threshold targets are soft
(``P(grade >= 9)`` has target 0.5 for 8.5). So continuous and half scores are modelled
as they are, never rounded; the expected position of the fitted distribution
estimates the expected score.

:meth:`OrdinalLogit.fit` chooses the regularisation ``C`` by an inner
cross-validation on the training data only (mean all-threshold log-loss) and keeps the
out-of-fold probabilities at the chosen ``C`` for honest metrics;
:meth:`OrdinalLogit.fit_fixed` fits one ``C`` (warm-startable).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from rpra_agent.core.errors import ConfigError
from rpra_agent.predictors._threads import one_blas_thread
from rpra_agent.predictors.folds import fold_ids

__all__ = ["DEFAULT_CS", "OrdinalLogit", "RowBasis", "threshold_targets"]

logger = logging.getLogger(__name__)

DEFAULT_CS: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)
_EPS = 1e-6
_FTOL = 1e-6
"""L-BFGS's relative loss tolerance: routing quality is unchanged from scipy's 2.2e-9 on the bundled
data (MT-bench 0.731 / 0.753, arena 0.531 over three seeds) and a fit takes about 25 % less time."""


_ROWSPACE_MAX_ROWS = 600
"""Never solve in the row space above this many rows: its Gram matrix and eigendecomposition grow as
the square and the cube (on GSM8K's 880-row inner folds the row space was already slower)."""
_LBFGS_FLOPS_PER_DIM = 40
"""About what one L-BFGS step costs per variable (a history of 10 pairs), to weigh the two solvers."""


class RowBasis:
    """An orthonormal basis of the row space of ``X``, for solving an L2-penalised linear model exactly in it.

    With ``X = U diag(s) V^T`` (thin SVD over the non-zero singular values), every
    weight vector ``beta`` that an L2 penalty admits at the optimum lies in the span
    of ``V``'s columns (the representer theorem), and ``beta = V gamma`` gives
    ``X beta = Z gamma`` with ``Z = U diag(s)`` and ``|beta| = |gamma|``. So the
    model is fitted over ``gamma``, with ``r <= n`` dense columns instead of ``d``
    sparse ones, and the same optimum and conditioning. With a few hundred rows and
    tens of thousands of TF-IDF columns that is several times faster.

    Args:
        X: The training features (``n`` rows).
    """

    def __init__(self, X: sparse.csr_matrix) -> None:
        gram = np.asarray((X @ X.T).toarray(), dtype=np.float64)
        with one_blas_thread():  # threads cost more than they save at this size
            lam, U = np.linalg.eigh(gram)
        keep = lam > max(float(lam.max()), 0.0) * 1e-10
        self.X = X
        self.s = np.sqrt(lam[keep])
        self.U = U[:, keep]
        self.Z = self.U * self.s

    @staticmethod
    def suits(X: sparse.csr_matrix) -> bool:
        """Whether solving in the row space is the faster way for ``X``.

        One step costs about ``2 n^2`` there against ``2 nnz + 40 d`` over the features;
        with at most 600 rows, that picks the row space for MT-bench and the
        arena (2-3x faster) and the features for GSM8K's 1,000-row folds, where the row
        space is slower (``benchmarks/bench_learned.py --solver`` times both).
        """
        n, d = X.shape
        return 0 < n <= _ROWSPACE_MAX_ROWS and 2 * n * n < 2 * X.nnz + _LBFGS_FLOPS_PER_DIM * d

    @classmethod
    def if_faster(cls, X: sparse.csr_matrix) -> RowBasis | None:
        """A basis of ``X``'s rows when :meth:`suits` says solving there is faster, else ``None``."""
        return cls(X) if cls.suits(X) else None

    def to_gamma(self, beta: np.ndarray) -> np.ndarray:
        """The row-space coordinates of ``beta``'s projection on the row space."""
        return (self.U.T @ np.asarray(self.X @ beta).ravel()) / self.s

    def to_beta(self, gamma: np.ndarray) -> np.ndarray:
        """The weight vector ``V gamma`` in feature space."""
        return np.asarray(self.X.T @ (self.U @ (gamma / self.s))).ravel()


def threshold_targets(y: np.ndarray, n_labels: int) -> np.ndarray:
    """Soft targets of ``P(grade >= k)``, ``k = 1 .. n_labels - 1``, for label positions ``y``."""
    return np.clip(np.asarray(y, dtype=float)[:, None] - np.arange(n_labels - 1)[None, :], 0.0, 1.0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


class OrdinalLogit:
    """Proportional-odds logistic model over ``n_labels`` ordered grades.

    Args:
        n_labels: Number of grades.
        Cs: Candidate inverse regularisation strengths (inner CV picks one).
        C: A fixed ``C`` (the inner CV then only measures it).
        folds: Inner cross-validation folds (at least 2).
        seed: Seed of the inner fold assignment.
    """

    def __init__(
        self,
        n_labels: int,
        *,
        Cs: Sequence[float] = DEFAULT_CS,
        C: float | None = None,
        folds: int = 3,
        seed: int = 0,
    ) -> None:
        if n_labels < 2:
            raise ConfigError("an ordinal model needs at least two grades")
        if C is None and not Cs:
            raise ConfigError("give C or a non-empty Cs grid")
        if folds < 2:
            raise ConfigError(f"the inner cross-validation needs at least 2 folds, got {folds}")
        if any(c <= 0 for c in Cs) or (C is not None and C <= 0):
            raise ConfigError("C values must be positive")
        self.n_labels = int(n_labels)
        self.Cs = tuple(sorted(float(c) for c in Cs))
        self.C = None if C is None else float(C)
        self.folds = int(folds)
        self.seed = int(seed)
        self.beta = np.zeros(0)
        self.theta = np.zeros(n_labels - 1)
        self.cv_loss: dict[str, float] = {}
        self.oof_cumulative: np.ndarray | None = None

    # -- fitting ---------------------------------------------------------------
    def _fit_once(
        self,
        X: sparse.csr_matrix,
        y: np.ndarray,
        C: float,
        start: np.ndarray | None = None,
        basis: RowBasis | None = None,
    ) -> np.ndarray:
        """Minimise ``C * (all-threshold log-loss) + |beta|^2 / 2``; returns ``[beta, theta]``.

        Solved in the row space of ``X`` (exactly the same optimum) when
        :meth:`RowBasis.suits` says it is faster, or when ``basis`` is given.
        """
        d = X.shape[1]
        targets = threshold_targets(y, self.n_labels)
        if basis is None:
            basis = RowBasis.if_faster(X)
        if start is None:
            rate = (targets.sum(axis=0) + 0.5) / (len(y) + 1.0)
            theta0 = np.log(rate / (1.0 - rate))
            beta0 = np.zeros(basis.Z.shape[1] if basis is not None else d)
        else:
            theta0 = start[d:]
            beta0 = basis.to_gamma(start[:d]) if basis is not None else start[:d]
        design: Any = basis.Z if basis is not None else X
        design_t: Any = basis.Z.T if basis is not None else X.T.tocsr()
        p = len(beta0)

        def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
            beta, theta = w[:p], w[p:]
            z = np.asarray(design @ beta).ravel()[:, None] + theta[None, :]
            loss = (np.logaddexp(0.0, z) - targets * z).sum()
            g = _sigmoid(z) - targets
            grad_beta = C * np.asarray(design_t @ g.sum(axis=1)).ravel() + beta
            return float(C * loss + 0.5 * beta @ beta), np.concatenate([grad_beta, C * g.sum(axis=0)])

        result = minimize(
            objective,
            np.concatenate([beta0, theta0]),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 1000, "ftol": _FTOL, "gtol": 1e-5},
        )
        if not result.success:
            logger.debug("ordinal model: L-BFGS stopped early (%s)", result.message)
        w = np.asarray(result.x, dtype=np.float64)
        if basis is not None:
            return np.concatenate([basis.to_beta(w[:p]), w[p:]])
        return w

    def _check(self, X: Any, y: Sequence[float] | np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
        X = sparse.csr_matrix(X, dtype=np.float64)
        y = np.asarray(y, dtype=float)
        if len(y) != X.shape[0]:
            raise ConfigError(f"{X.shape[0]} feature rows but {len(y)} labels")
        if len(y) == 0 or np.isnan(y).any() or y.min() < 0 or y.max() > self.n_labels - 1:
            raise ConfigError(f"labels must be grade positions in [0, {self.n_labels - 1}]")
        return X, y

    def fit(self, X: Any, y: Sequence[float] | np.ndarray, groups: Sequence[Any] | None = None) -> OrdinalLogit:
        """Fit on features ``X`` and grade positions ``y`` (0 = worst; fractions between grades).

        ``C`` is chosen from ``Cs`` by the inner cross-validation (or ``C`` is scored
        alone, for honest metrics); ``groups`` keeps related items (e.g. turns of one
        conversation) in one inner fold.
        """
        X, y = self._check(X, y)
        units = len(set(map(str, groups))) if groups is not None else len(y)
        # Small BLAS calls inside L-BFGS run far slower with several threads (spin-waiting).
        with one_blas_thread():
            grid = self.Cs if self.C is None else (self.C,)
            cv = len(y) >= 2 * self.folds and units >= self.folds
            self.C = float(self._select_C(X, y, groups, grid) if cv else grid[-1])
            w = self._fit_once(X, y, self.C)
        self.beta, self.theta = w[: X.shape[1]], np.minimum.accumulate(w[X.shape[1] :])
        return self

    def fit_fixed(
        self,
        X: Any,
        y: Sequence[float] | np.ndarray,
        C: float,
        start: np.ndarray | None = None,
        basis: RowBasis | None = None,
    ) -> np.ndarray:
        """Fit at one ``C`` (no inner CV); returns the weights ``[beta, theta]`` to warm-start another fit.

        ``basis`` (a :class:`RowBasis` of this ``X``) is reused across fits on the same rows.
        """
        X, y = self._check(X, y)
        with one_blas_thread():
            w = self._fit_once(X, y, float(C), start=start, basis=basis)
        self.C = float(C)
        self.beta, self.theta = w[: X.shape[1]], np.minimum.accumulate(w[X.shape[1] :])
        return w

    def _select_C(
        self, X: sparse.csr_matrix, y: np.ndarray, groups: Sequence[Any] | None, grid: Sequence[float]
    ) -> float:
        fold = fold_ids(len(y), self.folds, self.seed, groups=groups)
        oof = {C: np.zeros((len(y), self.n_labels - 1)) for C in grid}
        d = X.shape[1]
        for f in range(self.folds):
            train, test = fold != f, fold == f
            if not test.any() or not train.any():
                continue
            w, Xf = None, X[train]
            basis = RowBasis.if_faster(Xf)
            for C in grid:  # ascending C, warm-started
                w = self._fit_once(Xf, y[train], C, start=w, basis=basis)
                oof[C][test] = self._cumulative(X[test], w[:d], np.minimum.accumulate(w[d:]))
        targets = threshold_targets(y, self.n_labels)
        for C, cum in oof.items():
            p = np.clip(cum, _EPS, 1 - _EPS)
            self.cv_loss[repr(C)] = float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum(axis=1).mean())
        best = min(grid, key=lambda c: (self.cv_loss[repr(c)], c))
        self.oof_cumulative = oof[best]
        logger.debug("ordinal model: C=%s chosen by inner CV (losses %s)", best, self.cv_loss)
        return best

    # -- predicting ------------------------------------------------------------
    @staticmethod
    def _cumulative(X: Any, beta: np.ndarray, theta: np.ndarray) -> np.ndarray:
        z = np.asarray(X @ beta).reshape(-1)[:, None] + theta[None, :]
        return np.minimum.accumulate(_sigmoid(z), axis=1)

    def cumulative(self, X: Any) -> np.ndarray:
        """``P(grade >= k)`` for ``k = 1 .. K-1``, non-increasing along each row."""
        return self._cumulative(sparse.csr_matrix(X, dtype=np.float64), self.beta, self.theta)

    def score(self, X: Any) -> np.ndarray:
        """The linear score ``x . beta``: every cumulative probability increases with it."""
        return np.asarray(sparse.csr_matrix(X, dtype=np.float64) @ self.beta).reshape(-1)

    @staticmethod
    def expected_position(cumulative: np.ndarray) -> np.ndarray:
        """The expected grade position: the sum of the cumulative probabilities of a row."""
        return np.asarray(cumulative).sum(axis=1)

    @staticmethod
    def shifted(cumulative: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Cumulative probabilities with ``delta`` (one value per row) added to the linear score.

        Every threshold's logit moves by the row's ``delta``: the model's own
        probabilities at the score ``x . beta + delta``.
        """
        p = np.clip(cumulative, 1e-12, 1.0 - 1e-12)
        z = np.log(p) - np.log1p(-p) + np.asarray(delta, dtype=np.float64)[:, None]
        return np.minimum.accumulate(_sigmoid(np.clip(z, -35.0, 35.0)), axis=1)

    @staticmethod
    def to_proba(cumulative: np.ndarray) -> np.ndarray:
        """Difference cumulative probabilities into a distribution over the grades."""
        n = cumulative.shape[0]
        upper = np.hstack([np.ones((n, 1)), cumulative])
        lower = np.hstack([cumulative, np.zeros((n, 1))])
        return np.clip(upper - lower, 0.0, 1.0)

    def proba(self, X: Any) -> np.ndarray:
        """The distribution over the grades, one row per sample."""
        return self.to_proba(self.cumulative(X))

    # -- persistence -----------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """JSON description (chosen ``C`` and the inner-CV losses)."""
        return {
            "kind": "ordinal_logit",
            "n_labels": self.n_labels,
            "C": self.C,
            "Cs": list(self.Cs),
            "folds": self.folds,
            "seed": self.seed,
            "cv_loss": dict(self.cv_loss),
        }

    def state(self) -> dict[str, np.ndarray]:
        """Weights and threshold intercepts."""
        return {"beta": self.beta, "theta": self.theta}

    @classmethod
    def from_state(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> OrdinalLogit:
        """Rebuild from :meth:`config` and :meth:`state`."""
        if config.get("kind") != "ordinal_logit":
            raise ConfigError(f"unknown classifier kind {config.get('kind')!r}")
        self = cls(
            int(config["n_labels"]),
            Cs=[float(c) for c in config["Cs"]],
            C=None if config["C"] is None else float(config["C"]),
            folds=int(config["folds"]),
            seed=int(config["seed"]),
        )
        self.cv_loss = {str(k): float(v) for k, v in config.get("cv_loss", {}).items()}
        beta = np.asarray(arrays["beta"], dtype=np.float64)
        theta = np.asarray(arrays["theta"], dtype=np.float64)
        if beta.ndim != 1 or theta.shape != (self.n_labels - 1,):
            raise ConfigError("the classifier's arrays do not match its number of grades")
        self.beta, self.theta = beta, theta
        return self
