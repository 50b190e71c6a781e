"""Decision stores: the protocol, in-memory, and SQL (SQLite / PostgreSQL)."""

from rpra_agent.store.base import Artifact, DecisionFilter, DecisionStore
from rpra_agent.store.memory import InMemoryDecisionStore

__all__ = ["Artifact", "DecisionFilter", "DecisionStore", "InMemoryDecisionStore"]
