"""rpra_agent: a small local model predicts its judge's grade and defers to a large model when it is low.

A step flows one way: plan/reason → predictor → policy → route (small | large | tools) → store.
The step is written once (:mod:`rpra_agent.core.step`); the LangGraph graph
(:func:`build_rpra_graph`) and the ``create_agent`` middleware (:class:`RPRAMiddleware`)
are thin adapters that drive it.

Names that need an extra (numpy for calibration, scikit-learn for learned routing) or
pull in LangGraph (the graph, the middleware, the store) load on first use, so
``import rpra_agent`` needs only the core install and takes a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rpra_agent.core.errors import (
    ConfigError,
    DatasetError,
    JudgeError,
    ModelCallError,
    ModelStringError,
    PredictorError,
    RPRAError,
    StoreError,
)
from rpra_agent.core.faults import FaultPolicy
from rpra_agent.core.grades import GradeScale

if TYPE_CHECKING:
    from rpra_agent.core.decision import Decision, LegUsage
    from rpra_agent.core.policy import AlwaysLarge, AlwaysSmall, DeferralPolicy, PolicyContext, Route, ThresholdPolicy
    from rpra_agent.core.prediction import Prediction, PredictionRequest, Predictor
    from rpra_agent.core.verdict import Verdict
    from rpra_agent.feedback import LLMJudge, ReportCard, build_report_cards, report_card_loader
    from rpra_agent.feedback.calibration import Calibration, load_calibrated_policy
    from rpra_agent.graph import RPRAState, build_rpra_graph, decisions_from_state
    from rpra_agent.middleware import RPRAMiddleware
    from rpra_agent.predictors import FineTunedPredictor, ReportCardPredictor, SelfPredictor, ZeroShotPredictor
    from rpra_agent.store import Artifact, DecisionFilter, DecisionStore, InMemoryDecisionStore, open_store

__version__ = "0.1.0"

__all__ = [
    "AlwaysLarge",
    "AlwaysSmall",
    "Artifact",
    "Calibration",
    "ConfigError",
    "DatasetError",
    "Decision",
    "DecisionFilter",
    "DecisionStore",
    "DeferralPolicy",
    "FaultPolicy",
    "FineTunedPredictor",
    "GradeScale",
    "InMemoryDecisionStore",
    "JudgeError",
    "LLMJudge",
    "LegUsage",
    "ModelCallError",
    "ModelStringError",
    "PolicyContext",
    "Prediction",
    "PredictionRequest",
    "Predictor",
    "PredictorError",
    "RPRAError",
    "RPRAMiddleware",
    "RPRAState",
    "ReportCard",
    "ReportCardPredictor",
    "Route",
    "SelfPredictor",
    "StoreError",
    "ThresholdPolicy",
    "Verdict",
    "ZeroShotPredictor",
    "build_report_cards",
    "build_rpra_graph",
    "decisions_from_state",
    "load_calibrated_policy",
    "open_store",
    "report_card_loader",
]

# LangGraph, LangChain's agents and the store load on first use, so `import rpra_agent`
# (and `rpra --help`) stays fast.
_LAZY = {
    "Decision": "rpra_agent.core.decision",
    "LegUsage": "rpra_agent.core.decision",
    "AlwaysLarge": "rpra_agent.core.policy",
    "AlwaysSmall": "rpra_agent.core.policy",
    "DeferralPolicy": "rpra_agent.core.policy",
    "PolicyContext": "rpra_agent.core.policy",
    "Route": "rpra_agent.core.policy",
    "ThresholdPolicy": "rpra_agent.core.policy",
    "Prediction": "rpra_agent.core.prediction",
    "PredictionRequest": "rpra_agent.core.prediction",
    "Predictor": "rpra_agent.core.prediction",
    "Verdict": "rpra_agent.core.verdict",
    "RPRAState": "rpra_agent.graph",
    "build_rpra_graph": "rpra_agent.graph",
    "decisions_from_state": "rpra_agent.graph",
    "RPRAMiddleware": "rpra_agent.middleware",
    "FineTunedPredictor": "rpra_agent.predictors",
    "ReportCardPredictor": "rpra_agent.predictors",
    "SelfPredictor": "rpra_agent.predictors",
    "ZeroShotPredictor": "rpra_agent.predictors",
    "Artifact": "rpra_agent.store",
    "DecisionFilter": "rpra_agent.store",
    "DecisionStore": "rpra_agent.store",
    "InMemoryDecisionStore": "rpra_agent.store",
    "open_store": "rpra_agent.store",
    "Calibration": "rpra_agent.feedback.calibration",
    "load_calibrated_policy": "rpra_agent.feedback.calibration",
    "LLMJudge": "rpra_agent.feedback",
    "ReportCard": "rpra_agent.feedback",
    "build_report_cards": "rpra_agent.feedback",
    "report_card_loader": "rpra_agent.feedback",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
