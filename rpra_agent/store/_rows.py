"""Value types <-> rows, with the privacy policy applied on the way in."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rpra_agent.core.decision import Decision, LegUsage, utcnow
from rpra_agent.core.prediction import Prediction
from rpra_agent.core.verdict import Verdict
from rpra_agent.store._privacy import TextPolicy, scrub_json, scrub_name, scrub_secrets

__all__ = ["Record", "decision_from_row", "decision_record", "run_record", "verdict_from_row", "verdict_record"]

Record = dict[str, Any]

_SURROGATES = re.compile("[\ud800-\udfff]")


def _storable_text(text: str) -> str:
    """``text`` with what no database can hold as text replaced by U+FFFD.

    NUL is refused by PostgreSQL's text and JSON types, and a lone surrogate (a broken
    emoji pair, say) is not UTF-8, which SQLite's driver refuses. Chat input can carry
    either; the decision is kept with the rest of its text rather than rejected.
    """
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    return _SURROGATES.sub("\ufffd", text.replace("\x00", "\ufffd"))


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, dict):
        return {_storable_text(k) if isinstance(k, str) else k: _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def decision_record(decision: Decision, text: TextPolicy) -> Record:
    """The spool/database form of a decision (``{"t": "decision", "d": row}``)."""
    pred = decision.prediction
    pred_dict: dict[str, Any] | None = None
    if pred is not None:
        pred_dict = pred.to_dict()
        pred_dict["raw"] = text.apply(pred_dict.get("raw") or "")
        pred_dict["predictor"] = scrub_name(pred_dict["predictor"])
    row: Record = {
        "id": decision.id,
        "run_id": decision.run_id,
        "thread_id": decision.thread_id,
        "step": int(decision.step),
        "kind": decision.kind,
        "paradigm": decision.paradigm,
        "route": decision.route,
        "reason": decision.reason,
        "threshold": float(decision.threshold),
        "task": scrub_name(decision.task) if decision.task else decision.task,  # a client-supplied tag
        "small_model": scrub_name(decision.small_model),
        "large_model": scrub_name(decision.large_model),
        "predictor": pred_dict["predictor"] if pred_dict else None,
        "predicted_grade": pred.grade if pred is not None else None,
        "p_acceptable": float(pred.p_acceptable) if pred is not None else None,
        "expected_score": float(pred.expected_score) if pred is not None else None,
        "prediction": pred_dict,
        "request": text.apply(decision.request),
        "response": text.apply(decision.response),
        "tool_calls": list(decision.tool_calls),
        "error": scrub_secrets(decision.error) if decision.error else None,
        "degraded": bool(decision.degraded),
        "created_at": decision.created_at,
        "completed_at": decision.completed_at,
        "meta": _meta(decision, text),
        "legs": [
            {
                "decision_id": decision.id,
                "leg": name,
                "model": scrub_name(usage.model),
                "input_tokens": int(usage.input_tokens),
                "output_tokens": int(usage.output_tokens),
                "latency_ms": float(usage.latency_ms),
            }
            for name, usage in decision.legs.items()
        ],
    }
    return {"t": "decision", "d": _storable(row)}


def run_record(
    run_id: str, *, thread_id: str | None, paradigm: str | None, config: Mapping[str, Any], status: str
) -> Record:
    """The spool/database form of a run update (an empty config keeps the stored one)."""
    now = utcnow()
    return {
        "t": "run",
        "d": _storable(
            {
                "id": run_id,
                "thread_id": thread_id,
                "paradigm": paradigm or None,
                "config": scrub_json(dict(config)) or None,
                "status": status,
                "created_at": now,
                "updated_at": now,
            }
        ),
    }


def verdict_record(verdict: Verdict) -> Record:
    """The spool/database form of a verdict."""
    row = verdict.to_dict()
    row["rationale"] = scrub_secrets(row["rationale"] or "")
    return {"t": "verdict", "d": _storable(row)}


def _meta(decision: Decision, text: TextPolicy) -> dict[str, Any] | None:
    """The metadata column: the decision's metadata, plus verify's unkept draft under the text mode."""
    meta = scrub_json(dict(decision.metadata))
    if decision.draft:
        meta["draft"] = text.apply(decision.draft)
    for key in ("reasoning", "second_reasoning"):
        if isinstance(meta.get(key), str):
            meta[key] = text.apply(meta[key])
    if isinstance(meta.get("context"), list):
        meta["context"] = [
            {**e, "content": text.apply(str(e.get("content", "")))} if isinstance(e, dict) else e
            for e in meta["context"]
        ]
    return meta or None


def decision_from_row(row: Mapping[Any, Any], legs: Sequence[Mapping[Any, Any]]) -> Decision:
    """Rebuild a :class:`Decision` from its row and its legs' rows."""
    pred = row["prediction"]
    meta = dict(row["meta"] or {})
    draft = str(meta.pop("draft", "") or "")
    return Decision(
        id=row["id"],
        run_id=row["run_id"],
        thread_id=row["thread_id"],
        step=int(row["step"]),
        kind=row["kind"],
        paradigm=row["paradigm"],
        prediction=Prediction.from_dict(pred) if pred else None,
        threshold=float(row["threshold"]),
        route=row["route"],
        reason=row["reason"],
        task=row["task"],
        small_model=row["small_model"],
        large_model=row["large_model"],
        legs={
            leg["leg"]: LegUsage(
                model=leg["model"],
                input_tokens=int(leg["input_tokens"]),
                output_tokens=int(leg["output_tokens"]),
                latency_ms=float(leg["latency_ms"]),
            )
            for leg in legs
        },
        request=row["request"],
        response=row["response"],
        tool_calls=tuple(row["tool_calls"] or ()),
        error=row["error"],
        degraded=bool(row["degraded"]),
        created_at=row["created_at"],
        completed_at=row["completed_at"],
        draft=draft,
        metadata=meta,
    )


def verdict_from_row(row: Mapping[Any, Any]) -> Verdict:
    """Rebuild a :class:`Verdict` from its row."""
    return Verdict.from_dict({str(k): v for k, v in row.items()})
