"""Every format quirk a merchant's file may have, with the exact values it must give."""

from __future__ import annotations

from decimal import Decimal

import pytest

from imports.feeds import FeedInfo, FeedRow, escape_formula, read_feed, unescape_formula
from imports.services import import_product_feed
from marketplace.models import Product


def _rows(data: bytes) -> tuple[list, FeedInfo]:
    info = FeedInfo()
    return list(read_feed(data, info=info)), info


def test_decimal_comma_is_a_decimal_point(store):
    import_product_feed(store, b"id;title;price;sale_price\nA;Apple;12,50;9,9 EUR\n")
    apple = Product.objects.get(sku="A")
    assert (apple.price, apple.sale_price) == (Decimal("12.50"), Decimal("9.90"))


def test_utf8_bom_does_not_hide_the_first_column():
    rows, info = _rows(b"\xef\xbb\xbfid,title,price\nA-1,Apple,1.00 EUR\n")
    assert info.columns == ["id", "title", "price"]
    assert (info.encoding, rows[0].sku, rows[0].fields["attributes"]) == ("utf-8", "A-1", {})


def test_windows_1252_text_becomes_unicode():
    rows, info = _rows(b"id\ttitle\tprice\nC-1\tcaf\xe9 cr\xe8me \x80\t2.00 EUR\n")
    assert (info.encoding, info.delimiter) == ("windows-1252", "\t")
    assert rows[0].title == "café crème €"


@pytest.mark.parametrize(
    ("encoding", "bom", "detected"),
    [
        ("utf-16-le", b"\xff\xfe", "utf-16"),
        ("utf-16-be", b"\xfe\xff", "utf-16"),
        ("utf-16-le", b"", "utf-16-le"),
        ("utf-16-be", b"", "utf-16-be"),
    ],
)
def test_utf16_files_are_read(store, encoding, bom, detected):
    text = 'id\ttitle\tdescription\tprice\r\nLB-1\tKächmass\t"zwou\r\nLinnen"\t3,20 €\r\nLB-2\tÉislek\t\t1 EUR\r\n'
    report = import_product_feed(store, bom + text.encode(encoding))
    assert (report.encoding, report.delimiter, report.created, report.rejected) == (
        detected,
        "\t",
        2,
        0,
    )
    first = Product.objects.get(sku="LB-1")
    assert first.translation("en").title == "Kächmass"
    assert first.translation("en").description == "zwou\r\nLinnen"
    assert first.price == Decimal("3.20")
    assert Product.objects.get(sku="LB-2").translation("en").title == "Éislek"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_every_delimiter_with_a_quoted_multiline_field(delimiter):
    d = delimiter
    data = f'id{d}title{d}description{d}price\nX{d}"A{d} B"{d}"one\ntwo"{d}"1,5"\n'.encode()
    rows, info = _rows(data)
    assert info.delimiter == delimiter
    assert [(r.line, r.title, r.description, r.fields["price"]) for r in rows] == [
        (2, f"A{d} B", "one\ntwo", Decimal("1.50"))
    ]


def test_price_with_currency_and_foreign_currency_rejected():
    rows, _ = _rows(b"id,title,price\nA,Apple,12.50 EUR\nB,Pear,EUR 3\nC,Plum,4.00 GBP\n")
    assert [r.fields["price"] for r in rows[:2]] == [Decimal("12.50"), Decimal("3.00")]
    assert [(e.line, e.column, e.value, e.reason) for e in rows[2].errors] == [
        (4, "price", "4.00 GBP", "currency GBP is not the store's currency EUR")
    ]


def test_duplicate_sku_is_reported_and_imported_once(store):
    report = import_product_feed(store, b"id,title,price\nA,First,1\nB,Other,1\nA,Second,2\n")
    assert (report.created, report.rejected) == (2, 1)
    assert [(e.line, e.reason) for e in report.errors] == [
        (4, "duplicate SKU: already in this file")
    ]
    assert Product.objects.get(sku="A").translation("en").title == "First"


def test_stock_file_header_is_detected():
    for data in (b"sku;quantity\nA-1;4\n", b"id, price\nA-1, 2.50\n", b"SKU;Qty;Price\nA;1;2\n"):
        assert _rows(data)[1].format == "stock"
    assert _rows(b"id;title;price\nA;B;1\n")[1].format == "letzshop"
    rows, _ = _rows(b"sku;quantity;price\nA;4;2,5\nB;x;\nC;;\n")
    assert (rows[0].sku, rows[0].on_hand, rows[0].price) == ("A", 4, Decimal("2.50"))
    assert [(e.line, e.column, e.reason) for e in rows[1].errors] == [
        (3, "quantity", "not a whole number")
    ]
    assert [e.reason for e in rows[2].errors] == ["neither a quantity nor a price is given"]


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("=1+1", "'=1+1"),
        ("+32 2 123", "'+32 2 123"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Mug = 1", "Mug = 1"),
        ("'quoted'", "'quoted'"),
        ("", ""),
    ],
)
def test_formula_escaping_round_trips(value, escaped):
    assert escape_formula(value) == escaped
    assert unescape_formula(escaped) == value


def test_importer_strips_the_formula_guard(store):
    rows, _ = _rows(b"id,title,price\n'-A,'=1+1 mug,'+2\n")
    assert isinstance(rows[0], FeedRow)
    assert (rows[0].sku, rows[0].title, rows[0].fields["price"]) == (
        "-A",
        "=1+1 mug",
        Decimal("2.00"),
    )
