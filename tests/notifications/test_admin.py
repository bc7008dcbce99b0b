"""Staff see the outbox, resend deliberately, preview and test-send templates."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications import services
from notifications.models import EmailTemplate, OutboundEmail

Status = OutboundEmail.Status


@pytest.fixture
def staff_client(client, platform_admin):
    client.force_login(platform_admin)
    return client


def _uncertain_email(store) -> OutboundEmail:
    email = services.queue_email(
        "order_cancelled", to="anna@example.lu", context={"order_number": "A-1"}, store=store
    )
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=Status.UNCERTAIN, attempts=1, claimed_at=email.created_at
    )
    return email


def test_outbox_list_filters_by_status_store_and_code(staff_client, store, broker):
    email = _uncertain_email(store)
    url = reverse("admin:notifications_outboundemail_changelist")
    response = staff_client.get(
        url,
        {
            "status__exact": "uncertain",
            "store__id__exact": store.pk,
            "template_code": "order_cancelled",
        },
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [email]
    response = staff_client.get(url, {"status__exact": "sent"})
    assert list(response.context["cl"].result_list) == []


def test_outbox_detail_shows_the_rendered_message_read_only(staff_client, store, broker):
    email = _uncertain_email(store)
    response = staff_client.get(
        reverse("admin:notifications_outboundemail_change", args=[email.pk])
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Your order A-1 has been cancelled" in page
    assert 'sandbox=""' in page
    assert 'name="_save"' not in page


def test_resend_action_queues_a_new_row_and_refuses_a_double_click(
    staff_client, platform_admin, store, broker, django_capture_on_commit_callbacks
):
    email = _uncertain_email(store)
    url = reverse("admin:notifications_outboundemail_changelist")
    data = {"action": "resend", "_selected_action": [email.pk]}
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url, data)
        staff_client.post(url, data)

    resend = OutboundEmail.objects.get(resend_of=email)
    assert resend.status == Status.QUEUED
    assert resend.created_by == platform_admin
    assert (resend.to, resend.template_code, resend.context) == (
        email.to,
        email.template_code,
        email.context,
    )
    assert [m["args"] for m in broker.published] == [[resend.pk]]
    email.refresh_from_db()
    assert email.status == Status.UNCERTAIN  # the original stays as it was


def test_template_change_page_previews_sample_data(staff_client):
    template = EmailTemplate.objects.get(code="order_confirmation", language="de", store=None)
    response = staff_client.get(
        reverse("admin:notifications_emailtemplate_change", args=[template.pk])
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "[TEST] Ihre Bestellung LUX-2026-000123 bei Lux Shop" in page
    assert "Riesling Grand Premier Cru 2022" in page


def test_send_test_email_action_goes_through_the_outbox(
    staff_client, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    template = EmailTemplate.objects.get(code="order_shipped", language="fr", store=None)
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:notifications_emailtemplate_changelist"),
            {"action": "send_test_email", "_selected_action": [template.pk]},
        )
    assert worker() == ["sent"]
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["admin@wizamart.lu"]
    assert received.subject == "[TEST] Votre commande LUX-2026-000123 est en route"


def test_beat_runs_the_outbox_sweep_every_minute(settings):
    import notifications.tasks  # noqa: F401  (registers the tasks; other apps' are not needed)
    from wizamart.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["notifications-sweep-outbox"]
    assert entry["task"] == "notifications.tasks.sweep_outbox"
    assert entry["schedule"] == 60.0
    assert "notifications.tasks.sweep_outbox" in app.tasks
    assert "notifications.tasks.send_email" in app.tasks
