"""Report cards: a model's track record with the judge, per task tag and kind.

A card holds, per ``(task, kind)``, the distribution of the judge's grades, the most
common grade and the typical failure, plus a 100-200 token text for the
:class:`~rpra_agent.predictors.ReportCardPredictor` prompt. The default text holds no
user text at all: only task tags, counts, grades and rubric criteria.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rpra_agent.core.decision import Decision, utcnow
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.naming import model_key
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback._summary import failure_line, summarise_failures, weakest_of
from rpra_agent.feedback.log import graded_model
from rpra_agent.feedback.rubric import PAPER_RUBRIC, canonical_rubric_version

__all__ = ["CardSection", "ReportCard", "build_report_card", "latest_verdicts"]

ARTIFACT_KIND = "report_card"
_MAX_CHARS = 800  # about 200 tokens


@dataclass(frozen=True)
class CardSection:
    """The record of one ``(task, kind)`` group.

    Attributes:
        task: The task tag (``None``: decisions without a tag; ``"*"``: all tasks).
        kind: ``answer`` or ``action``.
        counts: Verdicts per grade label (every label present).
        typical_failure: One line on what goes wrong, free of user text.
    """

    task: str | None
    kind: str
    counts: Mapping[str, int]
    typical_failure: str

    @property
    def n(self) -> int:
        """Number of graded steps."""
        return sum(self.counts.values())

    @property
    def distribution(self) -> dict[str, float]:
        """Share of each grade."""
        return {k: v / self.n for k, v in self.counts.items()} if self.n else {k: 0.0 for k in self.counts}

    def most_common(self, scale: GradeScale) -> str:
        """The most common grade (ties go to the lower grade)."""
        return scale.mode(self.counts)

    def line(self, scale: GradeScale) -> str:
        """The section as one line of card text."""
        where = (
            "all tasks"
            if self.task == "*"
            else ("untagged requests" if self.task is None else f"task {_tag(self.task)}")
        )
        kind = "tool actions" if self.kind == "action" else "answers"
        dist = ", ".join(f"{lab} {round(100 * self.distribution[lab])}%" for lab in reversed(scale.labels))
        return f"- {where}, {kind} (n={self.n}): {dist}; most often {self.most_common(scale)}; {self.typical_failure}."


@dataclass(frozen=True)
class ReportCard:
    """A model's report card (frozen; stored as a versioned artifact).

    Attributes:
        model: The graded model's identifier.
        scale: The grade scale of the verdicts.
        sections: Per ``(task, kind)`` records, the all-task totals (task ``"*"``) first.
        text: The card as given to the predictor (about 100-200 tokens).
        judges: Judge names whose verdicts were used.
        rubric_versions: Rubric versions of those verdicts.
        version: The artifact version once stored.
        created_at: When the card was built.
    """

    model: str
    scale: GradeScale
    sections: tuple[CardSection, ...]
    text: str
    judges: tuple[str, ...] = ()
    rubric_versions: tuple[str, ...] = ()
    version: int | None = None
    created_at: str = field(default_factory=utcnow)

    def section(self, task: str | None, kind: str) -> CardSection | None:
        """The section of ``(task, kind)`` (``task="*"`` for all tasks)."""
        return next((s for s in self.sections if s.task == task and s.kind == kind), None)

    def distribution(self, task: str | None, kind: str = "answer") -> dict[str, float] | None:
        """The grade distribution of ``(task, kind)``, or ``None`` without a record."""
        sec = self.section(task, kind)
        return sec.distribution if sec else None

    @property
    def distributions(self) -> dict[tuple[str | None, str], dict[str, float]]:
        """Every ``(task, kind)`` grade distribution (including ``("*", kind)`` totals)."""
        return {(s.task, s.kind): s.distribution for s in self.sections}

    def text_for(self, task: str | None) -> str:
        """The card text focused on one task: the header, the totals and that task's lines."""
        totals = [s for s in self.sections if s.task == "*"]
        mine = [s for s in self.sections if s.task == task and task != "*"]
        lines = [self.text.splitlines()[0], *(s.line(self.scale) for s in totals + mine)]
        if not mine:
            lines.append("- no graded record for this task yet.")
        return "\n".join(lines)

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload stored as the artifact."""
        return {
            "model": self.model,
            "scale": self.scale.to_dict(),
            "sections": [
                {"task": s.task, "kind": s.kind, "counts": dict(s.counts), "typical_failure": s.typical_failure}
                for s in self.sections
            ],
            "text": self.text,
            "judges": list(self.judges),
            "rubric_versions": list(self.rubric_versions),
            "created_at": self.created_at,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], version: int | None = None) -> ReportCard:
        """Rebuild a card from :meth:`to_payload` output."""
        return cls(
            model=str(payload["model"]),
            scale=GradeScale.from_dict(payload["scale"]),
            sections=tuple(
                CardSection(
                    s["task"], s["kind"], {str(k): int(v) for k, v in s["counts"].items()}, s["typical_failure"]
                )
                for s in payload["sections"]
            ),
            text=str(payload["text"]),
            judges=tuple(payload.get("judges", ())),
            rubric_versions=tuple(canonical_rubric_version(str(r)) for r in payload.get("rubric_versions", ())),
            version=version,
            created_at=str(payload.get("created_at") or utcnow()),
        )


def _tag(task: str) -> str:
    return '"' + " ".join(task.split())[:40].replace('"', "'") + '"'


def latest_verdicts(
    verdicts: Iterable[Verdict], *, judge: str | None = None, scale: str | None = None
) -> dict[tuple[str, str], Verdict]:
    """The newest judged verdict per ``(decision_id, subject)``, optionally of one judge and scale."""
    out: dict[tuple[str, str], Verdict] = {}
    for v in sorted(verdicts, key=lambda v: v.created_at):
        if v.judged and (judge is None or v.judge == judge) and (scale is None or v.scale == scale):
            out[(v.decision_id, v.subject)] = v
    return out


def _group(
    decisions: Mapping[str, Decision], verdicts: Mapping[tuple[str, str], Verdict], model: str, scale: GradeScale
) -> dict[tuple[str | None, str], list[Verdict]]:
    groups: dict[tuple[str | None, str], list[Verdict]] = defaultdict(list)
    for (decision_id, subject), v in verdicts.items():
        d = decisions.get(decision_id)
        if d is None or v.scale != scale.name or v.grade not in scale.labels:
            continue
        if model_key(graded_model(d, subject)) != model_key(model):
            continue
        groups[(d.task, d.kind)].append(v)
        groups[("*", d.kind)].append(v)
    return groups


def build_report_card(
    decisions: Sequence[Decision],
    verdicts: Sequence[Verdict],
    model: str,
    *,
    scale: GradeScale | None = None,
    judge: str | None = None,
    summarizer: Any = None,
    criteria: Sequence[str] = PAPER_RUBRIC.criteria,
) -> ReportCard:
    """Build ``model``'s report card from judged decisions.

    Args:
        decisions: The decisions (e.g. ``store.decisions()``).
        verdicts: Their verdicts (the newest judged one per decision and subject counts).
        model: The graded model, spelt as the log records it (``gguf:small.gguf``) or as a
            user types it (``small.gguf``): names match by :func:`~rpra_agent.core.naming.model_key`.
            The card is named with the log's spelling.
        scale: The verdicts' grade scale (the paper's by default).
        judge: Only use this judge's verdicts.
        summarizer: A chat model that writes the typical-failure line from the judge's
            rationales; its line is dropped if it shares a phrase with user text.
        criteria: Rubric criteria recognised in the verdicts' ``[weakest: ...]`` tags.

    Raises:
        ConfigError: when no judged decision of ``model`` exists.
    """
    scale = scale or GradeScale.paper()
    by_id = {d.id: d for d in decisions}
    latest = latest_verdicts(verdicts, judge=judge, scale=scale.name)
    groups = _group(by_id, latest, model, scale)
    if not groups:
        raise ConfigError(
            f"no judged decisions of model {model!r} on scale {scale.name} in the log: run `rpra judge` first, "
            "or check the model name (it is Decision.small_model / large_model)"
        )
    user_texts = [t for d in by_id.values() for t in (d.request, d.response)] if summarizer is not None else []
    sections = []
    for (task, kind), vs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "*", -len(kv[1]), str(kv[0]))):
        low = [v for v in vs if v.grade is not None and not scale.is_acceptable(v.grade)]
        line = failure_line((weakest_of(v.rationale, criteria) for v in low), len(low))
        if summarizer is not None and low:
            line = summarise_failures(summarizer, [v.rationale for v in low], user_texts) or line
        counts = {lab: sum(1 for v in vs if v.grade == lab) for lab in scale.labels}
        sections.append(CardSection(task, kind, counts, "typical failure: " + line if low else line))
    used = [v for vs in groups.values() for v in vs]
    model = _log_spelling(by_id, used, model)
    judges = tuple(sorted({v.judge for v in used}))
    n = sum(s.n for s in sections if s.task == "*")
    header = (
        f"Report card of model {model}: {n} past step{'s' if n != 1 else ''} graded by judge {', '.join(judges)} "
        f"(grades worst to best: {', '.join(scale.labels)})."
    )
    return ReportCard(
        model=model,
        scale=scale,
        sections=tuple(sections),
        text=_fit(header, sections, scale),
        judges=judges,
        rubric_versions=tuple(sorted({canonical_rubric_version(v.rubric_version) for v in used})),
    )


def _log_spelling(decisions: Mapping[str, Decision], used: Sequence[Verdict], model: str) -> str:
    """The most common spelling of ``model`` in the decisions its verdicts graded."""
    names = Counter(graded_model(decisions[v.decision_id], v.subject) for v in used if v.decision_id in decisions)
    return names.most_common(1)[0][0] if names else model


def _fit(header: str, sections: Sequence[CardSection], scale: GradeScale) -> str:
    """The card text within about 200 tokens: totals first, then the largest task groups."""
    lines = [header]
    omitted = 0
    totals = {s.kind: dict(s.counts) for s in sections if s.task == "*"}
    for s in sections:
        if s.task != "*" and dict(s.counts) == totals.get(s.kind):
            continue  # the only task of its kind: the totals line says it all
        line = s.line(scale)
        if s.task != "*" and len("\n".join([*lines, line])) > _MAX_CHARS:
            omitted += 1
            continue
        lines.append(line)
    if omitted:
        lines.append(f"- {omitted} smaller task group{'s' if omitted > 1 else ''} omitted.")
    return "\n".join(lines)
