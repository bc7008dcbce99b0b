"""Storefront pages."""

from django.conf import settings


def storefront_context(request) -> dict:
    """Template context shared by every storefront page."""
    return {"LANGUAGES": settings.LANGUAGES}
