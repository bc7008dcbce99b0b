"""Shipments per second of a Letzshop historical import, and the time of a re-sync.

Starts the Letzshop development server in this process (over HTTP on 127.0.0.1, exactly
as the client talks to Letzshop), puts N generated shipments in it (default 5,000, cloned
from the three fixture shipments: 7 units, one unknown GTIN per three), creates a bench
store with the fixture's catalogue, runs the historical import (confirmed then
unconfirmed, page by page, the real service), then syncs again when nothing changed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wz_letzshop python bench/letzshop_sync.py
    python bench/letzshop_sync.py --shipments 5000 --page-size 50 --keep

The bench store and its orders are deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import logging
import time
from decimal import Decimal  # noqa: E402

import _django  # noqa: E402, F401 - sets up Django
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from imports.letzshop import services  # noqa: E402
from imports.letzshop.models import HistoricalImport, OrderException, SyncLog  # noqa: E402
from letzshop_dev import DEFAULT_API_KEY, serve  # noqa: E402
from letzshop_dev.server import generate_shipments  # noqa: E402
from marketplace.models import (  # noqa: E402
    Order,
    OrderEvent,
    OrderNumberSequence,
    Stock,
    StockMovement,
    Store,
)
from marketplace.services import upsert_product  # noqa: E402


def make_store() -> Store:
    suffix = f"{int(time.time()) % 100000:05d}"
    store = Store.objects.create(
        code=f"bench-letzshop-{suffix}", name="Bench Letzshop", order_prefix=f"B{suffix}"
    )
    for sku, gtin, price in (
        ("MUG-RED", "5400000000010", "12.50"),
        ("TEA-GREEN", "5400000000027", "7.90"),
        ("BOOK-FOLIO-1", "9782070360024", "24.00"),
    ):
        upsert_product(
            store,
            sku,
            translations={"en": {"title": sku, "description": ""}},
            on_hand=1_000_000,
            price=Decimal(price),
            gtin=gtin,
        )
    return store


def cleanup(store: Store) -> None:
    orders = Order.objects.filter(store=store)
    StockMovement.objects.filter(product__store=store).delete()
    OrderEvent.objects.filter(order__in=orders).delete()
    OrderException.objects.filter(order__in=orders).delete()
    orders.delete()
    OrderNumberSequence.objects.filter(store=store).delete()
    Stock.objects.filter(product__store=store).delete()
    store.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    call_command("migrate", verbosity=0)
    settings.LETZSHOP_PAGE_SIZE = args.page_size

    server = serve("127.0.0.1", 0).start_in_thread()
    server.state.add_shipments(generate_shipments(args.shipments))
    store = make_store()
    account = services.connect_account(
        store, api_key=DEFAULT_API_KEY, vendor_id="VEN-1", endpoint=server.url
    )
    try:
        historical = HistoricalImport.objects.create(account=account)
        started = time.perf_counter()
        historical = services.run_historical_import(historical.pk)
        elapsed = time.perf_counter() - started
        assert historical.status == "succeeded", historical.error
        orders = Order.objects.filter(store=store).count()
        assert orders == args.shipments, orders
        print(
            f"historical import: {args.shipments} shipments "
            f"({args.shipments * 7 // 3} units approx., {historical.pages_done} pages of "
            f"{args.page_size}) in {elapsed:.1f} s = {args.shipments / elapsed:.0f} shipments/s"
        )
        print(
            f"  orders {orders}, exceptions {OrderException.objects.filter(order__store=store).count()}, "
            f"reserve movements {StockMovement.objects.filter(product__store=store, kind='reserve').count()}, "
            f"calls logged {SyncLog.objects.filter(account=account).count()}"
        )

        movements = StockMovement.objects.filter(product__store=store).count()
        started = time.perf_counter()
        result = services.sync_account(account, states=("confirmed", "unconfirmed"))
        elapsed = time.perf_counter() - started
        assert result.created == 0 and result.seen == args.shipments, result
        assert StockMovement.objects.filter(product__store=store).count() == movements
        print(
            f"no-change re-sync: {result.seen} shipments read, 0 created, in {elapsed:.2f} s "
            f"({result.seen / elapsed:.0f} shipments/s)"
        )
    finally:
        server.stop()
        if not args.keep:
            cleanup(store)


if __name__ == "__main__":
    main()
