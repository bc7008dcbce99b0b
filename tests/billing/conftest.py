"""Fixtures of the billing tests: the seeded tiers, subscriptions, orders at given times."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest

from billing.models import Subscription, Tier
from marketplace.models import Order
from tests.billing.factories import make_tier, seed_tiers

_numbers = itertools.count(1)


@pytest.fixture
def tiers(db) -> dict[str, Tier]:
    return seed_tiers()


@pytest.fixture
def subscribe(tiers):
    def subscribe(store, tier: str | Tier, status=Subscription.Status.ACTIVE) -> Subscription:
        tier = tier if isinstance(tier, Tier) else tiers[tier]
        return Subscription.objects.create(store=store, tier=tier, status=status)

    return subscribe


@pytest.fixture
def limited_tier(db):
    return make_tier


@pytest.fixture
def place_order(db):
    """A web order of `store` placed at `placed_at` (an aware datetime)."""

    def place(store, placed_at: datetime) -> Order:
        order = Order.objects.create(
            store=store,
            number=f"{store.order_prefix}-T-{next(_numbers):06d}",
            email="anna@example.lu",
            total=Decimal("10.00"),
            subtotal=Decimal("10.00"),
        )
        Order.objects.filter(pk=order.pk).update(placed_at=placed_at)
        order.placed_at = placed_at
        return order

    return place
