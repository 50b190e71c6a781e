"""``rpra serve``: the OpenAI-compatible HTTP service (extra ``serve``)."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from rpra_agent.cli.app import app
from rpra_agent.core.errors import ConfigError, RPRAError
from rpra_agent.core.redact import scrub_secrets

__all__ = ["serve"]

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(scrub_secrets(message))}")
    raise typer.Exit(code)


def _server_tools(docs_dir: str | None, database_url: str | None, sql_url: str | None) -> list[Any]:
    try:
        from tools import assistant_tools
    except ImportError:
        _fail("--tools needs the repository's tools/ package: run `rpra serve` from the repository root")
    return assistant_tools(docs_dir=docs_dir, database_url=database_url or "sqlite:///rpra.db", sql_url=sql_url)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    small: Annotated[
        str | None, typer.Option("--small", help="Small model string (default: $RPRA_SMALL_MODEL).")
    ] = None,
    large: Annotated[
        str | None, typer.Option("--large", help="Large model string (default: $RPRA_LARGE_MODEL).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Decision log (default: $RPRA_DATABASE_URL or sqlite ./rpra.db)."),
    ] = None,
    paradigm: Annotated[str | None, typer.Option(help="pa, rpra or verify (default: $RPRA_PARADIGM or pa).")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="P(acceptable) threshold (default: $RPRA_THRESHOLD or 0.5).")
    ] = None,
    calibration: Annotated[
        str | None,
        typer.Option(
            "--calibration",
            help="Route at the threshold of this stored calibration (`rpra calibrate --db URL --name NAME`), "
            "read from the decision log, instead of --threshold (default: $RPRA_CALIBRATION).",
        ),
    ] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Model steps per request.")] = None,
    predictor: Annotated[
        str | None,
        typer.Option(
            "--predictor",
            help="guarded (default: injection-resistant), guarded:SELF+INDEPENDENT, zero-shot, report-card, "
            "fine-tuned, prefix-sharing, learned:PATH, learned-store[:NAME], card-stats, prior:P, no-evidence "
            "(default: $RPRA_PREDICTOR or guarded).",
        ),
    ] = None,
    durability: Annotated[
        str | None,
        typer.Option(
            "--durability",
            help="sync: an HTTP 200 means the decision is committed or spooled (default); async: batched.",
        ),
    ] = None,
    on_loss: Annotated[
        str | None,
        typer.Option("--on-loss", help="raise: answer 503 when a decision cannot be saved (default); log."),
    ] = None,
    client_task: Annotated[
        bool | None,
        typer.Option(
            "--client-task/--no-client-task",
            help="Take the task tag from clients (x-rpra-task, metadata.rpra_task); default $RPRA_CLIENT_TASK or yes.",
        ),
    ] = None,
    max_deferrals: Annotated[
        int | None, typer.Option("--max-deferrals", help="Deferral budget per run (default: none).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="RPRA_API_KEY", show_envvar=True, help="Require this bearer key.")
    ] = None,
    model_name: Annotated[
        str, typer.Option("--model-name", envvar="RPRA_MODEL_NAME", help="Model name clients use.")
    ] = "rpra",
    tools: Annotated[bool, typer.Option("--tools/--no-tools", help="Serve the assistant's server-side tools.")] = False,
    docs_dir: Annotated[
        str | None, typer.Option("--docs-dir", help="Documents for the search tool (with --tools).")
    ] = None,
    sql_url: Annotated[
        str | None,
        typer.Option(
            "--sql-url", help="URL the SQL tool reads with (with --tools; on PostgreSQL a reader role's, see docs)."
        ),
    ] = None,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest accepted request body.")] = 1_000_000,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve POST /v1/chat/completions (and /v1/models, /healthz, /metrics) through the RPRA graph."""
    try:
        import uvicorn
    except ImportError:
        _fail("rpra serve needs FastAPI and uvicorn: pip install 'rpra-agent[serve]'")
    from rpra_agent.core.security import install_log_redaction
    from rpra_agent.service import ChatEngine, Settings, build_components, create_app
    from rpra_agent.service.config import describe_threshold

    install_log_redaction([api_key])  # before anything loads: model strings may carry passwords and keys

    try:
        settings = Settings.from_env(
            small_model=small, large_model=large, database_url=database_url, paradigm=paradigm,
            threshold=threshold, calibration=calibration, max_steps=max_steps, docs_dir=docs_dir, sql_url=sql_url, predictor=predictor,
            durability=durability, on_loss=on_loss, client_task=client_task, max_deferrals=max_deferrals,
        )  # fmt: skip
        components = build_components(settings)
    except RPRAError as exc:
        _fail(f"{exc} (or pass --small/--large)" if "RPRA_SMALL_MODEL" in str(exc) else str(exc))
    try:
        server_tools = _server_tools(settings.docs_dir, settings.database_url, settings.sql_url) if tools else []
        engine = ChatEngine.from_components(components, server_tools, model_name=model_name)
        application = create_app(engine, api_key=api_key, max_body_bytes=max_body_bytes)
        banner = (
            f"serving {model_name} at http://{host}:{port}/v1 (small={settings.small_model}, "
            f"large={settings.large_model}, predictor={components.predictor.name}, paradigm={settings.paradigm}, "
            f"threshold={describe_threshold(components.policy, settings)}, "
            f"durability={settings.durability}, on_loss={settings.on_loss}, "
            f"auth={'on' if api_key else 'off'}, tools={'on' if tools else 'off'})"
        )
        err.print(scrub_secrets(banner), markup=False)  # model strings may carry passwords and keys
        uvicorn.run(application, host=host, port=port, log_level=log_level)
    except ConfigError as exc:
        _fail(str(exc))
    finally:
        components.store.close()
