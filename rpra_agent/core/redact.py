"""Keeping secrets out of everything the library writes: one scrubber for every output path."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["scrub_json", "scrub_name", "scrub_secrets"]

_MASK = "[REDACTED]"
_SECRET_WORDS = r"api[_-]?key|apikey|secret|token|passw(?:or)?d|pwd|credentials?|private[_-]?key"  # noqa: S105
_SECRET_KEY = re.compile(rf"^(?:.*[_-])?(?:{_SECRET_WORDS}|authorization|auth|sig(?:nature)?)$", re.I)
# Provider key formats: (lower-case markers, pattern). Each pattern is a whole token.
_KEY_FORMATS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("sk-",), r"sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-|admin-)?[A-Za-z0-9_-]{12,}"),  # OpenAI, Anthropic
    (("sk_", "rk_", "pk_"), r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"),  # Stripe
    (("hf_",), r"hf_[A-Za-z0-9]{20,}"),  # Hugging Face
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"gh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub
    (("github_pat_",), r"github_pat_[A-Za-z0-9_]{20,}"),
    (("glpat-",), r"glpat-[A-Za-z0-9_-]{16,}"),  # GitLab
    (("xox",), r"xox[abposre]-[A-Za-z0-9-]{10,}"),  # Slack
    (("akia", "asia"), r"(?:AKIA|ASIA)[0-9A-Z]{16}"),  # AWS access key id
    (("gsk_",), r"gsk_[A-Za-z0-9]{20,}"),  # Groq
    (("xai-",), r"xai-[A-Za-z0-9]{20,}"),  # xAI
    (("aiza",), r"AIza[0-9A-Za-z_-]{35}"),  # Google API key
    (("eyj",), r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
)
# (lower-case markers, pattern, replacement): a pattern runs only when one of its markers
# occurs in the lower-cased text, so ordinary text costs a few substring scans.
_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # Authorization headers (any scheme, Basic included) and bare Bearer/Basic/Token credentials
    (
        ("authorization",),
        re.compile(r"""(?P<k>authorization["']?\s*[:=]\s*["']?(?:[A-Za-z]+\s+)?)[^\s"',;}]{4,}""", re.I),
        r"\g<k>" + _MASK,
    ),
    (
        ("bearer", "basic", "token"),
        re.compile(r"(?P<k>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I),
        r"\g<k>" + _MASK,
    ),
    # query parameters named like secrets: ?api_key=...&sig=...&access_token=...
    (
        ("key", "secret", "token", "passw", "pwd", "auth", "sig", "credential"),
        re.compile(
            r"(?P<k>[?&;][A-Za-z0-9_.-]*?(?:key|secret|token|passw(?:or)?d|pwd|auth|sig(?:nature)?|credentials?)"
            r"[A-Za-z0-9_.-]*=)[^&#\s\"',;)]+",
            re.I,
        ),
        r"\g<k>" + _MASK,
    ),
    # key=value / "key": "value" assignments of secret-looking names (the name's prefix stays)
    (
        ("key", "secret", "token", "passw", "pwd", "credential"),
        re.compile(
            rf"""(?P<k>(?:{_SECRET_WORDS})["']?\s*[:=]\s*["']?)(?P<v>[^\s"'&,;}}]{{4,}})""",
            re.I,
        ),
        r"\g<k>" + _MASK,
    ),
    *(
        (markers, re.compile(rf"(?<![A-Za-z0-9_-]){pattern}(?![A-Za-z0-9_-])"), _MASK)
        for markers, pattern in _KEY_FORMATS
    ),
    (
        ("private key",),
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
        _MASK,
    ),
    # URL userinfo: scheme://user:password@host keeps the user; scheme://token@host masks all
    (("://",), re.compile(r"(?P<k>\b[a-z][a-z0-9+.-]*://[^\s:/@?#]*:)[^\s@/?#]+(?=@)", re.I), r"\g<k>***"),
    (("://",), re.compile(r"(?P<k>\b[a-z][a-z0-9+.-]*://)[A-Za-z0-9_-]{20,}(?=@)", re.I), r"\g<k>***"),
)
_MARKERS = tuple(sorted({m for markers, _, _ in _PATTERNS for m in markers}))


def scrub_secrets(text: str) -> str:
    """Replace secrets with a mask: the one scrubber of every output path.

    Covered: URL userinfo (``scheme://user:password@``), query parameters and
    ``key=value`` / JSON assignments named like secrets, ``Authorization`` headers of
    any scheme (Basic included) and bare Bearer/Basic credentials, PEM private keys,
    JWTs, and the key formats of OpenAI (``sk-``, ``sk-proj-``), Anthropic
    (``sk-ant-``), Hugging Face (``hf_``), GitHub (``ghp_``, ``github_pat_`` ...),
    GitLab (``glpat-``), Slack (``xox?-``), AWS (``AKIA``), Groq (``gsk_``), xAI
    (``xai-``), Stripe (``sk_live_``, ``rk_live_``, ``pk_live_``) and Google (``AIza``).

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
