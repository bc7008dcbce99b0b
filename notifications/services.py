"""Notification writes: queue an email in the caller's transaction, send it once after commit.

The outbox contract
-------------------
* `queue_email` writes an OutboundEmail row (status queued) inside the caller's
  transaction and, only when that transaction commits, hands the row id to the `emails`
  Celery queue. A rolled-back change leaves no row and sends nothing.
* `send_outbound_email` claims the row with a conditional UPDATE (queued -> sending)
  before it talks to the mail server, so of two workers given the same id only one sends.
  The row id is the Message-ID (`<outbox-{id}@domain>`).
* Transient errors put the row back to queued with a backoff; permanent errors fail it.
* A row still in sending after `EMAIL_OUTBOX_SENDING_TIMEOUT` is marked uncertain: its
  worker died mid-send and nobody knows whether the message left. It is never resent
  automatically; staff resend it deliberately (`resend_email`, a new row).
"""

from __future__ import annotations

import json
import logging
import smtplib
import socket
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from email.utils import formataddr, parseaddr
from functools import lru_cache, partial
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.template import Context, Engine, Library, TemplateSyntaxError
from django.template.base import Node, Template
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.safestring import mark_safe

from marketplace.models import LANGUAGE_CODES, Membership, Order, Store
from notifications import selectors
from notifications.models import CUSTOMER_FACING_CODES, OutboundEmail
from notifications.selectors import UnknownEmailTemplate

logger = logging.getLogger(__name__)

Status = OutboundEmail.Status
REDACTED_CONTEXT = {"_redacted": True}

__all__ = [
    "EmailRenderError",
    "ResendRefused",
    "UnknownEmailTemplate",
    "mark_stuck_emails_uncertain",
    "queue_email",
    "queue_import_report_email",
    "queue_order_cancelled_email",
    "queue_order_limit_exceeded_email",
    "queue_order_placed_emails",
    "queue_order_shipped_email",
    "queue_password_reset_email",
    "queue_team_invitation_email",
    "render_email",
    "requeue_stale_emails",
    "resend_email",
    "send_outbound_email",
]


class EmailRenderError(Exception):
    """A template could not be compiled or rendered. Permanent for the row."""


class ResendRefused(Exception):
    """A resend was refused; the message says why and is shown to staff."""


# --- rendering ------------------------------------------------------------------------

# Tags that reach outside the template (other templates, libraries, the process) are
# not available: templates are edited in the admin and rendered over JSON data only.
# `lorem` writes any amount of text: a one-line template could make megabytes.
_BLOCKED_TAGS = {"load", "include", "extends", "block", "debug", "csrf_token", "lorem"}
# An email body larger than this is a template mistake (or abuse), never sent.
MAX_RENDERED_CHARS = 1_000_000


# The words of `{% order_summary %}`, the one place they are kept for every order email.
# Everything else it prints comes from the email's context.
ORDER_SUMMARY_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "order": "Order",
        "of": "of",
        "product": "Product",
        "quantity": "Qty",
        "price": "Price",
        "each": "each",
        "vat": "VAT",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "shipping": "Shipping",
        "total": "Total",
        "incl_vat": "incl. VAT",
        "reverse_charge": "Reverse charge: VAT to be accounted for by the recipient "
        "(Art. 196 of Directive 2006/112/EC).",
        "delivery_address": "Delivery address",
        "billing_address": "Billing address",
        "colon": ":",
    },
    "fr": {
        "order": "Commande",
        "of": "du",
        "product": "Article",
        "quantity": "Qté",
        "price": "Prix",
        "each": "l’unité",
        "vat": "TVA",
        "amount": "Montant",
        "subtotal": "Sous-total",
        "shipping": "Livraison",
        "total": "Total",
        "incl_vat": "dont TVA",
        "reverse_charge": "Autoliquidation : TVA due par le preneur "
        "(art. 196 de la directive 2006/112/CE).",
        "delivery_address": "Adresse de livraison",
        "billing_address": "Adresse de facturation",
        "colon": "\u00a0:",
    },
    "de": {
        "order": "Bestellung",
        "of": "vom",
        "product": "Artikel",
        "quantity": "Menge",
        "price": "Preis",
        "each": "pro Stück",
        "vat": "MwSt.",
        "amount": "Betrag",
        "subtotal": "Zwischensumme",
        "shipping": "Versand",
        "total": "Gesamt",
        "incl_vat": "inkl. MwSt.",
        "reverse_charge": "Steuerschuldnerschaft des Leistungsempfängers "
        "(Reverse Charge, Art. 196 der Richtlinie 2006/112/EG).",
        "delivery_address": "Lieferadresse",
        "billing_address": "Rechnungsadresse",
        "colon": ":",
    },
}
_SUMMARY_FORMATS = {"html": "_order_summary.html", "text": "_order_summary.txt"}


class OrderSummaryNode(Node):
    def __init__(self, fmt: str | None) -> None:
        self.fmt = fmt

    def render(self, context: Context) -> str:
        fmt = self.fmt or ("html" if context.autoescape else "text")
        # `language` is set by render_source; the active translation is the fallback.
        language = context.get("language")
        if not isinstance(language, str) or language not in ORDER_SUMMARY_LABELS:
            language = (translation.get_language() or "en")[:2]
        labels = ORDER_SUMMARY_LABELS.get(language, ORDER_SUMMARY_LABELS["en"])
        source = selectors.email_partial(_SUMMARY_FORMATS[fmt])
        # A context of its own: the HTML form escapes every value even inside a text body,
        # and the partial's loops cannot disturb the email's.
        data = {**context.flatten(), "labels": labels}
        return _compile(source, fmt == "html").render(Context(data, autoescape=fmt == "html"))


def order_summary(parser, token) -> OrderSummaryNode:
    """`{% order_summary %}`: the order heading, lines, totals with VAT, the reverse-charge
    note and the delivery and billing addresses, from the order variables of the context
    (`_order_context`), labelled in the email's language. `{% order_summary "html" %}` or
    `"text"` picks the form; without it, the body's (HTML when autoescaping)."""
    bits = token.split_contents()
    choices = [f'"{fmt}"' for fmt in _SUMMARY_FORMATS]
    if len(bits) > 2 or (len(bits) == 2 and bits[1] not in choices):
        raise TemplateSyntaxError(f"{bits[0]} takes one optional argument: {' or '.join(choices)}")
    return OrderSummaryNode(bits[1].strip('"') if len(bits) == 2 else None)


def _sandbox_library() -> Library:
    from django.template import defaultfilters, defaulttags

    library = Library()
    library.tags = {k: v for k, v in defaulttags.register.tags.items() if k not in _BLOCKED_TAGS}
    library.tags["order_summary"] = order_summary
    library.filters = dict(defaultfilters.register.filters)
    return library


def _engine(*, autoescape: bool) -> Engine:
    engine = Engine(loaders=[], libraries={}, autoescape=autoescape, string_if_invalid="")
    engine.template_builtins = [_sandbox_library()]
    engine.template_libraries = {}
    return engine


_TEXT_ENGINE = _engine(autoescape=False)
_HTML_ENGINE = _engine(autoescape=True)


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Template:
    engine = _HTML_ENGINE if html else _TEXT_ENGINE
    try:
        return engine.from_string(source)
    except TemplateSyntaxError as exc:
        raise EmailRenderError(f"Template syntax error: {exc}") from exc


def check_template_syntax(source: str, *, html: bool = False) -> None:
    """Raises EmailRenderError when `source` does not compile in the email sandbox."""
    _compile(source, html)


def _render(source: str, context: dict[str, Any], *, html: bool) -> str:
    try:
        rendered = _compile(source, html).render(Context(context, autoescape=html))
    except EmailRenderError:
        raise
    except Exception as exc:  # a filter choking on data: the row cannot be rendered
        raise EmailRenderError(f"{type(exc).__name__}: {exc}") from exc
    if len(rendered) > MAX_RENDERED_CHARS:
        raise EmailRenderError(
            f"The rendered email has {len(rendered):,} characters, more than the "
            f"{MAX_RENDERED_CHARS:,} allowed: check the template's loops."
        )
    return rendered


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    language: str
    origin: str


def render_email(
    code: str, *, language: str | None, store: Store | None, context: dict[str, Any]
) -> RenderedEmail:
    """Render `code` with the template chosen by `selectors.find_email_template`.

    Raises UnknownEmailTemplate or EmailRenderError. Reads only.
    """
    return render_source(
        selectors.find_email_template(code, language, store), store=store, context=context
    )


def render_source(
    source: selectors.TemplateSource, *, store: Store | None, context: dict[str, Any]
) -> RenderedEmail:
    """Render one template source over `context` plus the common variables (site_url,
    language, store_name, store_email). Raises EmailRenderError."""
    data = {
        "site_url": settings.SITE_URL,
        "language": source.language,
        "store_name": store.name if store else "",
        "store_email": store.email if store else "",
        **context,
    }
    with translation.override(source.language):
        # Newlines in a subject would be header injection; collapse all whitespace.
        subject = " ".join(_render(source.subject, data, html=False).split())
        if data.get("is_test"):
            subject = f"[TEST] {subject}"
        text = _render(source.body_text, data, html=False).strip() + "\n"
        html = ""
        if source.body_html.strip():
            content = _render(source.body_html, data, html=True)
            layout = {**data, "subject": subject, "content": mark_safe(content)}  # noqa: S308
            html = _render(selectors.email_layout(), layout, html=True)
    return RenderedEmail(subject, text, html, source.language, source.origin)


def render_outbound_email(row: OutboundEmail) -> RenderedEmail:
    return render_email(
        row.template_code, language=row.language, store=row.store, context=row.context
    )


# --- queueing -------------------------------------------------------------------------


def _language_for(language: str | None, store: Store | None) -> str:
    if language in LANGUAGE_CODES:
        return language
    if store is not None and store.default_language in LANGUAGE_CODES:
        return store.default_language
    return "en"


def dispatch_email(email_id: int, countdown: int | None = None) -> None:
    """Hand a row id to the `emails` queue. Call after commit only."""
    from notifications.tasks import send_email

    send_email.apply_async(args=[email_id], queue="emails", countdown=countdown)


def queue_email(
    code: str,
    *,
    to: str,
    context: dict[str, Any],
    language: str | None = None,
    store: Store | None = None,
    dedupe_key: str | None = None,
    created_by=None,
    resend_of: OutboundEmail | None = None,
) -> OutboundEmail:
    """Write an OutboundEmail row in the current transaction; after commit hand it to the
    `emails` queue. Nothing is sent if the transaction rolls back.

    `language` defaults to the store's language, then English. `context` must be JSON
    data (Decimals and dates become strings). With `dedupe_key`, queuing again returns
    the existing row and queues nothing. Raises UnknownEmailTemplate, ValidationError
    (bad address), TypeError (context not JSON-serialisable).
    """
    validate_email(to)
    if not selectors.email_template_exists(code):
        raise UnknownEmailTemplate(f"No email template {code!r}.")
    fields = {
        "to": to,
        "template_code": code,
        "language": _language_for(language, store),
        "context": json.loads(json.dumps(context, cls=DjangoJSONEncoder)),
        "store": store,
        "resend_of": resend_of,
        "created_by": created_by,
        "available_at": timezone.now(),
    }
    with transaction.atomic():
        if dedupe_key:
            row, created = OutboundEmail.objects.get_or_create(
                dedupe_key=dedupe_key, defaults=fields
            )
        else:
            row, created = OutboundEmail.objects.create(**fields), True
        if created:
            # robust: a broker outage after commit must not fail the caller; the sweep
            # picks up rows nobody was told about.
            transaction.on_commit(partial(dispatch_email, row.pk), robust=True)
    return row


# --- sending --------------------------------------------------------------------------


@dataclass(frozen=True)
class SendOutcome:
    status: str  # the row's status afterwards, or "skipped" when this worker did not claim it
    retry_in: int | None = None  # seconds until the retry, for transient errors


def message_id_for(email_id: int) -> str:
    return f"<outbox-{email_id}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"


def _from_address(row: OutboundEmail) -> str:
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    if row.store is not None and row.template_code in CUSTOMER_FACING_CODES:
        return formataddr((f"{row.store.name} via {name or 'Wizamart'}", address))
    return settings.DEFAULT_FROM_EMAIL


def build_message(row: OutboundEmail, rendered: RenderedEmail) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=_from_address(row),
        to=[row.to],
        headers={"Message-ID": message_id_for(row.pk), "X-Wizamart-Outbox-Id": str(row.pk)},
    )
    if row.store is not None and row.store.email and row.template_code in CUSTOMER_FACING_CODES:
        message.reply_to = [row.store.email]
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    # django-anymail: metadata comes back in delivery webhooks; ignored by SMTP.
    message.metadata = {"outbox_id": str(row.pk)}
    return message


def classify_send_error(exc: BaseException) -> tuple[bool, str]:
    """(permanent, reason) for an exception raised while sending.

    Permanent: the server or provider refused this message or recipient (SMTP 5xx,
    recipient rejected, API 4xx other than 429). Transient: everything that may work
    later (connection refused, timeouts, SMTP 4xx, API 5xx/429, authentication and
    configuration problems, which staff fix without losing the queue).
    """
    try:
        reason = f"{type(exc).__name__}: {exc}"[:2000]
    except Exception:  # a broken __str__ must not leave the row in sending
        reason = f"{type(exc).__name__}: {exc!r}"[:2000]
    try:
        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover - anymail is a dependency
        AnymailAPIError = AnymailRecipientsRefused = ()  # noqa: N806
    if isinstance(exc, AnymailRecipientsRefused):
        return True, reason
    if isinstance(exc, AnymailAPIError):
        status = getattr(exc, "status_code", None)
        return (status is not None and 400 <= status < 500 and status != 429), reason
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes), reason
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return False, reason
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500, reason
    if isinstance(exc, (smtplib.SMTPException, OSError, socket.timeout, TimeoutError)):
        return False, reason
    return False, reason


def retry_delay(attempts: int) -> int:
    base = settings.EMAIL_OUTBOX_RETRY_BASE_SECONDS
    return min(base * 2 ** max(attempts - 1, 0), settings.EMAIL_OUTBOX_RETRY_MAX_SECONDS)


def _claim(email_id: int) -> OutboundEmail | None:
    # Autocommit: the claim is visible to every other worker before we touch the network.
    claimed = OutboundEmail.objects.filter(pk=email_id, status=Status.QUEUED).update(
        status=Status.SENDING, attempts=F("attempts") + 1, claimed_at=timezone.now()
    )
    if not claimed:
        return None
    return OutboundEmail.objects.select_related("store").get(pk=email_id)


def _claimed(row: OutboundEmail, *statuses: str):
    return OutboundEmail.objects.filter(
        pk=row.pk, status__in=statuses or [Status.SENDING], claimed_at=row.claimed_at
    )


def _fail(row: OutboundEmail, reason: str) -> SendOutcome:
    _claimed(row).update(status=Status.FAILED, last_error=reason)
    logger.warning("outbox #%s failed: %s", row.pk, reason)
    return SendOutcome(Status.FAILED)


def _release_for_retry(row: OutboundEmail, reason: str) -> SendOutcome:
    if row.attempts >= settings.EMAIL_OUTBOX_MAX_ATTEMPTS:
        return _fail(row, f"Gave up after {row.attempts} attempts. Last error: {reason}")
    delay = retry_delay(row.attempts)
    _claimed(row).update(
        status=Status.QUEUED,
        last_error=reason,
        available_at=timezone.now() + timedelta(seconds=delay),
    )
    logger.info("outbox #%s will retry in %ss: %s", row.pk, delay, reason)
    return SendOutcome(Status.QUEUED, retry_in=delay)


def _mark_sent(row: OutboundEmail, rendered: RenderedEmail, provider_message_id: str) -> None:
    fields: dict[str, Any] = {
        "status": Status.SENT,
        "sent_at": timezone.now(),
        "message_id": message_id_for(row.pk),
        "provider_message_id": provider_message_id[:255],
        "subject": rendered.subject[:255],
    }
    if row.is_sensitive:
        fields["context"] = REDACTED_CONTEXT
    else:
        fields.update(body_text=rendered.text, body_html=rendered.html)
    # The sweep may already have called it uncertain; this worker knows it went out.
    _claimed(row, Status.SENDING, Status.UNCERTAIN).update(**fields)


def send_outbound_email(email_id: int) -> SendOutcome:
    """Send one outbox row, at most once.

    Claims the row (queued -> sending, attempts + 1) with a conditional UPDATE; a row that
    is not queued (another worker has it, or it is finished) is left alone ("skipped").
    Then renders, sends through the configured backend and marks it sent, queued again
    (transient error; `retry_in` says when) or failed (permanent error, bad template,
    attempts exhausted). Never raises for mail errors.
    """
    row = _claim(email_id)
    if row is None:
        return SendOutcome("skipped")
    try:
        rendered = render_outbound_email(row)
        message = build_message(row, rendered)
    except (EmailRenderError, UnknownEmailTemplate) as exc:
        return _fail(row, f"Cannot render: {exc}")
    try:
        sent = get_connection(fail_silently=False).send_messages([message])
    except Exception as exc:
        permanent, reason = classify_send_error(exc)
        return _fail(row, reason) if permanent else _release_for_retry(row, reason)
    if not sent:
        return _release_for_retry(row, "The backend accepted no message.")
    status = getattr(message, "anymail_status", None)
    _mark_sent(row, rendered, (status and status.message_id) or message_id_for(row.pk))
    return SendOutcome(Status.SENT)


# --- sweeps and staff actions ---------------------------------------------------------


def requeue_stale_emails(*, older_than: int | None = None, limit: int = 500) -> list[int]:
    """Hand queued rows that no worker took for `older_than` seconds (default
    EMAIL_OUTBOX_REQUEUE_AFTER_SECONDS) back to the `emails` queue, oldest first, after
    commit. Bumps their `available_at` so the next sweep does not hand them out again at
    once. Idempotent: a row handed out twice is still claimed once. Returns the ids.
    """
    older_than = settings.EMAIL_OUTBOX_REQUEUE_AFTER_SECONDS if older_than is None else older_than
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            OutboundEmail.objects.select_for_update(skip_locked=True)
            .filter(status=Status.QUEUED, available_at__lte=now - timedelta(seconds=older_than))
            .order_by("available_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            OutboundEmail.objects.filter(pk__in=ids).update(available_at=now)
        for email_id in ids:
            transaction.on_commit(partial(dispatch_email, email_id), robust=True)
    if ids:
        logger.info("outbox sweep re-queued %d email(s)", len(ids))
    return ids


def mark_stuck_emails_uncertain(*, timeout: int | None = None) -> int:
    """Mark rows claimed more than `timeout` seconds ago (default
    EMAIL_OUTBOX_SENDING_TIMEOUT) and still sending as uncertain: their worker died
    between claiming and recording the outcome. Never resends. Returns how many."""
    timeout = settings.EMAIL_OUTBOX_SENDING_TIMEOUT if timeout is None else timeout
    count = OutboundEmail.objects.filter(
        status=Status.SENDING, claimed_at__lt=timezone.now() - timedelta(seconds=timeout)
    ).update(
        status=Status.UNCERTAIN,
        last_error=(
            f"The worker did not report back within {timeout}s of claiming this email; "
            "it may or may not have been delivered. Check the mail server or provider log, "
            "then resend deliberately if it did not arrive."
        ),
    )
    if count:
        logger.warning("outbox sweep marked %d email(s) uncertain", count)
    return count


def resend_email(original: OutboundEmail, *, actor=None) -> OutboundEmail:
    """Queue a NEW row with the content of `original` (resend_of=original), after commit.

    Refused while `original` or an earlier resend of it is still queued or sending (a
    double click sends once), and for credential emails already sent (their link was
    redacted: the user asks for a new one). Raises ResendRefused.
    """
    in_flight = [Status.QUEUED, Status.SENDING]
    with transaction.atomic():
        original = OutboundEmail.objects.select_for_update().get(pk=original.pk)
        if original.status in in_flight:
            raise ResendRefused(f"Email #{original.pk} is still {original.status}.")
        if original.context == REDACTED_CONTEXT:
            raise ResendRefused(
                f"Email #{original.pk} carried a one-time link that was removed after "
                "sending; the user must request a new one."
            )
        pending = original.resends.filter(status__in=in_flight).first()
        if pending is not None:
            raise ResendRefused(f"Email #{original.pk} is already being resent as #{pending.pk}.")
        return queue_email(
            original.template_code,
            to=original.to,
            context=original.context,
            language=original.language,
            store=original.store,
            created_by=actor,
            resend_of=original,
        )


def queue_test_email(template, *, to: str, actor=None) -> OutboundEmail:
    """Queue `template` (an EmailTemplate) to `to` with its sample data, through the outbox."""
    context = {**selectors.sample_context(template.code), "is_test": True}
    return queue_email(
        template.code,
        to=to,
        context=context,
        language=template.language,
        store=template.store,
        created_by=actor,
    )


# --- the emails -----------------------------------------------------------------------


def format_money(amount: Decimal | int | str, currency: str, language: str) -> str:
    value = Decimal(amount).quantize(Decimal("0.01"))
    text = f"{value:,.2f}"
    symbol = "€" if currency == "EUR" else currency
    if language == "en":
        return f"{symbol}{text}"
    text = text.replace(",", "\u202f").replace(".", ",")
    return f"{text}\u00a0{symbol}"


def _format_rate(rate: Decimal | str, language: str) -> str:
    text = f"{Decimal(rate).normalize():f}"
    return (text if language == "en" else text.replace(".", ",")) + "\u00a0%"


def _format_date(value, language: str) -> str:
    with translation.override(language):
        return formats.date_format(timezone.localtime(value), "DATE_FORMAT")


def address_lines(address: dict[str, Any]) -> list[str]:
    """An address snapshot as printable lines; unknown keys are ignored."""
    if not address:
        return []
    get = lambda *keys: " ".join(str(address[k]) for k in keys if address.get(k))  # noqa: E731
    name = get("first_name", "last_name") or get("name")
    street = get("street", "street_number") or get("street_name", "street_number")
    street = street or get("line1")
    lines = [
        name,
        get("company"),
        street,
        get("line2"),
        get("postal_code", "city") or get("zip_code", "city"),
        get("country_name") or get("country"),
    ]
    return [line for line in lines if line]


def _order_context(order: Order, language: str) -> dict[str, Any]:
    money = partial(format_money, currency=order.currency, language=language)
    lines = list(order.lines.all())
    vat_by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        vat_by_rate[line.vat_rate] = vat_by_rate.get(line.vat_rate, Decimal("0")) + line.vat_amount
    customer_name = " ".join(
        str(order.billing_address.get(k, "")) for k in ("first_name", "last_name")
    ).strip()
    return {
        "order_number": order.number,
        "order_date": _format_date(order.placed_at, language),
        "order_status": order.status,
        "customer_name": customer_name,
        "customer_email": order.email,
        "channel": order.channel,
        "lines": [
            {
                "title": line.title,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": money(line.unit_price),
                "line_total": money(line.line_total),
                "vat_rate": _format_rate(line.vat_rate, language),
            }
            for line in lines
        ],
        "subtotal": money(order.subtotal),
        "shipping_total": money(order.shipping_total),
        "vat_total": money(order.vat_total),
        "total": money(order.total),
        "vat_lines": [
            {"rate": _format_rate(rate, language), "amount": money(amount)}
            for rate, amount in sorted(vat_by_rate.items())
        ],
        "vat_regime": order.vat_regime,
        "reverse_charge": order.vat_regime == Order.VatRegime.REVERSE_CHARGE,
        "shipping_address": address_lines(order.shipping_address),
        "billing_address": address_lines(order.billing_address),
        "store_name": order.store.name,
        "store_email": order.store.email,
        "store_address": [
            line
            for line in (
                order.store.legal_name or order.store.name,
                order.store.street,
                f"{order.store.postal_code} {order.store.city}".strip(),
                order.store.country,
            )
            if line
        ],
        "store_vat_number": order.store.vat_number,
        "backoffice_url": settings.SITE_URL.rstrip("/")
        + reverse("backoffice:marketplace_order_change", args=[order.pk]),
    }


def store_recipients(store: Store) -> list[str]:
    """Where a store hears from us: its contact address, else its owners."""
    if store.email:
        return [store.email]
    owners = Membership.objects.filter(store=store, role=Membership.Role.OWNER)
    return sorted({m.user.email for m in owners.select_related("user") if m.user.email})


def queue_order_placed_emails(order: Order) -> list[OutboundEmail]:
    """Queue the shopper's order confirmation (in the order's locale) and the store's
    new-order notice (in the store's language, to `store_recipients`). Call inside the
    checkout transaction. Idempotent per order: calling again queues nothing new.
    """
    store = order.store
    emails = [
        queue_email(
            "order_confirmation",
            to=order.email,
            context=_order_context(order, order.locale),
            language=order.locale,
            store=store,
            dedupe_key=f"order_confirmation:{order.public_id}",
        )
    ]
    language = store.default_language
    for recipient in store_recipients(store):
        emails.append(
            queue_email(
                "store_new_order",
                to=recipient,
                context=_order_context(order, language),
                language=language,
                store=store,
                dedupe_key=f"store_new_order:{order.public_id}:{recipient}",
            )
        )
    return emails


def queue_order_shipped_email(
    order: Order, tracking_number: str, carrier: str, tracking_url: str = "", *, change: str = ""
) -> OutboundEmail:
    """Queue the shopper's shipment email with tracking. Idempotent per tracking number,
    and per `change` (what a new tracking of an existing parcel names, e.g. its event id)."""
    context = _order_context(order, order.locale)
    context.update(tracking_number=tracking_number, carrier=carrier, tracking_url=tracking_url)
    key = f"order_shipped:{order.public_id}:{tracking_number}"
    return queue_email(
        "order_shipped",
        to=order.email,
        context=context,
        language=order.locale,
        store=order.store,
        dedupe_key=f"{key}:{change}" if change else key,
    )


def queue_order_cancelled_email(order: Order, reason: str = "") -> OutboundEmail:
    """Queue the shopper's cancellation email. Idempotent per order."""
    context = _order_context(order, order.locale)
    context["reason"] = reason
    return queue_email(
        "order_cancelled",
        to=order.email,
        context=context,
        language=order.locale,
        store=order.store,
        dedupe_key=f"order_cancelled:{order.public_id}",
    )


def queue_password_reset_email(
    *, to: str, reset_url: str, username: str, first_name: str = "", language: str | None = None
) -> OutboundEmail:
    """Queue a password reset link. Its context is redacted once sent."""
    return queue_email(
        "password_reset",
        to=to,
        context={"reset_url": reset_url, "username": username, "first_name": first_name},
        language=language,
    )


def queue_team_invitation_email(
    *,
    to: str,
    store: Store,
    invited_by: str,
    role: str,
    accept_url: str,
    language: str | None = None,
    dedupe_key: str | None = None,
) -> OutboundEmail:
    """Queue an invitation to join `store`'s team (role label, inviter's name, link to
    accept). Its context is redacted once sent."""
    return queue_email(
        "team_invitation",
        to=to,
        context={
            "store_name": store.name,
            "invited_by": invited_by,
            "role": role,
            "accept_url": accept_url,
        },
        language=language or store.default_language,
        store=store,
        dedupe_key=dedupe_key,
    )


def queue_import_report_email(
    store: Store,
    *,
    succeeded: bool,
    source: str,
    created: int = 0,
    updated: int = 0,
    unchanged: int = 0,
    failed: int = 0,
    errors: list[str] | None = None,
    report_url: str = "",
    to: list[str] | None = None,
    dedupe_key: str | None = None,
) -> list[OutboundEmail]:
    """Queue the import report (`import_finished` or `import_failed`) to `to` or the
    store's recipients, in the store's language. `errors`: the first lines shown (20 max),
    e.g. "line 12, column price: '12,5O EUR' is not a price"."""
    errors = list(errors or [])
    context = {
        "source": source,
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "failed": failed,
        "total": created + updated + unchanged + failed,
        "errors": errors[:20],
        "more_errors": max(len(errors) - 20, 0),
        "report_url": report_url,
    }
    code = "import_finished" if succeeded else "import_failed"
    return [
        queue_email(
            code,
            to=recipient,
            context=context,
            store=store,
            dedupe_key=f"{dedupe_key}:{recipient}" if dedupe_key else None,
        )
        for recipient in (to or store_recipients(store))
    ]


def queue_order_limit_exceeded_email(
    store: Store,
    order: Order,
    limit: int,
    count: int,
    *,
    period=None,
    plan_name: str = "",
    larger_plans: list[dict[str, Any]] | None = None,
) -> list[OutboundEmail]:
    """Queue `order_limit_exceeded` to the store's recipients, in the store's language:
    `order` is order `count` of its month, beyond the plan's `limit` orders a month; it
    was imported anyway. `period`: the first day of that month (default: the month of
    `order.placed_at`, local time). `larger_plans`: dicts with name, max_orders_per_month
    (None: unlimited) and monthly_price. Call inside the order's transaction. Idempotent
    per store, month and recipient: one email a month, whichever order triggers it."""
    language = store.default_language
    period = period or timezone.localtime(order.placed_at).date().replace(day=1)
    with translation.override(language):
        month = formats.date_format(period, "YEAR_MONTH_FORMAT")
    site = settings.SITE_URL.rstrip("/")
    context = {
        "order_number": order.number,
        "external_number": order.external_number,
        "channel": order.channel,
        "order_date": _format_date(order.placed_at, language),
        "order_total": format_money(order.total, order.currency, language),
        "count": count,
        "limit": limit,
        "month": month,
        "plan_name": plan_name,
        "larger_plans": [
            {
                "name": plan["name"],
                "max_orders_per_month": plan["max_orders_per_month"],
                "monthly_price": format_money(plan["monthly_price"], "EUR", language),
            }
            for plan in larger_plans or []
        ],
        "order_url": site + reverse("backoffice:marketplace_order_change", args=[order.pk]),
        "upgrade_url": site + reverse("backoffice:index"),
    }
    return [
        queue_email(
            "order_limit_exceeded",
            to=recipient,
            context=context,
            language=language,
            store=store,
            dedupe_key=f"order_limit_exceeded:{store.pk}:{period:%Y-%m}:{recipient}",
        )
        for recipient in store_recipients(store)
    ]
