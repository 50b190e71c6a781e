"""Finite-sample tests of "the mean loss is below epsilon" for losses in [0, 1].

Each p-value tests the null hypothesis ``R >= epsilon`` (``R``: the true mean loss)
from ``n`` i.i.d. losses with empirical mean ``r_hat``; under the null,
``P(p <= delta) <= delta``. These are the tests of risk-controlling prediction sets
(Bates et al., 2021) and Learn-then-Test (Angelopoulos et al., 2021):

- ``hoeffding``: ``exp(-2 n (epsilon - r_hat)_+^2)`` (Hoeffding's inequality);
- ``bentkus``: ``e * P(Binomial(n, epsilon) <= ceil(n r_hat))`` (Bentkus' inequality);
- ``hoeffding-bentkus``: the smaller of the two (valid: both hold at once);
- ``binomial``: ``P(Binomial(n, epsilon) <= n r_hat)``, exact for 0/1 losses only
  (the Clopper-Pearson test).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["BoundName", "pvalues", "upper_bound"]

BoundName = Literal["hoeffding", "bentkus", "hoeffding-bentkus", "binomial"]
BOUNDS: tuple[str, ...] = ("hoeffding", "bentkus", "hoeffding-bentkus", "binomial")


def pvalues(r_hat: ArrayLike, n: int, epsilon: float, bound: BoundName = "hoeffding-bentkus") -> np.ndarray:
    """p-values of ``H0: R >= epsilon`` for each empirical mean in ``r_hat``.

    Args:
        r_hat: Empirical mean losses (each in [0, 1]).
        n: Number of losses behind each mean.
        epsilon: The tolerated mean loss, in (0, 1).
        bound: Which test (see the module docstring).

    Returns:
        An array of p-values in [0, 1].
    """
    from scipy.special import bdtr  # P(Binomial(n, p) <= k)

    r = np.clip(np.asarray(r_hat, dtype=float), 0.0, 1.0)
    if n <= 0:
        return np.ones_like(r)
    if bound not in BOUNDS:
        raise ValueError(f"unknown bound {bound!r}; use one of {BOUNDS}")
    hoeffding = np.exp(-2.0 * n * np.clip(epsilon - r, 0.0, None) ** 2)
    if bound == "hoeffding":
        return np.asarray(hoeffding, dtype=float)
    if bound == "binomial":
        return np.asarray(bdtr(np.round(n * r), n, epsilon), dtype=float)
    bentkus = np.minimum(1.0, math.e * bdtr(np.ceil(n * r - 1e-9), n, epsilon))
    if bound == "bentkus":
        return np.asarray(bentkus, dtype=float)
    return np.asarray(np.minimum(hoeffding, bentkus), dtype=float)


def upper_bound(r_hat: float, n: int, delta: float, bound: BoundName = "hoeffding-bentkus") -> float:
    """The ``1 - delta`` upper confidence bound on the mean loss.

    It is the smallest ``epsilon`` that the test rejects at level ``delta`` (found by bisection).
    """
    if n <= 0:
        return 1.0
    if bound == "hoeffding":
        return float(min(1.0, max(r_hat, 0.0) + math.sqrt(math.log(1 / delta) / (2 * n))))
    if bound == "binomial":  # Clopper-Pearson
        from scipy.stats import beta

        k = round(float(r_hat) * n)
        return 1.0 if k >= n else float(beta.ppf(1 - delta, k + 1, n - k))
    lo, hi = float(np.clip(r_hat, 0.0, 1.0)), 1.0
    if pvalues([r_hat], n, hi, bound)[0] > delta:
        return 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if pvalues([r_hat], n, mid, bound)[0] <= delta:
            hi = mid
        else:
            lo = mid
    return hi
