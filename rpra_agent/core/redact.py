"""Keeping secrets out of everything the library writes: one scrubber for every output path."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["scrub_json", "scrub_name", "scrub_secrets"]

_MASK = "[REDACTED]"
_SECRET_KEY = re.compile(
    r"^(?:.*[_-])?(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|pwd|authorization|credentials?|private[_-]?key)$",
    re.I,
)
# (lower-case markers, pattern, replacement): a pattern runs only when one of its markers
# occurs in the lower-cased text, so ordinary text costs a few substring scans.
_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # key=value / "key": "value" assignments of secret-looking names (the name's prefix stays)
    (
        ("key", "secret", "token", "passw", "pwd", "credential"),
        re.compile(
            r"""(?P<k>(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|pwd|credentials?)["']?\s*[:=]\s*["']?)(?P<v>[^\s"'&,;}]{4,})""",
            re.I,
        ),
        r"\g<k>" + _MASK,
    ),
    (
        ("bearer", "basic", "token"),
        re.compile(r"(?P<k>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I),
        r"\g<k>" + _MASK,
    ),
    (("sk-",), re.compile(r"\bsk-[A-Za-z0-9_-]{12,}"), _MASK),  # OpenAI / Anthropic style keys
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat"),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
        _MASK,
    ),
    (("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), _MASK),  # Slack
    (("akia",), re.compile(r"\bAKIA[0-9A-Z]{16}\b"), _MASK),  # AWS access key id
    (("aiza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), _MASK),  # Google API key
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), _MASK),  # JWT
    (
        ("private key",),
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
        _MASK,
    ),
    # passwords inside URLs: scheme://user:password@host
    (("://",), re.compile(r"(?P<k>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)", re.I), r"\g<k>***"),
)
_MARKERS = tuple(sorted({m for markers, _, _ in _PATTERNS for m in markers}))


def scrub_secrets(text: str) -> str:
    """Replace obvious secrets (API keys, bearer tokens, ``api_key=...``, URL passwords) with a mask.

    Args:
        text: Any text that may reach the database or a log.

    Returns:
        The text with each secret replaced by ``[REDACTED]`` (URL passwords by ``***``).
    """
    if not text:
        return text
    low = text.lower()
    for marker in _MARKERS:  # a plain loop of substring tests is the cheapest pre-check
        if marker in low:
            break
    else:
        return text
    for markers, pattern, repl in _PATTERNS:
        if any(m in low for m in markers):
            text = pattern.sub(repl, text)
    return text


@functools.lru_cache(maxsize=1024)
def scrub_name(name: str) -> str:
    """:func:`scrub_secrets` for short, repeating strings (model and predictor names), cached."""
    return scrub_secrets(name)


def scrub_json(value: Any) -> Any:
    """Scrub a JSON-like value: secret-named keys are masked, strings are scrubbed."""
    if isinstance(value, Mapping):
        return {
            str(k): (_MASK if _SECRET_KEY.search(str(k)) and v not in (None, "") else scrub_json(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_json(v) for v in value]
    if isinstance(value, str):
        return scrub_secrets(value)
    return value
