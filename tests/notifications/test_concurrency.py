"""Real threads on PostgreSQL: one outbox row gives one message, whatever the workers do."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from notifications import services, tasks
from notifications.models import OutboundEmail

Status = OutboundEmail.Status

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(target, *args) -> threading.Thread:
    def run():
        try:
            target(*args)
        except SystemExit:
            pass  # the simulated kill: the thread ends like a dead worker process
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _queue(store, to="anna@example.lu") -> OutboundEmail:
    # Autocommit (transaction=True): the row is committed at once; the hand-off to the
    # broker is not part of these tests.
    return services.queue_email(
        "order_cancelled",
        to=to,
        context={"order_number": "LUX-2026-000001", "reason": "test"},
        store=store,
    )


def test_two_workers_on_the_same_row_send_one_message(store, smtp_server, broker):
    email = _queue(store)
    start = threading.Barrier(2)
    results: list[str] = []

    def work():
        start.wait()
        results.append(tasks.send_email(email.pk))

    threads = [_in_thread(work) for _ in range(2)]
    for thread in threads:
        thread.join(10)

    assert sorted(results) == ["sent", "skipped"]
    assert len(smtp_server.messages) == 1
    email.refresh_from_db()
    assert email.status == Status.SENT
    assert email.attempts == 1


def test_many_workers_on_many_rows_send_each_once(store, smtp_server, broker):
    emails = [_queue(store, to=f"shopper{n}@example.lu") for n in range(20)]
    start = threading.Barrier(4)

    def work():
        start.wait()
        for email in emails:
            tasks.send_email(email.pk)

    threads = [_in_thread(work) for _ in range(4)]
    for thread in threads:
        thread.join(30)

    received = sorted(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == sorted(e.to for e in emails)
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {Status.SENT}


def test_worker_killed_between_send_and_mark_leaves_one_message_and_an_uncertain_row(
    store, smtp_server, broker, monkeypatch, settings
):
    email = _queue(store)

    def die(*args, **kwargs):
        raise SystemExit("worker killed after the server accepted the message")

    monkeypatch.setattr(services, "_mark_sent", die)
    _in_thread(tasks.send_email, email.pk).join(10)
    monkeypatch.undo()

    assert len(smtp_server.messages) == 1
    email.refresh_from_db()
    assert email.status == Status.SENDING

    # Celery redelivers the unacknowledged task (acks_late): the claim refuses it.
    assert tasks.send_email(email.pk) == "skipped"
    # Before the timeout the sweep leaves it alone; re-queuing never touches it.
    assert tasks.sweep_outbox() == {"requeued": 0, "uncertain": 0}
    OutboundEmail.objects.filter(pk=email.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.EMAIL_OUTBOX_SENDING_TIMEOUT + 1)
    )
    assert tasks.sweep_outbox() == {"requeued": 0, "uncertain": 1}
    assert tasks.sweep_outbox() == {"requeued": 0, "uncertain": 0}

    email.refresh_from_db()
    assert email.status == Status.UNCERTAIN
    assert "may or may not have been delivered" in email.last_error
    assert tasks.send_email(email.pk) == "skipped"
    assert len(smtp_server.messages) == 1  # exactly one at the SMTP server

    # Staff decide: a deliberate resend is a new row, sent once.
    resend = services.resend_email(email)
    assert resend.pk != email.pk and resend.resend_of_id == email.pk
    assert tasks.send_email(resend.pk) == "sent"
    assert len(smtp_server.messages) == 2
    assert smtp_server.messages[1].message["Message-ID"] == f"<outbox-{resend.pk}@wizamart.lu>"


def test_worker_that_reports_after_the_sweep_gave_up_records_sent(store, smtp_server, broker):
    email = _queue(store)
    reached_mark = threading.Event()
    proceed = threading.Event()
    real_mark_sent = services._mark_sent

    def slow_mark_sent(*args, **kwargs):
        reached_mark.set()
        proceed.wait(10)
        real_mark_sent(*args, **kwargs)

    services._mark_sent = slow_mark_sent
    try:
        thread = _in_thread(tasks.send_email, email.pk)
        assert reached_mark.wait(10)
        assert services.mark_stuck_emails_uncertain(timeout=0) == 1
        proceed.set()
        thread.join(10)
    finally:
        services._mark_sent = real_mark_sent

    email.refresh_from_db()
    assert email.status == Status.SENT
    assert len(smtp_server.messages) == 1
