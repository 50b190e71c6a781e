"""Which model-call failures are worth retrying (placeholder; replaced by the models helper's version)."""

from __future__ import annotations

__all__ = ["is_transient"]

_TRANSIENT_NAMES = {"APIConnectionError", "APITimeoutError", "RateLimitError", "InternalServerError", "ConnectError"}


def is_transient(exc: BaseException) -> bool:
    """True for connection errors, timeouts, HTTP 429 and 5xx; False for deterministic failures."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    return type(exc).__name__ in _TRANSIENT_NAMES
