"""Checkouts per second: concurrent `place_orders` on PostgreSQL.

Two scenarios, each N one-unit carts placed by T threads released together:
  hot   every cart buys the same product (every checkout waits for one Stock row lock
        and the store's order number row lock);
  wide  carts spread over 1,000 products of the store (only the order number row
        is shared).
Carts are filled before the clock starts; only `place_orders` is timed. Prints orders
per second and latency percentiles, and checks the stock and order numbers after.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wz_bench python bench/checkout.py
    python bench/checkout.py --orders 400 --threads 8       # embedded database when unset

Runs migrations first; the store it creates (code bench-...) is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from decimal import Decimal

import _django  # noqa: E402, F401 - sets up Django
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from marketplace.models import (  # noqa: E402
    Cart,
    Checkout,
    Customer,
    Order,
    OrderNumberSequence,
    Product,
    Stock,
    Store,
)
from marketplace.services import (  # noqa: E402
    NotEnoughStock,
    add_to_cart,
    open_cart,
    place_orders,
    upsert_product,
)

ADDRESS = {"first_name": "Bench", "last_name": "Shopper", "city": "Luxembourg", "country": "LU"}


def make_store() -> Store:
    suffix = f"{int(time.time() * 1000) % 10**8:08d}"
    return Store.objects.create(
        code=f"bench-{suffix}", name="Bench store", order_prefix=f"B{suffix[-6:]}"
    )


def make_products(store: Store, prefix: str, count: int, on_hand: int) -> list[Product]:
    return [
        upsert_product(
            store,
            f"{prefix}-{n:05d}",
            translations={"en": {"title": f"Bench product {n}"}},
            on_hand=on_hand,
            price=Decimal("12.50"),
        ).product
        for n in range(count)
    ]


def fill_carts(products: list[Product], count: int) -> list[Cart]:
    carts = []
    for n in range(count):
        cart = open_cart()
        add_to_cart(cart, products[n % len(products)], 1)
        carts.append(cart)
    random.shuffle(carts)
    return carts


def run(carts: list[Cart], threads: int) -> tuple[float, list[float], int]:
    """Place every cart with `threads` workers; returns (seconds, latencies, refused)."""
    work = list(carts)
    lock = threading.Lock()
    latencies: list[float] = []
    refused = 0
    barrier = threading.Barrier(threads + 1)

    def worker():
        nonlocal refused
        try:
            barrier.wait()
            while True:
                with lock:
                    if not work:
                        return
                    cart = work.pop()
                started = time.perf_counter()
                try:
                    place_orders(
                        cart,
                        email="bench@bench.invalid",
                        shipping_address=ADDRESS,
                        billing_address=ADDRESS,
                        locale="en",
                    )
                except NotEnoughStock:
                    with lock:
                        refused += 1
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started, latencies, refused


def report(name: str, orders: int, seconds: float, latencies: list[float], refused: int) -> None:
    ms = sorted(latency * 1000 for latency in latencies)
    p95 = ms[int(len(ms) * 0.95) - 1] if ms else 0.0
    print(
        f"{name:<34} {orders - refused:>5} orders in {seconds:6.2f} s = "
        f"{(orders - refused) / seconds:7.1f} orders/s   "
        f"latency p50 {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  max {ms[-1]:6.1f} ms"
        + (f"  ({refused} refused)" if refused else "")
    )


def cleanup(store: Store) -> None:
    checkout_ids = list(
        Order.objects.filter(store=store).values_list("checkout_id", flat=True).distinct()
    )
    Order.objects.filter(store=store).delete()
    Checkout.objects.filter(pk__in=checkout_ids).delete()
    Customer.objects.filter(store=store).delete()
    Cart.objects.filter(items__product__store=store).delete()
    OrderNumberSequence.objects.filter(store=store).delete()
    Product.objects.filter(store=store).delete()
    store.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400, help="orders per scenario")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--products", type=int, default=1000, help="products of the wide run")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    print(
        f"PostgreSQL {connection.cursor().connection.info.server_version}, "
        f"{args.threads} threads, {args.orders} one-unit checkouts per scenario, "
        f"{os.cpu_count()} CPUs"
    )
    store = make_store()
    try:
        hot = make_products(store, "HOT", 1, on_hand=args.orders)[0]
        carts = fill_carts([hot], args.orders)
        seconds, latencies, refused = run(carts, args.threads)
        report("hot: one product", args.orders, seconds, latencies, refused)
        stock = Stock.objects.get(product=hot)
        assert (stock.on_hand, stock.reserved) == (args.orders, args.orders - refused), stock

        wide = make_products(store, "WIDE", args.products, on_hand=10)
        carts = fill_carts(wide, args.orders)
        seconds, latencies, refused = run(carts, args.threads)
        report(f"wide: {args.products:,} products", args.orders, seconds, latencies, refused)

        numbers = list(Order.objects.filter(store=store).values_list("number", flat=True))
        assert len(numbers) == len(set(numbers)) == 2 * args.orders, len(numbers)
        print(f"{len(numbers)} orders, {len(set(numbers))} distinct numbers, stock consistent")
    finally:
        cleanup(store)


if __name__ == "__main__":
    main()
