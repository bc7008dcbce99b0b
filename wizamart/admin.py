"""The platform admin site: Django's, with a guard every admin page shares."""

from __future__ import annotations

from functools import wraps

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.apps import AdminConfig
from django.http import HttpResponseBadRequest


def refuse_malformed_selection(view):
    """Answer 400 to a bulk action naming a row id that is not a number.

    Every model here has integer ids; Django's admin would pass such a value to the
    database filter and fail with a 500.
    """

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if request.method == "POST":
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            if not all(value.isascii() and value.isdigit() for value in selected):
                return HttpResponseBadRequest(
                    "Bad request: selected rows are named by their numeric ids.",
                    content_type="text/plain; charset=utf-8",
                )
        return view(request, *args, **kwargs)

    return guarded


class WizamartAdminSite(admin.AdminSite):
    """`admin.site` (its titles are set in marketplace.admin, translated)."""

    def admin_view(self, view, cacheable=False):
        return super().admin_view(refuse_malformed_selection(view), cacheable)


class WizamartAdminConfig(AdminConfig):
    default_site = "wizamart.admin.WizamartAdminSite"
