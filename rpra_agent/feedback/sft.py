"""The paper's hindsight training set: each step's context, and the judge's grade of that step as the target.

Each judged small-model step becomes one chat example whose prompt is exactly what
:class:`~rpra_agent.predictors.FineTunedPredictor` sends at that step
(``build_finetuned_prompt``: the conversation so far with tool calls and results, the
step's kind, the RPRA reasoning; see :mod:`rpra_agent.feedback.context`) and whose
assistant reply is the grade label. In the paper every query was one step, so the
prompt was the query alone; in an agent run one request takes several steps that the
judge grades differently (a tool call ``great``, the answer ``bad``), and a bare-request
prompt would give the same prompt contradictory targets. The set is written twice, in the OpenAI
fine-tuning chat format and in the Hugging Face TRL conversational ``messages`` format,
split into train and validation sets stratified by grade.

Layout of ``out``::

    openai/train.jsonl  openai/validation.jsonl   {"messages": [...]} per line
    trl/train.jsonl     trl/validation.jsonl      {"messages": [...]} per line
    manifest.json                                 counts, class balance, decision ids
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.naming import model_key
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.feedback.context import step_request
from rpra_agent.feedback.log import has_text
from rpra_agent.feedback.report_card import latest_verdicts
from rpra_agent.predictors.prompts import FINETUNE_PROMPT_VERSION, build_finetuned_prompt
from rpra_agent.store.base import DecisionFilter, DecisionStore

__all__ = ["SFTExample", "SFTExport", "collect_examples", "export_sft", "sft_messages"]

logger = logging.getLogger(__name__)

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


@dataclass(frozen=True)
class SFTExample:
    """One training example: a judged small-model step.

    Attributes:
        decision_id: The step's decision.
        request: The bare request text.
        grade: The target: the judge's grade of this step.
        task: The task tag.
        kind: The step's kind (what it turned out to be).
        small_model: The small model's id.
        step: What the predictor saw at this step (conversation, kind, reasoning).
        conversation: The step's thread, or its run without one (a conversation's steps stay
            on one side of the split).
    """

    decision_id: str
    request: str
    grade: str
    task: str | None
    kind: str
    small_model: str
    step: PredictionRequest | None = None
    conversation: str | None = None

    def prompt_request(self) -> PredictionRequest:
        """The predictor's input for this example (the bare request when no step context is known)."""
        return self.step or PredictionRequest(messages=(HumanMessage(self.request),))


@dataclass(frozen=True)
class SFTExport:
    """What :func:`export_sft` wrote.

    Attributes:
        out: The output directory.
        train: Number of training examples.
        validation: Number of validation examples.
        balance: Examples per grade, per split (``train``, ``validation``, ``all``).
        stratified: Whether the split was stratified by grade.
    """

    out: Path
    train: int
    validation: int
    balance: dict[str, dict[str, int]]
    stratified: bool


def sft_messages(request: str | PredictionRequest, grade: str) -> list[dict[str, str]]:
    """The chat example for one step: FineTunedPredictor's prompt, then the grade.

    ``request`` is the step (:func:`~rpra_agent.feedback.context.step_request`), or a
    bare request text for a single-turn query.
    """
    if isinstance(request, str):
        request = PredictionRequest(messages=(HumanMessage(request),))
    prompt = build_finetuned_prompt(request)
    messages = [{"role": _ROLES[m.type], "content": str(m.content)} for m in prompt]
    return [*messages, {"role": "assistant", "content": grade}]


def collect_examples(
    store: DecisionStore, *, model: str | None = None, judge: str | None = None, scale: GradeScale | None = None
) -> list[SFTExample]:
    """The small model's hindsight labels from the log.

    A decision is labelled by the newest judged verdict of the small model's own answer:
    a ``small`` verdict (regenerated for a deferred step), else the ``given`` verdict of
    a step the small model took. Deferred steps without a regenerated answer are left
    out: their given answer was the large model's.
    """
    scale = scale or GradeScale.paper()
    decisions = store.decisions()
    runs: dict[str, list[Decision]] = defaultdict(list)
    for d in decisions:
        runs[d.run_id].append(d)
    latest = latest_verdicts(store.verdicts(), judge=judge, scale=scale.name)
    out = []
    for d in decisions:
        if not has_text(d.request) or (model is not None and model_key(d.small_model) != model_key(model)):
            continue
        v = latest.get((d.id, "small")) or (latest.get((d.id, "given")) if d.route == "small" else None)
        if v is None or v.grade is None or v.scale != scale.name or v.grade not in scale.labels:
            continue
        step = step_request(d, runs[d.run_id])
        out.append(SFTExample(d.id, d.request, v.grade, d.task, d.kind, d.small_model, step, d.conversation))
    return out


def _shared_conversations(examples: Sequence[SFTExample]) -> list[str] | None:
    """Each example's conversation, when some conversation has several judged steps (else ``None``)."""
    keys = [e.conversation or e.decision_id for e in examples]
    return keys if len(set(keys)) < len(keys) else None


def _split(
    examples: Sequence[SFTExample], val_fraction: float, seed: int, conversations: Sequence[str] | None
) -> tuple[list[SFTExample], list[SFTExample], bool]:
    if val_fraction <= 0 or len(examples) < 2:
        return list(examples), [], False
    if conversations is not None:
        return _split_by_conversation(examples, conversations, val_fraction, seed)
    from sklearn.model_selection import train_test_split

    labels = [e.grade for e in examples]
    counts = Counter(labels)
    n_val = max(1, round(val_fraction * len(examples)))
    stratify = min(counts.values()) >= 2 and len(counts) <= n_val <= len(examples) - len(counts)
    if not stratify:
        logger.warning("too few examples per grade to stratify (%s); splitting at random", dict(counts))
    train, val = train_test_split(
        list(examples), test_size=n_val, random_state=seed, stratify=labels if stratify else None
    )
    return list(train), list(val), stratify


def _split_by_conversation(
    examples: Sequence[SFTExample], conversations: Sequence[str], val_fraction: float, seed: int
) -> tuple[list[SFTExample], list[SFTExample], bool]:
    """Whole conversations (threads, else runs) to each side: splitting one would leak it into validation.

    scikit-learn's ``StratifiedGroupKFold`` with ``round(1 / val_fraction)`` folds; its
    first fold is the validation set, so the share is about ``val_fraction`` and the
    grades as balanced as whole runs allow.
    """
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    n_conversations = len(set(conversations))
    if n_conversations < 2:
        logger.warning("every judged step is from one run: no validation split (it would share the conversation)")
        return list(examples), [], False
    k = min(n_conversations, max(2, round(1 / val_fraction)))
    labels = [e.grade for e in examples]
    stratified = min(Counter(labels).values()) >= k
    if not stratified:
        logger.warning(
            "too few examples per grade to stratify fully (%s); whole runs balanced as far as they allow",
            dict(Counter(labels)),
        )
    with warnings.catch_warnings():  # it warns when a grade has fewer examples than folds: said above
        warnings.simplefilter("ignore", UserWarning)
        folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        train_at, val_at = next(folds.split(list(range(len(examples))), labels, groups=list(conversations)))
    return [examples[i] for i in train_at], [examples[i] for i in val_at], stratified


def _write(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def export_sft(
    store: DecisionStore,
    out: str | Path,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    model: str | None = None,
    judge: str | None = None,
    scale: GradeScale | None = None,
) -> SFTExport:
    """Write the hindsight fine-tuning set of the judged log to ``out``.

    Args:
        store: The decision store.
        out: Output directory (created).
        val_fraction: Share of examples held out for validation, stratified by grade.
            Where an agent run has several judged steps, whole runs are held out
            (about this share), so no conversation is on both sides.
        seed: Seed of the split.
        model: Only this small model's steps.
        judge: Only this judge's verdicts.
        scale: The verdicts' scale (the paper's by default).

    Raises:
        ConfigError: when the log is empty or holds no judged small-model step.
    """
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be within [0, 1), got {val_fraction}")
    if not store.decisions(DecisionFilter(limit=1)):
        raise ConfigError("the decision log is empty: run the agent with a store first, then `rpra judge`")
    examples = collect_examples(store, model=model, judge=judge, scale=scale)
    if not examples:
        raise ConfigError(
            "no judged small-model step in the log: run `rpra judge` first (with --regenerate-small to label "
            "deferred steps too)"
        )
    conversations = _shared_conversations(examples)
    train, val, stratified = _split(examples, val_fraction, seed, conversations)
    root = Path(out)
    for split, rows in (("train", train), ("validation", val)):
        records = [{"messages": sft_messages(e.prompt_request(), e.grade)} for e in rows]
        _write(root / "openai" / f"{split}.jsonl", records)
        _write(root / "trl" / f"{split}.jsonl", records)
    balance = {
        "all": dict(Counter(e.grade for e in examples)),
        "train": dict(Counter(e.grade for e in train)),
        "validation": dict(Counter(e.grade for e in val)),
    }
    manifest = {
        "format": "rpra-sft-2",
        "prompt": FINETUNE_PROMPT_VERSION,
        "labels": list((scale or GradeScale.paper()).labels),
        "balance": balance,
        "stratified": stratified,
        "runs_kept_whole": conversations is not None,
        "seed": seed,
        "val_fraction": val_fraction,
        "splits": {"train": [e.decision_id for e in train], "validation": [e.decision_id for e in val]},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("exported %d training and %d validation examples to %s", len(train), len(val), root)
    return SFTExport(root, len(train), len(val), balance, stratified)
