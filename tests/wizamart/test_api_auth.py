"""Integrators authenticate with a JWT from /api/v1/token/ (simplejwt, configured only)."""

import uuid

from django.test import Client


def _api() -> Client:
    return Client(enforce_csrf_checks=True)


def test_token_with_wrong_password_is_refused(owner):
    response = _api().post(
        "/api/v1/token/",
        {"username": "owner", "password": "wrong"},
        content_type="application/json",
    )

    assert response.status_code == 401
    assert "access" not in response.json()


def test_bearer_token_authenticates_api_calls(owner):
    tokens = (
        _api()
        .post(
            "/api/v1/token/",
            {"username": "owner", "password": "correct-horse-battery"},
            content_type="application/json",
        )
        .json()
    )
    url = f"/api/v1/letzshop/orders/{uuid.uuid4()}/units/"
    body = {"units": [{"id": "U-1", "available": True}]}

    anonymous = _api().post(url, body, content_type="application/json")
    authenticated = _api().post(
        url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"
    )

    assert anonymous.status_code == 401
    # Authenticated, then refused because no order of the owner's store has that id.
    assert authenticated.status_code == 404
    refreshed = _api().post(
        "/api/v1/token/refresh/", {"refresh": tokens["refresh"]}, content_type="application/json"
    )
    assert set(refreshed.json()) == {"access", "refresh"}


def test_api_docs_are_served_without_a_cdn(client, db):
    page = client.get("/api/v1/docs/").content.decode()

    assert "cdn.jsdelivr.net" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page


def test_json_nested_too_deeply_is_a_400_not_a_500(db):
    body = "[" * 100_000 + "]" * 100_000

    response = _api().post("/api/v1/token/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - nested too deeply."}
