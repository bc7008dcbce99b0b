"""Celery tasks of the Letzshop app. Thin: ids in, one service call."""

from __future__ import annotations

import logging

from celery import shared_task

from imports.letzshop import services
from imports.letzshop.models import LetzshopAccount

logger = logging.getLogger(__name__)


@shared_task(name="imports.letzshop.tasks.sync_due_accounts", ignore_result=True)
def sync_due_accounts() -> list[int]:
    """Every minute (beat): queue a sync for each account whose interval has elapsed."""
    return services.sync_due_accounts()


@shared_task(name="imports.letzshop.tasks.sync_account", ignore_result=True, acks_late=True)
def sync_account_task(account_id: int) -> dict:
    """Sync one account's unconfirmed shipments. Errors are recorded on the account."""
    account = LetzshopAccount.objects.select_related("store").get(pk=account_id)
    result = services.sync_account(account)
    return {"seen": result.seen, "created": result.created, "skipped": result.skipped}


@shared_task(name="imports.letzshop.tasks.run_historical_import", ignore_result=True)
def run_historical_import(historical_import_id: int) -> str:
    return services.run_historical_import(historical_import_id).status


@shared_task(name="imports.letzshop.tasks.run_fulfilment_task", ignore_result=True, acks_late=True)
def run_fulfilment_task(task_id: int) -> str:
    """Send one FulfilmentTask; on a transient error schedule the next attempt (a lost
    retry message is harmless: the sweep hands the task out again)."""
    outcome = services.execute_fulfilment_task(task_id)
    if outcome.retry_in is not None:
        try:
            services.dispatch_fulfilment_task(task_id, countdown=outcome.retry_in)
        except Exception:
            logger.exception("letzshop task #%s: could not schedule the retry", task_id)
    return outcome.status


@shared_task(name="imports.letzshop.tasks.retry_due_fulfilment_tasks", ignore_result=True)
def retry_due_fulfilment_tasks() -> int:
    """Every minute (beat): re-send due and stuck fulfilment tasks."""
    return len(services.requeue_due_fulfilment_tasks())
