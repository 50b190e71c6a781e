"""Exceptions raised by rpra_agent.

The tree::

    RPRAError                      root of everything this library raises
    ├── ConfigError                a developer mistake, raised at construction time
    │   └── ModelStringError       an unparseable or unsupported model string
    ├── DatasetError               a malformed dataset line or field (carries line, field)
    ├── PredictorError             a predictor failed or produced garbage (run failure)
    ├── StoreError                 the decision store failed in a way that loses data
    ├── JudgeError                 the judge's output could not be used after retries
    └── ModelCallError             a leg's model failed after retries (wraps the errors)

Control-flow signals from LangGraph (interrupts) are never wrapped or swallowed.
"""

from __future__ import annotations


class RPRAError(Exception):
    """Root of every exception rpra_agent raises."""


class ConfigError(RPRAError, ValueError):
    """A configuration mistake; the message says what to change."""


class ModelStringError(ConfigError):
    """A model string such as ``openai:gpt-4o`` or ``gguf:/m.gguf`` is invalid."""


class DatasetError(RPRAError, ValueError):
    """A dataset is malformed.

    Attributes:
        path: The file being read, if any.
        line: The 1-based line (or CSV row) number, if known.
        field: The offending field, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = []
        if path:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field {field!r}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)
        self.path = path
        self.line = line
        self.field = field


class PredictorError(RPRAError):
    """A predictor failed or returned output that is not a grade.

    Attributes:
        predictor: Name of the predictor that failed.
        raw: The raw model output, if any (never shown to users).
    """

    def __init__(self, message: str, *, predictor: str = "", raw: str = "") -> None:
        super().__init__(message)
        self.predictor = predictor
        self.raw = raw


class StoreError(RPRAError):
    """The decision store could not accept or return records."""


class JudgeError(RPRAError):
    """The judge produced no usable verdict after its retries."""


class ModelCallError(RPRAError):
    """A model leg failed after its retries.

    Attributes:
        leg: ``"small"``, ``"large"`` or ``"predict"``.
        errors: Every error seen, in order.
    """

    def __init__(self, message: str, *, leg: str, errors: list[BaseException]) -> None:
        super().__init__(message)
        self.leg = leg
        self.errors = errors
