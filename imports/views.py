"""Platform staff pages under /admin/imports/, and the public feed Letzshop polls."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from imports import selectors
from imports.models import ImportJob
from imports.services import (
    FeedError,
    check_feed_url,
    create_import_job,
    export_feed_lines,
    feed_token_matches,
    rejected_lines_csv,
)
from marketplace.models import LANGUAGE_CODES, Language, Store


class FeedUploadForm(forms.Form):
    store = forms.ModelChoiceField(queryset=Store.objects.order_by("name"), to_field_name="code")
    language = forms.ChoiceField(choices=Language.choices, initial=Language.EN)
    file = forms.FileField(
        required=False,
        help_text=_(
            "Letzshop/Google Shopping feed (TSV or CSV), Shopify product export CSV, or a "
            "stock and price file (sku;quantity;price)."
        ),
    )
    source_url = forms.URLField(
        required=False,
        max_length=1000,
        assume_scheme="https",
        label=_("or feed URL"),
        help_text=_("Downloaded by the worker instead of an uploaded file."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload is not None and upload.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        return upload

    def clean_source_url(self):
        # Said at once here; the worker checks every connection again when it downloads.
        url = self.cleaned_data["source_url"]
        if url:
            try:
                check_feed_url(url)
            except FeedError as exc:
                raise forms.ValidationError(str(exc)) from None
        return url

    def clean(self):
        data = super().clean()
        if not self.errors and bool(data.get("file")) == bool(data.get("source_url")):
            raise forms.ValidationError(_("Give either a file or a feed URL."))
        return data


def start_import(form: FeedUploadForm, user) -> ImportJob:
    """`create_import_job` from a valid FeedUploadForm (or a subclass with a `kind`)."""
    data = form.cleaned_data
    return create_import_job(
        data["store"],
        file=data["file"] or None,
        source_url=data["source_url"],
        language=data["language"],
        kind=data.get("kind", ""),
        created_by=user,
    )


@staff_member_required
def upload_feed(request):
    """Create an ImportJob from an uploaded file or a URL, then show its progress page
    (the job's admin page). The import runs in the `imports` Celery queue."""
    if request.method == "POST":
        form = FeedUploadForm(request.POST, request.FILES)
        if form.is_valid():
            job = start_import(form, request.user)
            return redirect("admin:imports_importjob_change", job.pk)
    else:
        form = FeedUploadForm()
    context = {**admin.site.each_context(request), "title": _("Import products"), "form": form}
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "imports/upload.html", context, status=status)


@never_cache
@staff_member_required
def job_progress(request, public_id):
    """The job's progress as JSON, polled by static/imports/progress.js."""
    return progress_response(get_object_or_404(ImportJob, public_id=public_id))


@staff_member_required
def job_errors_csv(request, public_id):
    """The job's rejected lines as a CSV download (formulas escaped)."""
    return rejected_lines_response(get_object_or_404(ImportJob, public_id=public_id))


class FeedExportForm(forms.Form):
    store = forms.ModelChoiceField(queryset=Store.objects.order_by("name"), to_field_name="code")
    language = forms.ChoiceField(choices=Language.choices, initial=Language.EN)


def feed_response(store: Store, language: str, *, download: bool) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        export_feed_lines(store, language), content_type="text/tab-separated-values; charset=utf-8"
    )
    if download:
        response["Content-Disposition"] = f'attachment; filename="{store.code}-{language}.tsv"'
    return response


@staff_member_required
def export_feed(request):
    """Download a store's catalogue as a Letzshop / Google Shopping feed (TSV)."""
    form = FeedExportForm(request.GET or None)
    if form.is_valid():
        return feed_response(
            form.cleaned_data["store"], form.cleaned_data["language"], download=True
        )
    context = {**admin.site.each_context(request), "title": _("Export products"), "form": form}
    return render(request, "imports/export.html", context, status=400 if form.errors else 200)


@require_GET
def public_feed(request, store_code: str, language: str) -> HttpResponse:
    """`/feeds/<store code>/<language>.tsv?token=...`: the feed Letzshop polls. 404 for
    an unknown store or language and for a missing or wrong token (nothing revealed)."""
    if language not in LANGUAGE_CODES:
        raise Http404
    store = Store.objects.filter(code=store_code, is_active=True).first()
    if store is None or not feed_token_matches(store, request.GET.get("token", "")):
        raise Http404
    return feed_response(store, language, download=False)


# --- pieces reused by every site that shows jobs (platform admin, store back office) -----
# The caller has already checked that the user may see `job` / `store`.

ERRORS_SHOWN = 500


def progress_context(job: ImportJob, *, progress_url: str = "") -> dict:
    """Template context for `imports/_job_progress.html`. Another admin site passes a
    progress URL it serves (see `progress_response`); the default is the staff one."""
    return {
        "job": job,
        "progress_url": progress_url or reverse("imports:job_progress", args=[job.public_id]),
    }


def rejected_lines_context(job: ImportJob, *, errors_csv_url: str) -> dict:
    """Template context for `imports/_rejected_lines.html`: the first ERRORS_SHOWN lines
    (one query) and whether there are more."""
    errors = list(job.row_errors.order_by("line", "id")[: ERRORS_SHOWN + 1])
    return {
        "row_errors": errors[:ERRORS_SHOWN],
        "more_errors": len(errors) > ERRORS_SHOWN,
        "errors_csv_url": errors_csv_url,
    }


def progress_response(job: ImportJob) -> JsonResponse:
    """The job's progress as JSON, as static/imports/progress.js polls it."""
    return JsonResponse(selectors.job_progress(job))


def rejected_lines_response(job: ImportJob) -> StreamingHttpResponse:
    """The job's rejected lines as a CSV download (formulas escaped)."""
    response = StreamingHttpResponse(rejected_lines_csv(job), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="rejected-lines-{job.public_id}.csv"'
    return response
