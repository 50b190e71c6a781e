from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessage

from rpra_agent import FaultPolicy
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction
from rpra_agent.service.app import create_app
from rpra_agent.service.engine import ChatEngine
from rpra_agent.testing import InMemoryDecisionStore, ScriptedChatModel
from tests.fixtures_disk import tiny_disk  # noqa: F401  (the disk-full tests' fixture)
from tests.fixtures_llama import random_gguf, scripted_gguf  # noqa: F401
from tests.fixtures_service import serve_app

API_KEY = "sk-test-0123456789"


class KeywordPredictor:
    """Predicts 'bad' for requests that say 'hard', 'great' otherwise."""

    name, scale = "keyword", GradeScale.paper()
    version = "1"

    def predict(self, request):
        grade = "bad" if "hard" in request.request_text.lower() else "great"
        return Prediction.from_distribution({grade: 1.0}, scale=self.scale, predictor=self.name, method="fixed")

    async def apredict(self, request):
        return self.predict(request)


def replier(name):
    """A model that answers '<name> answer to: <request>' and calls a client tool when asked to."""

    def respond(messages):
        last = messages[-1]
        if last.type == "tool":
            return f"{name} used the tool result {last.content}"
        text = last.content if isinstance(last.content, str) else ""
        if "weather" in text:
            return AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_w1"}])
        if "crash" in text and name == "large":
            raise ConnectionError("large is down")
        return f"{name} answer to: {text}"

    return ScriptedChatModel(responses=[respond], rpra_name=name)


@pytest.fixture
def engine():
    store = InMemoryDecisionStore()
    faults = FaultPolicy(large_attempts=1)
    return ChatEngine(
        small=replier("small"),
        large=replier("large"),
        predictor=KeywordPredictor(),
        store=store,
        model_name="rpra-test",
        faults=faults,
    )


@pytest.fixture
def server(engine) -> Iterator[str]:
    with serve_app(create_app(engine, api_key=API_KEY, max_body_bytes=4096)) as url:
        yield url


@pytest.fixture
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0, timeout=20)
