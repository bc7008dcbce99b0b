"""The set-based product writer: what it writes for existing products."""

from __future__ import annotations

from decimal import Decimal

from imports.services import import_product_feed
from marketplace.models import Product, StockMovement
from marketplace.services import build_search_document


def test_search_document_of_an_updated_product_covers_every_language(store):
    import_product_feed(store, b"id\ttitle\tprice\nJAM-1\tStrawberry jam\t4.20 EUR\n")
    import_product_feed(store, b"id\ttitle\tprice\nJAM-1\tConfiture\t4.20 EUR\n", language="fr")

    report = import_product_feed(
        store, b"id\ttitle\tprice\tbrand\nJAM-1\tConfiture <b>maison</b>\t4.20 EUR\tMamm\n",
        language="fr",
    )  # fmt: skip

    assert (report.updated, report.unchanged) == (1, 0)
    jam = Product.objects.get(store=store, sku="JAM-1")
    assert jam.search_document == build_search_document(jam, list(jam.translations.all()))
    assert jam.search_document == "JAM-1 Mamm Strawberry jam Confiture <b>maison</b>"


def test_changed_rows_are_written_and_the_others_left_alone(store):
    feed = "id,title,price,quantity\n" + "".join(f"P-{n},Pear {n},1.00,5\n" for n in range(4))
    import_product_feed(store, feed.encode())
    stamps = dict(Product.objects.values_list("sku", "updated_at"))

    changed = feed.replace("P-1,Pear 1,1.00,5", "P-1,Pear 1,1.50,5").replace(
        "P-2,Pear 2,1.00,5", "P-2,Pear 2,1.00,9"
    )
    report = import_product_feed(store, changed.encode())

    assert (report.created, report.updated, report.unchanged) == (0, 2, 2)
    after = dict(Product.objects.values_list("sku", "updated_at"))
    assert [sku for sku in sorted(after) if after[sku] != stamps[sku]] == ["P-1"]
    assert Product.objects.get(sku="P-1").price == Decimal("1.50")
    movement = StockMovement.objects.filter(product__sku="P-2").first()
    assert (movement.kind, movement.on_hand_delta, movement.on_hand_after) == ("import", 4, 9)
    assert StockMovement.objects.count() == 5
