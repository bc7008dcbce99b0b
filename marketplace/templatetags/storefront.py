"""Storefront template helpers: sanitised product HTML, money, dates, product texts, stock
badges."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import nh3
from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.formats import number_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from marketplace.models import Product, ProductTranslation
from marketplace.money import round_money

register = template.Library()

# What a feed description may keep: text structure and emphasis, lists, links. Everything
# else (scripts, styles, event handlers, iframes, images) is dropped by nh3.
ALLOWED_TAGS = {
    "p", "br", "b", "strong", "i", "em", "u", "ul", "ol", "li", "h3", "h4", "h5",
    "blockquote", "span", "small", "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}


@register.filter
def sanitize_html(value: str | None) -> SafeString:
    """Feed HTML made safe to render: allowed tags only, links marked rel="noopener nofollow"."""
    if not value:
        return mark_safe("")  # noqa: S308 - empty string
    cleaned = nh3.clean(
        str(value),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - nh3 output is sanitised


@register.filter
def money(value: Decimal | None, currency: str = "EUR") -> str:
    """12.5 -> "12.50 €" (decimal separator of the active language)."""
    if value is None or value == "":
        return ""
    symbol = "€" if currency in ("", "EUR") else currency
    return f"{number_format(round_money(Decimal(value)), 2)} {symbol}"


def _language() -> str:
    return (get_language() or "en").split("-")[0]


# Day, month name, year: never 12/03/2026, which reads as two different days.
LONG_DATE_FORMATS = {"de": "j. F Y"}
LONG_DATE_FORMAT = "j F Y"


@register.filter
def long_date(value: date | datetime | None) -> str:
    """3 December 2026, 3 décembre 2026, 3. Dezember 2026 (local date of a datetime)."""
    if not value:
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return format_date(value, LONG_DATE_FORMATS.get(_language(), LONG_DATE_FORMAT))


@register.filter
def product_text(product: Product) -> ProductTranslation | None:
    """The product's title and description in the active language, with fallback."""
    return product.translation(_language())


@register.filter
def product_title(product: Product) -> str:
    text = product.translation(_language())
    return text.title if text is not None and text.title else product.sku


@register.filter
def stock_status(product: Product) -> str:
    """in_stock, out_of_stock, preorder or backorder, from availability and units left."""
    if product.availability in (Product.Availability.PREORDER, Product.Availability.BACKORDER):
        return product.availability
    if product.availability == Product.Availability.OUT_OF_STOCK:
        return "out_of_stock"
    available = getattr(product, "available", None)
    if available is None:
        try:
            available = product.stock.available
        except Product.stock.RelatedObjectDoesNotExist:
            available = 0
    return "in_stock" if available > 0 else "out_of_stock"


@register.filter
def on_sale(product: Product) -> bool:
    return product.current_price < product.price
