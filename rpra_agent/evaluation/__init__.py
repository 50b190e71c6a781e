"""Offline evaluation on recorded data: datasets, metrics, baselines.

- :mod:`~rpra_agent.evaluation.datasets`: the JSONL format, the bundled recordings.
- :mod:`~rpra_agent.evaluation.metrics`: routing curves, APGR/CPT (RouteLLM's
  definitions, exact over ties), costs, deferral precision/recall, and the
  predictor-agreement metrics of :mod:`~rpra_agent.evaluation.agreement`.
- :mod:`~rpra_agent.evaluation.baselines`: random, oracle, always-small/large,
  answer length, and built-in keep-scores.
- :mod:`~rpra_agent.feedback.bounds`: finite-sample tests used by calibration.
"""

from rpra_agent.evaluation.baselines import RouterSummary, baseline_summaries, dataset_baselines, keep_scores
from rpra_agent.evaluation.datasets import BUNDLED, EvalDataset, EvalItem, ModelResponse, load_dataset, save_dataset
from rpra_agent.evaluation.judged import JudgedSet, judged_from_dataset, judged_from_store
from rpra_agent.evaluation.metrics import (
    AgreementReport,
    DeferralStats,
    ModelPrice,
    OperatingPoint,
    PriceTable,
    RoutingCurve,
    agreement_report,
    apgr,
    cost_curve,
    cpt,
    deferral_precision_recall,
    item_costs,
    operating_point,
    routing_curve,
)

__all__ = [
    "BUNDLED",
    "AgreementReport",
    "DeferralStats",
    "EvalDataset",
    "EvalItem",
    "JudgedSet",
    "ModelPrice",
    "ModelResponse",
    "OperatingPoint",
    "PriceTable",
    "RouterSummary",
    "RoutingCurve",
    "agreement_report",
    "apgr",
    "baseline_summaries",
    "cost_curve",
    "cpt",
    "dataset_baselines",
    "deferral_precision_recall",
    "item_costs",
    "judged_from_dataset",
    "judged_from_store",
    "keep_scores",
    "load_dataset",
    "operating_point",
    "routing_curve",
    "save_dataset",
]
