"""The ordinal head's row-space solver finds the same optimum as the feature-space one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from rpra_agent.predictors import _ordinal
from rpra_agent.predictors._ordinal import OrdinalLogit, RowBasis


def _problem(n: int = 60, d: int = 400, seed: int = 0) -> tuple[sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sparse.random(n, d, density=0.05, random_state=seed, format="csr")
    signal = np.asarray(X @ rng.normal(size=d)).ravel()
    y = np.clip(np.round(1 + signal + rng.normal(scale=0.5, size=n) / 2), 0, 2)
    y[::7] = 1.5  # fractional positions (soft targets) too
    return X, y


def _fit(X: sparse.csr_matrix, y: np.ndarray, C: float, rowspace: bool, start: np.ndarray | None = None) -> np.ndarray:
    model = OrdinalLogit(3, C=C)
    basis = RowBasis(X) if rowspace else None
    old = _ordinal._ROWSPACE_MAX_ROWS
    _ordinal._ROWSPACE_MAX_ROWS = 0  # no automatic choice: the explicit basis decides
    try:
        return model.fit_fixed(X, y, C, start=start, basis=basis)
    finally:
        _ordinal._ROWSPACE_MAX_ROWS = old


@pytest.mark.parametrize("C", [0.03, 1.0, 30.0])
def test_row_space_reaches_the_feature_space_optimum(C: float) -> None:
    X, y = _problem()
    features = _fit(X, y, C, rowspace=False)
    rows = _fit(X, y, C, rowspace=True)
    scale = max(1.0, float(np.abs(features).max()))
    assert np.abs(rows - features).max() < 2e-3 * scale
    # the weights lie in the row space, as the representer theorem says
    basis = RowBasis(X)
    beta = rows[: X.shape[1]]
    assert np.allclose(basis.to_beta(basis.to_gamma(beta)), beta, atol=1e-8)


def _objective(X: sparse.csr_matrix, y: np.ndarray, C: float, w: np.ndarray) -> float:
    beta, theta = w[: X.shape[1]], w[X.shape[1] :]
    z = np.asarray(X @ beta).ravel()[:, None] + theta[None, :]
    targets = _ordinal.threshold_targets(y, 3)
    return float(C * (np.logaddexp(0.0, z) - targets * z).sum() + 0.5 * beta @ beta)


def test_warm_start_from_another_fit_is_projected() -> None:
    X, y = _problem(seed=1)
    cold = _fit(X, y, 1.0, rowspace=True)
    warm = _fit(X, y, 1.0, rowspace=True, start=_fit(X, y, 0.1, rowspace=False))
    # both stop within L-BFGS's tolerance of the one optimum
    assert abs(_objective(X, y, 1.0, warm) - _objective(X, y, 1.0, cold)) < 1e-4 * _objective(X, y, 1.0, cold)
    model = OrdinalLogit(3)
    model.beta, model.theta = cold[: X.shape[1]], cold[X.shape[1] :]
    p_cold = model.cumulative(X)
    model.beta, model.theta = warm[: X.shape[1]], warm[X.shape[1] :]
    assert np.abs(model.cumulative(X) - p_cold).max() < 5e-3
    # a start far from the optimum (not projected, it would be outside the row space) still lands there
    far = np.concatenate([np.ones(X.shape[1]), np.zeros(2)])
    assert _objective(X, y, 1.0, _fit(X, y, 1.0, rowspace=True, start=far)) < 1.0001 * _objective(X, y, 1.0, cold)


def test_basis_is_orthonormal_and_reproduces_the_rows() -> None:
    X, _ = _problem(n=30, d=200, seed=2)
    basis = RowBasis(X)
    assert basis.Z.shape[0] == 30 and basis.Z.shape[1] <= 30
    gamma = np.random.default_rng(0).normal(size=basis.Z.shape[1])
    beta = basis.to_beta(gamma)
    assert np.allclose(np.asarray(X @ beta).ravel(), basis.Z @ gamma)
    assert np.isclose(beta @ beta, gamma @ gamma)


def test_the_choice_follows_the_shape() -> None:
    wide = sparse.random(100, 20_000, density=0.01, format="csr", random_state=0)
    tall = sparse.random(2_000, 20_000, density=0.01, format="csr", random_state=0)
    narrow = sparse.random(100, 50, density=0.5, format="csr", random_state=0)
    assert RowBasis.suits(wide)
    assert not RowBasis.suits(tall)  # more rows than the cap
    assert not RowBasis.suits(narrow)  # fewer features than rows: the feature space is cheaper
