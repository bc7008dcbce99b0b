"""Celery tasks of the `emails` queue. Thin: ids in, one service call, retries scheduled
from the row's own backoff."""

from __future__ import annotations

import logging

from celery import shared_task

from notifications import services

logger = logging.getLogger(__name__)


@shared_task(
    name="notifications.tasks.send_email",
    ignore_result=True,
    acks_late=True,
    soft_time_limit=120,
    time_limit=180,
)
def send_email(outbound_email_id: int) -> str:
    """Send one outbox row (at most once, see `services.send_outbound_email`); on a
    transient error schedule the next attempt. A lost retry message is harmless: the
    sweep hands the row out again."""
    outcome = services.send_outbound_email(outbound_email_id)
    if outcome.retry_in is not None:
        try:
            services.dispatch_email(outbound_email_id, countdown=outcome.retry_in)
        except Exception:
            logger.exception("outbox #%s: could not schedule the retry", outbound_email_id)
    return outcome.status


@shared_task(name="notifications.tasks.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    """Every minute: re-queue rows no worker took, mark rows stuck in sending uncertain."""
    requeued = services.requeue_stale_emails()
    uncertain = services.mark_stuck_emails_uncertain()
    return {"requeued": len(requeued), "uncertain": uncertain}
