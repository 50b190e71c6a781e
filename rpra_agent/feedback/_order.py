"""The order in which a joint judge call shows its candidates: seeded, random, recorded.

The paper judged all models' responses to a query in one call. A judge may favour the
first (or last) response it reads, so the candidates are shown in a random order,
seeded by the judge's seed, the conversation and the candidates themselves (the same
task is always shown the same way, in every run), and each verdict's rationale records where its response was shown:
``[shown 2 of 3: large,given,small] ``.
"""

from __future__ import annotations

import random
import re

from rpra_agent.core.judging import JudgeTask
from rpra_agent.core.messages import message_text

__all__ = ["ALONE_TAG", "insert_tag", "order_tag", "parse_order_tag", "shown_order"]

ALONE_TAG = "[judged alone] "
"""Rationale tag of a verdict from an isolated (one response per call) judge call."""

_SHOWN = re.compile(r"\[shown (\d+) of (\d+): ([^\]]*)\]")


def shown_order(task: JudgeTask, seed: int, shuffle: bool = True) -> list[int]:
    """Indices of ``task.candidates`` in the order the judge sees them."""
    order = list(range(len(task.candidates)))
    if shuffle and len(order) > 1:
        # seeded by the conversation and the responses, not by (random) decision ids: a re-run shows them alike
        convo = [f"{m.type}:{message_text(m)[:500]}" for m in task.conversation]
        key = "|".join([str(seed), *convo, *(f"{c.subject}:{c.text[:200]}" for c in task.candidates)])
        random.Random(key).shuffle(order)  # noqa: S311 - an order, not a secret
    return order


def order_tag(position: int, subjects: list[str]) -> str:
    """The rationale tag recording that a response was shown at ``position`` (0-based) of ``subjects``."""
    return f"[shown {position + 1} of {len(subjects)}: {','.join(subjects)}] "


def parse_order_tag(rationale: str) -> tuple[int, list[str]] | None:
    """``(1-based position, subjects in the order shown)`` from a verdict's rationale, if it was judged jointly."""
    match = _SHOWN.search(rationale)
    if match is None:
        return None
    return int(match.group(1)), match.group(3).split(",")


def insert_tag(rationale: str, tag: str) -> str:
    """``rationale`` with ``tag`` inserted after its ``[weakest: ...]`` tag (which report cards read first)."""
    from rpra_agent.feedback._summary import strip_tag

    cut = len(rationale) - len(strip_tag(rationale))
    return rationale[:cut] + tag + rationale[cut:]
