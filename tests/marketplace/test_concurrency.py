"""Real threads against PostgreSQL: the last units, order numbers, the expiry sweep,
team invitations."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from marketplace.models import Invitation, Membership, Order, OrderEvent, Stock, StockMovement
from marketplace.services import (
    NotEnoughStock,
    accept_invitation,
    add_to_cart,
    expire_unpaid_orders,
    invite_team_member,
    open_cart,
    place_orders,
)
from notifications.models import OutboundEmail

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = {"first_name": "Anna", "last_name": "Muller", "city": "Luxembourg", "country": "LU"}
YEAR = timezone.localdate().year


@pytest.fixture(autouse=True)
def broker(monkeypatch):
    from notifications import tasks

    monkeypatch.setattr(tasks.send_email, "apply_async", lambda *a, **kw: None)


def run_together(target, arguments) -> list:
    """Run target(argument) in one thread per argument, all released at once by a
    barrier; each thread closes its connection. Returns what each returned or raised."""
    barrier = threading.Barrier(len(arguments))
    results: list = [None] * len(arguments)

    def work(index, argument):
        try:
            barrier.wait()
            results[index] = target(argument)
        except Exception as exc:  # noqa: BLE001 - the test asserts on what was raised
            results[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(index, argument))
        for index, argument in enumerate(arguments)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def checkout(cart):
    done = place_orders(
        cart,
        email="anna@example.lu",
        shipping_address=ADDRESS,
        billing_address=ADDRESS,
        locale="en",
    )
    return done.orders.get().number


def carts_for(product, count, quantity):
    carts = []
    for _ in range(count):
        cart = open_cart()
        add_to_cart(cart, product, quantity)
        carts.append(cart)
    return carts


def test_forty_shoppers_for_the_last_ten_units_exactly_ten_win(store, make_product):
    product = make_product(store, "LAST10", title="Last ten", on_hand=10)
    carts = carts_for(product, 40, 1)

    results = run_together(checkout, carts)

    numbers = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, NotEnoughStock)]
    assert len(numbers) == 10
    assert len(refused) == 30
    assert all("not enough stock" in str(exc).lower() for exc in refused)
    assert sorted(numbers) == [f"LUX-{YEAR}-{n:06d}" for n in range(1, 11)]
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 10, 0)
    assert StockMovement.objects.filter(kind="reserve").count() == 10
    assert Order.objects.count() == 10


def test_two_carts_of_two_for_three_units_only_one_wins(store, make_product):
    product = make_product(store, "THREE", title="Three left", on_hand=3)
    carts = carts_for(product, 2, 2)

    results = run_together(checkout, carts)

    assert Counter(type(r).__name__ for r in results) == {"str": 1, "NotEnoughStock": 1}
    refusal = next(r for r in results if isinstance(r, NotEnoughStock))
    assert str(refusal) == "Not enough stock for Three left: 1 available, 2 requested."
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved) == (3, 2)


def test_twenty_concurrent_checkouts_get_twenty_distinct_numbers(store, make_product):
    products = [make_product(store, f"P{n}", on_hand=5) for n in range(20)]
    carts = [carts_for(product, 1, 1)[0] for product in products]

    results = run_together(checkout, carts)

    assert set(results) == {f"LUX-{YEAR}-{n:06d}" for n in range(1, 21)}


def test_two_expiry_sweeps_at_once_cancel_each_order_once(store, make_product):
    product = make_product(store, "OLD", on_hand=10)
    for cart in carts_for(product, 6, 1):
        checkout(cart)
    Order.objects.update(
        placed_at=timezone.now() - timedelta(hours=settings.WIZAMART_UNPAID_ORDER_TTL_HOURS + 1)
    )

    results = run_together(lambda _: expire_unpaid_orders(), [1, 2])

    assert sum(results) == 6
    assert OrderEvent.objects.filter(to_status="cancelled").count() == 6
    assert StockMovement.objects.filter(kind="release").count() == 6
    assert Stock.objects.get(product=product).reserved == 0
    assert expire_unpaid_orders() == 0


def test_two_owners_inviting_the_same_email_at_once_leave_one_pending_invitation(store, owner):
    results = run_together(
        lambda role: invite_team_member(store, "new.person@example.lu", role, invited_by=owner),
        ["staff", "manager"],
    )

    assert all(isinstance(result, Invitation) for result in results), results
    invitation = Invitation.objects.get()
    assert invitation.status == "pending"
    assert invitation.role in ("staff", "manager")
    assert {result.pk for result in results} == {invitation.pk}
    assert OutboundEmail.objects.filter(template_code="team_invitation").count() == 2


def test_a_double_click_on_accept_makes_one_membership(store, owner, shopper):
    invite_team_member(store, "shopper@example.lu", "manager", invited_by=owner)
    url = OutboundEmail.objects.get(template_code="team_invitation").context["accept_url"]
    token = url.rstrip("/").rsplit("/", 1)[1]

    results = run_together(lambda _: accept_invitation(token, shopper), [1, 2, 3, 4])

    assert sorted(results) == [False, False, False, True]
    assert list(Membership.objects.filter(user=shopper).values_list("store", "role")) == [
        (store.pk, "manager")
    ]
