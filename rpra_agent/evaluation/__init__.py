"""Offline and live evaluation, split by stage.

1. :mod:`~rpra_agent.evaluation.datasets`: the dataset format, the bundled recordings,
   ``rpra data convert`` and the grade scale of a recording.
2. :mod:`~rpra_agent.evaluation.metrics`: routing curves, APGR/CPT (RouteLLM's
   definitions, exact over ties), costs, agreement with the judge, baselines.
3. :mod:`~rpra_agent.evaluation.runs`: the replay and live runs through the RPRA graph,
   cross-fitting, calibration of the run's threshold, the routers compared.
4. :mod:`~rpra_agent.evaluation.report`: the result record, tables, plot, HTML, JSON.

Each stage imports only the stages before it (the report sits below the runs, which
fill it).
"""

from rpra_agent.evaluation.datasets import BUNDLED, EvalDataset, EvalItem, ModelResponse, load_dataset, save_dataset
from rpra_agent.evaluation.metrics import (
    AgreementReport,
    DeferralStats,
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
from rpra_agent.evaluation.metrics.baselines import RouterSummary, baseline_summaries, dataset_baselines, keep_scores

__all__ = [
    "BUNDLED",
    "AgreementReport",
    "DeferralStats",
    "EvalDataset",
    "EvalItem",
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
    "keep_scores",
    "load_dataset",
    "operating_point",
    "routing_curve",
    "save_dataset",
]
