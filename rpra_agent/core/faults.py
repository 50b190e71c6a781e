"""What a step does when a model leg fails: timeouts, retries and the large-model fallback."""

from __future__ import annotations

from dataclasses import dataclass

from rpra_agent.core.errors import ConfigError

__all__ = ["FaultPolicy"]


@dataclass(frozen=True)
class FaultPolicy:
    """What a step does when a model leg fails (the graph and the middleware alike).

    Attributes:
        small_timeout_s: Timeout of one small-model call (``None``: no timeout).
            A failed or timed-out small call defers the step (reason ``small_error``).
        large_timeout_s: Timeout of one large-model call.
        large_attempts: Attempts at the large model before giving up (>= 1); only
            transient failures (connection errors, timeouts, HTTP 429 and 5xx) are
            retried, a deterministic error fails at once.
        backoff_s: First backoff between attempts; doubles each retry.
        on_large_failure: ``"raise"`` (an ``ExceptionGroup`` with every error) or
            ``"small"`` (answer with the small model, marked degraded).
    """

    small_timeout_s: float | None = None
    large_timeout_s: float | None = None
    large_attempts: int = 3
    backoff_s: float = 0.5
    on_large_failure: str = "raise"

    def __post_init__(self) -> None:
        if self.large_attempts < 1:
            raise ConfigError("large_attempts must be at least 1")
        if self.on_large_failure not in ("raise", "small"):
            raise ConfigError("on_large_failure must be 'raise' or 'small'")
        for name in ("small_timeout_s", "large_timeout_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive or None")
        if self.backoff_s < 0:
            raise ConfigError("backoff_s must be >= 0")
