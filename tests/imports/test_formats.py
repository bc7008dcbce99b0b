"""Every format quirk a merchant's file may have, with the exact values it must give."""

from __future__ import annotations

from decimal import Decimal

import pytest

from imports.feeds import (
    MAX_QUOTED_LINES,
    FeedError,
    FeedInfo,
    FeedRow,
    escape_formula,
    read_feed,
    unescape_formula,
)
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
    assert first.translation("en").description == "zwou\nLinnen"  # CRLF in a text is LF
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
        (4, "duplicate SKU: already in this file (line 2)")
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


# --- NUL bytes --------------------------------------------------------------------------


def test_a_stray_nul_byte_rejects_only_its_row(store):
    data = b"id,title,price\nA,Apple,1\nB,Pe\x00ar,2\nC,Plum,3\n"
    report = import_product_feed(store, data)
    assert (report.read, report.created, report.rejected) == (3, 2, 1)
    assert [(e.line, e.column, e.value, e.reason) for e in report.errors] == [
        (3, "title", "Pe\\x00ar", "contains a NUL byte")
    ]
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "C"]


def test_a_nul_byte_in_a_utf16_file_rejects_only_its_row():
    text = "id\ttitle\tprice\r\nA\tApple\t1\r\nB\tPear\x00\t2\r\n"
    rows, info = _rows(text.encode("utf-16"))
    assert info.encoding == "utf-16"
    assert rows[0].sku == "A"
    assert [(e.line, e.column, e.reason) for e in rows[1].errors] == [
        (3, "title", "contains a NUL byte")
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"id,ti\x00tle,price\nA,Apple,1\n",  # in the header line
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",  # a zip (xlsx) file
        b"id,title,price\n" + b"A,\x00\x00,1\n" * 30,  # NUL bytes all over
    ],
)
def test_nul_bytes_in_the_header_or_all_over_mean_binary(store, data):
    with pytest.raises(FeedError) as caught:
        import_product_feed(store, data)
    assert str(caught.value) == "This is not a text feed (binary data, or an unknown encoding)."
    assert Product.objects.count() == 0


# --- quantities -------------------------------------------------------------------------

TOO_BIG = "quantity must be a whole number from 0 to 2147483647"


@pytest.mark.parametrize("quantity", ["1e10", "2147483648", "12345678901234567890"])
def test_quantity_beyond_the_stock_range_is_a_row_error(store, quantity):
    data = f"id;title;price;quantity\nA;Apple;1;{quantity}\nB;Pear;2;2147483647\n".encode()
    report = import_product_feed(store, data)
    assert (report.created, report.rejected) == (1, 1)
    assert [(e.line, e.column, e.value, e.reason) for e in report.errors] == [
        (2, "quantity", quantity, TOO_BIG)
    ]
    assert list(Product.objects.values_list("sku", "stock__on_hand")) == [("B", 2147483647)]


def test_quantity_beyond_the_range_in_shopify_and_stock_files(store, make_product):
    shopify = (
        b"Handle,Title,Variant SKU,Variant Price,Variant Inventory Qty\n"
        b"mug,Mug,MUG-1,5.00,99999999999\n"
    )
    rows, _ = _rows(shopify)
    assert [(e.line, e.column, e.value, e.reason) for e in rows[0].errors] == [
        (2, "Variant Inventory Qty", "99999999999", TOO_BIG)
    ]
    make_product(store, "A", on_hand=4)
    report = import_product_feed(store, b"SKU;Qty\nA;1e10\n")
    assert [(e.line, e.column, e.value, e.reason) for e in report.errors] == [
        (2, "Qty", "1e10", TOO_BIG)
    ]
    assert Product.objects.get(sku="A").stock.on_hand == 4


@pytest.mark.parametrize("quantity", ["inf", "NaN", "sNaN", "1.5"])
def test_quantity_that_is_not_a_whole_number(quantity):
    rows, _ = _rows(f"sku;quantity\nA;{quantity}\n".encode())
    assert [(e.column, e.reason) for e in rows[0].errors] == [("quantity", "not a whole number")]


# --- the header -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "id,title,description,link,image_link,brand,price,gtin,mpn,condition,quantity,PRICE",
            "column 'price' appears twice (columns 7 and 12)",
        ),
        ("id,title,g:price,price", "column 'g:price' appears twice (columns 3 and 4)"),
        ("sku;qty;Qty;QTY", "column 'qty' appears 3 times (columns 2, 3 and 4)"),
    ],
)
def test_a_column_named_twice_refuses_the_file(store, header, message):
    delimiter = ";" if ";" in header else ","
    row = delimiter.join(["A", "Apple", "1", "2"] + [""] * (header.count(delimiter) - 3))
    with pytest.raises(FeedError) as caught:
        import_product_feed(store, f"{header}\n{row}\n".encode())
    assert str(caught.value) == f"The header line is ambiguous: {message}."
    assert Product.objects.count() == 0


def test_empty_header_cells_are_not_a_repeated_column():
    rows, info = _rows(b"id,title,price,,\nA,Apple,1,,\n")
    assert (info.columns, rows[0].sku) == (["id", "title", "price", "", ""], "A")


# --- quotes that never close ------------------------------------------------------------


def test_a_quote_never_closed_at_the_end_of_the_file_is_reported(store):
    data = b'id,title,description,price\nA,Apple,,1\nB,Pear,"juicy,2\nC,Plum,,3\nD,Fig,,4\n'
    report = import_product_feed(store, data)
    assert (report.read, report.created, report.rejected) == (2, 1, 1)
    assert [(e.line, e.column, e.reason) for e in report.errors] == [
        (
            3,
            "description",
            "a quoted field is never closed (opened on line 3); lines 4 to 5 went into it "
            "and were not imported",
        )
    ]
    assert list(Product.objects.values_list("sku", flat=True)) == ["A"]


def test_a_quote_opened_on_the_last_line_is_reported():
    rows, _ = _rows(b'id,title,description,price\nA,Apple,"one\ntwo",1\nB,Pear,"ripe,2')
    assert (rows[0].sku, rows[0].description) == ("A", "one\ntwo")
    assert [(e.line, e.column, e.value, e.reason) for e in rows[1].errors] == [
        (4, "description", "ripe,2", "a quoted field is never closed (opened on line 4)")
    ]


def test_a_quoted_field_over_max_lines_is_taken_for_a_missing_quote():
    lines = [f"P{n},Product {n},,1" for n in range(3, 3 + MAX_QUOTED_LINES)]
    data = "\n".join(
        ["id,title,description,price", 'A,Apple,"runaway,1', *lines, 'Z,Last,end",9', "Y,Ok,,2"]
    )
    rows, _ = _rows(data.encode())
    end = 3 + MAX_QUOTED_LINES
    assert [(e.line, e.column, e.reason) for e in rows[0].errors] == [
        (
            2,
            "description",
            f"a quoted field spans more than {MAX_QUOTED_LINES} lines (opened on line 2): "
            f"is its closing quote missing?; lines 3 to {end} went into it and were not "
            "imported",
        )
    ]
    assert [(r.line, r.sku) for r in rows[1:]] == [(end + 1, "Y")]


def test_a_long_quoted_field_within_the_limit_is_kept():
    description = "\n".join(f"<p>{n}</p>" for n in range(MAX_QUOTED_LINES))
    rows, _ = _rows(f'id,title,description,price\nA,Apple,"{description}",1\n'.encode())
    assert (rows[0].sku, rows[0].description) == ("A", description)
