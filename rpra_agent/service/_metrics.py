"""In-process service metrics: counts, deferral rate and latency percentiles."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from rpra_agent.core.decision import Decision

__all__ = ["Metrics"]


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class Metrics:
    """Thread-safe counters; latency percentiles over the last ``window`` completions.

    Args:
        window: How many recent request latencies the percentiles cover.
    """

    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.routes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.decisions = 0
        self.deferred = 0
        self.in_flight = 0
        self._latency: deque[float] = deque(maxlen=window)

    def started_request(self, streaming: bool) -> None:
        """Count a chat completion that started."""
        with self._lock:
            self.requests["stream" if streaming else "plain"] += 1
            self.in_flight += 1

    def finished_request(self, status: int, latency_s: float, decisions: Iterable[Decision] = ()) -> None:
        """Record a finished chat completion: status, latency and its decisions."""
        with self._lock:
            self.in_flight -= 1
            self.statuses[f"{status // 100}xx"] += 1
            if status < 400:
                self._latency.append(latency_s * 1000.0)
            for d in decisions:
                self.decisions += 1
                self.deferred += int(d.deferred)
                self.routes[d.route] += 1
                self.reasons[d.reason] += 1

    def rejected(self, status: int, code: str | None = None) -> None:
        """Count a request refused before it ran (auth, size, validation), by status class and error code."""
        with self._lock:
            self.statuses[f"{status // 100}xx"] += 1
            self.rejections[code or str(status)] += 1

    def failed(self, code: str) -> None:
        """Count a server-side failure by error code (on top of its status, counted when the request finished)."""
        with self._lock:
            self.rejections[code] += 1

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON."""
        with self._lock:
            lat = sorted(self._latency)
            return {
                "uptime_s": round(time.time() - self.started, 3),
                "requests": {"total": sum(self.requests.values()), **self.requests, "in_flight": self.in_flight},
                "responses": dict(self.statuses),
                "errors": dict(self.rejections),
                "decisions": {
                    "total": self.decisions,
                    "deferred": self.deferred,
                    "deferral_rate": (self.deferred / self.decisions) if self.decisions else None,
                    "by_route": dict(self.routes),
                    "by_reason": dict(self.reasons),
                },
                "latency_ms": {
                    "count": len(lat),
                    "p50": _percentile(lat, 0.5),
                    "p90": _percentile(lat, 0.9),
                    "p99": _percentile(lat, 0.99),
                    "max": lat[-1] if lat else None,
                },
            }

    def prometheus(self) -> str:
        """The same figures in the Prometheus text format."""
        s = self.snapshot()
        lines = [
            "# TYPE rpra_requests_total counter",
            *(
                f'rpra_requests_total{{mode="{k}"}} {v}'
                for k, v in s["requests"].items()
                if k not in ("total", "in_flight")
            ),
            "# TYPE rpra_requests_in_flight gauge",
            f"rpra_requests_in_flight {s['requests']['in_flight']}",
            "# TYPE rpra_responses_total counter",
            *(f'rpra_responses_total{{class="{k}"}} {v}' for k, v in s["responses"].items()),
            "# TYPE rpra_errors_total counter",
            *(f'rpra_errors_total{{code="{k}"}} {v}' for k, v in s["errors"].items()),
            "# TYPE rpra_decisions_total counter",
            *(f'rpra_decisions_total{{reason="{k}"}} {v}' for k, v in s["decisions"]["by_reason"].items()),
            "# TYPE rpra_deferral_rate gauge",
            f"rpra_deferral_rate {s['decisions']['deferral_rate'] or 0.0}",
            "# TYPE rpra_latency_ms summary",
        ]
        for q in ("p50", "p90", "p99"):
            value = s["latency_ms"][q]
            if value is not None:
                lines.append(f'rpra_latency_ms{{quantile="0.{q[1:]}"}} {value:.3f}')
        lines.append(f"rpra_latency_ms_count {s['latency_ms']['count']}")
        return "\n".join(lines) + "\n"
