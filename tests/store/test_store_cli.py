"""`rpra stats`, `rpra log export|replay` and `rpra db upgrade|current` against real databases."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.core.decision import Decision, LegUsage
from rpra_agent.core.verdict import Verdict
from rpra_agent.store import open_store
from tests.store.conftest import make_decision

runner = CliRunner()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def filled_db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = open_store(url, spool_path=str(tmp_path / "spool.jsonl"))
    ds = []
    for i in range(6):
        legs = {"small": LegUsage("small-m", 10, 20, 3.0)}
        if i % 2:
            legs["large"] = LegUsage("gpt-x", 100, 200, 40.0)
        d = make_decision(
            run_id=f"r{i}", route="large" if i % 2 else "small", reason="predicted_low" if i % 2 else "predicted_ok",
            legs=legs, request=f"question {i}, with a comma", response=f"answer {i}",
        )  # fmt: skip
        ds.append(d)
        store.add(d)
    store.add_verdicts([Verdict(ds[0].id, "great", 1.0, "paper3", "judge", "v1")])
    store.close()
    return url, ds


def test_stats_tables_and_json(filled_db, monkeypatch):
    from rich.console import Console

    from rpra_agent.cli import store_cmds

    monkeypatch.setattr(store_cmds, "out", Console(width=200))
    url, _ = filled_db
    result = runner.invoke(app, ["stats", "--db", url, "--price", "gpt-x=1,2"])
    assert result.exit_code == 0, result.output
    assert "6 decisions, 3 deferred (50.0%)" in result.output
    assert "Deferral rate" in result.output and "predicted_low" in result.output
    assert "gpt-x" in result.output and "0.0015" in result.output  # (300 * 1 + 600 * 2) / 1e6
    assert "1/1 agree" in result.output
    as_json = runner.invoke(app, ["stats", "--db", url, "--json"])
    data = json.loads(as_json.stdout)
    assert data["decisions"] == 6 and data["deferral_rate"] == 0.5
    assert {leg["leg"] for leg in data["legs"]} == {"small", "large"}


def test_export_jsonl_round_trips_and_csv_is_flat(filled_db, tmp_path):
    url, ds = filled_db
    result = runner.invoke(app, ["log", "export", "--db", url, "--verdicts"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert sorted(Decision.from_dict(r).id for r in records) == sorted(d.id for d in ds)
    by_id = {r["id"]: r for r in records}
    assert Decision.from_dict(by_id[ds[0].id]) == ds[0]
    assert [v["grade"] for v in by_id[ds[0].id]["verdicts"]] == ["great"]
    out = tmp_path / "log.csv"
    result = runner.invoke(app, ["log", "export", "--db", url, "--format", "csv", "-o", str(out), "--run-id", "r1"])
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(io.StringIO(out.read_text())))
    assert (row["route"], row["input_tokens"], row["request"]) == ("large", "110", "question 1, with a comma")
    bad = runner.invoke(app, ["log", "export", "--db", url, "--format", "xml"])
    assert bad.exit_code == 2 and "jsonl or csv" in bad.output


def test_db_upgrade_and_current(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = runner.invoke(app, ["db", "current", "--db", url])
    assert "no decision log yet" in first.output
    up = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert up.exit_code == 0 and "upgraded from (empty) to 0001" in up.output
    again = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert "already at revision 0001" in again.output


def test_clear_errors_for_bad_or_unreachable_databases(tmp_path):
    bad = runner.invoke(app, ["stats", "--db", "mysql://u:pw@h/db"])
    assert bad.exit_code == 2 and "unsupported database" in bad.output
    down = runner.invoke(app, ["stats", "--db", "postgresql://u:hunter2secret@127.0.0.1:9/db"])
    assert down.exit_code == 2 and "unreachable" in down.output
    assert "hunter2secret" not in down.output
    memory = runner.invoke(app, ["log", "export", "--db", "memory://"])
    assert memory.exit_code == 2 and "SQL database" in memory.output
    price = runner.invoke(app, ["stats", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--price", "nonsense"])
    assert price.exit_code == 2 and "MODEL=INPUT,OUTPUT" in price.output


def test_stats_shows_the_predictions_share_of_the_steps_cost(tmp_path, monkeypatch):
    from rich.console import Console

    from rpra_agent.cli import store_cmds

    monkeypatch.setattr(store_cmds, "out", Console(width=200))
    url = f"sqlite:///{tmp_path / 'share.db'}"
    store = open_store(url, spool_path=str(tmp_path / "spool.jsonl"))
    for i in range(4):
        legs = {"predict": LegUsage("small-m", 30, 1, 10.0), "small": LegUsage("small-m", 40, 29, 30.0)}
        store.add(make_decision(run_id=f"r{i}", legs=legs))
    store.close()
    result = runner.invoke(app, ["stats", "--db", url])
    assert result.exit_code == 0, result.output
    assert "Prediction's share of the steps' cost: 31.0% of tokens, 25.0% of latency" in result.output  # 31/100, 10/40
    data = json.loads(runner.invoke(app, ["stats", "--db", url, "--json"]).stdout)
    assert data["prediction_share"]["tokens"] == pytest.approx(0.31) and data["prediction_share"]["cost"] is None


def test_read_commands_refuse_a_missing_sqlite_file_instead_of_creating_it(tmp_path):
    """`rpra stats --db typo.db` once created an empty log and reported 0 decisions."""
    missing = tmp_path / "no" / "such" / "log.db"
    for args in (
        ["stats"],
        ["log", "export"],
        ["calibrate", "--target-rate", "0.3"],
        ["train-predictor", "--out", str(tmp_path / "a")],
    ):
        res = runner.invoke(app, [*args, "--db", f"sqlite:///{missing}"])
        assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split()), (args, res.output)
    assert not (tmp_path / "no").exists()
    # a command that writes may create it
    res = runner.invoke(app, ["db", "upgrade", "--db", f"sqlite:///{tmp_path / 'new.db'}"])
    assert res.exit_code == 0 and (tmp_path / "new.db").exists()
