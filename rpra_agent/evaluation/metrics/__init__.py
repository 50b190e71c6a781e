"""Stage 2, the metrics: routing curves, APGR/CPT, costs, agreement with the judge, baselines.

- :mod:`.routing`: curves, APGR, CPT, cost curves, operating points, deferral
  precision/recall (RouteLLM's definitions, exact over ties).
- :mod:`.agreement`: the predictor's agreement with the judge (accuracy, AUROC,
  Spearman, ECE, MAE).
- :mod:`.costs`: the cost of each recorded call under a
  :class:`~rpra_agent.store.prices.PriceTable`.
- :mod:`.baselines`: random, oracle, shortest-first, category card, and the
  summaries of each.
"""

from rpra_agent.evaluation.metrics.agreement import (
    AgreementReport,
    agreement_report,
    auroc,
    expected_calibration_error,
    grade_accuracy,
    macro_f1,
    mae,
    spearman,
)
from rpra_agent.evaluation.metrics.costs import PriceTable, estimate_tokens, item_costs
from rpra_agent.evaluation.metrics.routing import (
    APGRDifference,
    DeferralStats,
    OperatingPoint,
    RoutingCurve,
    apgr,
    apgr_difference,
    cost_curve,
    cpt,
    deferral_precision_recall,
    expected_deferred_sums,
    operating_point,
    routing_curve,
)

__all__ = [
    "APGRDifference",
    "AgreementReport",
    "DeferralStats",
    "OperatingPoint",
    "PriceTable",
    "RoutingCurve",
    "agreement_report",
    "apgr",
    "apgr_difference",
    "auroc",
    "cost_curve",
    "cpt",
    "deferral_precision_recall",
    "estimate_tokens",
    "expected_calibration_error",
    "expected_deferred_sums",
    "grade_accuracy",
    "item_costs",
    "macro_f1",
    "mae",
    "operating_point",
    "routing_curve",
    "spearman",
]
