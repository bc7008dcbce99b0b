"""Platform staff pages under /admin/imports/."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from imports.feeds import FeedError
from imports.services import import_product_feed
from marketplace.models import Language, Store


class FeedUploadForm(forms.Form):
    store = forms.ModelChoiceField(queryset=Store.objects.order_by("name"), to_field_name="code")
    language = forms.ChoiceField(choices=Language.choices, initial=Language.EN)
    file = forms.FileField(
        help_text=_("Letzshop/Google Shopping feed (TSV or CSV) or Shopify product export CSV.")
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        return upload


@staff_member_required
def upload_feed(request):
    """Upload a product feed into a store and show the import report.

    The import runs in the request (files here are small; big feeds go through the
    command); it is idempotent, so uploading the same file twice changes nothing.
    """
    report = None
    if request.method == "POST":
        form = FeedUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = import_product_feed(
                    form.cleaned_data["store"],
                    upload.open("rb"),
                    language=form.cleaned_data["language"],
                    actor=request.user,
                )
            except FeedError as exc:
                form.add_error("file", str(exc))
    else:
        form = FeedUploadForm()
    context = {
        **admin.site.each_context(request),
        "title": _("Import products"),
        "form": form,
        "report": report,
        "store": form.cleaned_data.get("store") if form.is_bound and report else None,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "imports/upload.html", context, status=status)
