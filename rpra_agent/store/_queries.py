"""Reads of verdicts, runs and artifacts, and the versioned artifact insert (SQL side of the store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from rpra_agent.core.decision import utcnow
from rpra_agent.core.errors import StoreError
from rpra_agent.core.verdict import Verdict
from rpra_agent.store._rows import verdict_from_row
from rpra_agent.store._schema import artifacts, runs, verdicts
from rpra_agent.store.base import Artifact

__all__ = ["insert_artifact", "latest_artifact", "read_runs", "read_verdicts"]


def read_verdicts(conn: Connection, decision_ids: Sequence[str] | None) -> list[Verdict]:
    """Verdicts (optionally only for some decisions), oldest first."""
    query = select(verdicts).order_by(verdicts.c.created_at, verdicts.c.id)
    if decision_ids is None:
        return [verdict_from_row(r) for r in conn.execute(query).mappings()]
    ids, out = list(decision_ids), list[Verdict]()
    for start in range(0, len(ids), 500):
        chunk = query.where(verdicts.c.decision_id.in_(ids[start : start + 500]))
        out.extend(verdict_from_row(r) for r in conn.execute(chunk).mappings())
    return sorted(out, key=lambda v: (v.created_at, v.id))


def read_runs(conn: Connection) -> dict[str, dict[str, Any]]:
    """All runs by id: thread_id, paradigm, config and status."""
    keys = ("thread_id", "paradigm", "config", "status")
    rows = conn.execute(select(runs)).mappings()
    return {r["id"]: {k: (r[k] or {}) if k == "config" else r[k] for k in keys} for r in rows}


def latest_artifact(conn: Connection, kind: str, name: str) -> Artifact | None:
    """The newest version of an artifact, or ``None``."""
    query = (
        select(artifacts)
        .where(artifacts.c.kind == kind, artifacts.c.name == name)
        .order_by(artifacts.c.version.desc())
        .limit(1)
    )
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return Artifact(row["kind"], row["name"], int(row["version"]), row["payload"], row["created_at"])


def insert_artifact(engine: Engine, kind: str, name: str, payload: Mapping[str, Any]) -> Artifact:
    """Insert the next version of ``(kind, name)``; a version taken concurrently is retried with the next."""
    for _attempt in range(10):
        try:
            with engine.begin() as conn:
                latest = conn.execute(
                    select(func.max(artifacts.c.version)).where(artifacts.c.kind == kind, artifacts.c.name == name)
                ).scalar()
                artifact = Artifact(kind, name, int(latest or 0) + 1, dict(payload), utcnow())
                conn.execute(
                    artifacts.insert().values(
                        kind=kind, name=name, version=artifact.version, payload=artifact.payload,
                        created_at=artifact.created_at,
                    )
                )  # fmt: skip
            return artifact
        except IntegrityError:
            continue  # another process took this version number: take the next one
    raise StoreError(f"could not allocate a version for artifact {kind}/{name}")
