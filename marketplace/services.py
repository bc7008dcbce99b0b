"""Marketplace writes: catalogue and stock. Every change of these rows goes through here."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.html import strip_tags

from marketplace.models import (
    LANGUAGE_CODES,
    Product,
    ProductTranslation,
    Stock,
    StockMovement,
    Store,
)


class DomainError(Exception):
    """A rule of the domain refused the request. The message is shown to the user as is."""


class NotEnoughStock(DomainError):
    pass


# --- catalogue ------------------------------------------------------------------------

PRODUCT_FIELDS = {
    "gtin",
    "gtin_type",
    "brand",
    "mpn",
    "price",
    "sale_price",
    "currency",
    "vat_rate",
    "condition",
    "availability",
    "is_active",
    "group_id",
    "product_type",
    "google_product_category",
    "link",
    "image_url",
    "additional_image_urls",
    "attributes",
}


@dataclass(frozen=True)
class UpsertResult:
    product: Product
    outcome: str  # "created", "updated" or "unchanged"


def build_search_document(product: Product, translations: list[ProductTranslation]) -> str:
    """The plain text that full-text search indexes: titles and descriptions in every
    language, brand, GTIN and SKU."""
    parts = [product.sku, product.gtin, product.brand, product.mpn]
    for translation in sorted(translations, key=lambda t: t.language):
        parts.append(translation.title)
        parts.append(strip_tags(translation.description))
    return " ".join(p.strip() for p in parts if p and p.strip())


@transaction.atomic
def upsert_product(
    store: Store,
    sku: str,
    *,
    translations: dict[str, dict[str, str]],
    on_hand: int | None = None,
    actor=None,
    **fields: Any,
) -> UpsertResult:
    """Create or update the product (store, sku) with `fields`, the given translations
    ({"en": {"title": ..., "description": ...}}) and, when `on_hand` is given, its stock.

    Writes only what differs; a call that changes nothing reports "unchanged" and writes
    nothing (no stock movement, no `updated_at` bump). Languages not given are left as
    they are. Raises ValueError on an unknown field or language.
    """
    unknown = set(fields) - PRODUCT_FIELDS
    if unknown:
        raise ValueError(f"unknown product fields: {', '.join(sorted(unknown))}")
    bad_languages = set(translations) - set(LANGUAGE_CODES)
    if bad_languages:
        raise ValueError(f"unknown languages: {', '.join(sorted(bad_languages))}")

    fields.setdefault("currency", store.currency)
    product = Product.objects.select_for_update().filter(store=store, sku=sku).first()
    created = product is None
    changed_fields: list[str] = []
    if created:
        fields.setdefault("vat_rate", store.default_vat_rate)
        product = Product(store=store, sku=sku, **fields)
    else:
        for name, value in fields.items():
            if _differs(getattr(product, name), value):
                setattr(product, name, value)
                changed_fields.append(name)

    existing = {} if created else {t.language: t for t in product.translations.all()}
    translations_changed = False
    pending: list[ProductTranslation] = []
    for language, text in translations.items():
        title = (text.get("title") or "").strip()
        description = text.get("description") or ""
        current = existing.get(language)
        if current is None:
            current = ProductTranslation(language=language, title=title, description=description)
            existing[language] = current
            pending.append(current)
            translations_changed = True
        elif current.title != title or current.description != description:
            current.title, current.description = title, description
            pending.append(current)
            translations_changed = True

    document = build_search_document(product, list(existing.values()))
    if document != product.search_document:
        product.search_document = document
        if not created:
            changed_fields.append("search_document")

    if created:
        product.save()
    elif changed_fields or translations_changed:
        product.save(update_fields=[*changed_fields, "updated_at"])
    for translation in pending:
        translation.product = product
        translation.save()

    stock_changed = False
    if created:
        Stock.objects.create(product=product)
    if on_hand is not None:
        stock_changed = set_stock_on_hand(
            product, on_hand, kind=StockMovement.Kind.IMPORT, actor=actor
        )

    if created:
        outcome = "created"
    elif changed_fields or translations_changed or stock_changed:
        outcome = "updated"
    else:
        outcome = "unchanged"
    return UpsertResult(product=product, outcome=outcome)


def _differs(current: Any, new: Any) -> bool:
    if isinstance(current, Decimal) or isinstance(new, Decimal):
        if current is None or new is None:
            return current is not new
        return Decimal(current) != Decimal(new)
    return current != new


# --- stock ----------------------------------------------------------------------------


def _record_movement(
    stock: Stock,
    kind: str,
    *,
    on_hand_delta: int,
    reserved_delta: int,
    order=None,
    actor=None,
    note: str = "",
) -> StockMovement:
    return StockMovement.objects.create(
        product_id=stock.product_id,
        kind=kind,
        on_hand_delta=on_hand_delta,
        reserved_delta=reserved_delta,
        on_hand_after=stock.on_hand,
        reserved_after=stock.reserved,
        order=order,
        actor=actor,
        note=note,
    )


@transaction.atomic
def set_stock_on_hand(
    product: Product,
    on_hand: int,
    *,
    kind: str = StockMovement.Kind.ADJUST,
    actor=None,
    note: str = "",
) -> bool:
    """Set the units on hand to `on_hand` under a row lock and record the movement.

    Returns False (and writes nothing) when it already is. Raises DomainError when the
    new level is negative or below the units reserved by open orders.
    """
    if on_hand < 0:
        raise DomainError(f"Stock on hand cannot be negative (got {on_hand}).")
    stock, _ = Stock.objects.get_or_create(product=product)
    stock = Stock.objects.select_for_update().get(pk=stock.pk)
    if stock.on_hand == on_hand:
        return False
    if on_hand < stock.reserved:
        raise DomainError(
            f"{product.sku}: cannot set stock to {on_hand}, {stock.reserved} units are reserved by open orders."
        )
    delta = on_hand - stock.on_hand
    stock.on_hand = on_hand
    stock.save(update_fields=["on_hand", "updated_at"])
    product.stock = stock
    _record_movement(stock, kind, on_hand_delta=delta, reserved_delta=0, actor=actor, note=note)
    return True
