"""Report cards in the store: build them from the log, version them, load the latest."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.naming import model_spellings
from rpra_agent.feedback.log import graded_model
from rpra_agent.feedback.report_card import ARTIFACT_KIND, ReportCard, build_report_card, latest_verdicts
from rpra_agent.store.base import DecisionStore

__all__ = ["build_report_cards", "graded_models", "load_report_card", "report_card_loader", "save_report_card"]

logger = logging.getLogger(__name__)


def graded_models(store: DecisionStore) -> list[str]:
    """Identifiers of every model with at least one judged step in the log."""
    by_id = {d.id: d for d in store.decisions()}
    found = {graded_model(by_id[d], s) for (d, s) in latest_verdicts(store.verdicts()) if d in by_id}
    return sorted(m for m in found if m)


def build_report_cards(
    store: DecisionStore,
    models: Sequence[str] | None = None,
    *,
    scale: GradeScale | None = None,
    judge: str | None = None,
    summarizer: Any = None,
    save: bool = False,
) -> dict[str, ReportCard]:
    """Build report cards from the store's log (every graded model by default).

    Args:
        store: The decision store.
        models: The models to build cards for; all graded models when ``None``.
        scale: The verdicts' scale (the paper's by default).
        judge: Only use this judge's verdicts.
        summarizer: Optional chat model writing the typical-failure lines.
        save: Store each card as a new artifact version.

    Raises:
        ConfigError: when the log has no decisions, or a model has no judged decision.
    """
    decisions = store.decisions()
    if not decisions:
        raise ConfigError("the decision log is empty: run the agent with a store first, then `rpra judge`")
    verdicts = store.verdicts()
    names = list(models) if models is not None else graded_models(store)
    if not names:
        raise ConfigError("no decision in the log has been judged yet: run `rpra judge` first")
    cards = {}
    for name in names:
        card = build_report_card(decisions, verdicts, name, scale=scale, judge=judge, summarizer=summarizer)
        cards[name] = save_report_card(store, card) if save else card
    return cards


def save_report_card(store: DecisionStore, card: ReportCard) -> ReportCard:
    """Store ``card`` as the newest version of artifact ``("report_card", card.model)``."""
    artifact = store.put_artifact(ARTIFACT_KIND, card.model, card.to_payload())
    store.flush()
    logger.info("report card of %s stored as version %d", card.model, artifact.version)
    return ReportCard.from_payload(artifact.payload, version=artifact.version)


def load_report_card(store: DecisionStore, model: str) -> ReportCard | None:
    """The latest stored report card of ``model``, or ``None``.

    ``model`` may be spelt as the log records it (``gguf:small.gguf``, ``openai:gpt-4o``)
    or as typed (``small.gguf``, ``gpt-4o``): every spelling of
    :func:`~rpra_agent.core.naming.model_spellings` is looked up and the newest card wins.
    """
    found = [a for a in (store.latest_artifact(ARTIFACT_KIND, n) for n in model_spellings(model)) if a is not None]
    if not found:
        return None
    artifact = max(found, key=lambda a: (str(a.created_at), a.version))
    return ReportCard.from_payload(artifact.payload, version=artifact.version)


def report_card_loader(
    store: DecisionStore, model_name: str, *, ttl_s: float = 300.0
) -> Callable[[str | None], str | None]:
    """A card source for :class:`~rpra_agent.predictors.ReportCardPredictor`.

    The returned callable maps a task tag to the card text focused on that task,
    from the latest stored card of ``model_name`` (re-read at most every ``ttl_s``
    seconds), or ``None`` while the model has no card.

    Example:
        >>> predictor = ReportCardPredictor(small, card=report_card_loader(store, "qwen-0.5b"))
    """
    lock = threading.Lock()
    cache: dict[str, Any] = {"at": None, "card": None}

    def card_for(task: str | None) -> str | None:
        with lock:
            now = time.monotonic()
            if cache["at"] is None or now - cache["at"] >= ttl_s:
                try:
                    cache["card"] = load_report_card(store, model_name)
                except Exception:  # noqa: BLE001 - a store hiccup keeps the previous card
                    logger.exception("loading the report card of %s failed; keeping the previous one", model_name)
                cache["at"] = now
            card: ReportCard | None = cache["card"]
        return card.text_for(task) if card is not None else None

    return card_for
