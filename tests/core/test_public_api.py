import inspect

import rpra_agent
import rpra_agent.testing

EXPECTED = sorted(rpra_agent.__all__)


def test_all_is_sorted_and_pinned():
    assert rpra_agent.__all__ == EXPECTED
    assert set(rpra_agent.__all__) >= {
        "Decision",
        "DecisionStore",
        "DeferralPolicy",
        "GradeScale",
        "Prediction",
        "Predictor",
        "ThresholdPolicy",
        "ZeroShotPredictor",
        "ReportCardPredictor",
        "FineTunedPredictor",
        "build_rpra_graph",
        "RPRAMiddleware",
        "open_store",
        "FaultPolicy",
        "decisions_from_state",
    }
    assert not [n for n in rpra_agent.__all__ if n.startswith("_")]


def test_every_exported_name_resolves_through_the_lazy_loader():
    for name in rpra_agent.__all__:
        assert getattr(rpra_agent, name) is not None, name


def test_every_public_name_has_a_docstring():
    for module in (rpra_agent, rpra_agent.testing):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_import_has_no_heavy_side_effects():
    import subprocess
    import sys

    code = "import sys, rpra_agent; bad=[m for m in ('llama_cpp','psycopg','matplotlib','torch','fastapi') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
