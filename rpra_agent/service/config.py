"""Deployment settings from the environment, and the components they build.

Used by the deployable graphs (``graphs/``) and by ``rpra serve``::

    RPRA_SMALL_MODEL   model string of the small model    (required, e.g. gguf:/models/small.gguf)
    RPRA_LARGE_MODEL   model string of the large model    (required, e.g. openai:gpt-4o)
    RPRA_DATABASE_URL  decision log URL                   (default: SQLite ./rpra.db; memory:// for none)
    RPRA_PARADIGM      pa | rpra | verify                 (default: pa)
    RPRA_THRESHOLD     P(acceptable) threshold in [0, 1]  (default: 0.5)
    RPRA_CALIBRATION   route at a stored calibration's threshold instead: its NAME
                       (`rpra calibrate --db URL --name NAME`), newest version, read from the
                       decision log at start-up (default: none; not with RPRA_THRESHOLD)
    RPRA_MAX_STEPS     model steps per run                (default: 8)
    RPRA_DOCS_DIR      documents the assistant searches   (default: none)
    RPRA_SQL_URL       URL the assistant's SQL tool reads with (default: RPRA_DATABASE_URL;
                       on PostgreSQL a reader role's URL: the tool refuses a role that can write)
    RPRA_PREDICTOR     a --predictor spec                 (default: guarded; see service.predictors)
    RPRA_DURABILITY    sync | async                       (default: sync: an HTTP 200 means the decision is durable)
    RPRA_ON_LOSS       raise | log                        (default: raise: 503 when a decision cannot be saved)
    RPRA_CLIENT_TASK   true | false: use a client's task tag (x-rpra-task, metadata.rpra_task) (default: true)
    RPRA_MAX_DEFERRALS deferral budget per run             (default: none)

Nothing is read or loaded at import time.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.tools import BaseTool

from rpra_agent.core.decision import Paradigm
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.policy import DeferralPolicy, ThresholdPolicy
from rpra_agent.core.prediction import Predictor
from rpra_agent.core.redact import scrub_secrets
from rpra_agent.graph import build_rpra_graph
from rpra_agent.service.predictors import predictor_from_spec
from rpra_agent.store import DecisionStore, open_store

__all__ = ["ENV", "Components", "Settings", "build_components", "build_graph", "describe_threshold"]

logger = logging.getLogger(__name__)

ENV = {
    "small_model": "RPRA_SMALL_MODEL",
    "large_model": "RPRA_LARGE_MODEL",
    "database_url": "RPRA_DATABASE_URL",
    "paradigm": "RPRA_PARADIGM",
    "threshold": "RPRA_THRESHOLD",
    "calibration": "RPRA_CALIBRATION",
    "max_steps": "RPRA_MAX_STEPS",
    "docs_dir": "RPRA_DOCS_DIR",
    "sql_url": "RPRA_SQL_URL",
    "predictor": "RPRA_PREDICTOR",
    "durability": "RPRA_DURABILITY",
    "on_loss": "RPRA_ON_LOSS",
    "client_task": "RPRA_CLIENT_TASK",
    "max_deferrals": "RPRA_MAX_DEFERRALS",
}
_EXAMPLE = "e.g. RPRA_SMALL_MODEL=gguf:/models/small.gguf RPRA_LARGE_MODEL=openai:gpt-4o-mini"


def _setting(field: str) -> str:
    """A setting's name in errors: its variable and ``rpra serve``'s flag, since either can set it."""
    flag = {"small_model": "small", "large_model": "large"}.get(field, field.replace("_", "-"))
    return f"{ENV[field]} (or rpra serve --{flag})"


@dataclass(frozen=True)
class Settings:
    """What a deployment is made of.

    Attributes:
        small_model: Model string of the small model (``gguf:...``, ``openai:...``).
        large_model: Model string of the large model.
        database_url: Decision log URL (``None``: ``open_store``'s default).
        paradigm: ``pa``, ``rpra`` or ``verify``.
        threshold: The ``ThresholdPolicy`` threshold on P(acceptable).
        calibration: The name of a calibration stored in the decision log (``rpra
            calibrate --db URL --name NAME``): the policy routes at its newest
            version's threshold and metric (``load_calibrated_policy``) instead of
            ``threshold``. ``None``: the fixed ``threshold``.
        max_steps: Model steps per run.
        docs_dir: A folder of documents for the assistant's search tool.
        sql_url: The URL the assistant's SQL tool reads the decision log with
            (``None``: ``database_url``). On PostgreSQL it must be a reader role's
            (``tools.decision_sql.create_reader_role``).
        predictor: A ``--predictor`` spec (:func:`~rpra_agent.service.predictors.predictor_from_spec`).
        durability: The decision log's mode: ``sync`` (a decision is committed or
            spooled before the step returns) or ``async`` (batched).
        on_loss: When neither the database nor the spool takes a decision: ``raise``
            (the request fails with 503) or ``log``.
        client_task: Whether the service takes a request's task tag from the client
            (``x-rpra-task``, ``metadata.rpra_task``); a predictor that reads the task
            (report-card statistics) can then be steered by a client claiming a task.
        max_deferrals: Deferral budget per run (``ThresholdPolicy.max_deferrals``).
    """

    small_model: str
    large_model: str
    database_url: str | None = None
    paradigm: Paradigm = "pa"
    threshold: float = 0.5
    calibration: str | None = None
    max_steps: int = 8
    docs_dir: str | None = None
    sql_url: str | None = None
    predictor: str = "guarded"
    durability: str = "sync"
    on_loss: str = "raise"
    client_task: bool = True
    max_deferrals: int | None = None

    def __post_init__(self) -> None:
        if self.max_deferrals is not None and self.max_deferrals < 0:
            raise ConfigError(f"{_setting('max_deferrals')} must be at least 0, not {self.max_deferrals!r}")
        if self.durability not in ("sync", "async"):
            raise ConfigError(f"{_setting('durability')} must be sync or async, not {self.durability!r}")
        if self.on_loss not in ("raise", "log"):
            raise ConfigError(f"{_setting('on_loss')} must be raise or log, not {self.on_loss!r}")
        if self.paradigm not in ("pa", "rpra", "verify"):
            raise ConfigError(f"{_setting('paradigm')} must be pa, rpra or verify, not {self.paradigm!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"{_setting('threshold')} must be a probability in [0, 1], not {self.threshold!r}")
        if self.max_steps < 1:
            raise ConfigError(f"{_setting('max_steps')} must be at least 1, not {self.max_steps!r}")
        if self.calibration is not None and not self.calibration.strip():
            raise ConfigError(f"{_setting('calibration')} must name a stored calibration, not an empty string")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the settings from the environment; ``overrides`` (not ``None``) win.

        Raises:
            ConfigError: naming every missing or invalid variable.
        """
        env = os.environ if environ is None else environ
        given = {k: v for k, v in overrides.items() if v is not None}
        values: dict[str, Any] = {}
        for field, var in ENV.items():
            raw = env.get(var, "").strip()
            if field in given:
                values[field] = given[field]
            elif raw:
                values[field] = raw
        if "threshold" in values and "calibration" in values:
            raise ConfigError(
                f"both {_setting('threshold')} and {_setting('calibration')} are set: the calibration's threshold "
                "replaces the fixed one, so set only one of them"
            )
        missing = [ENV[f] for f in ("small_model", "large_model") if not values.get(f)]
        if missing:
            raise ConfigError(
                f"missing environment variable(s) {', '.join(missing)}: set them to model strings ({_EXAMPLE})"
            )
        if isinstance(values.get("client_task"), str):
            flag = values["client_task"].strip().lower()
            if flag not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{_setting('client_task')} must be true or false, not {values['client_task']!r}")
            values["client_task"] = flag in ("true", "1", "yes")
        for field, kind in (("threshold", float), ("max_steps", int), ("max_deferrals", int)):
            if isinstance(values.get(field), str):
                try:
                    values[field] = kind(values[field])
                except ValueError:
                    raise ConfigError(f"{_setting(field)}: {values[field]!r} is not a valid {kind.__name__}") from None
        return cls(**values)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the non-``None`` ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Components:
    """The live objects a deployment runs on."""

    small: Any
    large: Any
    predictor: Predictor
    policy: DeferralPolicy
    store: DecisionStore
    settings: Settings


def build_components(settings: Settings) -> Components:
    """Load both models, open the store, and make the predictor and policy.

    The predictor is ``settings.predictor`` (by default ``guarded``: the small model's
    zero-shot self-prediction can only move a step toward deferral unless an
    independent signal agrees); the policy a ``ThresholdPolicy(settings.threshold)``,
    or, with ``settings.calibration``, the newest stored calibration of that name read
    from the decision log (its threshold and metric). The store opens in
    ``settings.durability`` mode (``sync`` by default).

    Raises:
        ConfigError: on a bad model string or database URL (from the loaders), or a
            calibration that is not stored there.
    """
    models = importlib.import_module("rpra_agent.models")
    small = models.load_chat_model(settings.small_model)
    large = models.load_chat_model(settings.large_model)
    store = open_store(settings.database_url, durability=settings.durability, on_loss=settings.on_loss)
    try:
        predictor = predictor_from_spec(settings.predictor, small, store)
        policy = _policy(settings, store)
        if settings.calibration is not None:
            from rpra_agent.feedback.calibration import warn_off_scale

            warn_off_scale(policy, predictor, settings.calibration)
    except BaseException:
        store.close()
        raise
    logger.info(
        "deployment: small=%s large=%s predictor=%s paradigm=%s threshold=%s durability=%s",
        scrub_secrets(settings.small_model),  # a model string's base_url may carry a password
        scrub_secrets(settings.large_model),
        predictor.name,
        settings.paradigm,
        describe_threshold(policy, settings),
        settings.durability,
    )
    return Components(small, large, predictor, policy, store, settings)


def describe_threshold(policy: DeferralPolicy, settings: Settings) -> str:
    """The deployment's threshold as its logs and banner say it: ``0.5 on p_acceptable (fixed)``."""
    threshold, metric = getattr(policy, "threshold", None), getattr(policy, "metric", "?")
    where = f"calibration {settings.calibration!r}, {policy.name}" if settings.calibration else "fixed"
    value = f"{threshold:.4g}" if isinstance(threshold, float | int) else "?"
    return f"{value} on {metric} ({where})"


def _policy(settings: Settings, store: DecisionStore) -> ThresholdPolicy:
    """The fixed threshold's policy, or the named calibration's from the store."""
    if settings.calibration is None:
        return ThresholdPolicy(settings.threshold, max_deferrals=settings.max_deferrals)
    from rpra_agent.feedback.calibration import load_calibrated_policy

    try:
        return load_calibrated_policy(store, settings.calibration, max_deferrals=settings.max_deferrals)
    except ConfigError as exc:
        raise ConfigError(f"{_setting('calibration')}: {exc} (with --db pointing at this decision log)") from None


def build_graph(components: Components, tools: Sequence[BaseTool] = (), *, name: str = "rpra") -> Any:
    """The compiled RPRA graph over ``components`` (no checkpointer: the platform adds one)."""
    s = components.settings
    return build_rpra_graph(
        small=components.small,
        large=components.large,
        predictor=components.predictor,
        policy=components.policy,
        paradigm=s.paradigm,
        tools=tools,
        store=components.store,
        max_steps=s.max_steps,
        name=name,
    )
