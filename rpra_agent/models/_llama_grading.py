"""Grade reads for :class:`~rpra_agent.models.llamacpp.ChatLlamaCpp` (see :mod:`rpra_agent.models._llama_grades`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from rpra_agent.models._llama_grades import inner_paths, label_sequences, read_grades
from rpra_agent.models._llama_run import check_fits, last_logits

__all__ = ["GradeReaderMixin"]


class GradeReaderMixin:
    """``grade_distribution`` over a model's ``_llama``, ``_lock`` and ``prompt_tokens`` (a mixin)."""

    _llama: Any
    _lock: Any
    _grade_seqs: dict[Any, Any]
    _prefills: dict[str, list[int]]
    _stats: dict[str, Any]

    def prompt_tokens(self, messages: Sequence[BaseMessage], tools: Any = None) -> list[int]:  # pragma: no cover
        raise NotImplementedError

    def grade_distribution(
        self, messages: Sequence[BaseMessage], labels: Sequence[str], *, prefill: str = ""
    ) -> dict[str, float]:
        """The exact distribution over ``labels`` of what the assistant writes next after ``messages``.

        The prompt is evaluated once (reusing the KV cache's common prefix); then every
        label's whole token sequence is scored (its forms as written, with a leading
        space, capitalised): the longest inner path rides on the prompt's decode, each
        other one takes one more decode, so labels of several tokens (``10`` vs ``1``,
        ``gre`` + ``at``) are read exactly. The cache
        ends holding the prompt, so an answer call that shares it re-evaluates nothing.

        Args:
            messages: The conversation; the prompt ends with the assistant header.
            labels: The grade labels.
            prefill: Text the assistant turn starts with, tokenized on its own, so
                the answer prompt for ``messages`` is an exact token prefix of this
                prompt and the answer call re-evaluates a single token.

        Returns:
            Plain floats summing to 1, keyed by label.

        Raises:
            PredictorError: When two labels tokenize identically.
            ContextOverflowError: When the prompt does not fit the context.
        """
        start = time.perf_counter()
        with self._lock:
            anchor = prefill[-1:] or "\n"
            key = (tuple(labels), anchor)
            if key not in self._grade_seqs:
                self._grade_seqs[key] = label_sequences(self._llama, labels, anchor)
            seqs = self._grade_seqs[key]
            tokens = self.prompt_tokens(messages)
            if prefill:
                if prefill not in self._prefills:
                    if len(self._prefills) > 64:
                        self._prefills.clear()
                    self._prefills[prefill] = self._llama.tokenize(
                        prefill.encode("utf-8"), add_bos=False, special=False
                    )
                tokens += self._prefills[prefill]
            check_fits(self._llama, len(tokens) + max(len(s) for s in seqs) - 1)
            paths = inner_paths(list(seqs))
            first = paths[0] if paths else ()
            rows, cached = last_logits(self._llama, tokens, first)
            dist, steps, label_ms = read_grades(self._llama, len(tokens), rows, seqs, labels, first)
            self._stats = {
                "kind": "grade",
                "prompt_tokens": len(tokens),
                "cached_tokens": cached,
                "evaluated_tokens": len(tokens) - cached,
                "label_steps": steps,
                "label_ms": label_ms,
                "latency_ms": (time.perf_counter() - start) * 1000.0,
            }
        return dist

    async def agrade_distribution(
        self, messages: Sequence[BaseMessage], labels: Sequence[str], *, prefill: str = ""
    ) -> dict[str, float]:
        """Async :meth:`grade_distribution`, run off the event loop."""
        return await asyncio.to_thread(self.grade_distribution, messages, labels, prefill=prefill)
