"""Django's password reset, with the email going through the outbox."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from notifications import services
from notifications.models import OutboundEmail


def test_password_reset_link_sent_through_the_outbox_lets_the_user_set_a_password(
    client, shopper, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("notifications:password_reset"),
            {"email": "shopper@example.lu"},
            HTTP_ACCEPT_LANGUAGE="fr",
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:password_reset_done")

    email = OutboundEmail.objects.get()
    assert (email.to, email.template_code, email.language) == (
        "shopper@example.lu",
        "password_reset",
        "fr",
    )
    assert worker() == ["sent"]

    [received] = smtp_server.messages
    assert received.subject == "Réinitialisez votre mot de passe Wizamart"
    assert received.message["Message-ID"] == f"<outbox-{email.pk}@wizamart.lu>"
    text = received.part("text/plain")
    assert "Bonjour Anna," in text
    link = re.search(r"http://127\.0\.0\.1:8000(/account/reset/\S+/\S+/)", text).group(1)
    assert link in received.part("text/html")

    response = client.get(link)
    assert response.status_code == 302  # Django swaps the token for a session marker
    response = client.get(response["Location"])
    assert response.status_code == 200
    assert response.context["validlink"] is True

    response = client.post(
        response.wsgi_request.path,
        {"new_password1": "a-much-better-passphrase", "new_password2": "a-much-better-passphrase"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:password_reset_complete")
    shopper.refresh_from_db()
    assert shopper.check_password("a-much-better-passphrase")

    # The link was a credential: it is not kept on the row once sent, nor resendable.
    email.refresh_from_db()
    assert email.context == services.REDACTED_CONTEXT
    assert email.body_text == "" and email.body_html == ""
    with pytest.raises(services.ResendRefused):
        services.resend_email(email)


def test_password_reset_for_an_unknown_address_queues_nothing_and_says_the_same(
    client, shopper, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("notifications:password_reset"), {"email": "nobody@example.lu"}
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:password_reset_done")
    assert OutboundEmail.objects.count() == 0
    assert broker.published == []


def test_password_reset_pages_render(client, db):
    assert client.get(reverse("notifications:password_reset")).status_code == 200
    assert client.get(reverse("notifications:password_reset_done")).status_code == 200
    assert client.get(reverse("notifications:password_reset_complete")).status_code == 200
