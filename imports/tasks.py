"""Imports tasks (routed to the `imports` queue). Thin: ids in, one service call."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from imports import images
from imports.models import ImportJob
from imports.services import ImportBusy, fail_queued_job, run_import_job


@shared_task(bind=True, acks_late=True, max_retries=120)
def run_import(self, job_id: int) -> str:
    """Run ImportJob `job_id` (`imports.services.run_import_job`). While another import
    of the same store holds its lock, retry after WIZAMART_IMPORT_RETRY_SECONDS; after
    max_retries the job is marked failed with the reason, never left queued. A
    worker killed mid-job leaves the message unacknowledged: it is delivered again and
    the job re-run, which ends correct."""
    try:
        job = run_import_job(job_id)
    except ImportBusy as exc:
        if self.request.retries >= self.max_retries:
            waited = self.max_retries * settings.WIZAMART_IMPORT_RETRY_SECONDS // 60
            fail_queued_job(job_id, f"{exc} Gave up waiting after {waited} minutes: run it again.")
            return ImportJob.Status.FAILED
        raise self.retry(exc=exc, countdown=settings.WIZAMART_IMPORT_RETRY_SECONDS) from exc
    return job.status


# Not acks_late: a long run must not be delivered again to a second worker when it
# outlasts the broker's visibility timeout. A run lost with its worker is redone by the
# next import, and every run skips what is already copied.
@shared_task(acks_late=False)
def copy_product_images(store_id: int) -> str:
    """Copy the product images of store `store_id` to storage
    (`imports.images.copy_product_images`). A failed image is counted and logged, not
    retried here: the next run tries it again."""
    return images.copy_product_images(store_id).summary
