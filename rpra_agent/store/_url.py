"""Database URLs: defaults, validation, driver selection and password masking."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.redact import scrub_secrets

__all__ = ["DEFAULT_SQLITE_FILE", "ENV_URL", "DatabaseURL", "mask_url", "resolve_url"]

ENV_URL = "RPRA_DATABASE_URL"
ENV_SPOOL_DIR = "RPRA_SPOOL_DIR"
DEFAULT_SQLITE_FILE = "rpra.db"
_EXAMPLES = "e.g. sqlite:///rpra.db, postgresql://user:password@host:5432/dbname or memory://"
_POSTGRES_EXTRA = "pip install 'rpra-agent[postgres]'"


@dataclass(frozen=True)
class DatabaseURL:
    """A validated database URL.

    Attributes:
        url: The SQLAlchemy URL with its driver (``sqlite`` or ``postgresql+psycopg``).
        dialect: ``"sqlite"`` or ``"postgresql"``.
    """

    url: URL

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    @property
    def masked(self) -> str:
        """The URL with its password (and secret-named query parameters) masked: safe for logs and errors."""
        return scrub_secrets(self.url.render_as_string(hide_password=True))

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or ``None`` for an in-memory SQLite or a server database."""
        if self.dialect != "sqlite" or self.url.database in (None, "", ":memory:"):
            return None
        return Path(str(self.url.database)).expanduser()

    @property
    def libpq(self) -> str:
        """A plain libpq URL (``postgresql://...``, password included), as LangGraph's PostgresSaver wants."""
        if self.dialect != "postgresql":
            raise ConfigError(f"{self.masked} is not a PostgreSQL URL")
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def default_spool_path(self) -> Path:
        """Where records wait while the database is unreachable.

        Beside the SQLite file, or under ``$RPRA_SPOOL_DIR`` (default
        ``~/.local/state/rpra``) keyed by the URL without its password.
        """
        path = self.sqlite_path
        if path is not None:
            return path.with_name(f"rpra-spool-{path.stem}.jsonl")
        base = Path(os.environ.get(ENV_SPOOL_DIR) or Path.home() / ".local" / "state" / "rpra")
        key = hashlib.sha256(self.url.set(password=None).render_as_string().encode()).hexdigest()[:12]
        return base / f"rpra-spool-{self.dialect}-{key}.jsonl"


def mask_url(url: str) -> str:
    """Mask the password of any URL-looking string (best effort, never raises)."""
    try:
        return scrub_secrets(make_url(url).render_as_string(hide_password=True))
    except Exception:  # noqa: BLE001  (anything unparsable is masked wholesale)
        return "<unparsable database URL>" if "@" in url else scrub_secrets(url)


def resolve_url(url: str | None) -> DatabaseURL | None:
    """Turn a user-facing URL into a validated :class:`DatabaseURL`.

    ``None`` means ``$RPRA_DATABASE_URL`` or the SQLite file ``./rpra.db``; a bare path
    (no ``://``) is an SQLite file; ``postgresql://`` and ``postgres://`` select psycopg 3.

    Returns:
        ``None`` for ``memory://`` (the in-memory store), else the URL.

    Raises:
        ConfigError: on an unparsable URL, an unsupported database, or a missing driver.
    """
    raw = url if url is not None else (os.environ.get(ENV_URL) or f"sqlite:///{DEFAULT_SQLITE_FILE}")
    raw = raw.strip()
    if raw in ("memory://", "memory"):
        return None
    if raw.startswith("memory://"):
        raise ConfigError(f"memory:// takes no name or path, got {raw!r}; each memory:// opens a new, private store")
    if "://" not in raw:
        if not raw:
            raise ConfigError(f"empty database URL; pass one ({_EXAMPLES}) or set {ENV_URL}")
        raw = f"sqlite:///{raw}"
    try:
        parsed = make_url(raw)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        reason = "the port must be a number" if "int()" in str(exc) else str(exc)
        raise ConfigError(
            scrub_secrets(f"cannot parse database URL {mask_url(raw)!r} ({reason}); expected {_EXAMPLES}")
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise ConfigError(f"PostgreSQL is supported through psycopg 3 only, not {driver!r}: use postgresql://...")
        if importlib.util.find_spec("psycopg") is None:
            raise ConfigError(f"PostgreSQL needs psycopg 3: {_POSTGRES_EXTRA}")
        parsed = parsed.set(drivername="postgresql+psycopg")
        if not parsed.database:
            raise ConfigError(f"{mask_url(raw)} names no database; add /dbname")
    elif backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ConfigError(f"SQLite is used through the standard library driver, not {driver!r}: use sqlite:///path")
        parsed = parsed.set(drivername="sqlite")
    else:
        raise ConfigError(f"unsupported database {backend!r} in {mask_url(raw)!r}; expected {_EXAMPLES}")
    return DatabaseURL(parsed)
