"""The decision log: runs, decisions (with per-leg usage), verdicts and artifacts.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rpra_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("thread_id", sa.String(), nullable=True),
        sa.Column("paradigm", sa.String(), nullable=True),
        sa.Column("config", _JSON, nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_rpra_runs_thread", "rpra_runs", ["thread_id"])
    op.create_table(
        "rpra_decisions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("paradigm", sa.String(16), nullable=False),
        sa.Column("route", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("task", sa.String(), nullable=True),
        sa.Column("small_model", sa.String(), nullable=False),
        sa.Column("large_model", sa.String(), nullable=False),
        sa.Column("predictor", sa.String(), nullable=True),
        sa.Column("predicted_grade", sa.String(), nullable=True),
        sa.Column("p_acceptable", sa.Float(), nullable=True),
        sa.Column("expected_score", sa.Float(), nullable=True),
        sa.Column("prediction", _JSON, nullable=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("tool_calls", _JSON, nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("completed_at", sa.String(40), nullable=False),
        sa.Column("meta", _JSON, nullable=True),
    )
    op.create_index("ix_rpra_decisions_created", "rpra_decisions", ["created_at"])
    op.create_index("ix_rpra_decisions_run_step", "rpra_decisions", ["run_id", "step"])
    op.create_index("ix_rpra_decisions_thread", "rpra_decisions", ["thread_id"])
    op.create_index("ix_rpra_decisions_task", "rpra_decisions", ["task"])
    op.create_index("ix_rpra_decisions_kind_route", "rpra_decisions", ["kind", "route"])
    op.create_index("ix_rpra_decisions_small_route", "rpra_decisions", ["small_model", "route"])
    op.create_table(
        "rpra_decision_legs",
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("leg", sa.String(32), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", "leg", name="pk_rpra_decision_legs"),
    )
    op.create_index("ix_rpra_decision_legs_leg_model", "rpra_decision_legs", ["leg", "model"])
    op.create_table(
        "rpra_verdicts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("grade", sa.String(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("scale", sa.String(), nullable=False),
        sa.Column("judge", sa.String(), nullable=False),
        sa.Column("rubric_version", sa.String(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_rpra_verdicts_decision", "rpra_verdicts", ["decision_id"])
    op.create_table(
        "rpra_artifacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("kind", "name", "version", name="uq_rpra_artifacts_kind_name_version"),
    )


def downgrade() -> None:
    op.drop_table("rpra_artifacts")
    op.drop_index("ix_rpra_verdicts_decision", table_name="rpra_verdicts")
    op.drop_table("rpra_verdicts")
    op.drop_index("ix_rpra_decision_legs_leg_model", table_name="rpra_decision_legs")
    op.drop_table("rpra_decision_legs")
    for name in ("small_route", "kind_route", "task", "thread", "run_step", "created"):
        op.drop_index(f"ix_rpra_decisions_{name}", table_name="rpra_decisions")
    op.drop_table("rpra_decisions")
    op.drop_index("ix_rpra_runs_thread", table_name="rpra_runs")
    op.drop_table("rpra_runs")
