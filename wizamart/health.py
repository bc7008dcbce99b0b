"""`/health`: is this instance able to serve? Checks the database, Redis and the file
storage (S3 in production)."""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "ok"}


def _check_redis() -> dict:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return {"status": "ok"}


def _check_storage() -> dict:
    # A lookup of a name that need not exist: it proves the storage answers (on S3 a
    # HEAD request with our credentials) without writing anything.
    default_storage.exists(".wizamart-health")
    return {"status": "ok"}


CHECKS = {"database": _check_database, "redis": _check_redis, "storage": _check_storage}


@never_cache
@require_GET
def health(request):
    """200 with every check "ok", or 503 naming the check that failed and why."""
    checks = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - any failure means "down", reported below
            logger.warning("health check %s failed: %s", name, exc)
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        checks[name] = result
    healthy = all(c["status"] == "ok" for c in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )
