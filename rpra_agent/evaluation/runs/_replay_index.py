"""Finding a recorded item for a prompt, and the grade scale of a recording (see :mod:`.replay`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables.config import var_child_runnable_config

from rpra_agent.core.errors import RPRAError
from rpra_agent.core.messages import message_text

if TYPE_CHECKING:
    from rpra_agent.evaluation.datasets.records import EvalDataset, EvalItem, ModelResponse

__all__ = [
    "CHARS_PER_TOKEN",
    "ITEM_ID_PREFIX",
    "REPLAY_RUBRIC",
    "ReplayError",
    "ReplayIndex",
    "item_message",
    "recorded_response",
    "tokens_of",
]

ITEM_ID_PREFIX = "rpra-item:"
REPLAY_RUBRIC = "recorded"
CHARS_PER_TOKEN = 4.0


class ReplayError(RPRAError, LookupError):
    """A replayed prompt or response is not in the recording."""


def item_message(item: EvalItem) -> list[BaseMessage]:
    """The item's conversation as LangChain messages, the last user message tagged with its id."""
    messages: list[BaseMessage] = []
    raw = list(item.messages) or [{"role": "user", "content": item.prompt}]
    last_user = max((i for i, m in enumerate(raw) if m.get("role") in ("user", "human")), default=-1)
    for i, m in enumerate(raw):
        role, content = m.get("role"), str(m.get("content") or "")
        if role in ("user", "human"):
            ident = f"{ITEM_ID_PREFIX}{item.id}" if i == last_user else f"{ITEM_ID_PREFIX}{item.id}:{i}"
            messages.append(HumanMessage(content, id=ident))
        elif role in ("assistant", "ai"):
            messages.append(AIMessage(content))
        else:
            messages.append(SystemMessage(content))
    return messages


def _user_texts(messages: Sequence[BaseMessage]) -> tuple[str, ...]:
    return tuple(message_text(m).strip() for m in messages if m.type == "human")


def _item_user_texts(item: EvalItem) -> tuple[str, ...]:
    raw = list(item.messages) or [{"role": "user", "content": item.prompt}]
    return tuple(str(m.get("content") or "").strip() for m in raw if m.get("role") in ("user", "human"))


class ReplayIndex:
    """Finds a dataset's items by id or by conversation.

    Args:
        dataset: The recorded evaluation.
    """

    def __init__(self, dataset: EvalDataset) -> None:
        self.dataset = dataset
        self.by_id: dict[str, EvalItem] = {}
        self.by_text: dict[tuple[str, ...], list[EvalItem]] = {}
        self.by_request: dict[str, list[EvalItem]] = {}
        for item in dataset.items:
            self.by_id[item.id] = item
            texts = _item_user_texts(item)
            self.by_text.setdefault(texts, []).append(item)
            self.by_request.setdefault(texts[-1] if texts else "", []).append(item)

    def get(self, item_id: str) -> EvalItem:
        """The item with id ``item_id``.

        Raises:
            ReplayError: when the dataset has no such item.
        """
        try:
            return self.by_id[item_id]
        except KeyError:
            raise ReplayError(f"item {item_id!r} is not in dataset {self.dataset.name!r}") from None

    def find(self, messages: Sequence[BaseMessage], item_id: str | None = None) -> EvalItem:
        """The item a conversation replays (see the module docstring for the order).

        Raises:
            ReplayError: when the prompt is not in the recording, or is ambiguous.
        """
        for message in reversed(messages):
            ident = getattr(message, "id", None)
            if message.type == "human" and isinstance(ident, str) and ident.startswith(ITEM_ID_PREFIX):
                return self.get(ident[len(ITEM_ID_PREFIX) :])
        if item_id is None:
            conf = (var_child_runnable_config.get() or {}).get("configurable") or {}
            item_id = conf.get("rpra_item_id")
        if item_id is not None:
            return self.get(str(item_id))
        texts = _user_texts(messages)
        found = self.by_text.get(texts) or []
        if len(found) == 1:
            return found[0]
        preview = (texts[-1] if texts else "")[:80]
        if not found:
            raise ReplayError(
                f"the prompt {preview!r} is not in the recording of dataset {self.dataset.name!r}: a replay "
                "model answers only the recorded prompts (tag the message with item_message(item) or pass "
                "configurable rpra_item_id)"
            )
        raise ReplayError(
            f"the prompt {preview!r} occurs {len(found)} times in dataset {self.dataset.name!r}; pass the item "
            "id (item_message(item) or configurable rpra_item_id)"
        )

    def item_for_request(self, request: str) -> EvalItem:
        """The item whose last user message is ``request`` (unique), else :class:`ReplayError`."""
        found = self.by_request.get(request.strip()) or []
        if len(found) != 1:
            what = "is not in" if not found else f"occurs {len(found)} times in"
            raise ReplayError(f"the request {request[:80]!r} {what} dataset {self.dataset.name!r}")
        return found[0]


def recorded_response(item: EvalItem, model: str, dataset: EvalDataset) -> ModelResponse:
    """``model``'s recorded response to ``item``, or :class:`ReplayError`."""
    try:
        return item.responses[model]
    except KeyError:
        known = ", ".join(sorted(item.responses))
        raise ReplayError(
            f"item {item.id!r} of dataset {dataset.name!r} has no recorded response of {model!r} (has: {known})"
        ) from None


def tokens_of(text: str) -> int:
    """An estimated token count: characters / 4, rounded up."""
    return int(math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0
