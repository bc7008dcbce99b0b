"""Imports: product and stock feed jobs, their rejected lines, and feed export tokens.

Rows are written only through `imports.services`.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from marketplace.models import Language, Store


def private_storage():
    """Uploaded feeds live on the "private" storage (settings.STORAGES): never a public URL."""
    return storages["private"]


class ImportJob(models.Model):
    """One import of a feed file into a store's catalogue, run by a Celery worker.

    Counts describe the latest run: re-running a job resets them. Every data row read
    ends in exactly one of created / updated / unchanged / rejected.
    """

    class Kind(models.TextChoices):
        PRODUCTS = "products", _("Products")  # a full product feed (Letzshop/Google, Shopify)
        STOCK_AND_PRICE = "stock_and_price", _("Stock and price")  # sku + quantity and/or price

    class Source(models.TextChoices):
        UPLOAD = "upload", _("Uploaded file")  # the file was sent with the request
        URL = "url", _("URL")  # the worker downloads source_url into `file`

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")  # waiting for a worker
        RUNNING = "running", _("Running")  # a worker is reading the file (or died doing so)
        SUCCEEDED = "succeeded", _("Succeeded")  # every line imported or unchanged
        PARTIALLY_SUCCEEDED = "partially_succeeded", _("Partially succeeded")  # some lines rejected
        FAILED = "failed", _("Failed")  # the file could not be read, or no line was importable

    FINISHED = (Status.SUCCEEDED, Status.PARTIALLY_SUCCEEDED, Status.FAILED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="import_jobs")
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        blank=True,
        help_text=_("Detected from the file's header when left blank."),
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.UPLOAD)
    source_url = models.URLField(max_length=1000, blank=True)
    file = models.FileField(upload_to="imports/%Y/%m/", blank=True, storage=private_storage)
    original_name = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=16, blank=True)
    encoding = models.CharField(max_length=16, blank=True)
    delimiter = models.CharField(max_length=2, blank=True)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    rows_read = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    error_message = models.TextField(blank=True)
    runs = models.PositiveIntegerField(
        default=0, help_text=_("How many times a worker started it.")
    )
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(source="url") | ~Q(source_url=""), name="import_job_url_has_source_url"
            ),
        ]
        indexes = [models.Index(fields=["store", "status"], name="import_job_store_status")]

    def __str__(self) -> str:
        return f"{self.store_id}: {self.original_name or self.source_url} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        if self.is_finished:
            return 100
        if not self.bytes_total:
            return 0
        return min(99, self.bytes_read * 100 // self.bytes_total)


class ImportRowError(models.Model):
    """One reason a line of the job's file was rejected."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    line = models.PositiveIntegerField()
    column = models.CharField(max_length=255, blank=True)
    value = models.TextField(blank=True)
    reason = models.TextField()

    class Meta:
        ordering = ["job", "line", "id"]

    def __str__(self) -> str:
        return f"line {self.line} [{self.column}]: {self.reason}"


def _new_token() -> str:
    return secrets.token_urlsafe(32)


class FeedExportToken(models.Model):
    """The secret that lets Letzshop poll `/feeds/<store code>/<language>.tsv?token=...`."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="feed_export_token")
    token = models.CharField(max_length=64, unique=True, default=_new_token)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"feed token of {self.store_id}"
