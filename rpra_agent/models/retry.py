"""Which model-call failures are worth retrying, how long to wait, and clean HTTP errors.

The contract for whoever retries a model call (the step driver retries the large leg):

- Call the model once per attempt. The chat models built here make exactly one HTTP
  request per call: :class:`~rpra_agent.models.openai_compat.ChatOpenAICompatible`
  sets the OpenAI SDK's own ``max_retries`` to 0, so retries are never multiplied.
- After a failure, retry only if :func:`is_transient` says so; otherwise fail at once
  with that error. :func:`is_transient` is pure and never raises.
- Between attempts wait :func:`retry_delays` ``(attempts, backoff_s)[i]`` seconds after
  the ``i``-th failure (0-based): ``backoff_s * 2**i``, capped at ``max_delay_s``.

What is transient (``True``): the server could not be reached or did not answer in
time (``ConnectionError``, ``TimeoutError``, ``httpx.TransportError``,
``openai.APIConnectionError`` / ``APITimeoutError``), or it answered HTTP 408, 429 or
5xx (any SDK error with an int ``status_code``, or an ``httpx.HTTPStatusError``); a
LangChain ``ModelError`` is transient when its ``is_retryable`` is true. Everything else is deterministic (``False``): HTTP 4xx (bad request,
authentication, not found, context too long, unprocessable), validation errors,
programming errors (``TypeError``, ``KeyError``, ...), configuration errors, and
anything unknown. A :class:`ModelCallError` or ``ExceptionGroup`` is transient only
if every error it holds is.

A server that reports a deterministic error as a 5xx can mark it
(``ModelHTTPError(transient=False)``): llama-cpp-python's server answers a request its
validation rejects with HTTP 500 and ``"N validation errors: ..."``, which
``ChatOpenAICompatible`` marks deterministic.

The OpenAI SDK's errors (``"Error code: 400 - {'error': {...}}"``, under a long chained
traceback) are translated by ``ChatOpenAICompatible`` into the errors below, whose
``str`` is the server's own message and which are raised without the SDK's chain (the
SDK error stays on ``sdk_error``). They are also LangChain ``ModelError`` s whose
``is_retryable`` agrees with :func:`is_transient`, so LangChain's
``ModelRetryMiddleware`` makes the same choice::

    RPRAError, langchain_core ModelError
    └── ModelHTTPError              the server answered an error status (status_code, message)
        ├── ModelContextOverflowError  HTTP 400: the prompt does not fit (also ContextOverflowError)
        └── ModelUnreachableError      no answer: refused, reset or timed out (also ConnectionError)
"""

from __future__ import annotations

from typing import Any

from langchain_core.exceptions import ContextOverflowError, ModelConnectionError, ModelError

from rpra_agent.core.errors import ModelCallError, RPRAError

__all__ = [
    "ModelContextOverflowError",
    "ModelHTTPError",
    "ModelUnreachableError",
    "is_transient",
    "retry_delays",
]

_TRANSIENT_STATUS = frozenset({408, 429})


class ModelHTTPError(RPRAError, ModelError):
    """A model server answered an HTTP error status, or no answer came back.

    ``str(error)`` is ``"<model> at <url>: HTTP <status>: <the server's message>"``
    (the URL without credentials).

    Attributes:
        status_code: The HTTP status (``None`` when no answer came back).
        message: The server's own error message.
        model: The model name that was called.
        base_url: The server's base URL.
        transient: Whether a retry may succeed (see :func:`is_transient`).
        is_retryable: The same, under LangChain's name.
        body: The decoded error body, if any.
        sdk_error: The SDK's original exception, if any.
    """

    sdk_error: BaseException | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        model: str = "",
        base_url: str = "",
        body: Any = None,
        transient: bool | None = None,
    ) -> None:
        where = " at ".join(x for x in (model, base_url) if x)
        status = f"HTTP {status_code}" if status_code is not None else "no answer"
        super().__init__(f"{where}: {status}: {message}" if where else f"{status}: {message}")
        self.status_code = status_code
        self.message = message
        self.model = model
        self.base_url = base_url
        self.body = body
        self.transient = _status_is_transient(status_code) if transient is None else transient
        self.is_retryable = self.transient

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle (and deepcopy) with every attribute; the SDK error is dropped."""
        fields = (self.message, self.status_code, self.model, self.base_url, self.body, self.transient)
        return (_rebuild, (type(self), *fields))


def _rebuild(
    cls: type[ModelHTTPError], message: str, status: int | None, model: str, url: str, body: Any, transient: bool
) -> ModelHTTPError:
    error = cls.__new__(cls)
    ModelHTTPError.__init__(
        error, message, status_code=status, model=model, base_url=url, body=body, transient=transient
    )
    return error


class ModelContextOverflowError(ModelHTTPError, ContextOverflowError):
    """The prompt (plus the requested completion) does not fit the model's context (never transient)."""


class ModelUnreachableError(ModelHTTPError, ModelConnectionError, ConnectionError):
    """A model server could not be reached or did not answer in time (always transient)."""

    def __init__(self, message: str, *, model: str = "", base_url: str = "") -> None:
        super().__init__(message, status_code=None, model=model, base_url=base_url, transient=True)


def _status_is_transient(status: int | None) -> bool:
    return status is None or status in _TRANSIENT_STATUS or status >= 500


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status carried by an SDK or httpx error, if any."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _is_sdk_connection_error(exc: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with langchain-openai
        httpx = None  # type: ignore[assignment]
    if httpx is not None and isinstance(exc, httpx.TransportError):
        return True
    try:
        import openai
    except ImportError:  # pragma: no cover - openai comes with langchain-openai
        return False
    return isinstance(exc, openai.APIConnectionError)  # includes APITimeoutError


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the call that raised ``exc`` may succeed.

    Args:
        exc: The error a model call raised.

    Returns:
        ``True`` for connection errors, timeouts, HTTP 408, 429 and 5xx (also inside
        a ``ModelCallError`` or ``ExceptionGroup`` whose errors are all transient);
        ``False`` for every other error: 4xx, validation, programming and
        configuration errors and anything unknown.
    """
    if isinstance(exc, ModelHTTPError):
        return exc.transient
    if isinstance(exc, ModelCallError):
        return bool(exc.errors) and all(is_transient(e) for e in exc.errors)
    if isinstance(exc, BaseExceptionGroup):
        return all(is_transient(e) for e in exc.exceptions)
    if isinstance(exc, ModelError):  # LangChain's provider-independent errors say it themselves
        return bool(exc.is_retryable)
    if isinstance(exc, (TimeoutError, ConnectionError)) or _is_sdk_connection_error(exc):
        return True
    status = _status_of(exc)  # an SDK's HTTP error (openai, httpx, ...)
    return status is not None and 400 <= status <= 599 and _status_is_transient(status)


def retry_delays(attempts: int, backoff_s: float, *, max_delay_s: float = 30.0) -> list[float]:
    """Seconds to wait after each failed attempt but the last: ``backoff_s * 2**i``, capped.

    Args:
        attempts: Total attempts (>= 1); there are ``attempts - 1`` waits.
        backoff_s: The first wait (>= 0); each later one doubles.
        max_delay_s: The longest single wait.

    Returns:
        ``attempts - 1`` delays, e.g. ``retry_delays(4, 0.5) == [0.5, 1.0, 2.0]``.

    Raises:
        ValueError: If ``attempts < 1``, ``backoff_s < 0`` or ``max_delay_s < 0``.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if backoff_s < 0 or max_delay_s < 0:
        raise ValueError(f"backoff_s and max_delay_s must be >= 0, got {backoff_s} and {max_delay_s}")
    return [min(backoff_s * 2**i, max_delay_s) for i in range(attempts - 1)]
