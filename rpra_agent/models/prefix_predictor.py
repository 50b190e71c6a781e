"""A zero-shot self-predictor whose prompt extends the answer prompt, so llama.cpp evaluates it once.

:class:`~rpra_agent.predictors.ZeroShotPredictor` shows the model the conversation as
escaped JSON inside a separate system prompt: robust to prompt injection, but its
tokens share nothing with the answer call, so the small model evaluates the
conversation twice. :class:`PrefixSharingPredictor` instead sends the conversation
exactly as the answer call will (same system message, same turns) and appends the
grading question at the end: the predict call and the answer call then share their
longest prefix, which llama.cpp's KV cache keeps, so prediction costs the question's
few tokens plus one forward pass (see ``benchmarks/bench_llamacpp.py``).

In the ``verify`` paradigm the draft is an assistant turn before the question, so the
prediction also reuses the draft's tokens.

Trade-off: the conversation is not fenced as data, so text in it can sway what the
model *believes* (never how the output is parsed: the distribution is read from
logits or logprobs). Prefer :class:`~rpra_agent.predictors.ZeroShotPredictor` where
user text is hostile and latency matters less.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from rpra_agent.prediction import PredictionRequest
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.predictors._prompt import grade_instruction

__all__ = ["PrefixSharingPredictor"]


class PrefixSharingPredictor(ZeroShotPredictor):
    """Zero-shot self-prediction appended to the conversation (KV-cache friendly).

    Args:
        model: Any LangChain chat model; on :class:`~rpra_agent.models.ChatLlamaCpp`
            the grade is read from one forward pass that reuses the answer's prefix.
        **kwargs: As for :class:`~rpra_agent.predictors.SelfPredictor`.
    """

    name = "prefix_sharing"

    def question(self, request: PredictionRequest) -> str:
        """The grading question appended after the conversation."""
        what = {"answer": "the reply you are about to give", "action": "the tool action you are about to take"}
        subject = "your reply above" if request.draft is not None else what[request.kind]
        parts = [
            f"[Self-assessment, not part of the conversation] An expert judge will grade {subject} "
            f"on {self.rubric}. Grades, worst to best: {', '.join(self.scale.labels)}."
        ]
        if request.reasoning:
            parts.append(f"Your private reasoning so far:\n{request.reasoning}")
        parts.append("Predict the grade honestly. " + grade_instruction(self.scale))
        return "\n\n".join(parts)

    def build_prompt(self, request: PredictionRequest) -> list[BaseMessage]:
        """The conversation as the answer call sees it, then the question.

        The question joins the last user message (so templates that require
        alternating roles still render); after a draft or a tool result it is a new
        user message.
        """
        messages: list[BaseMessage] = list(request.messages)
        if request.draft is not None:
            messages.append(AIMessage(content=request.draft.content, tool_calls=request.draft.tool_calls))
        question = self.question(request)
        last = messages[-1] if messages else None
        if isinstance(last, HumanMessage) and isinstance(last.content, str):
            messages[-1] = HumanMessage(f"{last.content}\n\n{question}")
        else:
            messages.append(HumanMessage(question))
        return messages
