"""A shipment whose data cannot be imported is skipped and reported; it never stops the
sync, the other shipments, later pages or the back office."""

from __future__ import annotations

import copy
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from imports.letzshop import services
from imports.letzshop.models import LetzshopAccount, RejectedShipment
from marketplace.models import Membership, Order, OrderEvent, Stock
from tests.letzshop.conftest import fetch_shipment
from tests.marketplace.test_backoffice import member


def shipment(letzshop, shipment_id: str, number: str, **order) -> dict:
    """A copy of the fixture's S-1 under new shipment and unit ids, with `order` changes."""
    node = copy.deepcopy(letzshop.shipment("S-1"))
    node["id"], node["number"] = shipment_id, number
    for index, unit in enumerate(node["inventoryUnits"]):
        unit["id"] = f"{shipment_id}-U{index}"
    node["order"].update(order)
    return node


LONG_EMAIL = "a" * 250 + "@example.com"


def fetched(account, letzshop, shipment_id: str, number: str) -> dict:
    """S-1 as the client reads it from the server, under new ids: what the sync imports."""
    node = fetch_shipment(account, "S-1")
    node["id"], node["number"] = shipment_id, number
    for index, unit in enumerate(node["inventoryUnits"]):
        unit["id"] = f"{shipment_id}-U{index}"
    return node


def imported(store) -> list[str]:
    return sorted(Order.objects.filter(store=store).values_list("external_id", flat=True))


def test_bad_total_is_skipped_and_reported_while_the_next_page_imports(
    account, catalogue_store, letzshop, settings
):
    settings.LETZSHOP_PAGE_SIZE = 2  # S-1 S-2 | S-3 S-BAD | S-4
    letzshop.add_shipments(
        [shipment(letzshop, "S-BAD", "H-BAD", email=LONG_EMAIL), shipment(letzshop, "S-4", "H4")]
    )

    result = services.sync_account(account)

    assert (result.pages, result.seen, result.created, result.error) == (3, 5, 4, "")
    assert result.rejected == [
        services.Rejection(
            "S-BAD", "H-BAD", "order.email", "expected at most 254 characters, got 262"
        )
    ]
    assert imported(catalogue_store) == ["S-1", "S-2", "S-3", "S-4"]
    account.refresh_from_db()
    assert account.status == LetzshopAccount.Status.OK
    assert account.last_synced_at is not None
    assert account.last_error == (
        "Skipped 1 shipment that cannot be imported: H-BAD (id S-BAD): order.email: "
        "expected at most 254 characters, got 262."
    )
    row = RejectedShipment.objects.get(account=account)
    assert (row.external_id, row.number, row.field, row.reason, row.times_seen) == (
        "S-BAD",
        "H-BAD",
        "order.email",
        "expected at most 254 characters, got 262",
        1,
    )


def test_the_same_bad_shipment_is_reported_again_and_imports_once_fixed(
    account, catalogue_store, letzshop
):
    letzshop.add_shipments([shipment(letzshop, "S-BAD", "H-BAD", email=LONG_EMAIL)])
    services.sync_account(account)
    mug = Stock.objects.get(product__sku="MUG-RED")
    reserved = mug.reserved

    again = services.sync_account(account)

    assert (again.created, [r.shipment_id for r in again.rejected]) == (0, ["S-BAD"])
    assert RejectedShipment.objects.get().times_seen == 2
    assert imported(catalogue_store) == ["S-1", "S-2", "S-3"]
    assert Stock.objects.get(pk=mug.pk).reserved == reserved

    letzshop.add_shipments([shipment(letzshop, "S-BAD", "H-BAD", email="fixed@example.com")])
    fixed = services.sync_account(account)

    assert (fixed.created, fixed.rejected) == (1, [])
    assert not RejectedShipment.objects.exists()
    account.refresh_from_db()
    assert (account.status, account.last_error) == (LetzshopAccount.Status.OK, "")


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        (
            ("inventoryUnits", 0, "variant", "price"),
            "n/a",
            "inventoryUnits[0].variant.price",
            "expected an amount such as 12.50, got 'n/a'",
        ),
        (("order", "total"), "abc", "order.total", "expected an amount such as 12.50, got 'abc'"),
        (
            ("order", "total"),
            "NaN",
            "order.total",
            "expected an amount from 0 to 9999999999, got 'NaN'",
        ),
        (
            ("order", "email"),
            "not an address",
            "order.email",
            "expected an email address, got 'not an address'",
        ),
        (("inventoryUnits",), [], "inventoryUnits", "expected at least one inventory unit"),
    ],
)
def test_each_kind_of_bad_data_names_its_field_and_the_page_goes_on(
    account, catalogue_store, letzshop, path, value, field, reason
):
    bad = fetched(account, letzshop, "S-BAD", "H-BAD")
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    good = fetched(account, letzshop, "S-4", "H4")

    page = services.import_shipments(catalogue_store, [bad, good])

    assert [(r.shipment_id, r.number, r.field, r.reason) for r in page.rejected] == [
        ("S-BAD", "H-BAD", field, reason)
    ]
    assert [order.external_id for order in page.created] == ["S-4"]
    assert imported(catalogue_store) == ["S-4"]


def test_nul_bytes_are_removed_and_the_shipment_imports(account, catalogue_store, letzshop):
    node = shipment(letzshop, "S-4", "H4")
    node["order"]["shipAddress"]["firstName"] = "Sho\x00pper"
    letzshop.add_shipments([node])

    result = services.sync_account(account)

    assert (result.created, result.rejected) == (4, [])
    order = Order.objects.get(external_id="S-4")
    assert order.shipping_address["first_name"] == "Shopper"


def test_impossible_completed_at_places_the_order_now_with_a_note(
    account, catalogue_store, letzshop
):
    letzshop.add_shipments(
        [shipment(letzshop, "S-4", "H4", completedAt="2026-02-30T10:00:00+00:00")]
    )
    before = timezone.now()

    result = services.sync_account(account)

    assert (result.created, result.rejected) == (4, [])
    order = Order.objects.get(external_id="S-4")
    assert before <= order.placed_at <= timezone.now()
    assert OrderEvent.objects.get(order=order).note == (
        "Imported from Letzshop shipment H4 completedAt '2026-02-30T10:00:00+00:00' is not "
        "a valid date and time; placed at import time."
    )


def test_unexpected_error_is_recorded_on_the_account_and_returned(
    account, catalogue_store, monkeypatch
):
    def broken(store):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "resolve_exceptions_for_store", broken)

    result = services.sync_account(account)

    assert result.error == "The sync stopped on an unexpected error: RuntimeError('boom')"
    account.refresh_from_db()
    assert (account.status, account.last_error) == (LetzshopAccount.Status.ERROR, result.error)


def test_sync_now_reports_a_bad_shipment_and_imports_the_good_one(
    client, account, catalogue_store, letzshop
):
    client.force_login(member(catalogue_store, "manager", Membership.Role.MANAGER))
    letzshop.add_shipments(
        [
            shipment(letzshop, "S-BAD", "H-BAD", email="not an address"),
            shipment(letzshop, "S-4", "H4"),
        ]
    )

    response = client.post(reverse("backoffice:letzshop_sync_now", args=[account.pk]), follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "5 shipments read, 4 orders created." in page
    assert (
        "Skipped 1 shipment that cannot be imported: H-BAD (id S-BAD): order.email: "
        "expected an email address, got &#x27;not an address&#x27;." in page
    )
    assert imported(catalogue_store) == ["S-1", "S-2", "S-3", "S-4"]

    page = client.get(reverse("backoffice:letzshop_letzshopaccount_change", args=[account.pk]))
    rows = re.findall(
        r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>\s*<td>(\d+)</td>",
        page.content.decode().split('id="rejected-shipments"')[1],
    )
    assert rows == [
        ("H-BAD", "order.email", "expected an email address, got &#x27;not an address&#x27;", "1")
    ]


def test_rejected_shipments_are_listed_in_the_platform_admin(admin_client, account, letzshop):
    letzshop.add_shipments([shipment(letzshop, "S-BAD", "H-BAD", email="not an address")])
    services.sync_account(account)

    page = admin_client.get(reverse("admin:letzshop_rejectedshipment_changelist"))

    assert page.status_code == 200
    assert "H-BAD" in page.content.decode()
    assert "expected an email address" in page.content.decode()


def test_sync_now_shows_an_unexpected_error_as_a_message(
    client, account, catalogue_store, monkeypatch
):
    client.force_login(member(catalogue_store, "manager", Membership.Role.MANAGER))

    def broken(store, nodes):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "import_shipments", broken)

    response = client.post(reverse("backoffice:letzshop_sync_now", args=[account.pk]), follow=True)

    assert response.status_code == 200
    assert (
        "The sync stopped on an unexpected error: RuntimeError(&#x27;boom&#x27;)"
        in response.content.decode()
    )
    assert imported(catalogue_store) == []
