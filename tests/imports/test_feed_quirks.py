"""Feed quirks a reviewer reproduced: each one is read right or rejected with a clear
reason, never stored changed."""

from __future__ import annotations

import csv
import io
import tracemalloc
from decimal import Decimal

import pytest

from imports.feeds import (
    MAX_COLUMNS,
    FeedError,
    FeedRow,
    RejectedRow,
    read_feed,
    write_csv_row,
)
from imports.services import export_feed_lines, import_product_feed
from marketplace.models import Product
from tests.imports.test_formats import _rows


def _errors(rows: list) -> list[tuple[int, str, str, str]]:
    return [
        (e.line, e.column, e.value, e.reason)
        for r in rows
        if isinstance(r, RejectedRow)
        for e in r.errors
    ]


# --- carriage returns inside text ------------------------------------------------------


def test_a_lone_cr_in_a_quoted_text_is_stored_as_lf_and_exports_back(store, other_store):
    report = import_product_feed(store, b'id,title,price,description\nA,T,1,"x\ry"\n')
    assert (report.created, report.rejected) == (1, 0)
    assert Product.objects.get(sku="A").translation("en").description == "x\ny"

    exported = "".join(export_feed_lines(store, "en"))
    assert len(list(csv.reader(io.StringIO(exported), delimiter="\t"))) == 2
    again = import_product_feed(other_store, exported.encode())
    assert (again.created, again.rejected) == (1, 0)
    product = Product.objects.get(store=other_store, sku="A")
    assert product.translation("en").description == "x\ny"


def test_crlf_and_cr_in_titles_and_attributes_become_lf():
    rows, _ = _rows(b'id,title,price,color\nA,"Mug\r\nlarge",1,"red\rblue"\nB,Pear,2,\n')
    assert [(r.line, r.sku, r.title, r.fields["attributes"]) for r in rows] == [
        (2, "A", "Mug\nlarge", {"color": "red\nblue"}),
        (5, "B", "Pear", {}),  # the CRLF and the CR each end a physical line
    ]


def test_text_stored_with_a_cr_exports_as_one_quoted_record(store, make_product):
    make_product(
        store, "A", translations={"en": {"title": "Mug", "description": "one\rtwo\r\nthree"}}
    )
    lines = list(export_feed_lines(store, "en"))
    assert lines[1].startswith('A\tMug\t"one\ntwo\nthree"\t')
    rows, _ = _rows("".join(lines).encode())
    assert [(r.line, r.sku, r.description) for r in rows] == [(2, "A", "one\ntwo\nthree")]


def test_write_csv_row_makes_every_line_break_lf_before_escaping_formulas():
    out = io.StringIO()
    write_csv_row(csv.writer(out, delimiter="\t", lineterminator="\n"), ["a\rb", "\r=1", "=2", 3])
    assert out.getvalue() == '"a\nb"\t"\n=1"\t\'=2\t3\n'


# --- the header ------------------------------------------------------------------------


def test_an_escaped_header_cell_reads_back_as_its_name():
    rows, info = _rows(b"id\ttitle\tprice\t'=HYPERLINK(1)\t'@size\nA\tMug\t1\tyes\tL\n")
    assert info.columns == ["id", "title", "price", "=HYPERLINK(1)", "@size"]
    assert rows[0].fields["attributes"] == {"=HYPERLINK(1)": "yes", "@size": "L"}


def test_a_header_with_too_many_columns_is_refused_without_reading_them():
    data = b"id,title,price" + b"," * 5_000_000 + b"\nA,Mug,1\n"
    tracemalloc.start()
    try:
        with pytest.raises(FeedError) as caught:
            _rows(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        f"The header line has 5,000,003 columns; a feed may have at most {MAX_COLUMNS:,}. "
        "Delete the empty columns at its end (or save only the used range) and upload it again."
    )
    assert peak < 40_000_000  # the 5 MB line as bytes and as text, not 5 million cells


def test_a_header_of_max_columns_is_read():
    header = ",".join(["id", "title", "price"] + [f"c{n}" for n in range(MAX_COLUMNS - 3)])
    rows, info = _rows(f"{header}\nA,Mug,1\n".encode())
    assert (len(info.columns), rows[0].sku) == (MAX_COLUMNS, "A")


def test_a_row_with_millions_of_cells_is_rejected_without_splitting_it():
    data = b"id,title,price\nA,Mug,1" + b",ab" * 2_000_000 + b"\nB,Pear,2\n"
    tracemalloc.start()
    try:
        rows, _ = _rows(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _errors(rows) == [(2, "", "", "row has 2,000,003 cells, the header has 3")]
    assert [(r.line, r.sku) for r in rows[1:]] == [(3, "B")]
    assert peak < 60_000_000


def test_a_row_with_a_few_cells_more_than_the_header_is_rejected():
    rows, _ = _rows(b"id,title,price\nA,Mug,1,extra\n")
    assert _errors(rows) == [(2, "", "", "row has 4 cells, the header has 3")]


# --- encodings -------------------------------------------------------------------------


def test_a_utf8_line_with_one_bad_byte_is_rejected_not_garbled(store):
    data = (
        "id,title,price,description\nA,Crème,1,ok\n".encode()
        + "B,Crème brûlée – 2×,2,bad ".encode()
        + b"\xff\nC,Plum,3,\n"
    )
    report = import_product_feed(store, data)
    assert (report.encoding, report.created, report.rejected) == ("utf-8", 2, 1)
    assert [(e.line, e.column, e.value, e.reason) for e in report.errors] == [
        (
            3,
            "description",
            "bad \\xff",
            "not valid UTF-8: byte 0xFF at character 5 of the cell (and the line cannot be "
            "read as Windows-1252 either); save the file as UTF-8",
        )
    ]
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "C"]
    assert Product.objects.get(sku="A").translation("en").title == "Crème"


def test_a_windows_1252_line_beside_utf8_lines_is_still_read():
    rows, info = _rows("id,title,price\nA,Crème,1\n".encode() + b"B,caf\xe9,2\n")
    assert info.encoding == "windows-1252"
    assert [(r.sku, r.title) for r in rows] == [("A", "Crème"), ("B", "café")]


def test_a_byte_windows_1252_leaves_undefined_is_rejected():
    rows, _ = _rows(b"id,title,price\nA,caf\xe9 \x81,1\nB,Pear,2\n")
    assert _errors(rows) == [
        (
            2,
            "title",
            "café \\x81",
            "not valid UTF-8: byte 0x81 at character 6 of the cell (and the line cannot be "
            "read as Windows-1252 either); save the file as UTF-8",
        )
    ]
    assert rows[1].sku == "B"


def test_a_header_line_mixing_utf8_and_a_bad_byte_is_refused():
    with pytest.raises(FeedError) as caught:
        _rows("id,title,price,Grösse".encode() + b"\xff\nA,B,1,2\n")
    assert str(caught.value) == (
        "The header line is not valid UTF-8: byte 0xFF at character 22. Save the file as UTF-8."
    )


# --- line endings and long cells -------------------------------------------------------


def test_a_file_with_cr_line_endings_is_read():
    data = b'id,title,price,description\rA,Apple,1,"one\rtwo"\rB,Pear,"2,50",\r'
    rows, _ = _rows(data)
    assert [(r.line, r.sku, r.description, r.fields["price"]) for r in rows] == [
        (2, "A", "one\ntwo", Decimal("1.00")),
        (4, "B", "", Decimal("2.50")),
    ]


def test_mixed_line_endings_give_one_row_per_line():
    rows, _ = _rows(b"id,title,price\nA,T1,1\rB,T2,2\r\nC,T3,3\n")
    assert [(r.line, r.sku, r.title) for r in rows] == [
        (2, "A", "T1"),
        (3, "B", "T2"),
        (4, "C", "T3"),
    ]


def test_a_crlf_split_between_two_chunks_is_one_line_end():
    chunks = [b"id,title,price\r", b"\nA,T1,1\r", b"\nB,T2,2\r\n"]
    assert [(r.line, r.sku) for r in read_feed(iter(chunks))] == [(2, "A"), (3, "B")]


def test_a_cell_over_the_field_limit_names_the_line_and_the_limit():
    limit = csv.field_size_limit()
    data = f"id,title,price,description\nA,T,1,{'x' * (limit + 1)}\nB,Pear,2,\n".encode()
    rows, _ = _rows(data)
    assert _errors(rows) == [
        (2, "", "", f"unreadable row: a cell is longer than the limit of {limit:,} characters")
    ]
    assert isinstance(rows[1], FeedRow)
    assert (rows[1].line, rows[1].sku) == (3, "B")


# --- quote marks -----------------------------------------------------------------------

QUOTE_REASON = (
    "a quoted cell must end at its closing quote; write quote marks inside a cell as two "
    "quote marks, or don't start the cell with one"
)


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_text_after_a_closing_quote_rejects_the_row(store, delimiter):
    d = delimiter
    data = f'id{d}title{d}price\nA{d}"Best" screen{d}1\nB{d}"Good"{d}2\n'.encode()
    report = import_product_feed(store, data)
    assert (report.created, report.rejected) == (1, 1)
    assert [(e.line, e.column, e.value, e.reason) for e in report.errors] == [
        (2, "title", '"Best" screen', QUOTE_REASON)
    ]
    assert list(Product.objects.values_list("sku", flat=True)) == ["B"]


def test_quote_marks_inside_or_after_the_start_of_a_cell_are_kept():
    data = b'id,title,description,price\nA,5" screen,"say ""hi""\n(twice)",1\nB,"x,y",,2\n'
    rows, _ = _rows(data)
    assert [(r.line, r.title, r.description) for r in rows] == [
        (2, '5" screen', 'say "hi"\n(twice)'),
        (4, "x,y", ""),
    ]


def test_text_after_the_closing_quote_of_a_multiline_cell_names_its_column():
    rows, _ = _rows(b'id,title,description,price\nA,Mug,"one\ntwo" three,1\nB,Pear,,2\n')
    assert _errors(rows) == [(2, "description", '"one\ntwo" three', QUOTE_REASON)]
    assert [(r.line, r.sku) for r in rows[1:]] == [(4, "B")]


def test_exported_quotes_tabs_and_line_breaks_import_back_unchanged(store, other_store):
    description = 'He said "hi"\tthen\nleft "quietly"'
    import_product_feed(
        store,
        (
            'id\ttitle\tdescription\tprice\nA\t"""Best"" mug"\t"'
            + description.replace('"', '""')
            + '"\t1\n'
        ).encode(),
    )
    exported = "".join(export_feed_lines(store, "en"))
    report = import_product_feed(other_store, exported.encode())
    assert (report.created, report.rejected) == (1, 0)
    text = Product.objects.get(store=other_store, sku="A").translation("en")
    assert (text.title, text.description) == ('"Best" mug', description)


# --- numbers ---------------------------------------------------------------------------

SPACE_REASON = "not a price: a space or ' may only separate thousands, as in 1 234,56"


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("1 234,56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),
        ("1\u202f234,56 EUR", "1234.56"),
        ("12 345 678.90", "12345678.90"),
        ("1'234.50", "1234.50"),
        ("EUR 1 234", "1234.00"),
        ("12.50 EUR", "12.50"),
    ],
)
def test_a_space_between_thousands_is_read(price, expected):
    rows, _ = _rows(f"id;title;price\nA;Mug;{price}\n".encode())
    assert rows[0].fields["price"] == Decimal(expected)


@pytest.mark.parametrize("price", ["12 50", "1 2", "1 23", "1234 567", "1 234'567", "12 ,50"])
def test_a_space_anywhere_else_in_a_price_is_a_row_error(price):
    rows, _ = _rows(f"id;title;price\nA;Mug;{price}\n".encode())
    assert _errors(rows) == [(2, "price", price, SPACE_REASON)]


DIGITS = "only the digits 0-9 are read as digits"


def test_digits_of_other_scripts_are_row_errors(store):
    data = (
        "id;title;price;gtin;quantity\n"
        "A;Mug;1;٤٠٠٦٣٨١٣٣٣٩٣١;\n"
        "B;Cup;١٢;;\n"
        "C;Pot;1;;١٢\n"
        "D;Jar;1;;1_000\n"
        "E;Tin;1;4006381333931;12\n"
    )
    report = import_product_feed(store, data.encode())
    assert (report.created, report.rejected) == (1, 4)
    assert [(e.line, e.column, e.value, e.reason) for e in report.errors] == [
        (2, "gtin", "٤٠٠٦٣٨١٣٣٣٩٣١", f"GTIN must contain digits only: {DIGITS}"),
        (3, "price", "١٢", f"not a price: {DIGITS}"),
        (4, "quantity", "١٢", f"not a whole number: {DIGITS}"),
        (5, "quantity", "1_000", "not a whole number"),
    ]
    assert list(Product.objects.values_list("sku", "gtin", "stock__on_hand")) == [
        ("E", "4006381333931", 12)
    ]


# --- Shopify ---------------------------------------------------------------------------


def test_shopify_rows_of_a_handle_split_across_the_file_are_rejected():
    data = (
        b"Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price\n"
        b"shirt,Shirt,Size,S,SH-S,10\n"
        b"shirt,,,M,SH-M,10\n"
        b"mug,Mug,,,MUG,5\n"
        b"shirt,,,L,SH-L,10\n"
        b"shirt,,,XL,SH-XL,10\n"
    )
    rows, _ = _rows(data)
    assert [(r.line, r.sku, r.title) for r in rows if isinstance(r, FeedRow)] == [
        (2, "SH-S", "Shirt - S"),
        (3, "SH-M", "Shirt - M"),
        (4, "MUG", "Mug"),
    ]
    assert _errors(rows) == [
        (
            line,
            "Handle",
            "shirt",
            f"the rows of handle shirt must be consecutive: line {line} continues handle "
            "shirt after other handles (first seen at line 2)",
        )
        for line in (5, 6)
    ]


# --- stock and price files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("sku;qty;stock", "columns 'qty' and 'stock' could each be the quantity"),
        (
            "SKU;Quantity;on_hand;Qty",
            "columns 'Quantity', 'on_hand' and 'Qty' could each be the quantity",
        ),
        ("id;sku;quantity", "columns 'id' and 'sku' could each be the SKU"),
    ],
)
def test_a_stock_file_with_two_candidate_columns_is_refused(store, make_product, header, message):
    make_product(store, "A", on_hand=4)
    with pytest.raises(FeedError) as caught:
        import_product_feed(store, f"{header}\nA;1;2;3\n".encode())
    assert str(caught.value) == (
        f"The header line is ambiguous: {message}. Keep one of them, or rename the others."
    )
    assert Product.objects.get(sku="A").stock.on_hand == 4


def test_a_stock_file_ignores_columns_it_does_not_read():
    rows, _ = _rows(b"sku;qty;warehouse\nA;3;north\n")
    assert [(r.sku, r.on_hand, r.price) for r in rows] == [("A", 3, None)]


# --- VAT rate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "rate"),
    [("17", "17.00"), ("17.00", "17.00"), ("17,00", "17.00"), ("17 %", "17.00"),
     ("17%", "17.00"), ("3.5", "3.50"), ("0", "0.00"), ("100", "100.00")],
)  # fmt: skip
def test_vat_rate_is_read_as_a_percentage(cell, rate):
    rows, _ = _rows(f"id;title;price;vat_rate\nA;Mug;1;{cell}\n".encode())
    assert rows[0].fields["vat_rate"] == Decimal(rate)


VAT_REASON = (
    "VAT rate must be a percentage from 0 to 100 with at most 2 decimals, such as 17, 17.00 or 17 %"
)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("100.01", VAT_REASON),
        ("17.123", VAT_REASON),
        ("-1", VAT_REASON),
        ("0.17 EUR", VAT_REASON),
        ("١٧", f"{VAT_REASON}: {DIGITS}"),
    ],
)
def test_a_vat_rate_out_of_range_or_unreadable_is_a_row_error(cell, reason):
    rows, _ = _rows(f"id;title;price;vat_rate\nA;Mug;1;{cell}\n".encode())
    assert _errors(rows) == [(2, "vat_rate", cell, reason)]


def test_an_empty_vat_rate_keeps_the_products_rate_or_gives_the_store_default(store, make_product):
    type(store).objects.filter(pk=store.pk).update(default_vat_rate=Decimal("16.00"))
    store.refresh_from_db()
    make_product(store, "A", vat_rate=Decimal("3.00"))
    make_product(store, "D", vat_rate=Decimal("3.00"))
    data = b"id,title,price,vat_rate\nA,Apple,1,\nB,Pear,2,8\nC,Plum,3,\nD,Fig,4,17 %\n"
    report = import_product_feed(store, data)
    assert (report.created, report.updated, report.rejected) == (2, 2, 0)
    rates = dict(Product.objects.values_list("sku", "vat_rate"))
    assert rates == {
        "A": Decimal("3.00"),
        "B": Decimal("8.00"),
        "C": Decimal("16.00"),
        "D": Decimal("17.00"),
    }
    again = import_product_feed(store, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert dict(Product.objects.values_list("sku", "vat_rate")) == rates


def test_a_feed_without_a_vat_rate_column_leaves_rates_alone(store, make_product):
    make_product(store, "A", vat_rate=Decimal("3.00"))
    rows, _ = _rows(b"id,title,price\nA,Apple,1\n")
    assert "vat_rate" not in rows[0].fields
    import_product_feed(store, b"id,title,price\nA,Apple,1\nB,Pear,2\n")
    assert dict(Product.objects.values_list("sku", "vat_rate")) == {
        "A": Decimal("3.00"),
        "B": store.default_vat_rate,
    }
