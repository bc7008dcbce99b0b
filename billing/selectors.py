"""Billing reads: which tier's limits apply to a store, and how many orders it took.

Months are calendar months in Luxembourg time: an order placed at 00:30 on 1 December
in Luxembourg (23:30 UTC on 30 November) counts for December.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from billing.models import Subscription, Tier
from marketplace.models import Order, Store

BILLING_TIME_ZONE = ZoneInfo("Europe/Luxembourg")

# A store without a subscription, or whose subscription was cancelled, is held to the
# entry tier's limits: using Wizamart without paying never buys more than the cheapest
# plan. Trialing and past-due subscriptions keep their tier's limits.
DEFAULT_TIER_CODE = "starter"


def month_start(moment: datetime) -> date:
    """The first day of `moment`'s month in Luxembourg time (a breach's `period`)."""
    return moment.astimezone(BILLING_TIME_ZONE).date().replace(day=1)


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """[start, end) of `moment`'s calendar month in Luxembourg time, as aware datetimes."""
    first = month_start(moment)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (
        datetime(first.year, first.month, 1, tzinfo=BILLING_TIME_ZONE),
        datetime(following.year, following.month, 1, tzinfo=BILLING_TIME_ZONE),
    )


def effective_tier(store: Store) -> Tier | None:
    """The tier whose limits apply to `store`: its subscription's tier, or the default
    tier (DEFAULT_TIER_CODE) without a subscription or when it is cancelled. None when
    that default tier does not exist (nothing to hold the store to). One query."""
    subscription = (
        Subscription.objects.filter(store=store)
        .exclude(status=Subscription.Status.CANCELLED)
        .select_related("tier")
        .first()
    )
    if subscription is not None:
        return subscription.tier
    return Tier.objects.filter(code=DEFAULT_TIER_CODE).first()


def monthly_order_limit(store: Store) -> int | None:
    """The store's orders-per-month limit; None means unlimited. See `effective_tier`."""
    tier = effective_tier(store)
    return tier.max_orders_per_month if tier is not None else None


def orders_this_month(store: Store, moment: datetime) -> int:
    """How many orders of `store`, any channel and status, were placed in `moment`'s
    calendar month (Luxembourg time). A range on (store, placed_at): the
    order_store_placed_at index answers it."""
    start, end = month_bounds(moment)
    return Order.objects.filter(store=store, placed_at__gte=start, placed_at__lt=end).count()


def larger_tiers(tier: Tier | None) -> list[Tier]:
    """Active tiers with a higher order limit than `tier` (or none), cheapest first."""
    if tier is None or tier.max_orders_per_month is None:
        return []
    tiers = Tier.objects.filter(is_active=True).exclude(pk=tier.pk)
    return [
        t
        for t in tiers.order_by("monthly_price", "code")
        if t.max_orders_per_month is None or t.max_orders_per_month > tier.max_orders_per_month
    ]
