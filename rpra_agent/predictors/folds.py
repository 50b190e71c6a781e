"""The one fold helper: seeded folds that keep a conversation's turns together.

Every cross-fit in the project (the learned predictor's inner and outer folds, the
report card's cross-fitting in :mod:`rpra_agent.evaluation`) assigns folds here, so
the same seed gives the same folds everywhere and the routers compared in one table
are scored on the same splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence

import numpy as np

from rpra_agent.core.errors import ConfigError

__all__ = ["conversation_key", "fold_ids", "stable_fold_ids"]


def fold_ids(n: int, folds: int, seed: int = 0, groups: Sequence[Hashable] | None = None) -> np.ndarray:
    """A seeded assignment of ``n`` items to ``folds`` folds of (nearly) equal size.

    Args:
        n: Number of items.
        folds: Number of folds.
        seed: Seed of the permutation.
        groups: Optional group key per item (e.g. :func:`conversation_key`): items of
            one group share a fold, so the two turns of an MT-bench question never
            inform each other's prediction.

    Raises:
        ConfigError: when ``folds`` is below 2, above the number of items (groups), or
            ``groups`` does not have ``n`` entries.
    """
    if folds < 2:
        raise ConfigError(f"cross-fitting needs at least 2 folds, got {folds}")
    if groups is not None and len(groups) != n:
        raise ConfigError(f"{len(groups)} group keys for {n} items")
    keys = list(dict.fromkeys(str(g) for g in groups)) if groups is not None else None
    units = len(keys) if keys is not None else n
    if units < folds:
        if groups is None:
            raise ConfigError(f"cannot cross-fit {n} items in {folds} folds: use fewer folds or more items")
        raise ConfigError(
            f"cannot cross-fit {n} items in {folds} folds: they form only {units} group(s), and a group's items"
            " share a fold (evaluation groups items by their first user message, so a conversation's turns"
            " stay together); "
            + (f"use at most {units} folds, or " if units >= 2 else "")
            + "give more items distinct first user messages"
        )
    perm = np.random.default_rng(seed).permutation(units) % folds
    if keys is None or groups is None:
        return perm.astype(int)
    fold_of = {k: int(perm[i]) for i, k in enumerate(keys)}
    return np.array([fold_of[str(g)] for g in groups], dtype=int)


def stable_fold_ids(ids: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Folds from a hash of each id: an item keeps its fold when other items come and go.

    Used where a run resumes over a growing item set (live evaluation), so a
    prediction journaled earlier never came from a model that saw its own item.

    Raises:
        ConfigError: when ``folds`` is below 2.
    """
    if folds < 2:
        raise ConfigError(f"cross-fitting needs at least 2 folds, got {folds}")
    return np.array([int(hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()[:8], 16) % folds for i in ids], dtype=int)


def conversation_key(item: object) -> str:
    """An item's conversation: its first user message (turns of one conversation share it).

    Works on any object with ``messages`` (``{"role", "content"}`` dicts) and
    ``prompt`` attributes, e.g. an evaluation dataset's item.
    """
    for message in getattr(item, "messages", ()) or ():
        if message.get("role") in ("user", "human"):
            return str(message.get("content") or "")
    return str(getattr(item, "prompt", ""))
