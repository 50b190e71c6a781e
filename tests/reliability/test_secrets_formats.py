"""One scrubber for every output path, covering every common secret shape (issue 14, item 5).

Table-driven over :func:`rpra_agent.core.redact.scrub_secrets`, then end to end through
the CLI: the ``rpra serve`` banner, a malformed model string in ``rpra ask``, and
``rpra stats --db`` with a password in the query string; and through the decision
log's stored text and spool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rpra_agent.core.redact import scrub_json, scrub_secrets
from rpra_agent.core.security import redact

ROOT = Path(__file__).parents[2]

SECRETS = {
    "openai": "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2",
    "openai project": "sk-proj-" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2",
    "anthropic": "sk-ant-api03-" + "Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8",
    "hugging face": "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz",
    "github classic": "ghp_" + "a" * 36,
    "github fine-grained": "github_pat_" + "11ABCDEFG0" + "x" * 40,
    "gitlab": "glpat-" + "Ab12Cd34Ef56Gh78Ij90",
    "slack bot": "xoxb-" + "123456789012-abcdefABCDEF",
    "slack user": "xoxp-" + "123456789012-abcdefABCDEF",
    "aws": "AKIA" + "IOSFODNN7EXAMPLE",
    "groq": "gsk_" + "Mn0Pq1Rs2Tu3Vw4Xy5Za6Bc7",
    "xai": "xai-" + "Lm9No8Pq7Rs6Tu5Vw4Xy3Za2",
    "stripe secret": "sk_live_" + "51Hx" + "Y" * 20,
    "stripe restricted": "rk_live_" + "51Hx" + "Z" * 20,
    "stripe publishable": "pk_live_" + "51Hx" + "W" * 20,
    "stripe test": "sk_test_" + "51Hx" + "V" * 20,
    "google": "AIza" + "S" * 35,
}
CONTEXTS = ("{}", "key: {}", "prefix {} suffix", '{{"k": "{}"}}', "({})", "url?x={}&y=1", "Bearer {}")


@pytest.mark.parametrize("kind", sorted(SECRETS))
@pytest.mark.parametrize("context", CONTEXTS)
def test_every_key_format_is_masked_in_every_context(kind, context):
    text = context.format(SECRETS[kind])
    assert SECRETS[kind] not in scrub_secrets(text) and SECRETS[kind] not in redact(text)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("http://user:PW-Zx8Cv7@host:8080/v1", "PW-Zx8Cv7"),
        ("postgresql://rpra:hunter2secret@db:5432/rpra", "hunter2secret"),
        ("https://" + "t0k3n" * 5 + "@github.com/org/repo.git", "t0k3n" * 5),
        ("postgresql://rpra@db/rpra?sslmode=require&password=hunter2secret", "hunter2secret"),
        ("openai:gpt?base_url=http://h/v1&api_key=plainkey123&timeout=5", "plainkey123"),
        ("https://x.blob.core.windows.net/c?sv=2020&sig=AbC%2Bdef%3D123&se=1", "AbC%2Bdef%3D123"),
        ("https://h/cb?access_token=opaque-token-value", "opaque-token-value"),
        ("Authorization: Basic cnByYTpQVy1aeDhDdjc=", "cnByYTpQVy1aeDhDdjc="),
        ("authorization: Bearer opaque.value.here", "opaque.value.here"),
        ("Authorization: Token tkn-1234567890", "tkn-1234567890"),
        ("upstream said: 401, header was 'Authorization: Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz"),
        ('{"password": "correct horse"}', "correct horse"),
        ("client_secret=s3cr3t-value", "s3cr3t-value"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
    ],
)
def test_urls_headers_and_assignments(text, secret):
    assert secret not in scrub_secrets(text), scrub_secrets(text)


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of France?",
        "https://example.com/search?q=secret+garden&page=2",
        "the task-key of my monkey is a donkey; skip-this sk-short",
        "I asked for a token of appreciation",
        "ghp_short and hf_short are not keys",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert scrub_secrets(text) == text


def test_json_values_under_secret_names_are_masked():
    clean = scrub_json({"api_key": "x", "nested": [{"Authorization": "Basic abc"}, {"note": SECRETS["groq"]}]})
    assert clean == {"api_key": "[REDACTED]", "nested": [{"Authorization": "[REDACTED]"}, {"note": "[REDACTED]"}]}


def test_stored_text_and_spool_are_scrubbed(tmp_path):
    from rpra_agent.store import open_store
    from tests.store.conftest import make_decision

    text = " ".join(SECRETS.values())
    spool = tmp_path / "spool.jsonl"
    down = open_store("postgresql://rpra:pw-Zx8Cv7Bn6@127.0.0.1:9/rpra", spool_path=str(spool), durability="sync")
    down.add(make_decision(request=text, response=text))  # unreachable: spooled
    down.close()
    spooled = spool.read_bytes()
    up = open_store(f"sqlite:///{tmp_path / 'log.db'}", spool_path=str(spool))  # replays the spool
    up.add(make_decision(request=text, response=text, error=text))
    assert up.count() == 2
    up.close()
    for name, data in (("spool", spooled), ("database", (tmp_path / "log.db").read_bytes())):
        assert data and not [k for k, s in SECRETS.items() if s.encode() in data], name


def _cli(*args: str, timeout: float = 60) -> str:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RPRA_")}, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", "from rpra_agent.cli import main; main()", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return proc.stdout + proc.stderr


def test_cli_errors_never_echo_a_secret():
    key = SECRETS["openai project"]
    out = _cli("ask", "hi", "--small", f"openai:?api_key={key}&bogus", "--large", "openai:x")
    assert "names no model" in out and key not in out
    out = _cli("stats", "--db", "postgresql://rpra@127.0.0.1:9/rpra?password=hunter2-Secret")
    assert "unreachable" in out and "hunter2-Secret" not in out
    out = _cli("stats", "--db", "postgresql://rpra:hunter2-Secret@127.0.0.1:9/rpra")
    assert "unreachable" in out and "hunter2-Secret" not in out


def test_the_serve_banner_never_prints_a_password_or_key(tmp_path):
    key, password = SECRETS["openai project"], "PW-s3cr3t-Zz"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RPRA_")}, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-c", "from rpra_agent.cli import main; main()", "serve", "--port", "0",
        "--small", f"openai:small?base_url=http://127.0.0.1:9/v1&api_key={SECRETS['groq']}",
        "--large", f"openai:gpt-4o?base_url=http://user:{password}@127.0.0.1:9/v1&api_key={key}",
        "--database-url", f"sqlite:///{tmp_path / 'log.db'}", "--api-key", SECRETS["xai"],
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    output = "".join(lines) + rest
    assert "serving rpra at" in output and "user:***@" in output and "predictor=guarded(" in output
    for secret in (key, password, SECRETS["groq"], SECRETS["xai"]):
        assert secret not in output
