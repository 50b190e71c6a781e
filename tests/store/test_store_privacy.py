"""Privacy: what is kept of prompts and answers, and secrets never reach the database or logs."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from rpra_agent.core.errors import ConfigError
from rpra_agent.store._privacy import TextPolicy, scrub_json, scrub_secrets
from tests.store.conftest import make_decision

SECRET_TEXT = "the launch code is 8472-SWORDFISH-ORANGE"
API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv"


def _db_bytes(tmp_path: Path) -> bytes:
    """Every byte the store left on disk: database, WAL, shared memory and spool files."""
    return b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        (f"use {API_KEY} please", API_KEY),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
            "dozjgNryP4J3jVmNHl0w5N",
        ),
        ("curl -H 'Authorization: Bearer abcdefgh12345678xyz'", "abcdefgh12345678xyz"),
        ("api_key=zyx987654321abc&q=1", "zyx987654321abc"),
        ('{"password": "correct horse"}', "correct horse"),
        ("OPENAI_API_KEY: abcd1234efgh", "abcd1234efgh"),
        ("postgresql://rpra:s3cr3tpw@db:5432/rpra", "s3cr3tpw"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ],
)
def test_scrub_secrets_masks_obvious_secrets(text, leaked):
    scrubbed = scrub_secrets(text)
    assert leaked not in scrubbed
    assert "[REDACTED]" in scrubbed or "***" in scrubbed


@pytest.mark.parametrize(
    "text", ["What is 2+2?", "max_tokens: 1024 and input_tokens=5", "the secret of a good cake is butter"]
)
def test_scrub_secrets_leaves_ordinary_text_alone(text):
    assert scrub_secrets(text) == text


def test_scrub_json_masks_secret_keys_not_token_counts():
    cfg = {
        "api_key": "abc",
        "openai_api_key": "x",
        "nested": [{"password": "p"}],
        "max_tokens": 9,
        "input_tokens": 3,
        "model": "m",
    }
    out = scrub_json(cfg)
    assert out["api_key"] == out["openai_api_key"] == out["nested"][0]["password"] == "[REDACTED]"
    assert (out["max_tokens"], out["input_tokens"], out["model"]) == (9, 3, "m")


def test_text_policy_modes():
    assert TextPolicy("full").apply(SECRET_TEXT) == SECRET_TEXT
    assert TextPolicy("hash").apply(SECRET_TEXT) == "sha256:" + hashlib.sha256(SECRET_TEXT.encode()).hexdigest()
    leaky = TextPolicy(lambda t: f"{len(t)} chars, key {API_KEY}")
    assert leaky.apply("hello") == "5 chars, key [REDACTED]"  # the redactor's output is scrubbed too
    assert TextPolicy(lambda t: 1 / 0).apply(SECRET_TEXT).startswith("sha256:")  # a failing redactor never leaks
    with pytest.raises(ConfigError, match="full"):
        TextPolicy("plain")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["hash", "redact"])
def test_redaction_modes_leave_no_trace_of_the_text_on_disk(mode, tmp_path, open_test_store):
    store_text = "hash" if mode == "hash" else (lambda t: "[user text removed]")
    store = open_test_store(f"sqlite:///{tmp_path / 'private.db'}", store_text=store_text)
    d = make_decision(request=SECRET_TEXT, response=f"Sure: {SECRET_TEXT}", run_id="private")
    d = d.with_updates(prediction=d.prediction.__class__(**{**d.prediction.__dict__, "raw": SECRET_TEXT}))
    store.add(d)
    (got,) = store.decisions()
    if mode == "hash":
        assert got.request == "sha256:" + hashlib.sha256(SECRET_TEXT.encode()).hexdigest()
    else:
        assert got.request == got.response == got.prediction.raw == "[user text removed]"
    store.close()
    data = _db_bytes(tmp_path)
    assert b"SWORDFISH" not in data
    assert len(data) > 10_000  # the database really is on disk


def test_secrets_never_reach_the_database_logs_or_spool(tmp_path, open_test_store, caplog):
    store = open_test_store(f"sqlite:///{tmp_path / 'secrets.db'}")
    store.upsert_run(
        "r",
        thread_id="t",
        paradigm="pa",
        config={"large": {"api_key": API_KEY, "base_url": "https://x"}},
        status="running",
    )
    d = make_decision(
        request=f"my key is {API_KEY}",
        response="Authorization: Bearer abcdefgh12345678xyz",
        metadata={"headers": {"authorization": "Bearer abcdefgh12345678xyz"}, "note": f"key {API_KEY}"},
        small_model=f"openai:gpt?api_key={API_KEY}",
    )
    with caplog.at_level(logging.DEBUG):
        store.add(d)
        store.flush()
        (got,) = store.decisions()
    assert API_KEY not in got.request and "[REDACTED]" in got.request
    assert "abcdefgh12345678xyz" not in got.response
    assert store.runs()["r"]["config"]["large"]["api_key"] == "[REDACTED]"
    store.close()
    data = _db_bytes(tmp_path)
    assert API_KEY.encode() not in data and b"abcdefgh12345678xyz" not in data
    assert API_KEY not in caplog.text
