"""Letzshop feed export: the round trip, the admin download and the polled URL."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from imports.models import FeedExportToken
from imports.services import (
    export_product_feed,
    feed_export_token,
    import_product_feed,
    rotate_feed_export_token,
)
from marketplace.models import Product, Stock
from tests.conftest import FEEDS_DIR

FEED_EN = (
    "id\ttitle\tdescription\tlink\timage_link\tadditional_image_link\tavailability\tprice\t"
    "sale_price\tbrand\tgtin\tmpn\tcondition\tgoogle_product_category\tproduct_type\t"
    "item_group_id\tquantity\tcolor\tmaterial\n"
    'MUG-1\t=1+1 mug\t"- dishwasher safe\n- 300 ml"\thttps://shop.lu/mug\t'
    "https://cdn.lu/mug.jpg\thttps://cdn.lu/mug-2.jpg,https://cdn.lu/mug-3.jpg\tin stock\t"
    "12.50 EUR\t9.90 EUR\t@Home\t4006381333931\tMG-300\tnew\tHome > Kitchen\tMugs\tMUGS\t7\t"
    "blue\tstoneware\n"
    "-TEA\t+Tea\t<p>Green &amp; fresh</p>\t\t\t\tpreorder\t3,00\t\t\t96385074\t\trefurbished"
    "\t\t\t\t0\t\t\n"
    'BOOK-1\tBook\t"A\ttab"\t\t\t\tbackorder\t19.90 EUR\t\tEditions\t9780306406157\t\tused\t'
    "\t\t\t2\t\tpaper\n"
)


def _translate(feed: str, language: str) -> str:
    return (
        feed.replace("=1+1 mug", f"=1+1 mug {language}")
        .replace("+Tea", f"+Tea {language}")
        .replace("\tBook\t", f"\tBook {language}\t")
    )


def _catalogue(store) -> dict:
    products = Product.objects.filter(store=store).prefetch_related("translations")
    skipped = {"id", "public_id", "store", "created_at", "updated_at", "search_vector", "image"}
    result = {}
    for p in products:
        values = {
            f.name: getattr(p, f.name)
            for f in Product._meta.concrete_fields
            if f.name not in skipped
        }
        values["translations"] = sorted(
            (t.language, t.title, t.description) for t in p.translations.all()
        )
        values["on_hand"] = Stock.objects.get(product=p).on_hand
        result[p.sku] = values
    return result


def _export(store, language: str) -> str:
    stream = io.StringIO()
    export_product_feed(store, language, stream)
    return stream.getvalue()


def test_exported_feed_imported_into_an_empty_store_gives_back_the_catalogue(make_store):
    source = make_store()
    for language in ("en", "fr", "de"):
        report = import_product_feed(
            source, _translate(FEED_EN, language).encode(), language=language
        )
        assert report.rejected == 0, report.errors
    # A reduced rate of its own (books: 3 %), not the store's default the copy would give.
    Product.objects.filter(store=source, sku="BOOK-1").update(vat_rate=Decimal("3.00"))
    copy = make_store()

    for language in ("en", "fr", "de"):
        report = import_product_feed(copy, _export(source, language).encode(), language=language)
        assert (report.read, report.rejected) == (3, 0)

    original = _catalogue(source)
    assert original["MUG-1"]["translations"][1] == (
        "en",
        "=1+1 mug en",
        "- dishwasher safe\n- 300 ml",
    )
    assert original["MUG-1"]["attributes"] == {"color": "blue", "material": "stoneware"}
    assert original["-TEA"]["brand"] == ""
    assert original["BOOK-1"]["attributes"] == {"material": "paper"}
    assert original["MUG-1"]["search_document"]
    assert (original["BOOK-1"]["vat_rate"], original["MUG-1"]["vat_rate"]) == (
        Decimal("3.00"),
        Decimal("17.00"),
    )
    assert _catalogue(copy) == original


def test_export_escapes_formulas_and_writes_prices_with_currency(store):
    import_product_feed(store, _translate(FEED_EN, "en").encode())
    rows = list(csv.reader(io.StringIO(_export(store, "en")), delimiter="\t"))
    header = rows[0]
    assert header[-2:] == ["color", "material"]
    by_sku = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert list(by_sku) == ["'-TEA", "BOOK-1", "MUG-1"]
    mug = by_sku["MUG-1"]
    assert (mug["title"], mug["description"], mug["brand"]) == (
        "'=1+1 mug en",
        "'- dishwasher safe\n- 300 ml",
        "'@Home",
    )
    assert (mug["price"], mug["sale_price"], mug["availability"], mug["quantity"]) == (
        "12.50 EUR",
        "9.90 EUR",
        "in stock",
        "7",
    )
    assert by_sku["'-TEA"]["title"] == "'+Tea en"


def test_export_leaves_out_inactive_products_and_falls_back_to_another_language(
    store, make_product
):
    make_product(store, "ON", title="Shown")
    make_product(store, "OFF", title="Hidden", is_active=False)
    rows = list(csv.reader(io.StringIO(_export(store, "de")), delimiter="\t"))
    assert [(row[0], row[1]) for row in rows[1:]] == [("ON", "Shown")]


def test_feed_url_needs_the_right_token(client, store, make_product):
    make_product(store, "A-1", title="Apple")
    token = feed_export_token(store).token
    url = f"/feeds/{store.code}/en.tsv"

    response = client.get(url, {"token": token})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/tab-separated-values; charset=utf-8"
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[1].split("\t")[:2] == ["A-1", "Apple"]

    assert client.get(url, {"token": token[:-1] + "x"}).status_code == 404
    assert client.get(url).status_code == 404
    assert client.get(f"/feeds/{store.code}/lb.tsv", {"token": token}).status_code == 404
    assert client.get("/feeds/nope/en.tsv", {"token": token}).status_code == 404

    rotate_feed_export_token(store)
    assert client.get(url, {"token": token}).status_code == 404
    assert client.get(url, {"token": FeedExportToken.objects.get().token}).status_code == 200


def test_store_without_a_token_has_no_feed(client, store):
    assert client.get(f"/feeds/{store.code}/en.tsv", {"token": ""}).status_code == 404
    assert FeedExportToken.objects.count() == 0


def test_admin_downloads_a_feed(client, platform_admin, shopper, store, make_product):
    make_product(store, "A-1", title="Apple")
    url = "/admin/imports/export/"
    client.force_login(shopper)
    assert client.get(url, {"store": store.code, "language": "en"}).status_code == 302

    client.force_login(platform_admin)
    assert client.get(url).status_code == 200
    response = client.get(url, {"store": store.code, "language": "en"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{store.code}-en.tsv"'
    assert b"".join(response.streaming_content).decode().startswith("id\ttitle\tdescription\t")


def test_attribute_columns_are_formula_safe_and_one_per_name_whatever_the_case(make_store):
    source = make_store()
    header = "id\ttitle\tprice\tColor\t@cmd\n"
    import_product_feed(source, (header + "A\tMug A\t1.00\tred\tx\n").encode())
    import_product_feed(source, b"id\ttitle\tprice\tcolor\nB\tMug B\t2.00\tblue\n")
    assert Product.objects.get(store=source, sku="B").attributes == {"color": "blue"}

    exported = _export(source, "en")
    rows = list(csv.reader(io.StringIO(exported), delimiter="\t"))
    assert rows[0][-2:] == ["'@cmd", "Color"]
    assert [(row[0], row[-2], row[-1]) for row in rows[1:]] == [
        ("A", "x", "red"),
        ("B", "", "blue"),
    ]

    copy = make_store()
    report = import_product_feed(copy, exported.encode())
    assert (report.read, report.rejected) == (2, 0), report.errors
    assert Product.objects.get(store=copy, sku="A").attributes == {"Color": "red", "@cmd": "x"}
    assert Product.objects.get(store=copy, sku="B").attributes == {"Color": "blue"}


@pytest.mark.parametrize(
    "name", ["shopify-apparel.csv", "shopify-home-and-garden.csv", "shopify-jewelery.csv"]
)
def test_a_real_shopify_catalogue_exported_imports_back_the_same(make_store, name):
    source = make_store()
    assert import_product_feed(source, FEEDS_DIR / name).rejected == 0
    copy = make_store()

    report = import_product_feed(copy, _export(source, "en").encode())

    assert report.rejected == 0, report.errors
    original = _catalogue(source)
    assert len(original) == report.created > 20
    # Shopify's variant options are an object, and come back as one.
    assert any(isinstance(p["attributes"].get("options"), dict) for p in original.values())
    assert _catalogue(copy) == original


def test_a_shopify_attribute_holding_json_is_stored_as_it_and_exports_back(make_store):
    source = make_store()
    feed = (
        "Handle,Title,Variant SKU,Variant Price,Metafield,Tags\n"
        'mug,Mug,MUG-1,9.90,"[""red"", ""blue""]","[sale]"\n'
    )
    assert import_product_feed(source, feed.encode()).rejected == 0
    attributes = Product.objects.get(store=source).attributes
    assert (attributes["Metafield"], attributes["Tags"]) == (["red", "blue"], "[sale]")

    copy = make_store()
    assert import_product_feed(copy, _export(source, "en").encode()).rejected == 0
    assert Product.objects.get(store=copy).attributes == attributes


def test_an_attribute_cell_holding_a_json_object_or_list_reads_as_one(store):
    feed = (
        "id\ttitle\tprice\toptions\tsizes\tnote\n"
        'A\tMug\t1.00\t{"Size": "L"}\t["S", "M"]\t[limited edition]\n'
        'B\tCup\t1.00\t{"Size": \t42\t{not json}\n'
    )
    assert import_product_feed(store, feed.encode()).rejected == 0
    attributes = dict(Product.objects.filter(store=store).values_list("sku", "attributes"))
    assert attributes == {
        "A": {"options": {"Size": "L"}, "sizes": ["S", "M"], "note": "[limited edition]"},
        "B": {"options": '{"Size":', "sizes": "42", "note": "{not json}"},
    }


@pytest.mark.parametrize(
    "cell",
    ["[NaN]", "[1e999]", '{"a": Infinity}', '["\\u0000"]', '["\\ud800"]', "[" * 3000 + "]" * 3000],
)
def test_json_the_database_would_refuse_stays_text(store, cell):
    feed = f"id\ttitle\tprice\tspecs\nA\tMug\t1.00\t{cell}\nB\tCup\t2.00\t[1]\n"

    report = import_product_feed(store, feed.encode())

    assert (report.created, report.rejected) == (2, 0), report.errors
    attributes = dict(Product.objects.filter(store=store).values_list("sku", "attributes"))
    assert attributes == {"A": {"specs": cell}, "B": {"specs": [1]}}
