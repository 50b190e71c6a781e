"""Recorded evaluations: prompts, each model's answer and its judge score.

A dataset is a JSON-lines file (optionally gzip-compressed) whose first line is a
header ``{"rpra_dataset": {...}}`` naming the weak (small) and strong (large) model
and the score range, followed by one item per line. ``docs/DATASETS.md`` documents
the format; :func:`load_dataset` reads it (or a bundled name), :func:`save_dataset`
writes it.

Bundled datasets (real recordings, Apache-2.0, attribution in ``rpra_agent/data``):
``mt-bench`` (routed per turn, n=160), ``mt-bench-question`` (routed per question,
n=80), ``gsm8k`` (n=1319), ``mmlu`` (n=14042) and ``arena`` (n=293).
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rpra_agent.core.errors import DatasetError

__all__ = [
    "BUNDLED",
    "EvalDataset",
    "EvalItem",
    "ModelResponse",
    "bundled_path",
    "load_dataset",
    "render_messages",
    "save_dataset",
]

logger = logging.getLogger(__name__)

#: Bundled dataset names and their files under ``rpra_agent/data``.
BUNDLED: Mapping[str, str] = {
    "mt-bench": "mt-bench.jsonl.gz",
    "mt-bench-question": "mt-bench-question.jsonl.gz",
    "gsm8k": "gsm8k.jsonl.gz",
    "mmlu": "mmlu.jsonl.gz",
    "arena": "arena.jsonl.gz",
}

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelResponse:
    """One model's recorded answer to one item.

    Attributes:
        text: The answer text, or ``None`` when not recorded (e.g. MMLU).
        score: The judge's score (or correctness 0/1) on the dataset's score range;
            ``None`` when unjudged.
        tokens: Tokens billed for the call, when recorded.
        cost: Cost of the call in your currency, when recorded.
    """

    text: str | None = None
    score: float | None = None
    tokens: int | None = None
    cost: float | None = None


@dataclass(frozen=True)
class EvalItem:
    """One prompt with every model's recorded response.

    Attributes:
        id: Unique id within the dataset.
        prompt: The request as text (for multi-message items, the rendered conversation).
        messages: The request as chat messages ``{"role": ..., "content": ...}``.
        category: Task/category tag (report cards are kept per category), if any.
        responses: Recorded responses by model name.
        metadata: Free-form per-item JSON (``meta`` in the file).
    """

    id: str
    prompt: str
    messages: tuple[dict[str, Any], ...]
    category: str | None
    responses: Mapping[str, ModelResponse]
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalDataset:
    """A recorded evaluation: items plus which model is weak (small) and strong (large).

    Attributes:
        name: Dataset name.
        items: The items, in file order.
        weak: The weak (small, cheap) model's name.
        strong: The strong (large) model's name.
        score_range: ``(lowest, highest)`` possible score.
        attribution: Where the data comes from and under which licence.
        metadata: The rest of the header (``models``, ``acceptable``, ``description`` ...).
    """

    name: str
    items: tuple[EvalItem, ...]
    weak: str
    strong: str
    score_range: tuple[float, float]
    attribution: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the header declares (weak and strong first)."""
        declared = self.metadata.get("models") or ()
        return tuple(dict.fromkeys([self.weak, self.strong, *declared]))

    @property
    def acceptable(self) -> float:
        """The lowest score that counts as an acceptable answer.

        From the header's ``acceptable``; otherwise the midpoint of the score range
        (so correctness 0/1 counts 1 as acceptable).
        """
        value = self.metadata.get("acceptable")
        if value is None:
            return (self.score_range[0] + self.score_range[1]) / 2
        return float(value)

    def scores(self, model: str) -> np.ndarray:
        """Every item's score for ``model`` as floats, NaN where missing."""
        return np.array(
            [_score_or_nan(item.responses.get(model)) for item in self.items],
            dtype=float,
        )

    def texts(self, model: str) -> list[str | None]:
        """Every item's answer text for ``model`` (``None`` where not recorded)."""
        out: list[str | None] = []
        for item in self.items:
            response = item.responses.get(model)
            out.append(None if response is None else response.text)
        return out

    def categories(self) -> list[str | None]:
        """Every item's category."""
        return [item.category for item in self.items]

    def subset(self, indices: Iterable[int] | np.ndarray) -> EvalDataset:
        """A dataset with only the items at ``indices`` (in that order)."""
        items = self.items
        return replace(self, items=tuple(items[int(i)] for i in indices))

    def judged(self) -> EvalDataset:
        """Only the items where both the weak and the strong model have a score."""
        keep = ~(np.isnan(self.scores(self.weak)) | np.isnan(self.scores(self.strong)))
        return self.subset(np.flatnonzero(keep))

    def require_judged(self) -> EvalDataset:
        """:meth:`judged`, refusing an empty result with what is missing.

        Raises:
            DatasetError: when no item has a score for both models; the message counts
                each model's scored items, so a missing strong column or a misspelt
                model name shows at once.
        """
        judged = self.judged()
        if len(judged) == 0:
            counts = ", ".join(
                f"{role} {model!r} on {int((~np.isnan(self.scores(model))).sum())}"
                for role, model in (("weak", self.weak), ("strong", self.strong))
            )
            raise DatasetError(
                f"dataset {self.name!r} has no item scored for both models (of {len(self)} items, scores for {counts});"
                " routing metrics, calibration and cross-fitting need both: add the missing model's judged answers"
                " (or run the models live: rpra eval --small/--large/--judge)"
            )
        return judged

    def strength_warning(self) -> str | None:
        """A warning when the weak model does not score below the strong one on the judged items.

        Routing metrics measure how much of the strong model's lead a router recovers
        (PGR, APGR). Without a lead they turn over: the oracle scores below random and a
        router that loses quality shows a positive PGR. Mislabelled ``weak``/``strong``
        is the usual cause.
        """
        judged = self.judged()
        if len(judged) == 0:
            return None
        weak, strong = float(np.mean(judged.scores(self.weak))), float(np.mean(judged.scores(self.strong)))
        if weak < strong:
            return None
        return (
            f"the weak model {self.weak!r} scores {weak:.3g} on average, not below the strong model "
            f"{self.strong!r} ({strong:.3g}): PGR and APGR assume the strong model leads, so they are "
            "meaningless here; if the two are swapped, set --weak/--strong (or the file's header) the other way"
        )

    def header(self) -> dict[str, Any]:
        """The header object written as the file's first line."""
        head: dict[str, Any] = {"format": FORMAT_VERSION, "name": self.name}
        head.update({k: v for k, v in self.metadata.items() if k not in ("format", "name")})
        head.update(
            weak=self.weak,
            strong=self.strong,
            models=list(self.models),
            score_range=[self.score_range[0], self.score_range[1]],
            attribution=self.attribution,
        )
        return head


def _score_or_nan(response: ModelResponse | None) -> float:
    if response is None or response.score is None:
        return float("nan")
    return float(response.score)


def render_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """Render chat messages as one prompt text.

    A single user message renders as its content; a conversation renders as
    ``User: ...`` / ``Assistant: ...`` blocks separated by blank lines, so prompt-only predictors see all turns.
    """
    if len(messages) == 1 and messages[0].get("role") == "user":
        return str(messages[0].get("content", ""))
    blocks = [f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in messages]
    return "\n\n".join(blocks)


def bundled_path(name: str) -> Path:
    """The file of a bundled dataset.

    Raises:
        DatasetError: if ``name`` is not bundled.
    """
    if name not in BUNDLED:
        raise DatasetError(
            f"no bundled dataset {name!r}; bundled: {', '.join(BUNDLED)} (or give a path to a .jsonl file)"
        )
    return Path(str(resources.files("rpra_agent") / "data" / BUNDLED[name]))


def load_dataset(name_or_path: str | Path) -> EvalDataset:
    """Load a bundled dataset by name, or a dataset file (``.jsonl`` or ``.jsonl.gz``).

    Args:
        name_or_path: A bundled name (see :data:`BUNDLED`) or a path.

    Returns:
        The dataset.

    Raises:
        DatasetError: if the file is missing or malformed; the message names the
            file, line and field.
    """
    key = str(name_or_path)
    if key in BUNDLED and not Path(key).exists():
        return _load_bundled(key)
    path = Path(key)
    if not path.exists():
        raise DatasetError(
            f"no such dataset file, and not a bundled name (bundled: {', '.join(BUNDLED)})",
            path=key,
        )
    if any(x.lower() in (".csv", ".tsv") for x in path.suffixes[-2:]):
        raise DatasetError(
            "a CSV table, not an rpra dataset: convert it first with `rpra data convert TABLE --out "
            "DATASET.jsonl.gz --prompt-col ...` (docs/DATASETS.md, 'Converting a table')",
            path=key,
        )
    return _load_file(path)


@functools.lru_cache(maxsize=8)
def _load_bundled(name: str) -> EvalDataset:
    return _load_file(bundled_path(name))


def _load_file(path: Path) -> EvalDataset:
    from rpra_agent.evaluation.datasets._jsonl import parse_lines

    with path.open("rb") as fh:
        magic = fh.read(2)
    opener: Any = gzip.open if magic == b"\x1f\x8b" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as fh:
            dataset = parse_lines(fh, str(path))
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DatasetError(f"cannot read the file: {exc}", path=str(path)) from exc
    logger.debug("loaded dataset %s: %d items from %s", dataset.name, len(dataset), path)
    return dataset


def save_dataset(dataset: EvalDataset, path: str | Path) -> Path:
    """Write ``dataset`` in the JSONL format (gzip-compressed when ``path`` ends in ``.gz``).

    Returns:
        The path written.
    """
    from rpra_agent.evaluation.datasets._jsonl import item_to_json

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"rpra_dataset": dataset.header()}, ensure_ascii=False)]
    lines.extend(json.dumps(item_to_json(item), ensure_ascii=False) for item in dataset.items)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if out.suffix == ".gz":
        # mtime=0 keeps the bundle byte-for-byte reproducible.
        with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(data)
    else:
        out.write_bytes(data)
    return out
