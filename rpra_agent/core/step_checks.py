"""Small pure helpers of the step: sanity checks on predictions, the policy's options, the log line."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, is_dataclass
from typing import Any

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import PredictorError
from rpra_agent.core.prediction import Prediction
from rpra_agent.core.redact import scrub_secrets

__all__ = ["checked_prediction", "log_decision", "policy_options", "predictor_failure"]


def policy_options(obj: Any) -> Any:
    """A JSON-safe snapshot of a (dataclass) policy's options, recorded with each decision and run."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: v for k, v in asdict(obj).items() if isinstance(v, str | int | float | bool | type(None))}
    return {"name": str(getattr(obj, "name", type(obj).__name__))}


def log_decision(log: logging.Logger, decision: Decision) -> None:
    """The one INFO line per decision: route, reason, predicted grade, threshold, run."""
    pred = decision.prediction
    log.info(
        "rpra decision route=%s reason=%s kind=%s grade=%s p_ok=%s threshold=%.3f run=%s step=%d",
        decision.route,
        decision.reason,
        decision.kind,
        pred.grade if pred else "-",
        f"{pred.p_acceptable:.3f}" if pred else "-",
        decision.threshold,
        decision.run_id,
        decision.step,
    )


def checked_prediction(value: Any, predictor: Any) -> Prediction:
    """``value`` if it is a usable :class:`Prediction`, else :class:`PredictorError` (the step defers).

    A NaN or out-of-range probability would otherwise compare as "not below the
    threshold" and keep the small model: garbage must fail toward quality.
    """
    name = str(getattr(predictor, "name", type(predictor).__name__))
    if not isinstance(value, Prediction):
        raise PredictorError(f"the predictor returned {type(value).__name__}, not a Prediction", predictor=name)
    p, e = value.p_acceptable, value.expected_score
    if not (isinstance(p, int | float) and math.isfinite(p) and 0.0 <= p <= 1.0):
        raise PredictorError(f"the prediction's p_acceptable {p!r} is not a probability", predictor=name)
    if not (isinstance(e, int | float) and math.isfinite(e)):
        raise PredictorError(f"the prediction's expected_score {e!r} is not a finite number", predictor=name)
    return value


def predictor_failure(exc: Exception) -> str:
    """The recorded reason of a predictor failure: a PredictorError's message, else the type and message.

    Like a failed model leg's, the message is scrubbed of secrets and cut to 300
    characters, so a third-party predictor's ``ValueError("unknown label '0'")`` says
    what went wrong in the decision and in the WARNING line, not only ``ValueError``.

    Raises:
        GraphBubbleUp: re-raised untouched (interrupts are not failures).
    """
    reraise_control_flow(exc)
    if isinstance(exc, PredictorError):
        return str(exc)
    detail = scrub_secrets(str(exc))[:300]
    reason = f"the predictor raised {type(exc).__name__}" + (f": {detail}" if detail else "")
    logging.getLogger("rpra_agent.predictors").warning("%s; deferring", reason)
    return reason
