"""Reading the prompts of a live evaluation: a dataset file, or plain prompt lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rpra_agent.core.errors import DatasetError
from rpra_agent.evaluation.datasets.jsonline import parse_json_line
from rpra_agent.evaluation.datasets.records import BUNDLED, EvalDataset, EvalItem, load_dataset, render_messages

__all__ = ["load_prompts"]

_KEYS = frozenset({"id", "prompt", "messages", "category"})
_ROLES = frozenset({"system", "user", "assistant"})


def load_prompts(name_or_path: str | Path) -> EvalDataset:
    """A bundled dataset, a dataset file (header first), or a prompts JSONL file.

    A prompts file has one object per line: ``{"id": ..., "prompt": "..."}`` or
    ``{"messages": [{"role": "user", "content": "..."}], "category": "..."}``; the id
    defaults to the line number.

    Raises:
        DatasetError: naming the file, line and field of anything malformed.
    """
    key = str(name_or_path)
    path = Path(key)
    if key in BUNDLED and not path.exists():
        return load_dataset(key)
    if not path.exists():
        raise DatasetError("no such prompts file (give a .jsonl path or a bundled dataset name)", path=key)
    with path.open(encoding="utf-8-sig") as fh:
        first = next((line for line in fh if line.strip()), "")
    if '"rpra_dataset"' in first or path.suffix == ".gz":
        return load_dataset(path)
    return _prompt_lines(path)


def _prompt_lines(path: Path) -> EvalDataset:
    items: list[EvalItem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8-sig") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            items.append(_item(raw, number, str(path), seen))
    if not items:
        raise DatasetError("the prompts file holds no prompt", path=str(path))
    return EvalDataset(
        name=path.stem, items=tuple(items), weak="small", strong="large", score_range=(0.0, 1.0), attribution=""
    )


def _item(raw: str, number: int, where: str, seen: set[str]) -> EvalItem:
    def fail(message: str, field: str | None = None) -> DatasetError:
        return DatasetError(message, path=where, line=number, field=field)

    obj: Any = parse_json_line(raw, where, number, what='each line must be one object such as {"prompt": "..."}')
    if not isinstance(obj, dict):
        raise fail('expected a JSON object such as {"prompt": "..."}')
    unknown = obj.keys() - _KEYS
    if unknown:
        raise fail(f"unknown field(s) {sorted(unknown)}; a prompt line has {sorted(_KEYS)}", sorted(unknown)[0])
    item_id = str(obj.get("id", number))
    if item_id in seen:
        raise fail(f"duplicate id {item_id!r}; ids must be unique", "id")
    seen.add(item_id)
    messages = obj.get("messages")
    prompt = obj.get("prompt")
    if messages is not None:
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict) and m.get("role") in _ROLES and isinstance(m.get("content"), str) for m in messages
            )
        ):
            raise fail("messages must be a non-empty list of {role: system|user|assistant, content: text}", "messages")
        msgs = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    elif isinstance(prompt, str) and prompt.strip():
        msgs = ({"role": "user", "content": prompt},)
    else:
        raise fail("each line needs a non-empty prompt (text) or messages", "prompt")
    if msgs[-1]["role"] != "user":
        raise fail("the last message must be the user's request", "messages")
    category = obj.get("category")
    if category is not None and not isinstance(category, str):
        raise fail("category must be a string", "category")
    return EvalItem(item_id, prompt if isinstance(prompt, str) else render_messages(msgs), msgs, category, {})
