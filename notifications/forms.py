"""Forms of the notifications app."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.urls import reverse
from django.utils.translation import get_language

from notifications.services import queue_password_reset_email


class OutboxPasswordResetForm(PasswordResetForm):
    """Django's password reset, with the email queued in the outbox instead of sent inline.

    The link is built on WIZAMART_SITE_URL, never on the request's Host header.
    """

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        path = reverse(
            "notifications:password_reset_confirm",
            kwargs={"uidb64": context["uid"], "token": context["token"]},
        )
        user = context["user"]
        queue_password_reset_email(
            to=to_email,
            reset_url=settings.SITE_URL.rstrip("/") + path,
            username=user.get_username(),
            first_name=user.first_name,
            language=get_language(),
        )
