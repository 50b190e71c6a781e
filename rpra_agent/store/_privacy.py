"""What the store keeps of prompts and answers, and how secrets are kept out of it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Literal

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.redact import scrub_json, scrub_name, scrub_secrets

__all__ = ["TextPolicy", "TextMode", "scrub_json", "scrub_name", "scrub_secrets"]

logger = logging.getLogger(__name__)

TextMode = Literal["full", "hash"]


class TextPolicy:
    """How request and response text is stored.

    Args:
        mode: ``"full"`` keeps the text (with secrets scrubbed), ``"hash"`` keeps only
            ``sha256:<hex>`` of it, or a callable ``str -> str`` that redacts it (its
            output is scrubbed as well).

    Raises:
        ConfigError: on an unknown mode.
    """

    def __init__(self, mode: TextMode | Callable[[str], str] = "full") -> None:
        if not callable(mode) and mode not in ("full", "hash"):
            raise ConfigError(f"store_text must be 'full', 'hash' or a callable str -> str, not {mode!r}")
        self.mode = mode

    @property
    def name(self) -> str:
        """``full``, ``hash`` or ``redact``."""
        return "redact" if callable(self.mode) else str(self.mode)

    def apply(self, text: str) -> str:
        """The form of ``text`` that may be stored."""
        if not text:
            return text
        if self.mode == "hash":
            return _sha256(text)
        if callable(self.mode):
            try:
                redacted = self.mode(text)
            except Exception as exc:  # noqa: BLE001  (a failing redactor must not leak the text)
                logger.error("the redaction callable raised %s; storing a hash instead", type(exc).__name__)
                return _sha256(text)
            if not isinstance(redacted, str):
                logger.error("the redaction callable returned %s, not str; storing a hash", type(redacted).__name__)
                return _sha256(text)
            return scrub_secrets(redacted)
        return scrub_secrets(text)


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
