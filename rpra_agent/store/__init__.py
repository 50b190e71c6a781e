"""Decision stores: the protocol, in-memory, and SQL (SQLite / PostgreSQL).

:func:`open_store` is the one entry point::

    store = open_store()                                   # $RPRA_DATABASE_URL or ./rpra.db
    store = open_store("postgresql://rpra@db:5432/rpra")   # psycopg 3
    store = open_store("memory://")                        # tests and scripts
"""

from __future__ import annotations

from typing import Any

from rpra_agent.core.errors import ConfigError
from rpra_agent.store.base import Artifact, DecisionFilter, DecisionStore
from rpra_agent.store.errors import DatabaseReplacedError, DecisionNotDurableError
from rpra_agent.store.memory import InMemoryDecisionStore

__all__ = [
    "Artifact",
    "DatabaseReplacedError",
    "DecisionFilter",
    "DecisionNotDurableError",
    "DecisionStore",
    "InMemoryDecisionStore",
    "SQLDecisionStore",
    "open_store",
]


def open_store(url: str | None = None, *, must_exist: bool = False, **opts: Any) -> DecisionStore:
    """Open the decision store at ``url``.

    Args:
        url: ``None`` for ``$RPRA_DATABASE_URL`` or the SQLite file ``./rpra.db``;
            ``"memory://"`` for :class:`InMemoryDecisionStore`; ``"sqlite:///path.db"``
            (or a bare file path); ``"postgresql://user:password@host:5432/db"``
            (psycopg 3, ``pip install 'rpra-agent[postgres]'``).
        **opts: Options of :class:`SQLDecisionStore`: ``durability`` (``"sync"``: a
            decision is committed or spooled before ``add`` returns; ``"async"``, the
            default: batched, with a loss window on SIGKILL), ``on_loss``
            (``"raise"``/``"log"`` when neither database nor spool can take a record),
            ``on_replaced`` (``"raise"``/``"recreate"`` for a deleted SQLite file),
            ``store_text``, ``on_full``, ``max_queue``, ``spool_path``, ``retry_interval``
            ...; ignored by the in-memory store.
        must_exist: Refuse an SQLite file that does not exist instead of creating it
            (commands that only read a log: a mistyped path is an error, not an empty log).

    Returns:
        A store; close it (or let interpreter exit flush it) when done.

    Raises:
        ConfigError: on an unparsable URL, an unsupported database, a missing driver, or
            (``must_exist``) a missing SQLite file.
    """
    from rpra_agent.store._url import resolve_url

    db = resolve_url(url)
    if db is None:
        return InMemoryDecisionStore()
    path = db.sqlite_path
    if must_exist and path is not None and not path.exists():
        raise ConfigError(
            f"no decision log at {path}: the file does not exist (check --db or $RPRA_DATABASE_URL; "
            "an agent run with this store creates it)"
        )
    from rpra_agent.store.sql import SQLDecisionStore

    return SQLDecisionStore(db, **opts)


def __getattr__(name: str) -> Any:
    if name == "SQLDecisionStore":  # lazy: importing the package must not import SQLAlchemy
        from rpra_agent.store.sql import SQLDecisionStore

        return SQLDecisionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
