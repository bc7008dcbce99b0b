from decimal import Decimal

import pytest

from marketplace.models import Product, StockMovement
from marketplace.services import DomainError, set_stock_on_hand, upsert_product


def test_upsert_twice_with_same_data_is_unchanged_and_writes_nothing(store):
    kwargs = dict(
        translations={"en": {"title": "Mug", "description": "<p>Blue</p>"}},
        on_hand=5,
        price=Decimal("12.50"),
        brand="Villeroy",
    )
    first = upsert_product(store, "MUG-1", **kwargs)
    updated_at = Product.objects.get(pk=first.product.pk).updated_at

    second = upsert_product(store, "MUG-1", **kwargs)

    assert (first.outcome, second.outcome) == ("created", "unchanged")
    assert Product.objects.get(pk=first.product.pk).updated_at == updated_at
    assert StockMovement.objects.filter(product=first.product).count() == 1
    assert first.product.stock.on_hand == 5


def test_upsert_builds_searchable_document(store):
    product = upsert_product(
        store,
        "MUG-2",
        translations={"fr": {"title": "Tasse", "description": "<b>bleue</b>"}},
        price=Decimal("3.00"),
        gtin="4006381333931",
        brand="Acme",
    ).product
    assert Product.objects.filter(search_vector="bleue").get() == product
    assert Product.objects.filter(search_vector="4006381333931").get() == product


def test_stock_cannot_go_below_reserved(store, make_product):
    product = make_product(store, on_hand=3)
    product.stock.reserved = 2
    product.stock.save()
    with pytest.raises(DomainError, match="2 units are reserved"):
        set_stock_on_hand(product, 1)
    product.stock.refresh_from_db()
    assert (product.stock.on_hand, product.stock.reserved) == (3, 2)
