"""Request guards that apply to every page and endpoint."""

from __future__ import annotations

from django.http import HttpResponseBadRequest


class RejectNulQueryMiddleware:
    """Answer 400 to a query string or a cookie holding a NUL character.

    PostgreSQL text cannot contain NUL, so such a value reaching a filter (a storefront
    facet, an admin list filter) or a lookup (the session key) would fail in the
    database as a 500. No legitimate link or cookie carries one, so it is refused here
    once for every view.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if any("\x00" in key or "\x00" in "".join(values) for key, values in request.GET.lists()):
            return _bad_request("a query parameter contains a NUL character")
        if any("\x00" in key or "\x00" in value for key, value in request.COOKIES.items()):
            return _bad_request("a cookie contains a NUL character")
        return self.get_response(request)


def _bad_request(reason: str) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(
        f"Bad request: {reason}.", content_type="text/plain; charset=utf-8"
    )
