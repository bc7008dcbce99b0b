"""The REST API and the admin pages of Letzshop orders."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from imports.letzshop import services
from imports.letzshop.models import InventoryUnit, LetzshopAccount, OrderException
from marketplace.models import Membership, Order


@pytest.fixture
def synced(account, catalogue_store):
    services.sync_account(account)
    return {o.external_id: o for o in Order.objects.filter(store=catalogue_store)}


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def member(owner, catalogue_store):
    Membership.objects.create(user=owner, store=catalogue_store, role=Membership.Role.STAFF)
    return owner


def _units_url(order):
    return f"/api/v1/letzshop/orders/{order.public_id}/units/"


def test_member_confirms_one_unit_over_the_api(
    synced, member, letzshop, broker, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(member).post(
            _units_url(synced["S-1"]), {"units": [{"id": "U-2", "available": True}]}, format="json"
        )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "processing"
    assert {u["id"]: u["state"] for u in body["units"]} == {
        "U-1": "unconfirmed",
        "U-2": "confirmed_available",
        "U-3": "unconfirmed",
    }
    assert worker() == ["succeeded"]
    assert letzshop.unit_state("U-2") == "confirmed_available"
    assert letzshop.unit_state("U-1") == "unconfirmed"


def test_staff_of_another_store_gets_404_and_nothing_changes(synced, staff_of_other_store, broker):
    response = _api(staff_of_other_store).post(
        _units_url(synced["S-1"]), {"units": [{"id": "U-1", "available": True}]}, format="json"
    )

    assert response.status_code == 404
    assert InventoryUnit.objects.get(external_id="U-1").state == "unconfirmed"
    assert broker.published == []


def test_api_refuses_confirmation_with_an_open_exception(synced, member, broker):
    response = _api(member).post(
        _units_url(synced["S-3"]), {"units": [{"id": "U-7", "available": True}]}, format="json"
    )

    assert response.status_code == 409
    assert "unmatched products" in response.json()["detail"]
    assert broker.published == []


def test_api_requires_authentication(synced):
    response = APIClient().post(_units_url(synced["S-1"]), {"units": []}, format="json")
    assert response.status_code == 401


def test_admin_units_page_and_exception_flow(client, platform_admin, synced, letzshop, broker):
    client.force_login(platform_admin)
    order = synced["S-3"]
    url = f"/admin/letzshop/letzshopaccount/order/{order.public_id}/units/"

    page = client.get(url)
    assert page.status_code == 200
    assert b"U-6" in page.content and b"Desk lamp" in page.content

    client.post(url, {"action": "decide", "unit:U-7": "confirm"})
    assert InventoryUnit.objects.get(external_id="U-7").state == "unconfirmed"

    exception = OrderException.objects.get(order=order)
    client.post(
        "/admin/letzshop/orderexception/",
        {"action": "ignore", "_selected_action": [exception.pk]},
    )
    client.post(url, {"action": "decide", "unit:U-7": "confirm", "unit:U-6": "decline"})
    assert InventoryUnit.objects.get(external_id="U-7").state == "confirmed_available"
    assert InventoryUnit.objects.get(external_id="U-6").state == "confirmed_unavailable"


def test_admin_account_page_actions_and_progress(client, platform_admin, account, letzshop):
    client.force_login(platform_admin)

    assert client.get(f"/admin/letzshop/letzshopaccount/{account.pk}/change/").status_code == 200
    client.post(
        "/admin/letzshop/letzshopaccount/",
        {"action": "test_connection", "_selected_action": [account.pk]},
    )
    account.refresh_from_db()
    assert account.status == LetzshopAccount.Status.OK
    client.post(
        "/admin/letzshop/letzshopaccount/",
        {"action": "sync_now", "_selected_action": [account.pk]},
    )
    assert Order.objects.filter(channel="letzshop").count() == 3

    historical = services.start_historical_import(account)
    services.run_historical_import(historical.pk)
    progress = client.get(f"/admin/letzshop/letzshopaccount/{account.pk}/import-progress/").json()
    assert (progress["status"], progress["percent"], progress["shipments_seen"]) == (
        "succeeded",
        100,
        3,
    )
