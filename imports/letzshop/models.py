"""Letzshop accounts, the log of every call, imported units, exceptions and the
outbound fulfilment queue. Rows are written only through `imports.letzshop.services`."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from marketplace.models import Order, OrderLine, Product, Store


def _fernet() -> MultiFernet:
    """Every configured key decrypts; the first one encrypts. With none configured (local
    and test runs only, settings refuse that in production) a key derived from SECRET_KEY."""
    keys = list(getattr(settings, "WIZAMART_ENCRYPTION_KEYS", []) or [])
    if not keys:
        digest = hashlib.sha256(f"wizamart-letzshop:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"WIZAMART_ENCRYPTION_KEYS: {exc}") from exc


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_secret(ciphertext: str) -> str:
    """Raises ValueError when no configured key can read it."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("The stored secret cannot be decrypted with the configured keys.") from exc


class LetzshopAccount(models.Model):
    """A store's connection to Letzshop: the (encrypted) API key, which vendor, when to sync."""

    class Status(models.TextChoices):
        NEW = "new", _("Not synced yet")  # created, never talked to Letzshop
        OK = "ok", _("OK")  # the last call succeeded
        AUTH_FAILED = "auth_failed", _("API key refused")  # Letzshop answered 401/403
        ERROR = "error", _("Error")  # the last sync failed for another reason

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="letzshop_account")
    api_key_encrypted = models.TextField(editable=False)
    endpoint = models.URLField(
        max_length=300, blank=True, help_text=_("Empty: the LETZSHOP_ENDPOINT setting.")
    )
    vendor_id = models.CharField(max_length=100, blank=True)
    auto_sync = models.BooleanField(default=True)
    interval_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(interval_minutes__gte=1), name="letzshop_account_interval_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Letzshop {self.store}"

    @property
    def api_key(self) -> str:
        return decrypt_secret(self.api_key_encrypted)

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = encrypt_secret(value)

    @property
    def endpoint_url(self) -> str:
        return self.endpoint or getattr(settings, "LETZSHOP_ENDPOINT", "")


class SyncLog(models.Model):
    """One HTTP call to Letzshop (each attempt of a retried call is its own row)."""

    class Outcome(models.TextChoices):
        OK = "ok", _("OK")
        ERROR = "error", _("Error")

    account = models.ForeignKey(LetzshopAccount, on_delete=models.CASCADE, related_name="logs")
    operation = models.CharField(max_length=60)
    request_summary = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=5, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.operation} {self.outcome} ({self.duration_ms} ms)"


class InventoryUnit(models.Model):
    """One Letzshop inventory unit of an imported order (one item), with our decision.

    The local state is the truth; FulfilmentTasks carry it to Letzshop."""

    class State(models.TextChoices):
        UNCONFIRMED = "unconfirmed", _("Unconfirmed")  # nobody decided yet
        CONFIRMED_AVAILABLE = "confirmed_available", _("Confirmed")  # will ship
        CONFIRMED_UNAVAILABLE = "confirmed_unavailable", _("Declined")  # will not ship
        RETURNED = "returned", _("Returned")  # came back after shipping

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="letzshop_units")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=100)
    state = models.CharField(max_length=24, choices=State.choices, default=State.UNCONFIRMED)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "external_id"], name="letzshop_unit_order_external_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.state})"


class OrderException(models.Model):
    """Something in an imported order that needs staff: blocks confirmation while open."""

    class Kind(models.TextChoices):
        UNMATCHED_PRODUCT = "unmatched_product", _("Unmatched product")  # no GTIN/SKU match

    class Status(models.TextChoices):
        OPEN = "open", _("Open")  # waiting for staff
        RESOLVED = "resolved", _("Resolved")  # mapped to a product
        IGNORED = "ignored", _("Ignored")  # staff decided to go on without a product

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="letzshop_exceptions")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.UNMATCHED_PRODUCT)
    gtin = models.CharField(max_length=20, blank=True, db_index=True)
    sku = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_product = models.ForeignKey(
        Product, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_line", "kind"], name="letzshop_exception_line_kind_unique"
            ),
        ]
        indexes = [models.Index(fields=["status", "gtin"], name="letzshop_exc_status_gtin")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.gtin or self.sku} ({self.status})"


class FulfilmentTask(models.Model):
    """One outbound call to Letzshop (confirm, decline, tracking), retried until done."""

    class Kind(models.TextChoices):
        CONFIRM_UNITS = "confirm_units", _("Confirm units")
        DECLINE_UNITS = "decline_units", _("Decline units")
        SET_TRACKING = "set_tracking", _("Set tracking")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")  # waiting for its (next) attempt
        RUNNING = "running", _("Running")  # claimed by a worker
        SUCCEEDED = "succeeded", _("Succeeded")  # Letzshop accepted it (final)
        FAILED = "failed", _("Failed")  # refused (4xx, user error) or out of attempts (final)

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="letzshop_tasks")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="letzshop_task_due")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class HistoricalImport(models.Model):
    """A staff-started import of every confirmed then unconfirmed shipment, page by page."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    account = models.ForeignKey(
        LetzshopAccount, on_delete=models.CASCADE, related_name="historical_imports"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    shipments_total = models.PositiveIntegerField(default=0)
    shipments_seen = models.PositiveIntegerField(default=0)
    shipments_created = models.PositiveIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Historical import #{self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.shipments_total:
            return 0
        return min(99, self.shipments_seen * 100 // self.shipments_total)


class RejectedShipment(models.Model):
    """A Letzshop shipment the sync could not import because of its data: which field and
    what was expected. Upserted on every sync that meets it again (it never blocks the
    other shipments), deleted once the shipment imports."""

    account = models.ForeignKey(
        LetzshopAccount, on_delete=models.CASCADE, related_name="rejected_shipments"
    )
    external_id = models.CharField(max_length=100)
    number = models.CharField(max_length=100, blank=True)
    field = models.CharField(max_length=100, blank=True)  # e.g. "order.total"; "" unknown
    reason = models.CharField(max_length=500)  # what was expected, and the value received
    times_seen = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "external_id"], name="letzshop_rejected_account_shipment_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number or self.external_id}: {self.field} {self.reason}"
