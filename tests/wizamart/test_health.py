"""`/health`: 200 when the database, Redis and storage answer, 503 naming the check that
failed."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _without_timings(body: dict) -> dict:
    for check in body["checks"].values():
        assert isinstance(check.pop("ms"), float)
    return body


def test_health_is_ok_when_database_and_redis_answer(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    assert _without_timings(response.json()) == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "ok"},
            "storage": {"status": "ok"},
        },
    }


def test_health_is_503_naming_redis_when_redis_is_down(client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        response = client.get("/health")

    assert response.status_code == 503
    body = _without_timings(response.json())
    error = body["checks"]["redis"].pop("error")
    assert error.startswith("ConnectionError: ")
    assert body == {
        "status": "error",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "error"},
            "storage": {"status": "ok"},
        },
    }


def test_health_is_503_naming_storage_when_s3_does_not_answer(client, settings, monkeypatch):
    from wizamart.settings import s3_storage

    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_S3_REGION_NAME", "eu-west-1")
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage("wizamart")}

    response = client.get("/health")

    assert response.status_code == 503
    body = _without_timings(response.json())
    assert body["checks"]["storage"]["status"] == "error"
    assert "Could not connect to the endpoint URL" in body["checks"]["storage"]["error"]
    assert (body["status"], body["checks"]["database"], body["checks"]["redis"]) == (
        "error",
        {"status": "ok"},
        {"status": "ok"},
    )


def test_health_refuses_post(client):
    response = client.post("/health")

    assert response.status_code == 405
