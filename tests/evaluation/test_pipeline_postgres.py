from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval
from rpra_agent.store import open_store
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401

pytestmark = pytest.mark.postgres


def test_replay_eval_logs_to_postgresql(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    ds = load_dataset("mt-bench").subset(range(20))
    result = run_replay_eval(
        ds, out_dir=tmp_path, store=postgres_url, options=ReplayOptions(folds=2, learned=False, report=False)
    )
    assert result.paths["db"].split("@")[-1] == postgres_url.split("@")[-1]
    password = make_url(postgres_url).password
    assert not password or password not in result.paths["db"]
    store = open_store(postgres_url)
    try:
        assert len(store.decisions()) == 40
        assert len(store.verdicts()) == 60
        assert store.latest_artifact("calibration", "eval:mt-bench:report_card") is not None
        assert store.latest_artifact("report_card", ds.weak) is not None
    finally:
        store.close()
