"""Notifications: editable email templates and the outbox every email goes through.

Rows are written only through `notifications.services`. An OutboundEmail row is the
promise to send one message; its status says how far that promise got.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from marketplace.models import Language

# Emails a shopper receives in a store's name: a store may override their wording.
CUSTOMER_FACING_CODES = frozenset({"order_confirmation", "order_shipped", "order_cancelled"})
# Emails whose context holds a credential (a reset or invitation link). Their context is
# redacted once sent, their rendered body is not kept, and they cannot be resent.
SENSITIVE_CODES = frozenset({"password_reset", "team_invitation"})


class EmailTemplate(models.Model):
    """Subject, plain text and HTML of one email in one language.

    `store` NULL is the platform default; a store row overrides it for that store's
    shoppers (customer-facing codes only). Bodies use Django template syntax rendered by
    a sandboxed engine over JSON data: no `{% load %}`, no includes, no model access.
    """

    code = models.SlugField(max_length=64, help_text=_("e.g. order_confirmation"))
    language = models.CharField(max_length=2, choices=Language.choices)
    store = models.ForeignKey(
        "marketplace.Store",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="email_templates",
        help_text=_("Empty: the platform default. Set: this store's override."),
    )
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True, help_text=_("Optional HTML part (autoescaped)."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code", "language", "store_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code", "language", "store"],
                nulls_distinct=False,
                name="email_template_code_language_store_unique",
            ),
        ]

    def __str__(self) -> str:
        owner = self.store.code if self.store_id else "platform"
        return f"{self.code} [{self.language}] ({owner})"

    def clean(self) -> None:
        from notifications.services import EmailRenderError, check_template_syntax

        if self.store_id and self.code not in CUSTOMER_FACING_CODES:
            raise ValidationError({"store": _("Stores may override customer-facing emails only.")})
        for field in ("subject", "body_text", "body_html"):
            try:
                check_template_syntax(getattr(self, field), html=field == "body_html")
            except EmailRenderError as exc:
                raise ValidationError({field: str(exc)}) from exc


class OutboundEmail(models.Model):
    """One email to one recipient, written in the same transaction as the change it
    reports, sent by a worker after commit. Sent at most once: see `services.send_outbound_email`.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")  # waiting for a worker (first time or retry)
        SENDING = "sending", _("Sending")  # claimed by a worker that is talking to the server
        SENT = "sent", _("Sent")  # the mail server or provider accepted it (final)
        FAILED = "failed", _("Failed")  # permanent error or retries exhausted (final)
        UNCERTAIN = "uncertain", _("Uncertain")  # worker vanished mid-send; staff decide

    to = models.EmailField()
    template_code = models.SlugField(max_length=64)
    language = models.CharField(max_length=2, choices=Language.choices)
    context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    store = models.ForeignKey(
        "marketplace.Store",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="outbound_emails",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    dedupe_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text=_("Queuing twice with the same key returns the first row."),
    )
    message_id = models.CharField(max_length=255, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=255, blank=True, help_text=_("As sent."))
    body_text = models.TextField(blank=True, help_text=_("As sent."))
    body_html = models.TextField(blank=True, help_text=_("As sent."))
    resend_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="resends"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When a worker may next take the row: creation, then each retry's backoff.
    available_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sending", "sent", "failed", "uncertain"]),
                name="outbound_email_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="outbound_email_sent_has_sent_at",
            ),
            models.CheckConstraint(
                condition=Q(status="queued") | Q(claimed_at__isnull=False),
                name="outbound_email_claimed_when_not_queued",
            ),
        ]
        indexes = [
            models.Index(
                fields=["available_at"],
                condition=Q(status="queued"),
                name="outbound_email_queued",
            ),
            models.Index(
                fields=["claimed_at"],
                condition=Q(status="sending"),
                name="outbound_email_sending",
            ),
            models.Index(fields=["template_code", "created_at"], name="outbound_email_code"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.template_code} to {self.to} ({self.status})"

    @property
    def is_sensitive(self) -> bool:
        return self.template_code in SENSITIVE_CODES
