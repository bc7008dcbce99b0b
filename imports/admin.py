"""Platform admin: import jobs with a live progress bar, feed export tokens."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from imports.models import FeedExportToken, ImportJob
from imports.services import rotate_feed_export_token, run_job_again
from imports.views import progress_context

ERRORS_SHOWN = 500


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "created_at", "store", "kind", "source_name", "status", "rows_read", "rows_created",
        "rows_updated", "rows_unchanged", "rows_rejected",
    ]  # fmt: skip
    list_filter = ["status", "kind", "source"]
    search_fields = ["store__code", "original_name", "source_url", "public_id"]
    list_select_related = ["store"]
    date_hierarchy = "created_at"
    actions = ["run_again"]
    change_form_template = "imports/admin/importjob_change_form.html"
    fields = [
        "public_id", "store", "kind", "source", "source_url", "file", "original_name",
        "format", "encoding", "delimiter", "language", "status", "error_message",
        ("rows_read", "rows_created", "rows_updated", "rows_unchanged", "rows_rejected"),
        ("bytes_read", "bytes_total"), "runs", "task_id", "created_by",
        ("created_at", "started_at", "finished_at"),
    ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request):
        return False  # jobs start from the upload page

    def has_change_permission(self, request, obj=None):
        return False  # written by the worker only

    @admin.display(description=_("File or URL"))
    def source_name(self, job):
        return job.original_name or job.source_url

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if job is not None:
            errors = list(job.row_errors.order_by("line", "id")[: ERRORS_SHOWN + 1])
            extra.update(progress_context(job))
            extra.update(
                row_errors=errors[:ERRORS_SHOWN],
                more_errors=len(errors) > ERRORS_SHOWN,
                errors_csv_url=reverse("imports:job_errors_csv", args=[job.public_id]),
            )
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(
        description=_(
            "Run again (also a job left running by a dead worker, or queued with its task lost)"
        )
    )
    def run_again(self, request, queryset):
        queued = running = 0
        for job in queryset:
            if run_job_again(job):
                queued += 1
            else:
                running += 1
        if queued:
            self.message_user(
                request,
                ngettext("%d job queued again.", "%d jobs queued again.", queued) % queued,
                messages.SUCCESS,
            )
        if running:
            self.message_user(
                request,
                ngettext(
                    "%d job not queued again: an import of its store is running now; "
                    "run it again once that one has finished.",
                    "%d jobs not queued again: an import of their store is running now; "
                    "run them again once it has finished.",
                    running,
                )
                % running,
                messages.WARNING,
            )


@admin.register(FeedExportToken)
class FeedExportTokenAdmin(admin.ModelAdmin):
    list_display = ["store", "feed_urls", "created_at", "rotated_at"]
    list_select_related = ["store"]
    readonly_fields = ["token", "created_at", "rotated_at", "feed_urls"]
    actions = ["rotate"]

    @admin.display(description=_("Feed URLs for Letzshop"))
    def feed_urls(self, token):
        if not token.pk:
            return "-"
        urls = [
            reverse("feeds:public_feed", args=[token.store.code, language])
            + f"?token={token.token}"
            for language in token.store.languages
        ]
        return format_html("<br>".join(["{}"] * len(urls)), *urls)

    @admin.action(description=_("Rotate the token (old feed URLs stop working)"))
    def rotate(self, request, queryset):
        for token in queryset.select_related("store"):
            rotate_feed_export_token(token.store)
        self.message_user(request, _("Tokens rotated."), messages.SUCCESS)
