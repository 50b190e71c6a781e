"""Fixtures of the predictor tests: the tiny GGUF models when llama.cpp is installed."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("gguf"):
    from tests.fixtures_llama import random_gguf, scripted_gguf  # noqa: F401
else:

    @pytest.fixture
    def random_gguf() -> None:
        pytest.skip("needs llama-cpp-python and gguf: pip install 'rpra-agent[llama]'")
