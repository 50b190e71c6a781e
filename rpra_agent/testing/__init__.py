"""Test doubles for users' own tests (and ours): never used by the product itself.

- :class:`ScriptedChatModel`: a chat model that replies from a script, supports
  ``bind_tools``, streaming, usage metadata and attaches OpenAI-format logprobs.
- :class:`FixedPredictor`: a predictor that returns a fixed distribution (or raises).
- :class:`InMemoryDecisionStore`: the in-memory store.
- :func:`grade_logprobs`: build OpenAI-format logprobs for a grade distribution.
"""

from rpra_agent.store.memory import InMemoryDecisionStore
from rpra_agent.testing.fakes import FixedPredictor, ScriptedChatModel, grade_logprobs

__all__ = ["FixedPredictor", "InMemoryDecisionStore", "ScriptedChatModel", "grade_logprobs"]
