"""The OpenAI-compatible HTTP service (FastAPI): ``/v1/chat/completions`` through RPRA.

Endpoints: ``POST /v1/chat/completions`` (plain and ``stream=true`` SSE),
``GET /v1/models``, ``GET /healthz`` (no auth), ``GET /metrics`` (JSON, or the
Prometheus text format with ``?format=prometheus``). With an API key configured,
every endpoint but ``/healthz`` needs ``Authorization: Bearer <key>`` (compared in
constant time). Errors are OpenAI-style bodies ``{"error": {"message", "type",
"param", "code"}}``. Which model answered, and why, is in ``x-rpra-*`` headers and
in the response's ``rpra`` field.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints'
# annotations at definition time, and ``Request`` is imported lazily inside create_app.
import hmac
import logging
import time
import uuid
from typing import Any

from rpra_agent.core.errors import ConfigError, ModelCallError, StoreError
from rpra_agent.core.redact import scrub_json, scrub_secrets
from rpra_agent.core.security import install_log_redaction
from rpra_agent.service._metrics import Metrics
from rpra_agent.service._openai import APIError, error_body, parse_request, to_langchain
from rpra_agent.service.engine import ChatEngine, Completion, Routed

__all__ = ["create_app"]

logger = logging.getLogger("rpra_agent.service")

_EXTRA = "pip install 'rpra-agent[serve]'"


def _import_fastapi() -> Any:
    try:
        import fastapi
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(f"the HTTP service needs FastAPI and uvicorn: {_EXTRA}") from exc
    return fastapi


def _authorized(header: str | None, api_key: str | None) -> bool:
    if not api_key:
        return True
    scheme, _, token = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


async def _read_body(request: Any, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_big = APIError(413, f"The request body is larger than the limit of {limit} bytes.", code="request_too_large")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise too_big
    return bytes(body)


def create_app(
    engine: ChatEngine, *, api_key: str | None = None, max_body_bytes: int = 1_000_000, metrics: Metrics | None = None
) -> Any:
    """Build the FastAPI application.

    Args:
        engine: Runs the requests (see :class:`ChatEngine`).
        api_key: Require ``Authorization: Bearer <api_key>`` (``None``: no auth).
        max_body_bytes: Larger request bodies get 413.
        metrics: Where counts and latencies go (a new :class:`Metrics` by default).

    Returns:
        A ``fastapi.FastAPI`` app; serve it with uvicorn.

    Raises:
        ConfigError: when FastAPI is not installed, or on a bad limit.
    """
    fastapi = _import_fastapi()
    from fastapi import Request
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from rpra_agent.service._openai import completion as completion_body
    from rpra_agent.service._render import decision_headers, routed_headers, rpra_metadata, sse_events, usage

    if max_body_bytes < 1024:
        raise ConfigError("max_body_bytes must be at least 1024")
    install_log_redaction([api_key])  # no secret in any log record, third-party ones included
    stats = metrics or Metrics()
    app = fastapi.FastAPI(title="rpra", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine, app.state.metrics = engine, stats
    small_name, large_name = _name(engine.small), _name(engine.large)

    def fail(exc: APIError) -> Any:
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            error_body(exc.message, exc.type, exc.param, exc.code), status_code=exc.status, headers=headers
        )

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Any:
        if exc.status < 500:  # 5xx come from runs, already counted when they finished
            stats.rejected(exc.status, exc.code)
        logger.info("%s %s -> %d %s", request.method, request.url.path, exc.status, exc.code or exc.type)
        return fail(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        stats.rejected(exc.status_code)
        message = "Not found." if exc.status_code == 404 else str(exc.detail)
        return fail(APIError(exc.status_code, message, code="not_found" if exc.status_code == 404 else None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Any:  # never a plain-text 500
        stats.rejected(500, "internal_error")
        logger.error("%s %s -> 500 (%s)", request.method, request.url.path, type(exc).__name__)
        return fail(
            APIError(500, "The server failed to answer the request.", type="server_error", code="internal_error")
        )

    def check_auth(request: Request) -> None:
        if not _authorized(request.headers.get("authorization"), api_key):
            raise APIError(
                401,
                "Incorrect or missing API key: send 'Authorization: Bearer <key>'.",
                type="authentication_error",
                code="invalid_api_key",
            )

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": engine.model_name, "small": small_name, "large": large_name}

    @app.get("/metrics")
    async def metrics_endpoint(request: Request, format: str = "json") -> Any:
        check_auth(request)
        if format == "prometheus":
            return PlainTextResponse(scrub_secrets(stats.prometheus()), media_type="text/plain; version=0.0.4")
        return scrub_json(stats.snapshot())

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        check_auth(request)
        entry = {"id": engine.model_name, "object": "model", "created": int(stats.started), "owned_by": "rpra"}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        check_auth(request)
        req = parse_request(await _read_body(request, max_body_bytes))
        if req.model != engine.model_name:
            raise APIError(
                404,
                f"The model '{req.model}' does not exist; this server serves '{engine.model_name}'.",
                param="model",
                code="model_not_found",
            )
        messages = to_langchain(req.messages)
        tools = [t.model_dump(exclude_none=True) for t in req.tools] if req.tools else None
        try:
            engine.graph_for(tools, req.tool_choice)
        except Exception as exc:  # a tool set or tool_choice the models cannot bind
            raise APIError(
                400, f"The tools could not be bound to the models: {type(exc).__name__}.", param="tools"
            ) from None
        task = None
        if engine.client_task:  # off (--no-client-task): a client cannot pick the task a predictor reads
            task = (req.metadata or {}).get("rpra_task") or request.headers.get("x-rpra-task")
        client_tools = bool(tools) and req.tool_choice != "none"
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        start = time.perf_counter()
        stats.started_request(req.stream)
        finished = False

        def done(result: Completion | None, status: int) -> None:
            nonlocal finished
            if not finished:
                finished = True
                stats.finished_request(status, time.perf_counter() - start, result.decisions if result else ())
                logger.info("chat %s -> %d in %.1f ms", completion_id, status, (time.perf_counter() - start) * 1000)

        try:
            if not req.stream:
                result = await engine.complete(messages, tools=tools, tool_choice=req.tool_choice, task=task)
                body = completion_body(
                    completion_id,
                    engine.model_name,
                    result.message,
                    client_tools=client_tools,
                    usage=usage(result),
                    rpra=rpra_metadata(result),
                )
                done(result, 200)
                return JSONResponse(body, headers=decision_headers(result))
            events = engine.stream(messages, tools=tools, tool_choice=req.tool_choice, task=task).__aiter__()
            first = await events.__anext__()
            headers = routed_headers(first, small_name, large_name) if isinstance(first, Routed) else {}
            stream = sse_events(events, completion_id=completion_id, model=engine.model_name, client_tools=client_tools,
                                include_usage=bool(req.stream_options and req.stream_options.include_usage), on_done=done)  # fmt: skip
            return StreamingResponse(
                stream, media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"}
            )
        except StoreError as exc:  # the decision could not be made durable (on_loss="raise")
            done(None, 503)
            stats.failed("decision_log_unavailable")
            logger.error("chat %s: the decision log failed: %s", completion_id, exc)
            raise APIError(
                503,
                "The decision log is unavailable, so the answer was not recorded; try again later.",
                type="server_error",
                code="decision_log_unavailable",
            ) from None
        except (ModelCallError, ExceptionGroup):
            done(None, 502)
            logger.exception("chat %s: a model failed", completion_id)
            raise APIError(
                502, "The model failed to answer; try again.", type="server_error", code="model_error"
            ) from None
        except Exception:
            done(None, 500)
            logger.exception("chat %s failed", completion_id)
            raise APIError(
                500, "The server failed to answer the request.", type="server_error", code="internal_error"
            ) from None

    return app


def _name(model: Any) -> str:
    from rpra_agent.core.naming import model_id

    return model_id(model)
