"""The learned head's one-BLAS-thread limit: it applies inside and is undone after."""

from __future__ import annotations

import numpy as np
from threadpoolctl import ThreadpoolController

import rpra_agent.predictors._ordinal  # noqa: F401  (the solver's imports load SciPy's BLAS too, as in use)
from rpra_agent.predictors._threads import one_blas_thread


def _blas_threads() -> list[int]:
    return [int(info["num_threads"]) for info in ThreadpoolController().select(user_api="blas").info()]


def test_one_blas_thread_limits_every_blas_library_and_restores_the_limits() -> None:
    np.linalg.eigh(np.eye(3))
    before = _blas_threads()
    assert len(before) >= 2, "NumPy's and SciPy's BLAS were not both found, so the limit cannot be checked"
    with one_blas_thread():
        assert _blas_threads() == [1] * len(before)
        with one_blas_thread():  # nested, as fit() around fit_fixed()
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before
