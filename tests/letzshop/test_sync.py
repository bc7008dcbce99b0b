"""Order sync from the development server over HTTP."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from imports.letzshop import selectors, services
from imports.letzshop.models import InventoryUnit, LetzshopAccount, OrderException, SyncLog
from marketplace.models import Order, Product, Stock, StockMovement


def _orders(store):
    return {o.external_id: o for o in Order.objects.filter(store=store).prefetch_related("lines")}


def test_sync_imports_three_shipments_with_quantities_and_totals(account, catalogue_store):
    result = services.sync_account(account)

    assert (result.seen, result.created, result.error) == (3, 3, "")
    orders = _orders(catalogue_store)
    assert sorted(orders) == ["S-1", "S-2", "S-3"]
    s1, s2, s3 = orders["S-1"], orders["S-2"], orders["S-3"]
    assert [
        (line.sku, line.quantity, line.unit_price, line.line_total) for line in s1.lines.all()
    ] == [
        ("MUG-RED", 2, Decimal("25.00") / 2, Decimal("25.00")),
        ("TEA-GREEN", 1, Decimal("7.90"), Decimal("7.90")),
    ]
    assert s1.lines.all()[0].external_unit_ids == ["U-1", "U-2"]
    assert (s1.subtotal, s1.total, s1.shipping_total) == (
        Decimal("32.90"),
        Decimal("32.90"),
        Decimal("0.00"),
    )
    assert (s2.subtotal, s2.total) == (Decimal("48.00"), Decimal("48.00"))
    assert s2.lines.get().quantity == 2 and s2.lines.get().sku == "BOOK-FOLIO-1"
    assert s2.lines.get().vat_amount == Decimal("1.40")  # 3 % contained in 48.00
    assert (s3.subtotal, s3.total) == (Decimal("101.50"), Decimal("101.50"))
    assert s1.channel == Order.Channel.LETZSHOP and s1.external_number == "H100001"
    assert s1.number.startswith("KH-") and len({o.number for o in orders.values()}) == 3
    assert (s1.locale, s2.locale, s3.locale) == ("fr", "de", "en")
    assert s1.lines.all()[0].title == "Tasse rouge"
    assert s2.shipping_address["company"] == "Example SARL"
    assert s3.shipping_address["country"] == "DE" and s3.vat_regime == Order.VatRegime.OSS
    assert s1.customer.email == "shopper.one@example.com"
    assert s1.placed_at.isoformat() == "2026-11-30T21:45:00+00:00"
    assert InventoryUnit.objects.filter(order__store=catalogue_store).count() == 7
    mug = Stock.objects.get(product__sku="MUG-RED", product__store=catalogue_store)
    assert (mug.on_hand, mug.reserved) == (10, 3)
    account.refresh_from_db()
    assert account.status == LetzshopAccount.Status.OK and account.last_synced_at is not None
    assert SyncLog.objects.filter(account=account, operation="shipments", outcome="ok").count() == 1


def test_second_sync_creates_no_order_and_moves_no_stock(account, catalogue_store):
    services.sync_account(account)
    movements = StockMovement.objects.count()

    result = services.sync_account(account)

    assert (result.seen, result.created) == (3, 0)
    assert Order.objects.filter(store=catalogue_store).count() == 3
    assert StockMovement.objects.count() == movements


@pytest.mark.django_db(transaction=True)
def test_two_syncs_started_at_once_give_three_orders(account, catalogue_store):
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(services.sync_account(LetzshopAccount.objects.get(pk=account.pk)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Order.objects.filter(store=catalogue_store).count() == 3
    assert sum(r.created for r in results) == 3
    assert StockMovement.objects.filter(kind="reserve").count() == 4  # mug x2, tea, book, mug


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_without_the_lock_still_give_one_order_per_shipment(
    account, catalogue_store, letzshop
):
    nodes = (
        services.client_for(account)
        .shipments_page(state="unconfirmed", vendor_id="VEN-1", first=10, after=None)
        .nodes
    )
    barrier = threading.Barrier(3)
    created = []

    def run():
        try:
            barrier.wait()
            created.extend(services.import_shipments(catalogue_store, nodes).created)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(created) == 3
    assert Order.objects.filter(store=catalogue_store).count() == 3
    assert StockMovement.objects.filter(kind="reserve").count() == 4


def test_page_failing_once_is_retried_and_sync_completes(
    account, catalogue_store, letzshop, settings
):
    settings.LETZSHOP_PAGE_SIZE = 2
    letzshop.fail_next(1, status=500)

    result = services.sync_account(account)

    assert (result.error, result.seen, result.created, result.pages) == ("", 3, 3, 2)
    assert Order.objects.filter(store=catalogue_store).count() == 3
    logs = SyncLog.objects.filter(account=account, operation="shipments").order_by("id")
    assert [(log.outcome, log.http_status) for log in logs] == [
        ("error", 500),
        ("ok", 200),
        ("ok", 200),
    ]
    assert all(log.duration_ms >= 0 and log.request_summary for log in logs)


def test_page_failing_on_every_attempt_stops_the_sync_with_an_error(account, letzshop):
    letzshop.fail_next(3, status=503)

    result = services.sync_account(account)

    account.refresh_from_db()
    assert "HTTP 503" in result.error
    assert (account.status, account.last_synced_at) == (LetzshopAccount.Status.ERROR, None)
    assert Order.objects.count() == 0


def test_unknown_gtin_gives_an_exception_and_the_order_is_imported(account, catalogue_store):
    services.sync_account(account)

    exception = OrderException.objects.get()
    assert (exception.gtin, exception.sku, exception.title, exception.status) == (
        "5400000000997",
        "LAMP-01",
        "Desk lamp",
        OrderException.Status.OPEN,
    )
    assert exception.order.external_id == "S-3"
    assert exception.order_line.product is None and exception.order_line.quantity == 1


def test_a_gtin_shared_by_two_products_matches_the_one_with_the_units_sku(
    account, catalogue_store, make_product
):
    Product.objects.filter(store=catalogue_store, sku="MUG-RED").delete()
    make_product(catalogue_store, "MUG-OLD", title="Old mug", price="12.50", gtin="5400000000010")
    make_product(catalogue_store, "MUG-RED", title="Red mug", price="12.50", gtin="5400000000010")

    services.sync_account(account)

    line = Order.objects.get(store=catalogue_store, external_id="S-1").lines.get(sku="MUG-RED")
    assert line.product.sku == "MUG-RED"
    assert Stock.objects.get(product=line.product).reserved == 3  # S-1 and S-2 mugs
    assert Stock.objects.get(product__sku="MUG-OLD").reserved == 0


def test_wrong_api_key_is_recorded_on_the_account(account):
    services.set_api_key(account, "not-the-key")

    result = services.sync_account(account)

    account.refresh_from_db()
    assert "401" in result.error
    assert account.status == LetzshopAccount.Status.AUTH_FAILED
    assert "refused the API key" in account.last_error
    assert Order.objects.count() == 0
    log = SyncLog.objects.get(account=account)
    assert (log.outcome, log.http_status) == ("error", 401)


def test_test_connection_records_vendors_and_errors(account):
    assert [v["id"] for v in services.test_connection(account)] == ["VEN-1"]
    account.refresh_from_db()
    assert account.status == LetzshopAccount.Status.OK

    services.set_api_key(account, "wrong")
    with pytest.raises(services.LetzshopError):
        services.test_connection(account)
    account.refresh_from_db()
    assert account.status == LetzshopAccount.Status.AUTH_FAILED


def test_historical_import_reads_confirmed_then_unconfirmed_pages(
    account, catalogue_store, letzshop, settings
):
    settings.LETZSHOP_PAGE_SIZE = 2
    historical = services.start_historical_import(account)

    historical = services.run_historical_import(historical.pk)

    assert historical.status == "succeeded"
    assert (
        historical.shipments_total,
        historical.shipments_seen,
        historical.shipments_created,
    ) == (3, 3, 3)
    assert historical.pages_done == 3  # confirmed: one empty page; unconfirmed: two pages
    assert historical.percent == 100


@pytest.mark.parametrize(
    ("seconds_ago", "due"), [(None, True), (30, False), (59.5, True), (47, True), (44, False)]
)
def test_an_account_synced_every_minute_is_due_at_every_beat_tick(account, seconds_ago, due):
    # Beat ticks each minute; the last attempt was stamped a moment after the previous tick.
    now = timezone.now()
    account.auto_sync, account.interval_minutes = True, 1
    account.last_attempt_at = None if seconds_ago is None else now - timedelta(seconds=seconds_ago)
    account.save()

    assert (account in selectors.due_accounts(now)) is due
