"""Staff views of email templates and the outbox. The outbox is read-only: staff act on it
through actions that call services (resend creates a new row)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from notifications import selectors, services
from notifications.models import EmailTemplate, OutboundEmail


def _preview(subject: str, text: str, html: str):
    return format_html(
        '<div style="max-width:900px"><p><strong>{}</strong></p>'
        '<pre style="white-space:pre-wrap;border:1px solid #ccc;padding:8px">{}</pre>'
        "{}</div>",
        subject,
        text,
        format_html(
            '<iframe sandbox="" srcdoc="{}" style="width:100%;height:480px;border:1px solid #ccc">'
            "</iframe>",
            html,
        )
        if html
        else "",
    )


def _render_preview(render):
    try:
        rendered = render()
    except (services.EmailRenderError, services.UnknownEmailTemplate) as exc:
        return format_html('<p class="errornote">{}</p>', str(exc))
    return format_html(
        "<p>{}</p>{}",
        _("Rendered from {} in {}.").format(rendered.origin, rendered.language),
        _preview(rendered.subject, rendered.text, rendered.html),
    )


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["code", "language", "store", "subject", "updated_at"]
    list_filter = ["code", "language", ("store", admin.EmptyFieldListFilter)]
    search_fields = ["code", "subject", "store__code", "store__name"]
    readonly_fields = ["preview", "updated_at"]
    fields = ["code", "language", "store", "subject", "body_text", "body_html", "preview"]
    actions = ["send_test_email"]

    @admin.display(description=_("Preview on sample data"))
    def preview(self, obj: EmailTemplate):
        if obj.pk is None:
            return _("Save to see a preview.")
        context = {**selectors.sample_context(obj.code), "is_test": True}

        source = selectors.TemplateSource(
            subject=obj.subject,
            body_text=obj.body_text,
            body_html=obj.body_html,
            language=obj.language,
            origin=str(obj),
        )
        return _render_preview(
            lambda: services.render_source(source, store=obj.store, context=context)
        )

    @admin.action(description=_("Send a test email (sample data) to me"), permissions=["view"])
    def send_test_email(self, request, queryset):
        if not request.user.email:
            self.message_user(request, _("Your account has no email address."), messages.ERROR)
            return
        for template in queryset:
            row = services.queue_test_email(template, to=request.user.email, actor=request.user)
            self.message_user(request, _("Queued test email #%s.") % row.pk, messages.SUCCESS)


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "to",
        "template_code",
        "language",
        "store",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "resend_of",
    ]
    list_filter = ["status", "template_code", "language", "store"]
    search_fields = ["to", "message_id", "provider_message_id", "dedupe_key"]
    list_select_related = ["store", "resend_of"]
    date_hierarchy = "created_at"
    actions = ["resend"]
    fields = [
        "to",
        "template_code",
        "language",
        "store",
        "status",
        "attempts",
        "last_error",
        "message_id",
        "provider_message_id",
        "dedupe_key",
        "resend_of",
        "resends_list",
        "created_by",
        "created_at",
        "available_at",
        "claimed_at",
        "sent_at",
        "context",
        "rendered_message",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("Resent as"))
    def resends_list(self, obj: OutboundEmail):
        return ", ".join(f"#{r.pk} ({r.status})" for r in obj.resends.all()) or "-"

    @admin.display(description=_("Message"))
    def rendered_message(self, obj: OutboundEmail):
        if obj.subject and (obj.body_text or obj.body_html):
            return format_html(
                "<p>{}</p>{}",
                _("As sent."),
                _preview(obj.subject, obj.body_text, obj.body_html),
            )
        if obj.context == services.REDACTED_CONTEXT:
            return _("Not kept: this email carried a one-time link.")
        return _render_preview(lambda: services.render_outbound_email(obj))

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("notifications.change_outboundemail")

    @admin.action(description=_("Resend (queues a new email)"), permissions=["resend"])
    def resend(self, request, queryset):
        for original in queryset:
            try:
                row = services.resend_email(original, actor=request.user)
            except services.ResendRefused as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                self.message_user(
                    request, _("#%(old)s resent as #%(new)s.") % {"old": original.pk, "new": row.pk}
                )
