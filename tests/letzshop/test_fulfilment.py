"""Per-unit confirmation, tracking and exceptions, sent to the development server."""

from __future__ import annotations

import pytest

from imports.letzshop import services
from imports.letzshop.models import FulfilmentTask, InventoryUnit, OrderException, SyncLog
from marketplace.models import Order, OrderEvent, Shipment, Stock, StockMovement
from notifications.models import OutboundEmail
from tests.letzshop.conftest import fetch_shipment


@pytest.fixture
def synced(account, catalogue_store):
    services.sync_account(account)
    return {o.external_id: o for o in Order.objects.filter(store=catalogue_store)}


def _stock(store, sku):
    return Stock.objects.get(product__store=store, product__sku=sku)


def test_confirming_one_of_three_units_sends_exactly_that_unit(
    synced, letzshop, broker, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        tasks = services.decide_units(synced["S-1"], {"U-1": True})

    assert worker() == ["succeeded"]
    assert [letzshop.unit_state(u) for u in ("U-1", "U-2", "U-3")] == [
        "confirmed_available",
        "unconfirmed",
        "unconfirmed",
    ]
    assert letzshop.mutations == [
        {"confirmInventoryUnits": [{"inventoryUnitId": "U-1", "isAvailable": True}]}
    ]
    assert [t.kind for t in tasks] == ["confirm_units"]
    order = Order.objects.get(pk=synced["S-1"].pk)
    assert order.status == Order.Status.PROCESSING
    assert order.events.last().to_status == Order.Status.PROCESSING
    log = SyncLog.objects.filter(operation="confirmInventoryUnits").get()
    assert (log.outcome, log.http_status) == ("ok", 200)


def test_declining_every_unit_cancels_and_releases_reservations(
    synced, letzshop, catalogue_store, broker, worker, django_capture_on_commit_callbacks
):
    assert _stock(catalogue_store, "MUG-RED").reserved == 3
    with django_capture_on_commit_callbacks(execute=True):
        services.decide_units(synced["S-1"], {"U-1": False, "U-2": False, "U-3": False})
    worker()

    assert Order.objects.get(pk=synced["S-1"].pk).status == Order.Status.CANCELLED
    assert _stock(catalogue_store, "MUG-RED").reserved == 1  # S-3's mug stays reserved
    assert _stock(catalogue_store, "TEA-GREEN").reserved == 0
    assert letzshop.shipment("S-1")["state"] == "declined"
    # deciding again the same way is a quiet no-op
    assert services.decide_units(synced["S-1"], {"U-1": False}) == []


def test_letzshop_500_then_200_ends_confirmed(
    synced, letzshop, broker, worker, django_capture_on_commit_callbacks
):
    letzshop.fail_next(1, status=500)
    with django_capture_on_commit_callbacks(execute=True):
        (task,) = services.decide_units(synced["S-2"], {"U-4": True, "U-5": True})

    assert worker() == ["pending"]
    task.refresh_from_db()
    assert (task.status, task.attempts, task.http_status) == ("pending", 1, 500)
    assert "HTTP 500" in task.last_error
    assert letzshop.unit_state("U-4") == "unconfirmed"
    assert broker.published and broker.published[0]["countdown"] == 30.0

    assert worker() == ["succeeded"]
    task.refresh_from_db()
    assert (task.status, task.attempts, task.last_error) == ("succeeded", 2, "")
    assert letzshop.shipment("S-2")["state"] == "confirmed"


def test_letzshop_4xx_stops_the_task_with_a_visible_error(
    synced, letzshop, broker, worker, django_capture_on_commit_callbacks
):
    letzshop.fail_next(1, status=422)
    with django_capture_on_commit_callbacks(execute=True):
        (task,) = services.decide_units(synced["S-2"], {"U-4": True})

    assert worker() == ["failed"]
    task.refresh_from_db()
    assert (task.status, task.attempts, task.http_status) == ("failed", 1, 422)
    assert "HTTP 422" in task.last_error
    assert broker.published == []
    assert letzshop.unit_state("U-4") == "unconfirmed"


def test_open_exception_blocks_confirmation_until_ignored(synced, letzshop):
    order = synced["S-3"]
    with pytest.raises(services.OpenExceptions):
        services.decide_units(order, {"U-7": True})
    assert InventoryUnit.objects.get(external_id="U-7").state == "unconfirmed"
    assert FulfilmentTask.objects.count() == 0

    services.ignore_exception(OrderException.objects.get(order=order))

    assert [t.kind for t in services.decide_units(order, {"U-7": True, "U-6": False})] == [
        "confirm_units",
        "decline_units",
    ]


def test_importing_the_product_later_resolves_the_exception(synced, catalogue_store, make_product):
    order = synced["S-3"]
    lamp = make_product(
        catalogue_store, "LAMP-99", title="Lamp", price="89.00", gtin="5400000000997"
    )

    assert services.resolve_exceptions_for_store(catalogue_store) == 1

    exception = OrderException.objects.get(order=order)
    assert (exception.status, exception.resolved_product) == ("resolved", lamp)
    assert order.lines.get(gtin="5400000000997").product == lamp
    assert _stock(catalogue_store, "LAMP-99").reserved == 1
    assert StockMovement.objects.filter(product=lamp, kind="reserve").count() == 1
    assert services.resolve_exceptions_for_store(catalogue_store) == 0
    assert len(services.decide_units(order, {"U-6": True, "U-7": True})) == 1


def test_staff_can_map_an_exception_to_a_product(synced, catalogue_store, make_product):
    lamp = make_product(catalogue_store, "LAMP-OTHER", title="Lamp", price="89.00")
    exception = OrderException.objects.get()

    assert services.resolve_exception(exception, lamp) is True
    assert services.resolve_exception(exception, lamp) is False
    exception.refresh_from_db()
    assert exception.status == "resolved"


def test_tracking_after_confirmation_ships_the_order(
    synced, letzshop, catalogue_store, broker, worker, django_capture_on_commit_callbacks
):
    order = synced["S-2"]
    with django_capture_on_commit_callbacks(execute=True):
        services.decide_units(order, {"U-4": True, "U-5": False})
        services.set_tracking(order, code="LU123456789", provider="post_lu")

    assert worker() == ["succeeded", "succeeded", "succeeded"]
    order.refresh_from_db()
    assert order.status == Order.Status.SHIPPED
    assert letzshop.shipment("S-2")["tracking"] == {"code": "LU123456789", "provider": "post_lu"}
    book = _stock(catalogue_store, "BOOK-FOLIO-1")
    assert (book.on_hand, book.reserved) == (9, 0)
    assert order.lines.get().quantity_shipped == 1
    assert services.set_tracking(order, code="LU123456789", provider="post_lu") is None


def test_tracking_waits_for_an_unsent_confirmation(
    synced, letzshop, broker, worker, django_capture_on_commit_callbacks
):
    order = synced["S-2"]
    letzshop.fail_next(1, status=502)
    with django_capture_on_commit_callbacks(execute=True):
        services.decide_units(order, {"U-4": True, "U-5": True})
        services.set_tracking(order, code="TRK1", provider="dhl")

    assert worker() == ["pending", "pending"]  # confirm: 502; tracking: waits for it
    assert worker() == ["succeeded", "succeeded"]
    assert letzshop.shipment("S-2")["tracking"]["code"] == "TRK1"


def test_one_declined_and_two_confirmed_units_then_tracking_ship_only_the_confirmed_units(
    synced, letzshop, catalogue_store, broker, worker, django_capture_on_commit_callbacks
):
    order = synced["S-1"]  # U-1, U-2: the red mug; U-3: green tea
    mug_line, tea_line = order.lines.order_by("id")
    with django_capture_on_commit_callbacks(execute=True):
        services.decide_units(order, {"U-1": True, "U-2": False, "U-3": True})
        services.set_tracking(order, code="LU555", provider="post_lu")

    assert worker() == ["succeeded", "succeeded", "succeeded"]
    order.refresh_from_db()
    assert order.status == Order.Status.SHIPPED
    shipment = Shipment.objects.get(order=order)
    assert (shipment.carrier, shipment.tracking_number) == ("post_lu", "LU555")
    assert sorted(shipment.lines.values_list("order_line_id", "quantity")) == [
        (mug_line.pk, 1),
        (tea_line.pk, 1),
    ]
    assert list(
        order.lines.order_by("id").values_list("quantity", "quantity_shipped", "quantity_cancelled")
    ) == [(2, 1, 1), (1, 1, 0)]
    movements = StockMovement.objects.filter(order=order).exclude(kind="reserve").order_by("id")
    assert list(
        movements.values_list("kind", "product__sku", "on_hand_delta", "reserved_delta")
    ) == [
        ("release", "MUG-RED", 0, -1),
        ("fulfil", "MUG-RED", -1, -1),
        ("fulfil", "TEA-GREEN", -1, -1),
    ]
    mug, tea = _stock(catalogue_store, "MUG-RED"), _stock(catalogue_store, "TEA-GREEN")
    assert (mug.on_hand, mug.reserved) == (9, 1)  # S-3's mug stays reserved
    assert (tea.on_hand, tea.reserved) == (9, 0)
    assert list(order.events.values_list("from_status", "to_status")) == [
        ("", "pending"),
        ("pending", "pending"),
        ("pending", "processing"),
        ("processing", "shipped"),
    ]
    assert OrderEvent.objects.filter(
        order=order, from_status="pending", to_status="pending"
    ).get().note == ("Cancelled 1 x MUG-RED. Declined at Letzshop.")
    assert OutboundEmail.objects.filter(template_code="order_shipped").count() == 1
    assert letzshop.shipment("S-1")["tracking"] == {"code": "LU555", "provider": "post_lu"}


def test_unknown_tracking_provider_ships_with_carrier_other(synced, broker):
    order = synced["S-2"]
    services.decide_units(order, {"U-4": True, "U-5": True})

    services.set_tracking(order, code="PX-1", provider="Pigeon Express")

    assert Shipment.objects.get(order=order).carrier == Shipment.Carrier.OTHER
    assert Order.objects.get(pk=order.pk).status == Order.Status.SHIPPED


def test_tracking_is_refused_while_a_unit_is_undecided(synced, catalogue_store, broker):
    order = synced["S-1"]
    services.decide_units(order, {"U-1": True, "U-3": True})
    movements = StockMovement.objects.count()

    with pytest.raises(services.DomainError, match="Confirm or decline every unit"):
        services.set_tracking(order, code="LU1", provider="post_lu")

    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING
    assert not Shipment.objects.exists()
    assert not FulfilmentTask.objects.filter(kind="set_tracking").exists()
    assert StockMovement.objects.count() == movements


def test_unit_declined_before_the_import_counts_as_cancelled_on_its_line(
    account, catalogue_store, broker
):
    node = fetch_shipment(account, "S-1")
    node["inventoryUnits"][1]["state"] = "confirmed_unavailable"  # U-2, one of the mugs

    order = services.import_shipment(catalogue_store, node)

    assert list(
        order.lines.order_by("id").values_list("quantity", "quantity_shipped", "quantity_cancelled")
    ) == [(2, 0, 1), (1, 0, 0)]
    assert _stock(catalogue_store, "MUG-RED").reserved == 1
    services.decide_units(order, {"U-1": True, "U-3": True})
    services.set_tracking(order, code="LU9", provider="dhl")
    assert Order.objects.get(pk=order.pk).status == Order.Status.SHIPPED
    assert _stock(catalogue_store, "MUG-RED").reserved == 0


def test_declining_every_unit_of_an_unmatched_line_lets_the_others_be_confirmed(
    synced, catalogue_store, broker
):
    order = synced["S-3"]  # U-6 the unmatched lamp, U-7 a mug
    services.decide_units(order, {"U-6": False})
    exception = OrderException.objects.get(order=order)
    assert exception.status == OrderException.Status.IGNORED

    tasks = services.decide_units(order, {"U-7": True})

    assert [t.kind for t in tasks] == ["confirm_units"]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING
    assert (
        OrderEvent.objects.filter(order=order).order_by("id").values_list("note", flat=True)[2]
        == f"Unmatched product {exception.gtin} ignored: every unit declined."
    )


def test_declining_the_unmatched_line_and_confirming_the_rest_at_once(
    synced, catalogue_store, broker
):
    order = synced["S-3"]

    tasks = services.decide_units(order, {"U-6": False, "U-7": True})

    assert sorted(t.kind for t in tasks) == ["confirm_units", "decline_units"]
    assert OrderException.objects.get(order=order).status == OrderException.Status.IGNORED
    assert dict(InventoryUnit.objects.filter(order=order).values_list("external_id", "state")) == {
        "U-6": "confirmed_unavailable",
        "U-7": "confirmed_available",
    }


def test_an_unmatched_line_with_a_unit_left_still_blocks_confirmation(
    synced, catalogue_store, broker
):
    order = synced["S-3"]
    before = list(InventoryUnit.objects.filter(order=order).values_list("external_id", "state"))

    with pytest.raises(services.OpenExceptions):
        services.decide_units(order, {"U-7": True})

    assert OrderException.objects.get(order=order).status == OrderException.Status.OPEN
    assert (
        list(InventoryUnit.objects.filter(order=order).values_list("external_id", "state"))
        == before
    )
    assert not FulfilmentTask.objects.exists()


def test_new_tracking_on_a_shipped_order_relabels_the_local_parcel_then_is_sent(
    synced, letzshop, catalogue_store, broker, worker, django_capture_on_commit_callbacks
):
    order = synced["S-2"]
    with django_capture_on_commit_callbacks(execute=True):
        services.decide_units(order, {"U-4": True, "U-5": False})
        services.set_tracking(order, code="LU1", provider="post_lu")
    worker()
    movements = StockMovement.objects.count()
    emails = OutboundEmail.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        task = services.set_tracking(order, code="DHL2", provider="dhl")

    shipment = Shipment.objects.get(order=order)
    assert (shipment.carrier, shipment.tracking_number) == ("dhl", "DHL2")
    assert shipment.lines.get().quantity == 1
    assert task.payload == {"shipment_id": "S-2", "code": "DHL2", "provider": "dhl"}
    assert worker() == ["succeeded"]
    assert letzshop.shipment("S-2")["tracking"] == {"code": "DHL2", "provider": "dhl"}
    assert OrderEvent.objects.filter(order=order).order_by("id").last().note == (
        "Tracking changed to dhl DHL2"
    )
    assert Order.objects.get(pk=order.pk).status == Order.Status.SHIPPED
    assert StockMovement.objects.count() == movements
    # The shopper is told the new tracking: one more shipment email, with it.
    assert OutboundEmail.objects.count() == emails + 1
    email = OutboundEmail.objects.order_by("id").last()
    assert (email.template_code, email.to) == ("order_shipped", order.email)
    assert (email.context["tracking_number"], email.context["carrier"]) == ("DHL2", "DHL")

    # Back to the first code, then the same code with another carrier: told each time.
    for code, provider, carrier in [("LU1", "post_lu", "POST Luxembourg"), ("LU1", "dpd", "DPD")]:
        with django_capture_on_commit_callbacks(execute=True):
            services.set_tracking(order, code=code, provider=provider)
        email = OutboundEmail.objects.order_by("id").last()
        assert (email.context["tracking_number"], email.context["carrier"]) == (code, carrier)
    assert OutboundEmail.objects.count() == emails + 3
