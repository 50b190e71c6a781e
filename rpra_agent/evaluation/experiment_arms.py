"""The experiment's judge stage, its labels, its train-only hindsight set and its predictor arms."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rpra_agent.core.decision import Decision
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.judging import Candidate, Judge, JudgeTask
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets import EvalItem
from rpra_agent.evaluation.runs.replay import item_message
from rpra_agent.store.base import DecisionStore

__all__ = ["arm_predictor", "check_no_test_leak", "judge_items", "labels_for", "write_train_sft"]

logger = logging.getLogger(__name__)


def judge_items(
    judge: Judge,
    store: DecisionStore,
    items: Sequence[EvalItem],
    answers: Mapping[str, Mapping[str, Decision]],
    larges: Mapping[str, Decision],
    *,
    progress: Any,
) -> dict[str, Verdict]:
    """Judge every answer to a prompt together (the small one per paradigm, the large one) in one call.

    A prompt any of whose answers lacks a usable verdict is judged again, all its answers
    together (so the grades stay comparable). Returns the newest judged ``given`` verdict
    per decision id.
    """
    per_item: dict[str, list[Decision]] = {}
    for it in items:
        ds = [answers[p][it.id] for p in sorted(answers) if it.id in answers[p]]
        ds += [larges[it.id]] if it.id in larges else []
        if ds:
            per_item[it.id] = ds
    ids = [d.id for ds in per_item.values() for d in ds]
    have: dict[str, Verdict] = {}
    for v in sorted(store.verdicts(ids), key=lambda v: v.created_at):
        if v.judged and v.subject == "given":
            have[v.decision_id] = v
    todo = [it for it in items if it.id in per_item and any(d.id not in have for d in per_item[it.id])]
    progress.stage(f"judge (joint): {len(per_item) - len(todo)} of {len(per_item)} already judged", len(per_item))
    progress.advance(len(per_item) - len(todo))
    for it in todo:
        cands = tuple(Candidate(d.response, d.id, "given") for d in per_item[it.id])
        verdicts = judge.judge_task(JudgeTask(tuple(item_message(it)), cands))
        store.add_verdicts(verdicts)
        store.flush()
        have.update({v.decision_id: v for v in verdicts if v.judged})
        progress.advance(1)
    missing = sum(1 for ds in per_item.values() for d in ds if d.id not in have)
    if missing:
        logger.warning("%d answers stayed unjudged (the judge's output was unusable); run again to retry", missing)
    return have


def labels_for(
    answers: Mapping[str, Mapping[str, Decision]], verdicts: Mapping[str, Verdict], scale: GradeScale
) -> dict[str, dict[str, tuple[str, float]]]:
    """The judge's grade and score of the small answer, per paradigm and item."""
    out: dict[str, dict[str, tuple[str, float]]] = {}
    for p, by_item in answers.items():
        out[p] = {}
        for item, d in by_item.items():
            v = verdicts.get(d.id)
            if v is not None and v.grade in scale.labels:
                out[p][item] = (str(v.grade), float(v.score if v.score is not None else scale.value(str(v.grade))))
    return out


def write_train_sft(
    root: Path,
    items: Sequence[EvalItem],
    split: Mapping[str, str],
    answers: Mapping[str, Mapping[str, Decision]],
    labels: Mapping[str, Mapping[str, tuple[str, float]]],
) -> dict[str, Any]:
    """The hindsight fine-tuning set of the TRAIN items only (``rpra finetune --data <root>`` reads it).

    One example per paradigm and judged train item: the step's prompt (as the fine-tuned
    predictor will see it) and the judge's grade of the small answer.
    """
    from rpra_agent.feedback.context import step_request
    from rpra_agent.feedback.sft import sft_messages

    rows, used = [], []
    for it in items:
        if split[it.id] != "train":
            continue
        for p in sorted(answers):
            d = answers[p].get(it.id)
            if d is not None and it.id in labels[p]:
                rows.append({"messages": sft_messages(step_request(d), labels[p][it.id][0])})
                used.append(f"{p}:{it.id}")
    for fmt in ("openai", "trl"):
        (root / fmt).mkdir(parents=True, exist_ok=True)
        (root / fmt / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        (root / fmt / "validation.jsonl").write_text("", encoding="utf-8")
    manifest = {"format": "rpra-sft-2", "source": "rpra experiment (train items only)", "examples": used}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {"dir": str(root), "train_examples": len(rows)}


def arm_predictor(
    name: str,
    small: Any,
    fine_tuned: Any,
    train: Sequence[tuple[Decision, Verdict]],
    scale: GradeScale,
    *,
    sft_dir: Path,
) -> tuple[Any, str]:
    """The predictor of one arm, or ``(None, why it is skipped)``.

    The report card is built from the train items' verdicts only.
    """
    from rpra_agent.predictors import FineTunedPredictor, ReportCardPredictor

    if name == "report_card":
        from rpra_agent.feedback import build_report_card

        if not train:
            return None, "no judged train item to build the report card from"
        decisions = [d for d, _ in train]
        card = build_report_card(decisions, [v for _, v in train], decisions[0].small_model, scale=scale)
        return ReportCardPredictor(small, card=card.text_for, scale=scale), ""
    if fine_tuned is None:
        return None, (
            f"no --fine-tuned model: train one on the train items' hindsight set, e.g. `rpra finetune --data "
            f"{sft_dir} --base-model HF_DIR --out FT --merge`, convert FT/merged to GGUF, and pass --fine-tuned"
        )
    return FineTunedPredictor(fine_tuned, scale=scale), ""


def check_no_test_leak(sft_dir: Path, test_ids: Sequence[str]) -> None:
    """Refuse a fine-tuned model whose training set (an experiment's ``sft/``) holds a test item.

    Raises:
        ConfigError: when the manifest is missing or unreadable, or names a test item.
    """
    from rpra_agent.core.errors import ConfigError

    path = sft_dir / "manifest.json"
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))["examples"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not the manifest of an experiment's sft/ set ({type(exc).__name__})") from None
    leaked = sorted({str(e).split(":", 1)[-1] for e in examples} & set(test_ids))
    if leaked:
        raise ConfigError(
            f"the fine-tuned model's training set {sft_dir} holds {len(leaked)} test item(s) of this split "
            f"(e.g. {leaked[0]!r}): train it on this experiment's OUT/sft, or use the same --seed and --test-fraction"
        )
