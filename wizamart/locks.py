"""PostgreSQL advisory locks shared by the apps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection


@contextlib.contextmanager
def try_advisory_lock(namespace: int, key: int) -> Iterator[bool]:
    """A session-level advisory lock on (namespace, key), held across the caller's many
    short transactions and released on exit; yields False, holding nothing, when another
    session has it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])
