from __future__ import annotations

from decimal import Decimal

import pytest

from imports.feeds import FeedError, RowError, gtin_type, parse_price
from imports.services import import_product_feed
from marketplace.models import Product, ProductTranslation, Stock, StockMovement
from tests.conftest import FEEDS_DIR
from tests.imports.conftest import QUIRKY_FEED


def _product(store, sku: str) -> Product:
    return Product.objects.select_related("stock").get(store=store, sku=sku)


def _on_hand_total(store) -> int:
    return sum(Stock.objects.filter(product__store=store).values_list("on_hand", flat=True))


# --- the real Shopify exports ---------------------------------------------------------


def test_shopify_apparel_export_imports_every_variant(store):
    report = import_product_feed(store, FEEDS_DIR / "shopify-apparel.csv")

    assert (report.format, report.read, report.created, report.rejected) == ("shopify", 22, 22, 0)
    assert report.errors == []
    assert Product.objects.filter(store=store).count() == 22
    assert _on_hand_total(store) == 22
    shirt = _product(store, "ocean-blue-shirt")
    assert (shirt.price, shirt.sale_price, shirt.stock.on_hand) == (Decimal("50.00"), None, 1)
    assert shirt.brand == "partners-demo"
    assert shirt.group_id == "ocean-blue-shirt"
    assert shirt.translation("en").title == "Ocean Blue Shirt"
    assert shirt.attributes["Tags"] == "men"
    assert "options" not in shirt.attributes
    assert sorted(
        Product.objects.filter(store=store, group_id="classic-varsity-top").values_list(
            "sku", flat=True
        )
    ) == ["classic-varsity-top-large", "classic-varsity-top-medium", "classic-varsity-top-small"]
    large = _product(store, "classic-varsity-top-large")
    assert large.translation("en").title == "Classic Varsity Top - Large"
    assert large.attributes["options"] == {"Size": "Large"}
    assert large.price == Decimal("60.00")
    # the continuation row has no image of its own: the handle's image is used
    assert large.image_url.endswith("casual-fashion-woman_925x.jpg")


def test_shopify_home_and_garden_export_reads_sales_and_stock(store):
    report = import_product_feed(store, FEEDS_DIR / "shopify-home-and-garden.csv")

    assert (report.read, report.created, report.rejected) == (21, 21, 0)
    assert Product.objects.filter(store=store).count() == 21
    assert Product.objects.filter(store=store, sale_price__isnull=False).count() == 16
    assert _on_hand_total(store) == 65
    light = _product(store, "copper-light")
    assert (light.price, light.sale_price, light.current_price, light.stock.on_hand) == (
        Decimal("75.00"),
        Decimal("59.99"),
        Decimal("59.99"),
        2,
    )
    armchair = _product(store, "pink-armchair")
    assert (armchair.price, armchair.stock.on_hand, armchair.availability) == (
        Decimal("750.00"),
        0,
        Product.Availability.OUT_OF_STOCK,
    )
    pot = _product(store, "clay-plant-pot-large")
    assert (pot.price, pot.sale_price, pot.stock.on_hand) == (Decimal("15.99"), None, 3)
    # no Variant Image: the handle's first image; its other images are additional
    assert pot.image_url == "https://burst.shopifycdn.com/photos/single-sprout-in-a-pot_925x.jpg"
    assert pot.additional_image_urls == [
        "https://burst.shopifycdn.com/photos/pot-with-a-single-sprout_925x.jpg"
    ]


def test_shopify_jewelery_export_with_multiline_html_and_image_rows(store):
    report = import_product_feed(store, FEEDS_DIR / "shopify-jewelery.csv")

    assert (report.read, report.created, report.rejected) == (23, 23, 0)
    assert Product.objects.filter(store=store).count() == 23
    assert _on_hand_total(store) == 20
    black = _product(store, "chain-bracelet-black")
    assert (black.price, black.sale_price, black.stock.on_hand) == (
        Decimal("44.99"),
        Decimal("42.99"),
        0,
    )
    assert black.translation("en").title == "7 Shakra Bracelet - Black"
    assert black.attributes["options"] == {"Color": "Black"}
    silver = _product(store, "leather-anchor-silver")
    assert (silver.price, silver.sale_price) == (Decimal("85.00"), Decimal("55.00"))
    gemstone = _product(store, "gemstone-blue")
    assert len(gemstone.additional_image_urls) == 3
    pendant = _product(store, "choker-with-gold-pendant")
    assert (pendant.price, pendant.sale_price) == (Decimal("29.99"), None)
    assert "<li>14k yellow gold</li>" in pendant.translation("en").description
    assert pendant.product_type == "Necklace"
    assert pendant.brand == "Company 123"


def test_all_three_real_files_into_three_stores(make_store):
    counts = {}
    for name in ("shopify-apparel.csv", "shopify-home-and-garden.csv", "shopify-jewelery.csv"):
        store = make_store()
        import_product_feed(store, FEEDS_DIR / name)
        counts[name] = Product.objects.filter(store=store).count()
    assert counts == {
        "shopify-apparel.csv": 22,
        "shopify-home-and-garden.csv": 21,
        "shopify-jewelery.csv": 23,
    }
    assert Product.objects.count() == 66


def test_reimporting_a_real_file_changes_nothing(store):
    import_product_feed(store, FEEDS_DIR / "shopify-jewelery.csv")
    movements = StockMovement.objects.count()
    stamps = dict(Product.objects.values_list("sku", "updated_at"))

    again = import_product_feed(store, FEEDS_DIR / "shopify-jewelery.csv")

    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 23, 0)
    assert StockMovement.objects.count() == movements
    assert dict(Product.objects.values_list("sku", "updated_at")) == stamps


# --- a Letzshop feed with quirks ------------------------------------------------------


def test_quirky_letzshop_feed_keeps_good_rows_and_reports_bad_lines(store):
    report = import_product_feed(store, QUIRKY_FEED)

    assert (report.format, report.delimiter, report.encoding) == (
        "letzshop",
        ";",
        "windows-1252",
    )
    assert (report.read, report.created, report.updated, report.unchanged, report.rejected) == (
        6,
        2,
        0,
        0,
        4,
    )
    assert report.errors == [
        RowError(4, "price", "twelve EUR", "not a price"),
        RowError(5, "gtin", "4006381333932", "GTIN check digit is wrong"),
        RowError(6, "id", "CAFE-1", "duplicate SKU: already in this file (line 2)"),
        RowError(7, "price", "9.99 USD", "currency USD is not the store's currency EUR"),
    ]
    cafe = _product(store, "CAFE-1")
    assert cafe.translation("en").title == "Café noir"
    assert cafe.translation("en").description == "Dark roast\nfrom Lisbon"
    assert (cafe.price, cafe.gtin, cafe.gtin_type, cafe.stock.on_hand) == (
        Decimal("12.50"),
        "4006381333931",
        "ean13",
        5,
    )
    assert cafe.attributes == {"color": "brown"}
    tea = _product(store, "TEA-2")
    assert (tea.price, tea.sale_price, tea.gtin_type, tea.stock.on_hand, tea.availability) == (
        Decimal("3.50"),
        Decimal("2.90"),
        "ean8",
        0,
        "out_of_stock",
    )
    assert sorted(Product.objects.filter(store=store).values_list("sku", flat=True)) == [
        "CAFE-1",
        "TEA-2",
    ]


def test_reimporting_the_quirky_feed_is_all_unchanged_without_stock_movements(store):
    import_product_feed(store, QUIRKY_FEED)
    movements = StockMovement.objects.filter(product__store=store).count()

    again = import_product_feed(store, QUIRKY_FEED)

    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 2, 4)
    assert StockMovement.objects.filter(product__store=store).count() == movements == 1


def test_second_language_adds_translations_without_touching_prices(store):
    en = b"id\ttitle\tprice\tquantity\nJAM-1\tStrawberry jam\t4.20 EUR\t7\n"
    fr = b"id\ttitle\tprice\tquantity\nJAM-1\tConfiture de fraises\t4.20 EUR\t7\n"
    import_product_feed(store, en, language="en")

    report = import_product_feed(store, fr, language="fr")

    assert (report.updated, report.unchanged) == (1, 0)
    jam = _product(store, "JAM-1")
    assert dict(jam.translations.values_list("language", "title")) == {
        "en": "Strawberry jam",
        "fr": "Confiture de fraises",
    }
    assert StockMovement.objects.filter(product=jam).count() == 1


def test_pipe_delimited_feed_with_utf8_and_extra_columns(store):
    feed = "id|title|price|gtin|shelf\nBK-1|Ëmmer Lëtzebuerg|19.90 EUR|9780306406157|A3\n"
    report = import_product_feed(store, feed.encode("utf-8"))

    assert (report.delimiter, report.encoding, report.created) == ("|", "utf-8", 1)
    book = _product(store, "BK-1")
    assert (book.gtin_type, book.attributes) == ("isbn", {"shelf": "A3"})
    assert book.translation("en").title == "Ëmmer Lëtzebuerg"


def test_a_row_the_database_refuses_does_not_lose_the_others(store):
    feed = b"id,title,price,quantity\nA-1,Apple,1.00,5\nB-1,Pear,1.00,5\n"
    import_product_feed(store, feed)
    Stock.objects.filter(product__sku="A-1").update(reserved=4)
    lowered = b"id,title,price,quantity\nA-1,Apple,1.00,2\nB-1,Pear,1.00,3\n"

    report = import_product_feed(store, lowered)

    assert (report.updated, report.rejected) == (1, 1)
    assert report.errors[0].line == 2
    assert "4 units are reserved" in report.errors[0].reason
    assert _product(store, "A-1").stock.on_hand == 5
    assert _product(store, "B-1").stock.on_hand == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "not a text feed"),
        (b"name,cost\nMug,3\n", "Unrecognised header"),
        (b"just one column\nvalue\n", "single column"),
    ],
)
def test_unreadable_files_raise_and_write_nothing(store, data, message):
    with pytest.raises(FeedError, match=message):
        import_product_feed(store, data)
    assert Product.objects.count() == 0


def test_missing_file_raises_feed_error(store, tmp_path):
    with pytest.raises(FeedError, match="Cannot read"):
        import_product_feed(store, tmp_path / "nope.csv")


def test_unknown_language_is_refused(store):
    with pytest.raises(ValueError, match="unknown language"):
        import_product_feed(store, QUIRKY_FEED, language="lb")
    assert ProductTranslation.objects.count() == 0


# --- values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("12.50 EUR", "12.50"),
        ("12,50", "12.50"),
        ("EUR 1.234,50", "1234.50"),
        ("1,234.50 EUR", "1234.50"),
        ("7", "7.00"),
        ("3.5 €", "3.50"),
    ],
)
def test_prices_are_read(text, amount):
    assert parse_price(text, "EUR") == Decimal(amount)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("12.50 USD", "currency USD is not the store's currency EUR"),
        ("abc", "not a price"),
        ("1,234", "not a price"),
        ("-1.00", "price is negative"),
        ("1.005", "more than 2 decimal places"),
    ],
)
def test_bad_prices_are_refused_with_a_reason(text, reason):
    with pytest.raises(ValueError) as error:
        parse_price(text, "EUR")
    assert str(error.value) == reason


@pytest.mark.parametrize(
    ("gtin", "reason"),
    [
        ("400638133393", "GTIN check digit is wrong"),
        ("40063813339", "GTIN must have 8, 12, 13 or 14 digits, not 11"),
        ("40063813339A", "GTIN must contain digits only"),
    ],
)
def test_bad_gtins_are_refused_with_a_reason(gtin, reason):
    with pytest.raises(ValueError) as error:
        gtin_type(gtin)
    assert str(error.value) == reason


def test_gtin_types():
    assert [
        gtin_type(g)
        for g in ("96385074", "036000291452", "4006381333931", "9780306406157", "10614141000415")
    ] == ["ean8", "upc", "ean13", "isbn", "gtin14"]
