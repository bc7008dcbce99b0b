"""Tiers, the limit that applies to a store, the monthly order count and the breach."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from billing import selectors, services
from billing.models import OrderLimitBreach, Subscription, Tier
from notifications.models import OutboundEmail
from tests.billing.factories import pin_billing_clock


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _december_2026(monkeypatch):
    """The orders of these tests are placed in December 2026: the current month."""
    pin_billing_clock(monkeypatch, _utc(2026, 12, 3, 12, 0))


def test_the_three_seeded_tiers_have_their_prices_and_limits(tiers):
    assert [
        (
            t.code,
            t.monthly_price,
            t.annual_price,
            t.max_orders_per_month,
            t.max_products,
            t.max_team_members,
        )
        for t in Tier.objects.order_by("monthly_price")
    ] == [
        ("starter", Decimal("29.00"), Decimal("290.00"), 100, 500, 2),
        ("business", Decimal("79.00"), Decimal("790.00"), 1000, 10000, 10),
        ("enterprise", Decimal("199.00"), Decimal("1990.00"), None, None, None),
    ]


def test_a_negative_price_is_refused_by_the_database(tiers):
    with pytest.raises(IntegrityError, match="tier_monthly_price_non_negative"):
        Tier.objects.filter(code="starter").update(monthly_price=Decimal("-1.00"))


def test_the_limit_is_the_subscription_tier_and_the_starter_tier_without_one(
    tiers, subscribe, make_store
):
    unsubscribed = make_store()
    trialing = make_store()
    subscribe(trialing, "business", Subscription.Status.TRIALING)
    past_due = make_store()
    subscribe(past_due, "business", Subscription.Status.PAST_DUE)
    cancelled = make_store()
    subscribe(cancelled, "enterprise", Subscription.Status.CANCELLED)
    unlimited = make_store()
    subscribe(unlimited, "enterprise")

    assert [
        selectors.monthly_order_limit(s)
        for s in (unsubscribed, trialing, past_due, cancelled, unlimited)
    ] == [100, 1000, 1000, 100, None]


def test_without_a_default_tier_a_store_without_subscription_is_unlimited(tiers, make_store):
    Tier.objects.filter(code=selectors.DEFAULT_TIER_CODE).delete()

    assert selectors.monthly_order_limit(make_store()) is None


def test_the_month_is_the_luxembourg_calendar_month(store, other_store, place_order):
    place_order(store, _utc(2026, 11, 30, 22, 59))  # 23:59 on 30 November in Luxembourg
    place_order(store, _utc(2026, 11, 30, 23, 0))  # 00:00 on 1 December
    place_order(store, _utc(2026, 12, 31, 22, 59))  # 23:59 on 31 December
    place_order(store, _utc(2026, 12, 31, 23, 0))  # 00:00 on 1 January
    place_order(other_store, _utc(2026, 12, 15, 12, 0))

    december = _utc(2026, 12, 15, 12, 0)
    assert selectors.orders_this_month(store, december) == 2
    assert selectors.orders_this_month(store, _utc(2026, 11, 15)) == 1
    assert selectors.orders_this_month(store, _utc(2027, 1, 15)) == 1
    assert selectors.month_start(_utc(2026, 11, 30, 23, 0)) == date(2026, 12, 1)


def test_the_monthly_count_is_one_query_over_the_luxembourg_month(
    store, other_store, place_order, django_assert_num_queries
):
    # 23:30 UTC on 30 November is already 1 December in Luxembourg; 23:30 UTC on
    # 31 December is already January.
    for moment in [
        _utc(2026, 11, 30, 22, 59),
        _utc(2026, 11, 30, 23, 30),
        _utc(2026, 12, 15, 12, 0),
        _utc(2026, 12, 31, 22, 59),
        _utc(2026, 12, 31, 23, 30),
    ]:
        place_order(store, moment)
    place_order(other_store, _utc(2026, 12, 15, 12, 0))
    start, end = selectors.month_bounds(_utc(2026, 12, 2, 9, 0))

    with django_assert_num_queries(1):
        count = selectors.orders_this_month(store, _utc(2026, 12, 2, 9, 0))

    assert count == 3
    assert (start.isoformat(), end.isoformat()) == (
        "2026-12-01T00:00:00+01:00",
        "2027-01-01T00:00:00+01:00",
    )


def test_an_order_within_the_limit_is_not_flagged(
    tiers, subscribe, limited_tier, store, place_order
):
    subscribe(store, limited_tier(2))
    place_order(store, _utc(2026, 12, 1, 9, 0))
    order = place_order(store, _utc(2026, 12, 2, 9, 0))

    assert services.flag_order_over_limit(order) is None
    assert OrderLimitBreach.objects.count() == 0


def test_flagging_twice_writes_nothing_new(
    tiers, subscribe, limited_tier, store, owner, place_order
):
    subscribe(store, limited_tier(1))
    place_order(store, _utc(2026, 12, 1, 9, 0))
    order = place_order(store, _utc(2026, 12, 2, 9, 0))

    first = services.flag_order_over_limit(order)
    second = services.flag_order_over_limit(order)

    assert first is not None and second == first
    assert (first.period, first.limit, first.order_count, first.notified) == (
        date(2026, 12, 1),
        1,
        2,
        True,
    )
    assert OrderLimitBreach.objects.count() == 1
    email = OutboundEmail.objects.get(template_code="order_limit_exceeded")
    assert email.to == "owner@example.lu"  # no store address: its owners


def test_a_store_nobody_can_be_told_about_gets_an_unnotified_breach(
    tiers, subscribe, limited_tier, store, place_order
):
    subscribe(store, limited_tier(1))
    place_order(store, _utc(2026, 12, 1, 9, 0))

    breach = services.flag_order_over_limit(place_order(store, _utc(2026, 12, 2, 9, 0)))

    assert breach.notified is False
    assert OutboundEmail.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_orders_created_at_once_at_the_limit_give_exactly_one_breach(
    tiers, subscribe, limited_tier, store, place_order
):
    """Both transactions insert their order before either counts; without the lock each
    would see only its own order and both would pass."""
    store.email = "orders@lux-shop.lu"
    store.save(update_fields=["email"])
    subscribe(store, limited_tier(2))
    place_order(store, _utc(2026, 12, 1, 9, 0))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run(hour):
        try:
            with transaction.atomic():
                order = place_order(store, _utc(2026, 12, 2, hour, 0))
                barrier.wait(timeout=10)
                results.append(services.flag_order_over_limit(order))
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(hour,)) for hour in (10, 11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(r is None for r in results) == [False, True]
    breach = OrderLimitBreach.objects.get()
    assert (breach.order_count, breach.limit, breach.notified) == (3, 2, True)
    assert OutboundEmail.objects.filter(template_code="order_limit_exceeded").count() == 1


def test_an_order_of_a_past_month_over_its_limit_is_never_flagged(
    tiers, subscribe, limited_tier, store, owner, place_order
):
    subscribe(store, limited_tier(1))
    place_order(store, _utc(2026, 11, 10, 9, 0))
    order = place_order(store, _utc(2026, 11, 11, 9, 0))

    assert services.flag_order_over_limit(order) is None
    assert OrderLimitBreach.objects.count() == 0
    assert OutboundEmail.objects.count() == 0


def test_the_current_month_is_the_luxembourg_one(
    tiers, subscribe, limited_tier, store, owner, place_order, monkeypatch
):
    """At 00:30 on 1 December in Luxembourg (23:30 UTC on 30 November) an order placed
    five minutes before is December's, so it is checked."""
    pin_billing_clock(monkeypatch, _utc(2026, 11, 30, 23, 30))
    subscribe(store, limited_tier(1))
    place_order(store, _utc(2026, 11, 30, 23, 10))
    order = place_order(store, _utc(2026, 11, 30, 23, 25))

    breach = services.flag_order_over_limit(order)

    assert (breach.period, breach.order_count) == (date(2026, 12, 1), 2)
