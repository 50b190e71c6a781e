"""A real, throwaway PostgreSQL server for tests (and benchmarks).

``PostgresCluster`` runs ``initdb`` (as the ``postgres`` user when we are root, since
initdb refuses root) with ``-A trust``, a private port and socket directory and
``fsync=off``. Tests get a fresh database each (``postgres_url``). Set
``RPRA_TEST_DATABASE_URL`` to use an existing server instead (it needs CREATEDB).
Under ``CI=true`` a missing server is a failure, never a skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresCluster", "find_pg_bin", "postgres_server", "postgres_url"]


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).parent))
    for cand in candidates:
        if cand and (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """A private PostgreSQL cluster in a temporary directory."""

    def __init__(self, bin_dir: Path, root: Path | None = None) -> None:
        self.bin = bin_dir
        self.root = Path(root or tempfile.mkdtemp(prefix="rpra-pg-"))
        self.data, self.sock, self.log = self.root / "data", self.root / "sock", self.root / "server.log"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}\n{log}")

    def init(self) -> PostgresCluster:
        """initdb the cluster."""
        self.sock.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        return self

    def start(self, *, durable: bool = False) -> None:
        """Start the server and wait until it accepts connections.

        Args:
            durable: Keep PostgreSQL's default fsync and synchronous commit (as in
                production); by default they are off, which tests do not need.
        """
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections=100"
        if not durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` disconnects clients; ``immediate`` is a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        """A plain libpq URL for ``dbname``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def cleanup(self) -> None:
        """Stop the server if running and delete the directory."""
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class _Server:
    """Where test databases are created: our own cluster or RPRA_TEST_DATABASE_URL's server."""

    def __init__(self, admin_url: str, cluster: PostgresCluster | None) -> None:
        self.admin_url, self.cluster = admin_url, cluster

    def create_database(self) -> str:
        import psycopg
        from sqlalchemy.engine import make_url

        name = f"rpra_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run; install Debian's `postgresql` package)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_Server]:
    """A PostgreSQL server for the session: ``RPRA_TEST_DATABASE_URL`` or a throwaway cluster."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed: pip install 'rpra-agent[postgres]'")
    external = os.environ.get("RPRA_TEST_DATABASE_URL")
    if external:
        yield _Server(external, None)
        return
    bin_dir = find_pg_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
        return
    cluster = PostgresCluster(bin_dir).init()
    cluster.start()
    try:
        yield _Server(cluster.url(), cluster)
    finally:
        cluster.cleanup()


@pytest.fixture
def postgres_url(postgres_server: _Server) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards)."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)
