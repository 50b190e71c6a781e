from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

from rich.console import Console

from rpra_agent.evaluation.report import operating_table, plot_png, render_html, rich_table, write_report
from rpra_agent.evaluation.report.results import Curve, EvalResult, OperatingPoint, PredictorRow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _result() -> EvalResult:
    xs = [0.0, 0.5, 1.0]
    return EvalResult(
        dataset="toy <set>",
        protocol="per turn; 5-fold cross-fitted",
        n_items=2,
        n_dropped=1,
        weak="w",
        strong="s",
        scale="ten",
        rows=[
            PredictorRow("report_card", "predictor", 0.61, 0.3, None, 0.4, 0.3, 0.7, 0.5, 0.1, 1.2, "5-fold"),
            PredictorRow("random", "baseline", 0.5, 0.5, 0.8, note="expectation"),
        ],
        curves=[Curve("report_card", xs, [5.0, 7.0, 8.0]), Curve("random", xs, [5.0, 6.5, 8.0])],
        operating=OperatingPoint(
            predictor="report_card",
            metric="expected_score",
            threshold=6.5,
            method="target_rate",
            calibration_version=3,
            deferral_rate=0.5,
            quality=7.0,
            quality_small=5.0,
            quality_large=8.0,
            pgr=0.66,
            cost=1.5,
            cost_small=1.0,
            cost_large=2.0,
            deferral_precision=1.0,
            deferral_recall=0.5,
            details={"target_rate": 0.5},
        ),
        report_card={
            "text": "You answer chat well <b>",
            "labels": ["1", "10"],
            "distributions": {"chat": {"1": 0.25, "10": 0.75}},
            "counts": {"chat": 4},
        },
        timings={"graph": 0.5},
        eval_id="e1",
    )


def test_plot_is_a_png() -> None:
    png = plot_png(_result())
    assert png.startswith(PNG_MAGIC) and len(png) > 1000


def test_html_report_embeds_its_plot_and_escapes_text(tmp_path: Path) -> None:
    result = _result()
    paths = write_report(result, tmp_path)
    page = Path(paths["html"]).read_text(encoding="utf-8")
    match = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert match is not None
    png = base64.b64decode(match.group(1), validate=True)
    assert png.startswith(PNG_MAGIC)
    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert png == Path(paths["png"]).read_bytes()
    assert "toy &lt;set&gt;" in page and "<b>" not in page.split("<pre class='card'>")[1].split("</pre>")[0]
    assert "report_card" in page and "0.610" in page and "never" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    data = json.loads(Path(paths["json"]).read_text())
    assert data["rows"][0]["apgr"] == 0.61 and data["paths"]["html"] == paths["html"]


def test_rich_tables_render() -> None:
    console = Console(record=True, width=200)
    console.print(rich_table(_result()))
    console.print(operating_table(_result()))
    text = console.export_text()
    assert "report_card" in text and "0.610" in text and "random" in text
    assert "6.5000 on expected_score (v3)" in text


def test_html_without_plot_or_operating_point() -> None:
    result = _result()
    result.operating = None
    page = render_html(result, None)
    assert "data:image/png" not in page and "No threshold was calibrated" in page
