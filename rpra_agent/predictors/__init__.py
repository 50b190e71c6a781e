"""Predictors: how the small model's judge grade is predicted."""

from rpra_agent.predictors.self_predict import (
    FineTunedPredictor,
    ReportCardPredictor,
    SelfPredictor,
    ZeroShotPredictor,
)

__all__ = ["FineTunedPredictor", "ReportCardPredictor", "SelfPredictor", "ZeroShotPredictor"]
