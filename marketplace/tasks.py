"""Marketplace periodic work (scheduled in settings.CELERY_BEAT_SCHEDULE).

Thin: each task calls one idempotent sweep in marketplace.services, safe to overlap.
"""

from __future__ import annotations

from celery import shared_task

from marketplace import services


@shared_task(ignore_result=True)
def expire_unpaid_orders() -> int:
    """Cancel pending web orders left unpaid too long, releasing their stock."""
    return services.expire_unpaid_orders()


@shared_task(ignore_result=True)
def expire_abandoned_carts() -> int:
    """Mark open carts untouched too long as expired."""
    return services.expire_abandoned_carts()
