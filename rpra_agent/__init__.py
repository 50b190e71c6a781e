"""rpra_agent: a small local model predicts its judge's grade and defers to a large model when it is low.

A request flows one way: predictor → policy → route (small, large or tools) → store.
"""

from rpra_agent._legs import FaultPolicy
from rpra_agent.calibration import Calibration, load_calibrated_policy
from rpra_agent.decision import Decision, LegUsage
from rpra_agent.errors import (
    ConfigError,
    DatasetError,
    JudgeError,
    ModelCallError,
    ModelStringError,
    PredictorError,
    RPRAError,
    StoreError,
)
from rpra_agent.feedback import LLMJudge, ReportCard, build_report_cards, report_card_loader
from rpra_agent.grades import GradeScale
from rpra_agent.graph import RPRAState, build_rpra_graph, decisions_from_state
from rpra_agent.policy import AlwaysLarge, AlwaysSmall, DeferralPolicy, PolicyContext, Route, ThresholdPolicy
from rpra_agent.prediction import Prediction, PredictionRequest, Predictor
from rpra_agent.predictors import FineTunedPredictor, ReportCardPredictor, SelfPredictor, ZeroShotPredictor
from rpra_agent.store import Artifact, DecisionFilter, DecisionStore, InMemoryDecisionStore
from rpra_agent.verdict import Verdict

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
    "report_card_loader",
]
