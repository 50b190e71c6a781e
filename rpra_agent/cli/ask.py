"""``rpra ask``: one question through the RPRA graph, with the models given as model strings."""

from __future__ import annotations

import os
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from rpra_agent.cli.app import app
from rpra_agent.core.errors import ConfigError, RPRAError
from rpra_agent.core.redact import scrub_secrets

__all__ = ["ask"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_PARADIGMS = ("pa", "rpra", "verify")


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(scrub_secrets(message))}")
    raise typer.Exit(code)


def _model(flag: str, env: str, spec: str | None, base_url: str | None) -> Any:
    from rpra_agent.models import load_chat_model

    if not spec:
        example = "gguf:/path/small.gguf" if flag == "--small" else "openai:gpt-4o-mini"
        _fail(f"no {flag[2:]} model: pass {flag} {example} or set {env}")
    opts = {"base_url": base_url} if base_url and spec.startswith("openai:") and "base_url=" not in spec else {}
    try:
        return load_chat_model(spec, **opts)
    except ConfigError as exc:
        _fail(f"{flag} {spec}: {exc}")


def _predictor(spec: str, small: Any, store: Any) -> Any:
    from rpra_agent.service.predictors import predictor_from_spec

    try:
        return predictor_from_spec(spec, small, store)
    except (RPRAError, ImportError) as exc:
        store.close()
        _fail(f"--predictor {spec}: {exc}")


def _store(db: str | None) -> Any:
    try:
        from rpra_agent.store import open_store
    except ImportError:  # pragma: no cover - the store ships with the core
        from rpra_agent.store import InMemoryDecisionStore

        return InMemoryDecisionStore()
    try:
        return open_store(db, durability="sync") if db else open_store("memory://")
    except ConfigError as exc:
        _fail(f"--db {db}: {exc}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        causes = dict.fromkeys(f"{type(e).__name__}: {e}" for e in exc.exceptions)
        return f"{exc.message}: " + "; ".join(causes)
    return f"{type(exc).__name__}: {exc}"


def _summary(decision: Any) -> str:
    pred = decision.prediction
    latency = sum(leg.latency_ms for leg in decision.legs.values())
    legs = ", ".join(f"{name} {leg.latency_ms:.0f} ms" for name, leg in decision.legs.items())
    return (
        f"step {decision.step}: route={decision.route} reason={decision.reason} kind={decision.kind} "
        f"grade={pred.grade if pred else '-'} p_ok={f'{pred.p_acceptable:.3f}' if pred else '-'} "
        f"threshold={decision.threshold:.2f} latency={latency:.0f} ms ({legs})"
    )


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    small: Annotated[
        str | None,
        typer.Option("--small", envvar="RPRA_SMALL_MODEL", help="Small model string, e.g. gguf:/models/small.gguf."),
    ] = None,
    large: Annotated[
        str | None,
        typer.Option("--large", envvar="RPRA_LARGE_MODEL", help="Large model string, e.g. openai:gpt-4o-mini."),
    ] = None,
    paradigm: Annotated[str, typer.Option("--paradigm", help="pa, rpra or verify.")] = "pa",
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Defer when P(acceptable) is below this (default 0.5).")
    ] = None,
    calibration: Annotated[
        str | None,
        typer.Option(
            "--calibration",
            help="Route at the threshold of this calibration stored in --db (`rpra calibrate --db URL --name NAME`) "
            "instead of --threshold.",
        ),
    ] = None,
    predictor: Annotated[
        str,
        typer.Option(
            "--predictor",
            help="zero-shot (default), report-card, fine-tuned, prefix-sharing, learned:PATH, "
            "learned-store[:NAME], card-stats, prior:P, no-evidence, guarded, guarded:SELF+INDEPENDENT "
            "(see docs/RELIABILITY.md: guarded resists prompt injection).",
        ),
    ] = "zero-shot",
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Base URL for openai: models (default $OPENAI_BASE_URL).")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="RPRA_DATABASE_URL", help="Record decisions here (default: in memory only)."),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system prompt.")] = None,
) -> None:
    """Answer QUESTION with the small model, or defer to the large one when its predicted grade is low."""
    from rpra_agent.core.security import install_log_redaction

    install_log_redaction()  # model strings and URLs may carry passwords and keys
    if paradigm not in _PARADIGMS:
        _fail(f"--paradigm must be one of {', '.join(_PARADIGMS)}, not {paradigm!r}")
    from rpra_agent.service.predictors import check_spec

    try:
        check_spec(predictor)  # before any model is loaded
    except ConfigError as exc:
        _fail(str(exc))
    if not small:
        _fail("no small model: pass --small gguf:/path/small.gguf (or openai:MODEL) or set RPRA_SMALL_MODEL")
    if not large:
        _fail("no large model: pass --large openai:MODEL (e.g. openai:gpt-4o-mini) or set RPRA_LARGE_MODEL")
    from langchain_core.messages import HumanMessage, SystemMessage

    from rpra_agent.core.policy import ThresholdPolicy
    from rpra_agent.graph import build_rpra_graph, decisions_from_state

    if calibration is not None and threshold is not None:
        _fail("--threshold and --calibration both given: the calibration's threshold replaces the fixed one")
    if calibration is not None and not db:
        _fail("--calibration reads a calibration stored in the decision log: pass --db URL (or set RPRA_DATABASE_URL)")
    try:
        policy = ThresholdPolicy(threshold=0.5 if threshold is None else threshold)
    except ConfigError as exc:
        _fail(f"--threshold: {exc}")
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    small_model = _model("--small", "RPRA_SMALL_MODEL", small, base_url)
    large_model = _model("--large", "RPRA_LARGE_MODEL", large, base_url)
    store = _store(db)
    chosen = _predictor(predictor, small_model, store)
    if calibration is not None:
        from rpra_agent.feedback.calibration import load_calibrated_policy, warn_off_scale

        try:
            policy = load_calibrated_policy(store, calibration)
        except ConfigError as exc:
            store.close()
            _fail(f"--calibration: {exc}")
        if warn_off_scale(policy, chosen, calibration):
            err.print(f"[yellow]warning:[/] --calibration {calibration}: its threshold lies off the predictor's scale")
    try:
        graph = build_rpra_graph(
            small=small_model, large=large_model, predictor=chosen, policy=policy,
            paradigm=paradigm, store=store,  # type: ignore[arg-type]
        )  # fmt: skip
    except ConfigError as exc:  # e.g. a draft-mode predictor outside --paradigm verify
        store.close()
        _fail(str(exc))
    messages = ([SystemMessage(system)] if system else []) + [HumanMessage(question)]
    try:
        state = graph.invoke({"messages": messages})
    except (RPRAError, ExceptionGroup) as exc:
        _fail(_describe(exc), code=1)
    finally:
        store.flush()
        store.close()
    out.print(state["messages"][-1].text)
    for decision in decisions_from_state(state):
        err.print(_summary(decision))
