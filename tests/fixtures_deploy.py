"""Test-only ``scripted:NAME`` model strings for the deployable graphs and the service.

Product code knows only ``gguf:`` and ``openai:``; this fixture monkeypatches
``rpra_agent.models.load_chat_model`` so that ``scripted:NAME`` returns a registered
test double. Models are registered by name; ``scripted:NAME?reply=...&grade=...``
builds one on the fly: it answers ``reply`` and, asked for a grade, says ``grade``
with OpenAI-format logprobs.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

import pytest

import rpra_agent.models
from rpra_agent.testing import ScriptedChatModel, grade_logprobs

ROOT = Path(__file__).resolve().parent.parent


def graded(reply: str, grade: str = "great", name: str = "scripted") -> ScriptedChatModel:
    """A double that answers ``reply`` and predicts ``grade`` for itself."""

    def respond(messages: list[Any]) -> str:
        last = messages[-1].content if messages else ""
        return grade if isinstance(last, str) and last.rstrip().endswith("Predicted grade:") else reply

    return ScriptedChatModel(responses=[respond], logprobs=grade_logprobs({grade: 1.0}), rpra_name=name)


class ScriptedModels:
    """The registry behind ``scripted:`` model strings."""

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}

    def register(self, name: str, model: Any) -> str:
        """Register ``model`` and return its model string."""
        self.models[name] = model
        return f"scripted:{name}"

    def load(self, spec: str, original: Any, **opts: Any) -> Any:
        if not spec.startswith("scripted:"):
            return original(spec, **opts)
        name, _, query = spec[len("scripted:") :].partition("?")
        if name in self.models:
            return self.models[name]
        options = dict(parse_qsl(query))
        model = graded(options.get("reply", f"{name} answer"), options.get("grade", "great"), name)
        self.models[name] = model
        return model


@pytest.fixture
def scripted_models(monkeypatch: pytest.MonkeyPatch) -> ScriptedModels:
    """Enable ``scripted:`` model strings for this test."""
    registry = ScriptedModels()
    original = rpra_agent.models.load_chat_model
    monkeypatch.setattr(rpra_agent.models, "load_chat_model", lambda spec, **o: registry.load(spec, original, **o))
    return registry


def import_fresh(relative: str) -> ModuleType:
    """Import a file of the repository (e.g. ``graphs/qa.py``) as a new module."""
    path = ROOT / relative
    name = f"_deploy_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
