"""One BLAS thread for the small dense solves of the learned head and its members.

Small BLAS calls inside L-BFGS and the few-hundred-row solves run far slower with
several threads (spin-waiting), so those calls run with one. ``threadpool_limits()``
finds the loaded BLAS libraries again on every call, by reading the process's
memory maps: about 3.6 ms, paid some 300 times per cross-fitted MT-bench run, a
fifth of the learned predictor's fit time (``cProfile`` of ``crossfit_predictions``).
One :class:`threadpoolctl.ThreadpoolController`, made at the first solve (after NumPy
and SciPy have loaded their BLAS), finds them once and is reused.
"""

from __future__ import annotations

import functools
from typing import Any

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread() -> Any:
    """A context manager that limits the loaded BLAS libraries to one thread inside it."""
    return _controller().limit(limits=1, user_api="blas")
