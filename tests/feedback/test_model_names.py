"""Model names match whether typed (``small.gguf``, ``gpt-4o``) or as logged (``gguf:small.gguf``, ``openai:gpt-4o``)."""

from __future__ import annotations

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rpra_agent.cli import feedback as cli
from rpra_agent.cli.app import app
from rpra_agent.core.naming import model_key, model_spellings, same_model
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback import build_report_cards, collect_examples, load_report_card, report_card_loader
from rpra_agent.store import InMemoryDecisionStore, open_store
from tests.feedback.builders import decision

runner = CliRunner()


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("small.gguf", "gguf:small.gguf"),
        ("gguf:small.gguf", "gguf:small.gguf"),
        ("/models/q/small.gguf", "gguf:small.gguf"),
        ("gguf:/models/small.gguf?n_ctx=8192&temperature=0", "gguf:small.gguf"),
        ("GGUF:small.gguf", "gguf:small.gguf"),
        ("openai:gpt-4o", "gpt-4o"),
        ("openai:gpt-4o?temperature=0", "gpt-4o"),
        ("gpt-4o", "gpt-4o"),
        (" small-m ", "small-m"),
    ],
)
def test_model_key_is_one_normal_form(typed: str, key: str) -> None:
    assert model_key(typed) == key
    assert key in model_spellings(typed)


def test_different_models_stay_different() -> None:
    assert not same_model("small.gguf", "large.gguf")
    assert not same_model("gpt-4o", "gpt-4o-mini")
    assert same_model("openai:gpt-4o", "gpt-4o") and same_model("small.gguf", "gguf:/x/small.gguf")


def _log(small: str, large: str) -> InMemoryDecisionStore:
    store = InMemoryDecisionStore()
    for grade in ("great", "ok", "bad", "bad"):
        d = decision(small_model=small, large_model=large)
        store.add(d)
        score = {"great": 1.0, "ok": 0.5, "bad": 0.0}[grade]
        store.add_verdicts([Verdict(d.id, grade, score, "paper3", "judge-m", "rpra-reconstructed-1", "", "given")])
    return store


@pytest.mark.parametrize(
    ("logged", "typed"),
    [("gguf:small.gguf", "small.gguf"), ("gguf:small.gguf", "/models/small.gguf"), ("openai:mini", "mini")],
)
def test_cards_and_sft_find_the_logged_model_by_its_typed_name(logged: str, typed: str) -> None:
    store = _log(logged, "openai:big")
    cards = build_report_cards(store, [typed], save=True)
    assert cards[typed].model == logged  # named as the log spells it
    assert cards[typed].text.startswith(f"Report card of model {logged}: 4 past steps")
    for spelling in (typed, logged):
        card = load_report_card(store, spelling)
        assert card is not None and card.version == 1
        assert (report_card_loader(store, spelling, ttl_s=0)(None) or "").startswith("Report card")
    assert len(collect_examples(store, model=typed)) == 4
    assert collect_examples(store, model="other.gguf") == []
    assert load_report_card(store, "other.gguf") is None


def test_report_card_cli_with_the_typed_file_name(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=200))
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = open_store(url, spool_path=str(tmp_path / "spool.jsonl"))
    mem = _log("gguf:small.gguf", "gguf:large.gguf")
    for d in mem.decisions():
        store.add(d)
    store.add_verdicts(mem.verdicts())
    store.close()
    built = runner.invoke(app, ["report-card", "build", "--db", url, "--model", "small.gguf"])
    assert built.exit_code == 0, built.output
    assert "Report card of model gguf:small.gguf: 4 past steps" in built.output
    shown = runner.invoke(app, ["report-card", "show", "--db", url, "--model", "small.gguf"])
    assert shown.exit_code == 0, shown.output
    assert "version 1" in shown.output and "great 25%, ok 25%, bad 50%" in shown.output
