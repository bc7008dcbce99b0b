"""The outbox sends through a real SMTP server: once, in the right language, never on rollback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from notifications import services
from notifications.models import OutboundEmail

Status = OutboundEmail.Status


@pytest.fixture
def store(store):
    store.email = "orders@luxshop.lu"
    store.default_language = "en"
    store.vat_number = "LU12345678"
    store.save()
    return store


def test_order_placed_sends_french_confirmation_to_shopper_and_notice_to_store(
    store, make_order, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            order = make_order(store, locale="fr", email="anna@example.lu")
            shopper_email, store_email = services.queue_order_placed_emails(order)
        assert broker.published == []  # nothing leaves before the commit

    assert broker.published == [
        {"args": [shopper_email.pk], "queue": "emails", "countdown": None},
        {"args": [store_email.pk], "queue": "emails", "countdown": None},
    ]
    assert worker() == ["sent", "sent"]

    received = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert len(smtp_server.messages) == 2
    confirmation = received["anna@example.lu"]
    assert confirmation.subject == f"Votre commande {order.number} chez Lux Shop"
    assert confirmation.message["To"] == "anna@example.lu"
    assert confirmation.message["Reply-To"] == "orders@luxshop.lu"
    assert confirmation.message["Message-ID"] == f"<outbox-{shopper_email.pk}@wizamart.lu>"
    text = confirmation.part("text/plain")
    assert "2 × Riesling Grand Premier Cru 2022 (RIES-22): 37,00\u00a0€" in text
    assert "Total\u00a0: 65,90\u00a0€" in text
    assert "dont TVA 17\u00a0%: 5,38\u00a0€" in text
    assert "12 rue de la Gare" in text
    assert "N° de TVA LU12345678" in text
    html = confirmation.part("text/html")
    assert '<html lang="fr">' in html
    assert "<td>Riesling Grand Premier Cru 2022" in html

    notice = received["orders@luxshop.lu"]
    assert notice.subject == f"New order {order.number}: €65.90"
    assert notice.message["Message-ID"] == f"<outbox-{store_email.pk}@wizamart.lu>"
    assert "Anna Muller (anna@example.lu)" in notice.part("text/plain")

    shopper_email.refresh_from_db()
    assert shopper_email.status == Status.SENT
    assert shopper_email.attempts == 1
    assert shopper_email.sent_at is not None
    assert shopper_email.message_id == f"<outbox-{shopper_email.pk}@wizamart.lu>"
    assert shopper_email.subject == confirmation.subject
    assert shopper_email.language == "fr"


def test_rolled_back_checkout_writes_no_row_and_sends_nothing(
    store, make_order, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            order = make_order(store)
            services.queue_order_placed_emails(order)
            raise RuntimeError("payment declined")

    assert callbacks == []
    assert broker.published == []
    assert OutboundEmail.objects.count() == 0
    assert worker() == []
    assert smtp_server.messages == []


def test_queuing_the_same_order_twice_queues_its_emails_once(
    store, make_order, broker, django_capture_on_commit_callbacks
):
    order = make_order(store)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.queue_order_placed_emails(order)
    with django_capture_on_commit_callbacks(execute=True):
        second = services.queue_order_placed_emails(order)

    assert [e.pk for e in first] == [e.pk for e in second]
    assert OutboundEmail.objects.count() == 2
    assert len(broker.published) == 2


def test_smtp_server_down_keeps_row_queued_then_sends_once_when_back(
    store, make_order, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    smtp_server.stop()
    with django_capture_on_commit_callbacks(execute=True):
        email = services.queue_order_shipped_email(
            make_order(store), "LU123456789LU", "POST Luxembourg", "https://track.example/LU1"
        )

    assert worker() == ["queued"]
    email.refresh_from_db()
    assert email.status == Status.QUEUED
    assert email.attempts == 1
    assert "ConnectionRefusedError" in email.last_error
    assert email.available_at > timezone.now() + timedelta(seconds=25)
    # the task scheduled its own retry after the backoff
    assert broker.published == [{"args": [email.pk], "queue": "emails", "countdown": 30}]

    smtp_server.start()
    assert worker() == ["sent"]
    assert worker() == []
    # a duplicate delivery of the task (or a sweep that fires late) sends nothing more
    assert services.send_outbound_email(email.pk).status == "skipped"

    email.refresh_from_db()
    assert email.status == Status.SENT
    assert email.attempts == 2
    assert len(smtp_server.messages) == 1
    assert (
        smtp_server.messages[0].subject
        == f"Your order {email.context['order_number']} is on its way"
    )
    assert "https://track.example/LU1" in smtp_server.messages[0].part("text/plain")


def test_sweep_hands_out_rows_whose_dispatch_was_lost(
    store, make_order, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    # the broker was down at commit time: the on-commit hand-off never happened
    with django_capture_on_commit_callbacks(execute=False):
        email = services.queue_order_cancelled_email(make_order(store), reason="Out of stock")
    assert broker.published == []

    assert services.requeue_stale_emails() == []  # too young: a worker may still take it
    OutboundEmail.objects.filter(pk=email.pk).update(
        available_at=timezone.now() - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.requeue_stale_emails() == [email.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.requeue_stale_emails() == []  # bumped: not handed out again at once

    assert worker() == ["sent"]
    assert len(smtp_server.messages) == 1
    assert "Out of stock" in smtp_server.messages[0].part("text/plain")


def test_recipient_refused_with_550_fails_at_once_with_the_reason(
    store, make_order, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    smtp_server.refuse("gone@example.lu")
    with django_capture_on_commit_callbacks(execute=True):
        email = services.queue_order_cancelled_email(make_order(store, email="gone@example.lu"))

    assert worker() == ["failed"]
    email.refresh_from_db()
    assert email.status == Status.FAILED
    assert email.attempts == 1
    assert email.last_error.startswith("SMTPRecipientsRefused")
    assert "550" in email.last_error and "mailbox unavailable" in email.last_error
    assert broker.published == []  # no retry
    assert smtp_server.messages == []


def test_temporary_refusal_451_is_retried(
    store, make_order, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    smtp_server.refuse("busy@example.lu", "451 4.7.1 greylisted, try again later")
    with django_capture_on_commit_callbacks(execute=True):
        email = services.queue_order_cancelled_email(make_order(store, email="busy@example.lu"))

    assert worker() == ["queued"]
    email.refresh_from_db()
    assert email.status == Status.QUEUED
    assert "451" in email.last_error
    del smtp_server.handler.refuse["busy@example.lu"]
    assert worker() == ["sent"]
    assert len(smtp_server.messages) == 1


def test_row_fails_when_retries_are_exhausted(
    settings, store, make_order, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    settings.EMAIL_OUTBOX_MAX_ATTEMPTS = 2
    smtp_server.stop()
    with django_capture_on_commit_callbacks(execute=True):
        email = services.queue_order_cancelled_email(make_order(store))

    assert worker() == ["queued"]
    assert worker() == ["failed"]
    email.refresh_from_db()
    assert email.status == Status.FAILED
    assert email.attempts == 2
    assert email.last_error.startswith(
        "Gave up after 2 attempts. Last error: ConnectionRefusedError"
    )
    assert broker.published == []


def test_retry_backoff_doubles_up_to_the_cap(settings):
    settings.EMAIL_OUTBOX_RETRY_BASE_SECONDS = 30
    settings.EMAIL_OUTBOX_RETRY_MAX_SECONDS = 1800
    assert [services.retry_delay(n) for n in range(1, 9)] == [
        30, 60, 120, 240, 480, 960, 1800, 1800,
    ]  # fmt: skip


def test_provider_errors_are_classified():
    import smtplib

    from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused

    class Response:
        def __init__(self, status_code):
            self.status_code, self.reason, self.text = status_code, "reason", "{}"

        def json(self):
            return {}

    def api_error(status):
        response = Response(status) if status else None
        return AnymailAPIError("provider said no", status_code=status, response=response)

    assert services.classify_send_error(AnymailRecipientsRefused("all refused"))[0] is True
    assert services.classify_send_error(api_error(400))[0] is True
    assert services.classify_send_error(api_error(429))[0] is False
    assert services.classify_send_error(api_error(503))[0] is False
    assert services.classify_send_error(api_error(None))[0] is False
    assert services.classify_send_error(ConnectionRefusedError(111, "refused"))[0] is False
    assert services.classify_send_error(TimeoutError("timed out"))[0] is False
    assert services.classify_send_error(smtplib.SMTPDataError(554, b"spam"))[0] is True
    assert services.classify_send_error(smtplib.SMTPDataError(452, b"full"))[0] is False
    assert services.classify_send_error(smtplib.SMTPAuthenticationError(535, b"bad"))[0] is False
    assert services.classify_send_error(smtplib.SMTPServerDisconnected("bye"))[0] is False


def test_store_without_email_hears_through_its_owners(
    store, owner, make_order, broker, django_capture_on_commit_callbacks
):
    store.email = ""
    store.default_language = "de"
    store.save()
    with django_capture_on_commit_callbacks(execute=True):
        _, notice = services.queue_order_placed_emails(make_order(store))
    assert notice.to == "owner@example.lu"
    assert notice.language == "de"


def test_import_report_and_invitation_are_queued_in_the_store_language(
    store, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    store.default_language = "fr"
    store.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.queue_import_report_email(
            store,
            succeeded=False,
            source="feed.csv",
            created=3,
            failed=2,
            errors=["line 4, column price: 'abc' is not a price"],
        )
        services.queue_team_invitation_email(
            to="marc@example.lu",
            store=store,
            invited_by="Anna Muller",
            role="Manager",
            accept_url="https://wizamart.lu/invitations/abc/",
        )
    worker()
    subjects = sorted(m.subject for m in smtp_server.messages)
    assert subjects == [
        "Anna Muller vous invite à rejoindre Lux Shop sur Wizamart",
        "Échec de l’import : feed.csv",
    ]
    report = next(m for m in smtp_server.messages if "feed.csv" in m.subject)
    assert "5 lignes lues" in report.part("text/plain")
    assert "line 4, column price: 'abc' is not a price" in report.part("text/plain")


def test_unknown_template_code_is_refused_when_queuing(store, broker):
    with pytest.raises(services.UnknownEmailTemplate):
        services.queue_email("no_such_email", to="a@example.lu", context={})
    assert OutboundEmail.objects.count() == 0
