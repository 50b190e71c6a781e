"""Stage 4, the report: the result record, the terminal tables, the plot, HTML and JSON.

- :mod:`.results`: :class:`EvalResult` and its rows and curves (``eval.json``).
- :mod:`.html`: the Rich tables, the PNG plot and the self-contained HTML report.
"""

from rpra_agent.evaluation.report.html import operating_table, plot_png, render_html, rich_table, write_report
from rpra_agent.evaluation.report.results import Curve, EvalResult, PredictorRow

__all__ = [
    "Curve",
    "EvalResult",
    "PredictorRow",
    "operating_table",
    "plot_png",
    "render_html",
    "rich_table",
    "write_report",
]
