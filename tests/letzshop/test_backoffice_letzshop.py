"""Letzshop in the store back office: owners and managers keep the account, every role
confirms units and resolves exceptions, and nothing of another store is reachable."""

from __future__ import annotations

import pytest
from django.urls import reverse

from imports.letzshop import services
from imports.letzshop.admin import LetzshopAccountForm
from imports.letzshop.models import (
    FulfilmentTask,
    HistoricalImport,
    InventoryUnit,
    LetzshopAccount,
    OrderException,
    SyncLog,
)
from letzshop_dev import DEFAULT_API_KEY
from marketplace.models import (
    Membership,
    Order,
    OrderEvent,
    Product,
    Shipment,
    Stock,
    StockMovement,
)
from marketplace.services import TransitionNotAllowed, ship_order_lines
from notifications.models import OutboundEmail
from tests.marketplace.test_backoffice import member


@pytest.fixture
def team(catalogue_store, other_store) -> dict:
    """Store A's manager and staff, and a manager of another store."""
    return {
        "manager": member(catalogue_store, "manager", Membership.Role.MANAGER),
        "staff": member(catalogue_store, "staff", Membership.Role.STAFF),
        "other_manager": member(other_store, "othermanager", Membership.Role.MANAGER),
    }


@pytest.fixture
def manager(team):
    return team["manager"]


@pytest.fixture
def staff(team):
    return team["staff"]


@pytest.fixture
def other_manager(team):
    return team["other_manager"]


@pytest.fixture
def synced(account, catalogue_store):
    services.sync_account(account)
    return {o.external_id: o for o in Order.objects.filter(store=catalogue_store)}


def bo(name, *args):
    return reverse(f"backoffice:{name}", args=args)


def letzshop_state() -> tuple:
    return (
        list(InventoryUnit.objects.order_by("pk").values_list("external_id", "state")),
        list(OrderException.objects.order_by("pk").values_list("status", "resolved_product")),
        list(Order.objects.order_by("pk").values_list("status", flat=True)),
        FulfilmentTask.objects.count(),
        SyncLog.objects.count(),
        HistoricalImport.objects.count(),
        list(
            LetzshopAccount.objects.order_by("pk").values_list(
                "api_key_encrypted", "vendor_id", "endpoint", "auto_sync", "interval_minutes"
            )
        ),
    )


# --- the account ----------------------------------------------------------------------------


def test_account_page_never_shows_the_api_key(client, manager, account):
    client.force_login(manager)

    response = client.get(bo("letzshop_letzshopaccount_change", account.pk))

    assert response.status_code == 200
    html = response.content.decode()
    assert DEFAULT_API_KEY not in html
    assert account.api_key_encrypted not in html
    assert '<input type="password" name="api_key"' in html
    assert 'id="letzshop-test-connection"' in html and 'id="letzshop-sync-now"' in html
    assert f'data-url="/store/letzshop/letzshopaccount/{account.pk}/import-progress/"' in html


def test_saving_settings_without_a_key_keeps_the_key(client, manager, account, letzshop):
    client.force_login(manager)
    form = {"api_key": "", "vendor_id": "VEN-1", "interval_minutes": 30}

    response = client.post(bo("letzshop_letzshopaccount_change", account.pk), form)

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.api_key, account.auto_sync, account.interval_minutes) == (
        DEFAULT_API_KEY,
        False,
        30,
    )
    client.post(bo("letzshop_letzshopaccount_change", account.pk), {**form, "api_key": "new-k"})
    account.refresh_from_db()
    assert account.api_key == "new-k"


@pytest.mark.parametrize(
    ("minutes", "message"),
    [
        (0, "Ensure this value is greater than or equal to 1."),
        (1441, "Ensure this value is less than or equal to 1440."),
    ],
)
def test_sync_interval_out_of_range_is_a_field_error(client, manager, account, minutes, message):
    client.force_login(manager)
    before = letzshop_state()
    form = {"api_key": "", "vendor_id": "VEN-1", "interval_minutes": minutes}

    response = client.post(bo("letzshop_letzshopaccount_change", account.pk), form)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"interval_minutes": [message]}
    assert "letzshop_account_interval_positive" not in response.content.decode()
    assert letzshop_state() == before
    platform_form = LetzshopAccountForm(
        data={
            "store": account.store.pk,
            "endpoint": "",
            "vendor_id": "",
            "interval_minutes": minutes,
        },
        instance=account,
    )
    assert platform_form.errors == {"interval_minutes": [message]}


def test_store_team_cannot_point_the_account_at_another_server(client, manager, account, letzshop):
    client.force_login(manager)
    form = {"api_key": "", "endpoint": "https://evil.example/graphql", "vendor_id": "VEN-1",
            "interval_minutes": 30}  # fmt: skip

    response = client.post(bo("letzshop_letzshopaccount_change", account.pk), form)

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.endpoint, account.api_key) == (letzshop.url, DEFAULT_API_KEY)
    page = client.get(bo("letzshop_letzshopaccount_change", account.pk)).content.decode()
    assert 'name="endpoint"' not in page


def test_manager_connects_a_store_without_an_account(client, other_manager, other_store):
    client.force_login(other_manager)
    assert client.get(bo("letzshop_letzshopaccount_add")).status_code == 200

    response = client.post(
        bo("letzshop_letzshopaccount_add"),
        {"store": other_store.pk, "api_key": "k-1", "vendor_id": "V-9", "interval_minutes": 15},
    )

    assert response.status_code == 302
    account = LetzshopAccount.objects.get(store=other_store)
    assert (account.api_key, account.vendor_id, account.auto_sync) == ("k-1", "V-9", False)


def test_test_connection_sync_now_and_historical_import(
    client, manager, account, catalogue_store, django_capture_on_commit_callbacks
):
    client.force_login(manager)

    response = client.post(bo("letzshop_test_connection", account.pk), follow=True)
    assert "Connection OK" in response.content.decode()
    account.refresh_from_db()
    assert account.status == LetzshopAccount.Status.OK

    response = client.post(bo("letzshop_sync_now", account.pk), follow=True)
    assert "3 shipments read, 3 orders created." in response.content.decode()
    assert Order.objects.filter(store=catalogue_store, channel="letzshop").count() == 3
    page = response.content.decode()
    assert 'id="sync-logs"' in page and "<td>shipments</td>" in page

    progress_url = bo("letzshop_import_progress", account.pk)
    assert client.get(progress_url).json() == {"status": "none"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(bo("letzshop_historical_import", account.pk))
    assert response.status_code == 302
    assert len(callbacks) == 1
    historical = HistoricalImport.objects.get(account=account)
    assert client.get(progress_url).json()["status"] == "queued"
    services.run_historical_import(historical.pk)
    progress = client.get(progress_url).json()
    assert (progress["status"], progress["percent"], progress["shipments_seen"]) == (
        "succeeded",
        100,
        3,
    )


def test_wrong_key_test_connection_is_a_message_not_an_error(client, manager, account):
    services.set_api_key(account, "wrong")
    client.force_login(manager)

    response = client.post(bo("letzshop_test_connection", account.pk), follow=True)

    assert response.status_code == 200
    assert "401" in response.content.decode()
    account.refresh_from_db()
    assert account.status == LetzshopAccount.Status.AUTH_FAILED


def test_staff_and_other_stores_cannot_reach_the_account(
    client, staff, other_manager, account, django_capture_on_commit_callbacks
):
    before = letzshop_state()
    for user, status in ((staff, 404), (other_manager, 404)):
        client.force_login(user)
        assert client.get(bo("letzshop_letzshopaccount_change", account.pk)).status_code == status
        assert client.get(bo("letzshop_import_progress", account.pk)).status_code == status
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            for name in (
                "letzshop_test_connection",
                "letzshop_sync_now",
                "letzshop_historical_import",
            ):
                assert client.post(bo(name, account.pk)).status_code == status, name
        assert callbacks == []
        response = client.post(
            bo("letzshop_letzshopaccount_change", account.pk),
            {"api_key": "stolen", "endpoint": "https://evil.example", "interval_minutes": 1},
        )
        assert response.status_code in (403, 404)
    client.force_login(staff)
    assert client.get(bo("letzshop_letzshopaccount_changelist")).status_code == 403
    assert letzshop_state() == before


# --- units, tracking and exceptions on the order page ---------------------------------------


def test_order_page_shows_the_units_with_a_choice_each(client, staff, synced):
    client.force_login(staff)

    response = client.get(bo("marketplace_order_change", synced["S-1"].pk))

    assert response.status_code == 200
    html = response.content.decode()
    for unit in ("U-1", "U-2", "U-3"):
        assert f'name="unit:{unit}" value="confirm"' in html
        assert f'name="unit:{unit}" value="decline"' in html
    assert 'id="letzshop-tracking-form"' in html


def test_staff_confirms_exactly_the_chosen_unit(
    client, staff, synced, django_capture_on_commit_callbacks
):
    order = synced["S-1"]
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            bo("marketplace_order_letzshop_units", order.pk), {"unit:U-2": "confirm"}, follow=True
        )

    assert "1 call to Letzshop queued." in response.content.decode()
    task = FulfilmentTask.objects.get()
    assert (task.order_id, task.kind, task.payload, task.created_by) == (
        order.pk,
        "confirm_units",
        {"unit_ids": ["U-2"], "is_available": True},
        staff,
    )
    assert dict(InventoryUnit.objects.filter(order=order).values_list("external_id", "state")) == {
        "U-1": "unconfirmed",
        "U-2": "confirmed_available",
        "U-3": "unconfirmed",
    }
    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING


def test_open_exception_refuses_confirmation_with_the_message(client, staff, synced):
    order = synced["S-3"]
    client.force_login(staff)
    before = letzshop_state()

    response = client.post(
        bo("marketplace_order_letzshop_units", order.pk), {"unit:U-7": "confirm"}, follow=True
    )

    assert response.status_code == 200
    assert (
        f"Order {order.number} has unmatched products: map them to a product or ignore them "
        "before confirming." in response.content.decode()
    )
    assert letzshop_state() == before


def test_tracking_before_confirmation_is_refused_then_sent(
    client, staff, synced, django_capture_on_commit_callbacks
):
    order = synced["S-2"]
    client.force_login(staff)
    url = bo("marketplace_order_letzshop_tracking", order.pk)
    tracking = {"code": "LU123", "provider": "post_lu"}

    response = client.post(url, tracking, follow=True)
    assert "Confirm at least one unit before sending tracking." in response.content.decode()
    assert FulfilmentTask.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            bo("marketplace_order_letzshop_units", order.pk),
            {"unit:U-4": "confirm", "unit:U-5": "decline"},
        )
        response = client.post(url, tracking, follow=True)
    assert "Tracking saved and queued for Letzshop." in response.content.decode()
    assert list(FulfilmentTask.objects.values_list("kind", "payload")) == [
        ("confirm_units", {"unit_ids": ["U-4"], "is_available": True}),
        ("decline_units", {"unit_ids": ["U-5"], "is_available": False}),
        ("set_tracking", {"shipment_id": "S-2", "code": "LU123", "provider": "post_lu"}),
    ]
    assert Order.objects.get(pk=order.pk).status == Order.Status.SHIPPED


def test_staff_maps_an_exception_to_one_of_the_stores_products(
    client, staff, synced, catalogue_store, other_store, make_product
):
    lamp = make_product(catalogue_store, "LAMP-1", title="Lamp", price="89.00")
    theirs = make_product(other_store, "THEIR-LAMP", title="Their lamp")
    exception = OrderException.objects.get()
    client.force_login(staff)
    url = bo("letzshop_orderexception_change", exception.pk)

    response = client.get(url)
    assert response.status_code == 200
    choices = response.context["adminform"].form.fields["resolved_product"].queryset
    assert set(choices) == set(Product.objects.filter(store=catalogue_store))

    response = client.post(url, {"resolved_product": theirs.pk})
    assert response.status_code == 200
    assert OrderException.objects.get().status == "open"

    response = client.post(url, {"resolved_product": lamp.pk})
    assert response.status_code == 302
    assert response["Location"] == bo("marketplace_order_change", synced["S-3"].pk)
    exception.refresh_from_db()
    assert (exception.status, exception.resolved_product, exception.resolved_by) == (
        "resolved",
        lamp,
        staff,
    )


def test_staff_ignores_an_exception_then_confirms(
    client, staff, synced, django_capture_on_commit_callbacks
):
    order = synced["S-3"]
    exception = OrderException.objects.get()
    client.force_login(staff)
    assert client.get(bo("letzshop_orderexception_changelist")).status_code == 200

    response = client.post(bo("letzshop_orderexception_ignore", exception.pk), follow=True)
    assert "Exception ignored." in response.content.decode()
    assert OrderException.objects.get().status == "ignored"

    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            bo("marketplace_order_letzshop_units", order.pk),
            {"unit:U-7": "confirm", "unit:U-6": "decline"},
        )
    assert sorted(FulfilmentTask.objects.values_list("kind", flat=True)) == [
        "confirm_units",
        "decline_units",
    ]


def test_another_stores_orders_and_exceptions_are_404(
    client, staff_of_other_store, synced, catalogue_store, make_product
):
    lamp = make_product(catalogue_store, "LAMP-1", title="Lamp", price="89.00")
    order, exception = synced["S-3"], OrderException.objects.get()
    client.force_login(staff_of_other_store)
    before = letzshop_state()

    assert client.get(bo("marketplace_order_change", order.pk)).status_code == 404
    unit_post = {"unit:U-6": "decline"}
    assert (
        client.post(bo("marketplace_order_letzshop_units", order.pk), unit_post).status_code == 404
    )
    tracking = {"code": "X", "provider": "dhl"}
    assert (
        client.post(bo("marketplace_order_letzshop_tracking", order.pk), tracking).status_code
        == 404
    )
    assert client.get(bo("letzshop_orderexception_change", exception.pk)).status_code == 404
    change = bo("letzshop_orderexception_change", exception.pk)
    assert client.post(change, {"resolved_product": lamp.pk}).status_code == 404
    assert client.post(bo("letzshop_orderexception_ignore", exception.pk)).status_code == 404
    assert client.post(bo("letzshop_orderexception_ignore", 999999)).status_code == 404
    response = client.post(
        bo("letzshop_orderexception_changelist"),
        {"action": "ignore_selected", "_selected_action": [exception.pk]},
    )
    assert response.status_code == 403
    exceptions = client.get(bo("letzshop_orderexception_changelist")).context["cl"].result_list
    assert list(exceptions) == []

    assert letzshop_state() == before


def test_a_letzshop_order_cannot_be_cancelled_wholesale(client, staff, synced):
    """Cancelling here would never reach Letzshop; its units are declined instead."""
    order = synced["S-1"]
    client.force_login(staff)
    before = letzshop_state()

    response = client.post(bo("marketplace_order_transition", order.pk, "cancelled"), follow=True)

    assert "comes from Letzshop: confirm or decline its units instead." in (
        response.content.decode()
    )
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert letzshop_state() == before
    assert FulfilmentTask.objects.count() == 0


# --- the generic ship form ------------------------------------------------------------------


def ship_state(order) -> tuple:
    return (
        list(Stock.objects.order_by("pk").values_list("on_hand", "reserved")),
        StockMovement.objects.count(),
        Shipment.objects.count(),
        list(order.lines.order_by("pk").values_list("quantity_shipped", flat=True)),
        Order.objects.get(pk=order.pk).status,
        OrderEvent.objects.filter(order=order).count(),
        OutboundEmail.objects.count(),
        FulfilmentTask.objects.count(),
    )


def test_ship_lines_page_refuses_a_letzshop_order_and_changes_nothing(
    client, staff, synced, django_capture_on_commit_callbacks
):
    order = synced["S-1"]
    with django_capture_on_commit_callbacks(execute=True):
        services.decide_units(order, {"U-1": True, "U-2": True, "U-3": True})
    client.force_login(staff)
    before = ship_state(order)
    data = {"carrier": "dhl", "tracking_number": "D1"}
    data.update({f"line_{line.pk}": line.quantity for line in order.lines.all()})

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(bo("marketplace_order_ship", order.pk), data, follow=True)
        page = client.get(bo("marketplace_order_ship", order.pk), follow=True)

    assert response.redirect_chain == [(bo("marketplace_order_change", order.pk), 302)]
    message = (
        f"Order {order.number} comes from Letzshop: confirm its units, then send the tracking "
        "from the Letzshop section."
    )
    assert message in response.content.decode()
    assert message in page.content.decode()
    assert callbacks == []
    assert ship_state(order) == before


def test_letzshop_order_page_has_no_ship_lines_button(client, staff, synced):
    order = synced["S-1"]
    services.decide_units(order, {"U-1": True, "U-2": True, "U-3": True})
    client.force_login(staff)

    response = client.get(bo("marketplace_order_change", order.pk))

    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING
    assert response.status_code == 200
    assert 'id="ship-lines"' not in response.content.decode()


def test_ship_order_lines_refuses_a_letzshop_order_outside_the_tracking_path(synced):
    order = synced["S-1"]
    services.decide_units(order, {"U-1": True, "U-2": True, "U-3": True})
    before = ship_state(order)

    with pytest.raises(TransitionNotAllowed, match="comes from Letzshop: confirm its units"):
        ship_order_lines(
            order,
            {line.pk: line.quantity for line in order.lines.all()},
            carrier="dhl",
            tracking_number="D1",
        )

    assert ship_state(order) == before
