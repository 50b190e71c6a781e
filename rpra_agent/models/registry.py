"""Model strings: ``gguf:/path/model.gguf?n_ctx=4096`` and ``openai:MODEL``.

- ``gguf:PATH[?k=v&...]``: :class:`~rpra_agent.models.llamacpp.ChatLlamaCpp` on a local
  GGUF file; options are its fields (``n_ctx``, ``n_threads``, ``seed``,
  ``temperature``, ``max_tokens``, ...), given in the query or as keyword arguments
  (keyword arguments win).
- ``openai:MODEL[?k=v&...]``: :class:`~rpra_agent.models.openai_compat.ChatOpenAICompatible`
  for OpenAI or any OpenAI-compatible server. ``base_url`` and ``api_key`` come from
  the options or ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``. A server other than
  api.openai.com needs no key (a placeholder is sent); OpenAI itself does. The SDK's
  own retries are off (``max_retries=0``; set it to opt back in): callers retry only
  what :func:`rpra_agent.models.retry.is_transient` allows.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rpra_agent.core.errors import ConfigError, ModelStringError
from rpra_agent.core.redact import scrub_secrets

__all__ = ["SCHEMES", "load_chat_model", "parse_model_string"]

SCHEMES = {
    "gguf": "gguf:/path/model.gguf[?n_ctx=4096&n_threads=4] (llama.cpp in-process)",
    "openai": "openai:MODEL[?base_url=http://127.0.0.1:8080/v1] (OpenAI or an OpenAI-compatible server)",
}
_PLACEHOLDER_KEY = "sk-no-key-required"


def _supported() -> str:
    return "; ".join(SCHEMES.values())


def parse_model_string(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split a model string into (scheme, target, options).

    Raises:
        ModelStringError: On an empty string, a missing or unknown scheme, or a
            missing target.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelStringError(f"empty model string; supported: {_supported()}")
    spec = spec.strip()
    scheme, sep, rest = spec.partition(":")
    if not sep:
        raise ModelStringError(
            f"model string {spec!r} has no scheme; did you mean 'openai:{spec}'? Supported: {_supported()}"
        )
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise ModelStringError(f"unknown model scheme {scheme!r} in {spec!r}; supported: {_supported()}")
    target, _, query = rest.partition("?")
    if not target:
        raise ModelStringError(f"model string {spec!r} names no model; expected {SCHEMES[scheme]}")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise ModelStringError(f"cannot parse the options {query!r} of {spec!r}: use ?key=value&key2=value2") from exc
    return scheme, target, options


def load_chat_model(spec: str, **opts: Any) -> Any:
    """Build a LangChain chat model from a model string.

    Args:
        spec: ``gguf:/path/model.gguf?...`` or ``openai:MODEL?...``.
        **opts: Options overriding those in the string (e.g. ``n_ctx=4096``,
            ``base_url=...``, ``api_key=...``, ``temperature=0``).

    Returns:
        A ``BaseChatModel`` with an ``rpra_name`` (``gguf:<file>`` or ``openai:<model>``).

    Raises:
        ModelStringError: On a bad model string or unknown option.
        ConfigError: On a missing file, a missing key for OpenAI, or a missing extra.
    """
    scheme, target, options = parse_model_string(spec)
    merged: dict[str, Any] = {**options, **opts}
    if scheme == "gguf":
        return _load_gguf(target, merged)
    return _load_openai(target, merged)


def _load_gguf(path: str, options: dict[str, Any]) -> Any:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise ConfigError("gguf: models need llama-cpp-python: pip install 'rpra-agent[llama]'") from exc
    from langchain_core.language_models import BaseChatModel
    from pydantic import ValidationError

    from rpra_agent.models.llamacpp import ChatLlamaCpp

    allowed = set(ChatLlamaCpp.model_fields) - set(BaseChatModel.model_fields) - {"model_path"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ModelStringError(f"unknown gguf option(s) {unknown}; supported: {sorted(allowed)}")
    try:
        return ChatLlamaCpp(model_path=os.path.expanduser(path), **options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ModelStringError(f"invalid gguf option value(s): {problems}") from None


def _load_openai(model: str, options: dict[str, Any]) -> Any:
    from pydantic import SecretStr, ValidationError

    from rpra_agent.models.openai_compat import ChatOpenAICompatible, is_openai_url

    known = {n for name, f in ChatOpenAICompatible.model_fields.items() for n in (name, f.alias) if n}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ModelStringError(f"unknown openai option(s) {unknown}; e.g. temperature, max_tokens, timeout, base_url")
    if {"model", "model_name"} & set(options):
        raise ModelStringError(f"the model is named after 'openai:' ({model!r}); remove the model= option")
    for key in ("timeout", "request_timeout"):  # typed Any in ChatOpenAI, so a query string would stay a str
        if isinstance(options.get(key), str):
            try:
                options[key] = float(options[key])
            except ValueError:
                raise ModelStringError(f"{key}={options[key]!r} is not a number of seconds") from None
    given = options.pop("base_url", None)
    base_url = given or os.environ.get("OPENAI_BASE_URL") or None
    if base_url is not None:
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            source = "base_url" if given else "OPENAI_BASE_URL"
            raise ModelStringError(
                f"{source} must be an http(s) URL with a host, e.g. http://127.0.0.1:8080/v1; "
                f"got {scrub_secrets(str(base_url))!r}"
            )
    api_key = options.pop("api_key", None) or os.environ.get("OPENAI_API_KEY") or None
    if api_key is None:
        if is_openai_url(base_url):
            raise ConfigError(
                f"openai:{model} talks to api.openai.com and needs an API key: set OPENAI_API_KEY (or pass "
                "api_key=...), or point it at a local server with OPENAI_BASE_URL / base_url=http://127.0.0.1:8080/v1"
            )
        api_key = _PLACEHOLDER_KEY
    try:
        return ChatOpenAICompatible(
            model=model,
            base_url=base_url,
            api_key=SecretStr(str(api_key)),
            rpra_name=options.pop("rpra_name", f"openai:{model}"),
            **options,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ModelStringError(f"invalid openai option value(s): {problems}") from None
