"""The decision log's tables (SQLAlchemy Core).

Every table is prefixed ``rpra_`` so the log can share a database with LangGraph's
checkpointers and with the application's own tables. Timestamps are ISO-8601 UTC
strings (as the value types carry them), which sort and compare correctly and group
by day with ``substr(created_at, 1, 10)`` on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["VERSION_TABLE", "artifacts", "decision_legs", "decisions", "metadata", "runs", "verdicts"]

VERSION_TABLE = "rpra_alembic_version"

metadata = MetaData()

#: JSON where structure varies; JSONB on PostgreSQL. SQL NULL (not JSON null) for ``None``.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

runs = Table(
    "rpra_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("thread_id", String, nullable=True),
    Column("paradigm", String, nullable=True),
    Column("config", JSONType, nullable=True),
    Column("status", String, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Index("ix_rpra_runs_thread", "thread_id"),
)

decisions = Table(
    "rpra_decisions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("thread_id", String, nullable=True),
    Column("step", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("paradigm", String(16), nullable=False),
    Column("route", String(8), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("task", String, nullable=True),
    Column("small_model", String, nullable=False),
    Column("large_model", String, nullable=False),
    Column("predictor", String, nullable=True),
    Column("predicted_grade", String, nullable=True),
    Column("p_acceptable", Float, nullable=True),
    Column("expected_score", Float, nullable=True),
    Column("prediction", JSONType, nullable=True),
    Column("request", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("tool_calls", JSONType, nullable=True),
    Column("error", String, nullable=True),
    Column("degraded", Boolean, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("completed_at", String(40), nullable=False),
    Column("meta", JSONType, nullable=True),
    Index("ix_rpra_decisions_created", "created_at"),
    Index("ix_rpra_decisions_run_step", "run_id", "step"),
    Index("ix_rpra_decisions_thread", "thread_id"),
    Index("ix_rpra_decisions_task", "task"),
    Index("ix_rpra_decisions_kind_route", "kind", "route"),
    Index("ix_rpra_decisions_small_route", "small_model", "route"),
)

#: One row per model call of a decision (``predict``, ``reason``, ``small``, ``large``),
#: so tokens and cost aggregate per leg and model in SQL.
decision_legs = Table(
    "rpra_decision_legs",
    metadata,
    Column("decision_id", String(64), nullable=False),
    Column("leg", String(32), nullable=False),
    Column("model", String, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    PrimaryKeyConstraint("decision_id", "leg", name="pk_rpra_decision_legs"),
    Index("ix_rpra_decision_legs_leg_model", "leg", "model"),
)

#: Judge grades. ``decision_id`` links to ``rpra_decisions.id`` without a foreign key:
#: verdicts may be replayed from a spool before (or without) their decision, e.g.
#: when judging offline from an export.
verdicts = Table(
    "rpra_verdicts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("decision_id", String(64), nullable=False),
    Column("grade", String, nullable=True),
    Column("score", Float, nullable=True),
    Column("scale", String, nullable=False),
    Column("judge", String, nullable=False),
    Column("rubric_version", String, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("subject", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
    Index("ix_rpra_verdicts_decision", "decision_id"),
)

#: Versioned JSON documents: report cards (``kind='report_card'``) and calibrations
#: (``kind='calibration'``) share one table; versions count from 1 per (kind, name).
artifacts = Table(
    "rpra_artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("kind", "name", "version", name="uq_rpra_artifacts_kind_name_version"),
)
