"""Reused reads of the Letzshop app."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet

from imports.letzshop.models import (
    FulfilmentTask,
    HistoricalImport,
    InventoryUnit,
    LetzshopAccount,
    OrderException,
)
from marketplace.models import Order

# Beat asks every minute, and a sync records its attempt a moment after the tick that
# queued it: an attempt this close to a full interval ago counts as a full interval, so an
# account synced every minute is synced at every tick, not at every other one.
DUE_SLACK = timedelta(seconds=15)


def due_accounts(now: datetime) -> list[LetzshopAccount]:
    """Accounts with auto sync on, an active store, and no attempt within their interval
    (less DUE_SLACK)."""
    accounts = LetzshopAccount.objects.filter(auto_sync=True, store__is_active=True).order_by("pk")
    return [
        account
        for account in accounts
        if account.last_attempt_at is None
        or account.last_attempt_at + timedelta(minutes=account.interval_minutes) - DUE_SLACK <= now
    ]


def order_units(order: Order) -> QuerySet[InventoryUnit]:
    return InventoryUnit.objects.filter(order=order).select_related("order_line__product")


def open_exceptions(order: Order) -> QuerySet[OrderException]:
    return OrderException.objects.filter(order=order, status=OrderException.Status.OPEN)


def order_tasks(order: Order) -> QuerySet[FulfilmentTask]:
    return FulfilmentTask.objects.filter(order=order).order_by("created_at", "id")


def import_progress(historical_import: HistoricalImport) -> dict:
    """The JSON the admin progress bar polls."""
    return {
        "id": historical_import.pk,
        "status": historical_import.status,
        "percent": historical_import.percent,
        "shipments_total": historical_import.shipments_total,
        "shipments_seen": historical_import.shipments_seen,
        "shipments_created": historical_import.shipments_created,
        "pages_done": historical_import.pages_done,
        "error": historical_import.error,
        "finished": historical_import.status
        in (HistoricalImport.Status.SUCCEEDED, HistoricalImport.Status.FAILED),
    }
