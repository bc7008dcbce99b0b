"""Billing writes: tier limits applied where orders are created.

Order limit
-----------
An order beyond the store's monthly order limit is never refused (at Letzshop the
shopper has already paid); it is flagged with an OrderLimitBreach and, for the first
breach of the store in a month, the store is told by email. Months are calendar months
in Luxembourg time, counted on the orders' `placed_at` (see `billing.selectors`). Only
orders placed in the current month are checked: an order of a past month (a historical
import) is never flagged, as its month is over and nobody can act on it any more.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from billing import selectors
from billing.models import OrderLimitBreach
from marketplace.models import Order
from notifications.services import UnknownEmailTemplate, queue_order_limit_exceeded_email

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock(namespace, store id): serialises the order-limit check per store.
ORDER_LIMIT_LOCK_NAMESPACE = 0x424C  # "BL"


def _lock_store_order_count(store_id: int) -> None:
    """Hold, until the current transaction ends, the store's order-count lock.

    Why a lock: under READ COMMITTED two transactions that each insert an order and then
    count cannot see each other's uncommitted row, so both could count `limit` and both
    pass, one order too many. With the lock the second waits for the first to commit
    and its count (a new snapshot) sees that order. An advisory lock rather than
    `select_for_update` on Subscription because a store without a subscription is
    limited too and has no row to lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [ORDER_LIMIT_LOCK_NAMESPACE, store_id % 2**31],
        )


def flag_order_over_limit(order: Order) -> OrderLimitBreach | None:
    """Flag `order` when it takes its store beyond its tier's monthly order limit.

    Call inside the transaction that created the order, after `placed_at` has its final
    value. Takes the store's order-count lock (held to commit), counts the store's
    orders placed in the order's month (this one included) and, when the count exceeds
    the limit of `selectors.effective_tier`, writes an OrderLimitBreach. For the first
    breach of the store in that month that reaches someone, queues
    `order_limit_exceeded` to the store's recipients (sent after commit) and marks the
    breach `notified`.

    Returns the breach, or None (within the limit, unlimited, or placed before the
    current Luxembourg month: never flagged, nothing written or queued). Never refuses the
    order; an email that cannot be queued (bad address, missing template) is logged and
    leaves `notified` False. Idempotent: an order already flagged returns its breach and
    writes nothing. Orders created without this call (web checkout, for now) are counted
    but never flagged, and do not take the lock.
    """
    with transaction.atomic():
        existing = OrderLimitBreach.objects.filter(order=order).first()
        if existing is not None:
            return existing
        if selectors.month_start(order.placed_at) != selectors.month_start(timezone.now()):
            return None
        store = order.store
        tier = selectors.effective_tier(store)
        limit = tier.max_orders_per_month if tier is not None else None
        if limit is None:
            return None
        _lock_store_order_count(store.pk)
        count = selectors.orders_this_month(store, order.placed_at)
        if count <= limit:
            return None
        period = selectors.month_start(order.placed_at)
        notified = False
        already_told = OrderLimitBreach.objects.filter(
            store=store, period=period, notified=True
        ).exists()
        if not already_told:
            notified = _notify_store(order, tier, limit, count, period)
        return OrderLimitBreach.objects.create(
            store=store,
            order=order,
            period=period,
            limit=limit,
            order_count=count,
            notified=notified,
        )


def _notify_store(order: Order, tier, limit: int, count: int, period) -> bool:
    larger = [
        {
            "name": t.name,
            "max_orders_per_month": t.max_orders_per_month,
            "monthly_price": t.monthly_price,
        }
        for t in selectors.larger_tiers(tier)
    ]
    try:
        with transaction.atomic():
            emails = queue_order_limit_exceeded_email(
                order.store,
                order,
                limit,
                count,
                period=period,
                plan_name=tier.name,
                larger_plans=larger,
            )
    except (ValidationError, UnknownEmailTemplate):
        logger.exception("order %s: the order-limit email could not be queued", order.pk)
        return False
    return bool(emails)
