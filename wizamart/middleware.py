"""Request guards that apply to every page and endpoint."""

from __future__ import annotations

from django.http import HttpResponseBadRequest


class RejectNulQueryMiddleware:
    """Answer 400 to a query string holding a NUL character.

    PostgreSQL text cannot contain NUL, so such a value reaching a filter (a storefront
    facet, an admin list filter) would fail in the database as a 500. No legitimate
    link carries one, so it is refused here once for every view.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest(
                "Bad request: a query parameter contains a NUL character.",
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
