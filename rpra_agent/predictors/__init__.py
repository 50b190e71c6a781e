"""Predictors: how the small model's judge grade is predicted."""

from rpra_agent.predictors.self_predict import (
    FineTunedPredictor,
    ReportCardPredictor,
    SelfPredictor,
    ZeroShotPredictor,
)

__all__ = [
    "EnsemblePredictor",
    "FineTunedPredictor",
    "LearnedPredictor",
    "PrefixSharingPredictor",
    "ReportCardPredictor",
    "SelfPredictor",
    "ZeroShotPredictor",
]

_LAZY = {  # scikit-learn / scipy load on first use, not on `import rpra_agent`
    "EnsemblePredictor": "rpra_agent.predictors.ensemble",
    "LearnedPredictor": "rpra_agent.predictors.learned",
    "PrefixSharingPredictor": "rpra_agent.predictors.prefix",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
