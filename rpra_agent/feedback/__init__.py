"""The feedback loop: an LLM judge grades the decision log; report cards and fine-tuning learn from it.

- :class:`LLMJudge` grades responses on a :class:`Rubric` (jointly, with retries, in batches).
- :func:`judge_log` grades the unjudged decisions of a store; :class:`AuditingStore`
  judges a fraction of live decisions in the background.
- :func:`build_report_cards` / :class:`ReportCard` summarise a model's track record;
  :func:`report_card_loader` feeds the latest card to ``ReportCardPredictor``.
- :func:`export_sft` writes the hindsight training set; :func:`finetune` trains a LoRA
  adapter on it (optional ``finetune`` extra, imported lazily).
"""

from rpra_agent.feedback.audit import AuditingStore
from rpra_agent.feedback.cards import (
    build_report_cards,
    graded_models,
    load_report_card,
    report_card_loader,
    save_report_card,
)
from rpra_agent.feedback.finetune import FinetuneResult, finetune
from rpra_agent.feedback.judge import Candidate, JudgeTask, LLMJudge
from rpra_agent.feedback.log import JudgeLogResult, ajudge_log, conversation_for, graded_model, judge_log
from rpra_agent.feedback.report_card import CardSection, ReportCard, build_report_card, latest_verdicts
from rpra_agent.feedback.rubric import (
    PAPER_RUBRIC,
    RECONSTRUCTED_RUBRIC,
    RUBRIC_VERSION,
    Rubric,
    canonical_rubric_version,
)
from rpra_agent.feedback.sft import SFTExample, SFTExport, collect_examples, export_sft, sft_messages

__all__ = [
    "PAPER_RUBRIC",
    "RECONSTRUCTED_RUBRIC",
    "RUBRIC_VERSION",
    "AuditingStore",
    "Candidate",
    "CardSection",
    "FinetuneResult",
    "JudgeLogResult",
    "JudgeTask",
    "LLMJudge",
    "ReportCard",
    "Rubric",
    "SFTExample",
    "SFTExport",
    "ajudge_log",
    "build_report_card",
    "build_report_cards",
    "canonical_rubric_version",
    "collect_examples",
    "conversation_for",
    "export_sft",
    "finetune",
    "graded_model",
    "graded_models",
    "judge_log",
    "latest_verdicts",
    "load_report_card",
    "report_card_loader",
    "save_report_card",
    "sft_messages",
]
