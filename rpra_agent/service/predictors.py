"""``--predictor`` specs: every kind of predictor from one string (``rpra serve``, ``rpra ask``).

Specs::

    guarded                      (default) min(zero-shot, the best independent signal
                                 available: a stored learned predictor, else the small
                                 model's stored report card, else "no evidence" = defer)
    guarded:SELF+INDEPENDENT     e.g. guarded:report-card+learned:/models/learned
    zero-shot | report-card | fine-tuned | prefix-sharing     the small model, self-reported
    learned:PATH                 a learned-predictor artifact directory
    learned-store[:NAME]         the newest learned predictor stored as NAME (default "default")
    card-stats                   the small model's stored report card, as statistics (no model)
    prior:P                      P(acceptable) = P for every request (a fixed prior)
    no-evidence                  every step defers (all mass on the worst grade)

Self-reported predictors (the first four) read the request, so injected text can steer
them; ``guarded`` lets a self-report only move a step toward deferral.
"""

from __future__ import annotations

import logging
from typing import Any

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.naming import model_id
from rpra_agent.core.prediction import Predictor
from rpra_agent.store.base import DecisionStore

__all__ = ["PREDICTOR_SPECS", "predictor_from_spec"]

logger = logging.getLogger(__name__)

PREDICTOR_SPECS = (
    "guarded", "guarded:SELF+INDEPENDENT", "zero-shot", "report-card", "fine-tuned", "prefix-sharing",
    "learned:PATH", "learned-store[:NAME]", "card-stats", "prior:P", "no-evidence",
)  # fmt: skip
_LEARNED_KIND = "learned_predictor"  # the artifact kind LearnedPredictor.save_to_store writes
_SELF = ("zero-shot", "report-card", "fine-tuned", "prefix-sharing")


def _self_reported(spec: str, small: Any, store: DecisionStore | None) -> Predictor | None:
    from rpra_agent import predictors

    if spec == "zero-shot":
        return predictors.ZeroShotPredictor(small)
    if spec == "fine-tuned":
        return predictors.FineTunedPredictor(small)
    if spec == "prefix-sharing":
        from rpra_agent.predictors.prefix import PrefixSharingPredictor

        return PrefixSharingPredictor(small)
    if spec == "report-card":
        if store is None:
            raise ConfigError(
                "--predictor report-card needs a decision log (--db / RPRA_DATABASE_URL) holding the card"
            )
        from rpra_agent.feedback.cards import report_card_loader

        return predictors.ReportCardPredictor(small, card=report_card_loader(store, model_id(small)))
    return None


def _card_stats(small: Any, store: DecisionStore | None, *, required: bool) -> Predictor | None:
    from rpra_agent.evaluation.runs.crossfit import CardStatPredictor
    from rpra_agent.feedback.cards import load_report_card

    card = load_report_card(store, model_id(small)) if store is not None else None
    if card is None:
        if required:
            raise ConfigError(
                f"--predictor card-stats: the decision log has no report card of {model_id(small)}; "
                "build one with `rpra report-card build` first"
            )
        return None
    return CardStatPredictor(card, name="card_stats")


def _learned_store(name: str, store: DecisionStore | None, *, required: bool) -> Predictor | None:
    if store is None:
        if required:
            raise ConfigError("--predictor learned-store needs a decision log (--db / RPRA_DATABASE_URL)")
        return None
    if not required and store.latest_artifact(_LEARNED_KIND, name) is None:
        return None
    from rpra_agent.predictors.learned import LearnedPredictor

    return LearnedPredictor.load_from_store(store, name)


def _independent(spec: str, small: Any, store: DecisionStore | None) -> Predictor:
    from rpra_agent.predictors.guarded import PriorPredictor

    if spec.startswith("learned:"):
        from rpra_agent.predictors.learned import LearnedPredictor

        return LearnedPredictor.load(spec.split(":", 1)[1])
    if spec == "learned-store" or spec.startswith("learned-store:"):
        name = spec.split(":", 1)[1] if ":" in spec else "default"
        found = _learned_store(name, store, required=True)
        assert found is not None  # noqa: S101  (required=True raises instead)
        return found
    if spec == "card-stats":
        found = _card_stats(small, store, required=True)
        assert found is not None  # noqa: S101
        return found
    if spec == "no-evidence":
        return PriorPredictor.never_trusted()
    if spec.startswith("prior:"):
        try:
            p = float(spec.split(":", 1)[1])
        except ValueError:
            p = -1.0
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"--predictor {spec}: prior:P needs a probability P in [0, 1], e.g. prior:0.7")
        return PriorPredictor({"great": p, "bad": 1.0 - p}, name=f"prior_{p:g}")
    raise ConfigError(f"unknown --predictor {spec!r}: use one of {', '.join(PREDICTOR_SPECS)}")


def _best_independent(small: Any, store: DecisionStore | None) -> Predictor:
    """A stored learned predictor, else the stored report card's statistics, else no evidence."""
    from rpra_agent.predictors.guarded import PriorPredictor

    for source in (lambda: _learned_store("default", store, required=False), lambda: _card_stats(small, store, required=False)):  # fmt: skip
        try:
            found = source()
        except ConfigError as exc:
            logger.warning("an independent signal could not be loaded (%s); trying the next", exc)
            continue
        if found is not None:
            return found
    logger.warning(
        "no learned predictor or report card of %s in the decision log: every step defers to the large model "
        "until one exists (build a card with `rpra report-card build`, or pass --predictor zero-shot to trust "
        "self-prediction, which prompt injection can steer)",
        model_id(small),
    )
    return PriorPredictor.never_trusted()


def check_spec(spec: str) -> None:
    """Check a ``--predictor`` spec's form before anything is loaded.

    Raises:
        ConfigError: naming the accepted forms.
    """
    spec = spec.strip()
    if spec.startswith("guarded:"):
        own, sep, other = spec.split(":", 1)[1].partition("+")
        if own not in _SELF or not sep:
            raise ConfigError(
                f"--predictor {spec}: write guarded:SELF+INDEPENDENT with SELF one of {', '.join(_SELF)}, "
                "e.g. guarded:zero-shot+learned:/models/learned"
            )
        return check_spec(other)
    if spec.startswith("prior:"):
        try:
            ok = 0.0 <= float(spec.split(":", 1)[1]) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"--predictor {spec}: prior:P needs a probability P in [0, 1], e.g. prior:0.7")
        return
    plain = ("guarded", "card-stats", "no-evidence", "learned-store", *_SELF)
    if spec in plain or (spec.startswith(("learned:", "learned-store:")) and spec.split(":", 1)[1]):
        return
    raise ConfigError(f"unknown --predictor {spec!r}: use one of {', '.join(PREDICTOR_SPECS)}")


def predictor_from_spec(spec: str, small: Any, store: DecisionStore | None = None) -> Predictor:
    """Build the predictor a ``--predictor`` spec names (see the module docstring).

    Args:
        spec: The spec, e.g. ``guarded``, ``zero-shot``, ``learned:/models/learned``.
        small: The small chat model (self-predictors ask it).
        store: The decision log, where report cards and learned predictors are stored.

    Raises:
        ConfigError: on an unknown spec or a missing artifact, saying what to do.
    """
    from rpra_agent.predictors.guarded import GuardedPredictor

    spec = spec.strip()
    if spec == "guarded":
        return GuardedPredictor(_self_reported("zero-shot", small, store), _best_independent(small, store))  # type: ignore[arg-type]
    if spec.startswith("guarded:"):
        own, sep, other = spec.split(":", 1)[1].partition("+")
        mine = _self_reported(own, small, store)
        if mine is None or not sep:
            raise ConfigError(
                f"--predictor {spec}: write guarded:SELF+INDEPENDENT with SELF one of {', '.join(_SELF)}, "
                "e.g. guarded:zero-shot+learned:/models/learned"
            )
        return GuardedPredictor(mine, _independent(other, small, store))
    return _self_reported(spec, small, store) or _independent(spec, small, store)
