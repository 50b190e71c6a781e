"""No secrets in the logs, the database or error bodies of the service.

The service is configured with an API key; its large model is a real ``openai:`` model
string whose base URL carries a password and whose API key is secret, talking over
HTTP to a second instance of the service (an OpenAI-compatible upstream on
127.0.0.1). Requests carry secret-looking strings in their content, headers,
metadata and ``user`` field; some fail (wrong key, upstream down). Then every log
record (DEBUG, every logger), every byte of the SQLite log (and its spool) and every
error body is scanned for each secret.
"""

import base64
import logging

import httpx
import pytest

from rpra_agent import FaultPolicy
from rpra_agent.models import load_chat_model
from rpra_agent.service.app import create_app
from rpra_agent.service.config import Components, Settings, build_components
from rpra_agent.service.engine import ChatEngine
from tests.fixtures_service import serve_app
from tests.service.conftest import KeywordPredictor, replier

SERVICE_KEY = "sk-svc-Q7w8E9r0T1y2U3i4O5p6"
UPSTREAM_KEY = "sk-upstream-A1s2D3f4G5h6J7k8L9"
URL_PASSWORD = "pw-Zx8Cv7Bn6Mm5"
USER_SECRET = "sk-user-Pp0Oo9Ii8Uu7Yy6Tt5"
HEADER_SECRET = "sk-header-Rr4Ee3Ww2Qq1Aa0Ss9"
TASK_SECRET = "ghp_" + "T" * 36
BASIC = base64.b64encode(f"rpra:{URL_PASSWORD}".encode()).decode()
SECRETS = [SERVICE_KEY, UPSTREAM_KEY, URL_PASSWORD, USER_SECRET, HEADER_SECRET, TASK_SECRET, BASIC]


@pytest.fixture
def upstream():
    """The large model's server: an OpenAI-compatible endpoint ('crash' makes it fail).

    It checks no key: the client's URL password becomes a Basic ``Authorization``
    header (as for a proxy), which replaces the bearer key.
    """
    engine = ChatEngine(
        small=replier("upstream-small"),
        large=replier("large"),
        predictor=KeywordPredictor(),
        model_name="big",
        faults=FaultPolicy(large_attempts=1),
    )
    with serve_app(create_app(engine)) as url:
        yield url


def test_no_secret_reaches_logs_database_or_error_bodies(upstream, tmp_path, caplog, monkeypatch):
    port = upstream.rsplit(":", 1)[1]
    large_spec = f"openai:big?base_url=http://rpra:{URL_PASSWORD}@127.0.0.1:{port}/v1&max_retries=0&timeout=20"
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "log.db"
    settings = Settings(small_model="openai:unused", large_model=large_spec, database_url=f"sqlite:///{db}")
    monkeypatch.setattr(
        "rpra_agent.models.load_chat_model",
        lambda spec, **kw: replier("small") if spec == "openai:unused" else load_chat_model(spec, **kw),
    )
    components = build_components(settings)  # logs the deployment at INFO
    c = components
    components = Components(c.small, c.large, KeywordPredictor(), c.policy, c.store, c.settings)
    engine = ChatEngine.from_components(components, model_name="rpra")
    bodies: list[str] = []
    with serve_app(create_app(engine, api_key=SERVICE_KEY)) as url:
        auth = {"authorization": f"Bearer {SERVICE_KEY}", "x-api-key": HEADER_SECRET, "x-rpra-task": TASK_SECRET}

        def post(content: str, headers=auth, **extra):
            body = {"model": "rpra", "messages": [{"role": "user", "content": content}], **extra}
            return httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=30)

        easy = post(f"my api_key={USER_SECRET} please", user=USER_SECRET, metadata={"note": USER_SECRET})
        hard = post(f"a hard one, key {USER_SECRET}")  # deferred to the upstream over HTTP
        crash = post(f"hard crash {USER_SECRET}")  # the upstream fails: 502
        wrong = post("hi", headers={"authorization": f"Bearer {USER_SECRET}"})  # a key in the wrong place: 401
        streamed = post(f"hard, streamed {USER_SECRET}", stream=True)
        bad = post("hi", tools=[{"type": "function", "function": {"name": HEADER_SECRET + " bad name"}}])
        metrics = httpx.get(f"{url}/metrics?format=prometheus", headers=auth)
    components.store.close()
    assert (easy.status_code, hard.status_code, streamed.status_code, metrics.status_code) == (200, 200, 200, 200)
    assert (crash.status_code, wrong.status_code, bad.status_code) == (502, 401, 400)
    assert hard.headers["x-rpra-route"] == "large" and "large answer" in hard.json()["choices"][0]["message"]["content"]
    bodies += [crash.text, wrong.text, bad.text, metrics.text, str(dict(easy.headers)), str(dict(hard.headers))]

    assert "rpra_agent.service" in caplog.text and "deployment:" in caplog.text  # the logs were captured
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert db in files
    for secret in SECRETS:
        assert secret not in caplog.text, f"{secret} leaked into the logs"
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret} leaked into {path.name}"
        for body in bodies:
            assert secret not in body, f"{secret} leaked into a response body or header"
