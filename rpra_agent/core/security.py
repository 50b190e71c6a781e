"""Keeping secrets out of the logs, process-wide.

The decision store scrubs what it writes (``rpra_agent.core.redact``); this module
does the same for every log record, including those of third-party libraries: httpx
logs request URLs at INFO (``http://user:password@host/...``) and the OpenAI client
logs request bodies at DEBUG. :func:`install_log_redaction` wraps the logging
module's record factory, so each record's message (and traceback) is scrubbed once,
when it is created, before any handler or formatter sees it.

The service (:func:`rpra_agent.service.app.create_app`) installs it, registering its
API key as a known secret. Masked: everything :func:`scrub_secrets` recognises (API
keys, bearer/basic tokens, ``key=value`` assignments, URL passwords, ...) plus the
exact strings registered with :func:`register_secret`.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterable
from typing import Any

from rpra_agent.core.redact import scrub_secrets

__all__ = ["install_log_redaction", "redact", "register_secret"]

_MASK = "[REDACTED]"
_MIN_SECRET = 6  # shorter registered strings would mask ordinary words
_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_installed = False


def register_secret(secret: str | None) -> None:
    """Mask this exact string (e.g. a configured API key) wherever it appears in a log record."""
    global _known
    if secret and len(secret) >= _MIN_SECRET:
        with _lock:
            _known = _known | {secret}


def redact(text: str) -> str:
    """``text`` with registered secrets and recognisable secrets masked."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, _MASK)
    return scrub_secrets(text)


def _scrub_parts(record: logging.LogRecord) -> None:
    """Scrub the format string and each str argument in place, keeping the args' shape.

    Some formatters unpack ``record.args`` (uvicorn's access log does), so the
    arguments stay a tuple (or mapping) whenever that is enough to remove the secret.
    """
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
    elif isinstance(args, dict):
        record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}


def _scrubbed(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001  (a bad format string is logging's problem to report, not ours)
        return record
    clean = redact(message)
    if clean != message:
        _scrub_parts(record)
        try:
            still = record.getMessage() != clean
        except Exception:  # noqa: BLE001
            still = True
        if still:  # the secret spans the format and an argument, or sits in a non-str object
            record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        # Format the traceback now, scrubbed; formatters use exc_text when it is set.
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    return record


def install_log_redaction(secrets: Iterable[str | None] = ()) -> None:
    """Scrub every log record created from now on in this process (idempotent).

    Args:
        secrets: Exact strings to mask as well (API keys, passwords), e.g. the
            service's bearer key; more can be added with :func:`register_secret`.
    """
    global _installed
    for secret in secrets:
        register_secret(secret)
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _scrubbed(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
