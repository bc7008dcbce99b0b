"""Account pages that send email: Django's password reset flow, through the outbox."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

from notifications.forms import OutboxPasswordResetForm


class PasswordResetView(auth_views.PasswordResetView):
    form_class = OutboxPasswordResetForm
    template_name = "notifications/password_reset_form.html"
    success_url = reverse_lazy("notifications:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "notifications/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "notifications/password_reset_confirm.html"
    success_url = reverse_lazy("notifications:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "notifications/password_reset_complete.html"
