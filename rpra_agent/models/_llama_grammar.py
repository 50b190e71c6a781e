"""GBNF grammars for tool calls, from JSON schemas sanitised so that no schema can crash llama.cpp.

llama.cpp's grammar parser rejects repetitions above a limit (a string with
``maxLength: 5000`` converts to ``[^"] {0,5000}``), and llama-cpp-python then uses the
failed grammar and the process segfaults. So schemas are sanitised before conversion
(length and item bounds above :data:`MAX_REPEAT` dropped, remote ``$ref`` dropped),
the converted grammar is checked (no repetition bound above the limit, bounded size),
and anything that still fails falls back to a schema-free call: ``{"name": <tool>,
"arguments": <any JSON object>}``. The arguments are then validated by the caller's
tool, as with any model output.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MAX_REPEAT", "check_gbnf", "llama_accepts", "sanitize_schema", "tool_grammar"]

logger = logging.getLogger(__name__)

MAX_REPEAT = 1000
"""Largest repetition bound a grammar may carry (llama.cpp's parser refuses 2000 and more)."""
_MAX_GRAMMAR_CHARS = 200_000
_MAX_DEPTH = 40
_MAX_NESTING = 100  # llama-cpp-python spells a regex bound {1,n} as n nested groups
_MAX_PATTERN_REPEAT = 64
_BOUNDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_REPEAT_RE = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


def sanitize_schema(schema: Any, depth: int = 0) -> Any:
    """A copy of ``schema`` that llama-cpp-python converts to a grammar llama.cpp accepts.

    Drops length/item/property bounds above :data:`MAX_REPEAT`, non-local ``$ref``
    and, beyond a nesting depth of 40, the whole subschema (any value).
    """
    if depth > _MAX_DEPTH:
        return {}
    if isinstance(schema, list):
        return [sanitize_schema(s, depth + 1) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _BOUNDS and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_REPEAT):
            continue
        if key == "$ref" and not (isinstance(value, str) and value.startswith("#")):
            continue
        if key == "pattern" and (not isinstance(value, str) or _big_repeat(value, _MAX_PATTERN_REPEAT)):
            continue
        out[key] = sanitize_schema(value, depth + 1)
    return out


def _big_repeat(text: str, limit: int) -> bool:
    return any(int(low) > limit or (high and int(high) > limit) for low, high in _REPEAT_RE.findall(text))


def check_gbnf(grammar: str) -> str | None:
    """Why llama.cpp would refuse ``grammar`` (``None`` if it looks acceptable).

    Looks, outside string literals and character classes, for repetition bounds
    above :data:`MAX_REPEAT` and groups nested more than 100 deep; and for grammars
    too large to be a tool call.
    """
    if len(grammar) > _MAX_GRAMMAR_CHARS:
        return f"the grammar has {len(grammar)} characters"
    for line in grammar.splitlines():
        bare = re.sub(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]', '""', line)
        if _big_repeat(bare, MAX_REPEAT):
            return f"a repetition bound exceeds {MAX_REPEAT}"
        depth = deepest = 0
        for ch in bare:
            depth += (ch == "(") - (ch == ")")
            deepest = max(deepest, depth)
        if deepest > _MAX_NESTING:
            return f"groups nest {deepest} deep"
    return None


def llama_accepts(llama: Any, grammar: str) -> bool:
    """Whether llama.cpp's own parser accepts ``grammar`` (its sampler is built, checked and freed).

    llama-cpp-python would use the NULL sampler a failed parse returns and crash;
    here the failure is only reported. :func:`check_gbnf` runs first, so grammars that
    could overflow the parser's recursion never reach it.
    """
    import llama_cpp

    if check_gbnf(grammar) is not None:
        return False
    sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, grammar.encode("utf-8"), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def _call_schema(tool: dict[str, Any], *, free: bool) -> dict[str, Any]:
    fn = tool["function"]
    params = fn.get("parameters")
    if free or not isinstance(params, dict) or not params:
        params = {"type": "object"}
    return {
        "type": "object",
        "properties": {"name": {"const": fn["name"]}, "arguments": sanitize_schema(params)},
        "required": ["name", "arguments"],
    }


def _body(chosen: Sequence[dict[str, Any]], *, free: bool) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    schemas = [_call_schema(t, free=free) for t in chosen]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    body = json_schema_to_gbnf(json.dumps(schema))
    problem = check_gbnf(body)
    if problem:
        raise ValueError(problem)
    return re.sub(r"^root ::=", "rpra-call-json ::=", body, count=1, flags=re.MULTILINE)


def tool_grammar(
    tools: Sequence[dict[str, Any]], choice: str, accepts: Callable[[str], bool] | None = None
) -> str | None:
    """A GBNF grammar for ``choice`` over ``tools`` (``None`` when unconstrained).

    ``auto`` allows one or more calls or plain text that does not start with ``<``;
    ``required`` allows only calls; a tool name allows exactly one call of it. A
    schema that cannot be converted safely, or whose grammar ``accepts`` (llama.cpp's
    parser, see :func:`llama_accepts`) refuses, constrains only the call's shape.
    """
    if choice == "none" or not tools:
        return None
    chosen = [t for t in tools if t["function"]["name"] == choice] or list(tools)
    names = [t["function"]["name"] for t in chosen]
    try:
        grammar = _wrap(_body(chosen, free=False), choice)
        if accepts is not None and not accepts(grammar):
            raise ValueError("llama.cpp's grammar parser refuses it")
    except Exception as exc:  # untrusted schema: any conversion failure falls back
        logger.warning("tool schemas of %s cannot become a grammar (%s); constraining only the call shape", names, exc)
        grammar = _wrap(_body(chosen, free=True), choice)
    return grammar


def _wrap(body: str, choice: str) -> str:
    call = 'rpra-call ::= "<tool_call>" "\\n"? rpra-call-json "\\n"? "</tool_call>"\n'
    if choice not in ("auto", "required"):
        return f"root ::= rpra-call\n{call}{body}"
    calls = 'rpra-calls ::= rpra-call ("\\n" rpra-call)*\n'
    if choice == "required":
        return f"root ::= rpra-calls\n{calls}{call}{body}"
    return f"root ::= rpra-calls | rpra-text\nrpra-text ::= [^<] [^\\x00]*\n{calls}{call}{body}"
