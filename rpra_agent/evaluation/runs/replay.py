"""Replay components: chat models and a judge that play back a recorded evaluation.

These are real components of the offline evaluation, not test doubles. A
:class:`ReplayChatModel` answers a prompt with the response one model gave to it in
the recording (with the recorded token count as its usage); a :class:`ReplayJudge`
grades a response with the score the recording's judge gave it. Together they let
the actual RPRA graph run over a recorded dataset with no model and no network.

How an item is found, in order:

1. the id of a human message, ``rpra-item:<item id>`` (what :func:`item_message`
   builds; it survives LangGraph's ``add_messages``);
2. ``configurable["rpra_item_id"]`` of the run's config;
3. the text of the conversation's user messages.

A prompt that is not in the recording raises :class:`ReplayError`: a replay never
makes an answer up.

Grade scales (:func:`scale_for`): 1-10 judge scores (MT-bench, arena) map onto the
ten-point scale (labels ``"1"``..``"10"``); 0/1 correctness
(GSM8K, MMLU) onto a two-label scale ``incorrect < correct`` (values 0, 1). The
lowest acceptable label is the first at or above the dataset's ``acceptable`` score
(header ``acceptable``; else the middle of the range, so 6 on 1-10). A
recorded score between labels (MT-bench per question: the mean of two turns) keeps
its exact value in ``Verdict.score``; its ``grade`` is the nearest label (ties go
down).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

from rpra_agent.core.decision import Decision
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.judging import JudgeTask
from rpra_agent.core.messages import message_text
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets.scales import scale_for
from rpra_agent.evaluation.runs._replay_index import (
    ITEM_ID_PREFIX,
    REPLAY_RUBRIC,
    ReplayError,
    ReplayIndex,
    item_message,
    recorded_response,
    tokens_of,
)

if TYPE_CHECKING:
    from rpra_agent.evaluation.datasets.records import EvalDataset, EvalItem

__all__ = [
    "ITEM_ID_PREFIX",
    "ReplayChatModel",
    "ReplayError",
    "ReplayIndex",
    "ReplayJudge",
    "item_message",
]


class ReplayChatModel(BaseChatModel):
    """A chat model that answers with one model's recorded responses.

    Usage metadata: ``output_tokens`` is the recorded token count (estimated as
    characters / 4 when the recording has none), ``input_tokens`` is estimated the
    same way from the conversation. ``response_metadata`` carries the item id, the
    recorded model and its recorded cost.

    Args:
        dataset: The recorded evaluation.
        recorded_model: Whose responses to replay (e.g. ``dataset.weak``).
        rpra_name: The identifier recorded in decisions (the recorded model by default).
    """

    dataset: Any
    recorded_model: str
    rpra_name: str = ""
    model_config = ConfigDict(arbitrary_types_allowed=True)

    _index: ReplayIndex = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        """Index the dataset once."""
        self._index = ReplayIndex(self.dataset)
        if not self.rpra_name:
            self.rpra_name = self.recorded_model

    @classmethod
    def for_dataset(
        cls, dataset: EvalDataset, index: ReplayIndex | None = None
    ) -> tuple[ReplayChatModel, ReplayChatModel]:
        """The small (weak) and large (strong) replay models of a dataset, sharing one index."""
        small = cls(dataset=dataset, recorded_model=dataset.weak)
        large = cls(dataset=dataset, recorded_model=dataset.strong)
        shared = index or small._index
        small._index = large._index = shared
        return small, large

    @property
    def _llm_type(self) -> str:
        return "rpra-replay"

    @property
    def index(self) -> ReplayIndex:
        """The item index."""
        return self._index

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ReplayChatModel:  # type: ignore[override]
        """Recordings hold no tool calls: tools are accepted and never called."""
        return self

    def reply(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The recorded reply to ``messages``.

        Raises:
            ReplayError: when the prompt or the model's response is not recorded.
        """
        item = self._index.find(messages)
        resp = recorded_response(item, self.recorded_model, self.dataset)
        text = resp.text or ""
        n_in = sum(tokens_of(message_text(m)) for m in messages)
        n_out = int(resp.tokens) if resp.tokens is not None else tokens_of(text)
        return AIMessage(
            text,
            usage_metadata={"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out},
            response_metadata={
                "replay_item": item.id,
                "replay_model": self.recorded_model,
                "recorded_cost": resp.cost,
                "model_name": self.rpra_name,
            },
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._generate(messages)


class ReplayJudge:
    """A judge that grades responses with the recording's scores.

    It has :class:`~rpra_agent.feedback.LLMJudge`'s task interface
    (``judge_task`` / ``ajudge_task`` / ``judge_joint``: the response's model is found
    by matching its text against the item's recorded responses, then by the
    candidate's subject) and a direct one for graph decisions (:meth:`judge_decision`).
    A recorded score of ``None`` (the recorded judge's output did not parse) gives an
    unjudged verdict: a grade is never guessed.

    Args:
        dataset: The recorded evaluation.
        scale: The grade scale (:func:`scale_for` the dataset by default).
        index: A shared :class:`ReplayIndex` (built when omitted).
        name: Recorded as the verdicts' judge.
    """

    def __init__(
        self,
        dataset: EvalDataset,
        *,
        scale: GradeScale | None = None,
        index: ReplayIndex | None = None,
        name: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.scale = scale or scale_for(dataset)
        self.index = index or ReplayIndex(dataset)
        self.name = name or f"replay:{dataset.name}"
        self.rubric_version = REPLAY_RUBRIC

    def verdict(self, item: EvalItem, model: str, *, decision_id: str = "", subject: str = "given") -> Verdict:
        """The verdict the recording holds for ``model``'s response to ``item``."""
        score = recorded_response(item, model, self.dataset).score
        common = {
            "decision_id": decision_id,
            "scale": self.scale.name,
            "judge": self.name,
            "rubric_version": self.rubric_version,
            "subject": subject,
        }
        if score is None or (isinstance(score, float) and math.isnan(score)):
            return Verdict(grade=None, score=None, rationale="unjudged: no recorded score", **common)
        return Verdict(
            grade=self.scale.label_for(float(score)),
            score=float(score),
            rationale=f"recorded score of {model}",
            **common,
        )

    def model_for(self, decision: Decision, subject: str) -> str:
        """Which recorded model's response a subject of ``decision`` names."""
        if subject == "small" or (subject == "given" and decision.route == "small"):
            return self.dataset.weak
        if subject in ("large", "given"):
            return self.dataset.strong
        raise ReplayError(f"unknown verdict subject {subject!r}; use 'given', 'small' or 'large'")

    def judge_decision(
        self, decision: Decision, *, subjects: Sequence[str] = ("given",), item_id: str | None = None
    ) -> list[Verdict]:
        """Verdicts on a graph decision: one per subject (``given``, ``small``, ``large``).

        Args:
            decision: A decision made over a replayed prompt.
            subjects: Whose responses to grade.
            item_id: The dataset item (found from ``decision.request`` when omitted).
        """
        item = self.index.get(item_id) if item_id is not None else self.index.item_for_request(decision.request)
        return [self.verdict(item, self.model_for(decision, s), decision_id=decision.id, subject=s) for s in subjects]

    # -- LLMJudge-compatible task interface -----------------------------------------
    def _model_of(self, item: EvalItem, text: str, subject: str) -> str:
        matches = [m for m, r in item.responses.items() if r.text is not None and r.text.strip() == text.strip()]
        if len(set(matches)) == 1:
            return matches[0]
        if subject == "small":
            return self.dataset.weak
        if subject == "large":
            return self.dataset.strong
        raise ReplayError(
            f"cannot tell which recorded model gave this response to item {item.id!r}: the text matches "
            f"{len(matches)} recorded responses; use subject 'small' or 'large'"
        )

    def judge_task(self, task: JudgeTask) -> list[Verdict]:
        """Grade a :class:`~rpra_agent.core.judging.JudgeTask`'s candidates from the recording."""
        item = self.index.find(list(task.conversation))
        return [
            self.verdict(item, self._model_of(item, c.text, c.subject), decision_id=c.decision_id, subject=c.subject)
            for c in task.candidates
        ]

    async def ajudge_task(self, task: JudgeTask) -> list[Verdict]:
        """Async twin of :meth:`judge_task`."""
        return self.judge_task(task)

    def judge_many(self, tasks: Sequence[JudgeTask], **kwargs: Any) -> list[list[Verdict]]:
        """Grade many tasks (no model is called, so no concurrency is needed)."""
        return [self.judge_task(t) for t in tasks]

    async def ajudge_many(self, tasks: Sequence[JudgeTask], **kwargs: Any) -> list[list[Verdict]]:
        """Async twin of :meth:`judge_many`."""
        return self.judge_many(tasks)

    def recorded_scores(self, items: Sequence[EvalItem], model: str) -> list[float | None]:
        """The recorded scores of ``model`` on ``items``, in order."""
        return [recorded_response(i, model, self.dataset).score for i in items]
