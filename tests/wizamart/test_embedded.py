"""The embedded PostgreSQL and Redis a machine without servers runs (`wizamart.embedded`),
started in a folder of their own and stopped by `stop_servers` (`python3 dev.py stop`)."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
import redis

from wizamart import embedded


@pytest.fixture
def var(tmp_path, monkeypatch):
    # Short: the Redis socket path must fit in a unix socket address.
    folder = tmp_path / "v"
    monkeypatch.setenv("WIZAMART_VAR_DIR", str(folder))
    yield folder
    embedded.stop_servers(tmp_path)


def test_servers_start_answer_and_stop_keeping_their_data(var, tmp_path):
    database = embedded.postgres_url(tmp_path)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n integer)")
        conn.execute("INSERT INTO kept VALUES (42)")
    cache = redis.Redis.from_url(embedded.redis_url(tmp_path))
    assert cache.ping()

    assert embedded.stop_servers(tmp_path) == ["PostgreSQL", "Redis"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database, connect_timeout=2)
    with pytest.raises(redis.ConnectionError):
        cache.ping()
    assert embedded.stop_servers(tmp_path) == []

    # Started again by the next process (as the next `dev.py run`), it holds what was written.
    again = subprocess.run(
        [sys.executable, "-c", RESTART, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert again.stdout == "[(42,)]\n"


RESTART = """
import sys, pathlib, psycopg
from wizamart import embedded
with psycopg.connect(embedded.postgres_url(pathlib.Path(sys.argv[1]))) as conn:
    print(conn.execute("SELECT n FROM kept").fetchall())
"""
