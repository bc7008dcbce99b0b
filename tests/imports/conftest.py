from __future__ import annotations

import psycopg
import pytest
from django.db import connection

# A Letzshop feed with the quirks real merchants send: a UTF-8 BOM, semicolons, a
# decimal comma, one Windows-1252 line, a quoted description over two lines, and one
# bad row of each kind. Physical lines: header 1, CAFE-1 2-3, BAD-PRICE 4, BAD-GTIN 5,
# duplicate CAFE-1 6, USD-1 7, TEA-2 8.
QUIRKY_FEED = (
    b"\xef\xbb\xbfid;title;description;price;sale_price;gtin;availability;quantity;brand;color\n"
    b'CAFE-1;Caf\xe9 noir;"Dark roast\nfrom Lisbon";12,50 EUR;;4006381333931;in stock;5;Kaffi;brown\n'
    b"BAD-PRICE;Green tea;;twelve EUR;;;in stock;3;Kaffi;green\n"
    b"BAD-GTIN;Black tea;;4.00 EUR;;4006381333932;in stock;3;Kaffi;black\n"
    b"CAFE-1;Again;;1.00 EUR;;;in stock;1;Kaffi;\n"
    b"USD-1;Import;;9.99 USD;;;in stock;1;;\n"
    b"TEA-2;Mint tea;;3,5;2,90 EUR;96385074;out of stock;0;;\n"
)


@pytest.fixture
def demo_var_dir(db, settings, tmp_path):
    """seed_demo writes its feeds and passwords here instead of the repository's var/."""
    settings.VAR_DIR = tmp_path
    return tmp_path


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Import files go to a temporary default storage."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def letzshop_feed(count: int, *, start: int = 1, price: str = "9.90") -> bytes:
    """A tab-separated Letzshop feed of `count` products P-0001... with quantity 3."""
    lines = ["id\ttitle\tdescription\tprice\tquantity\tbrand"]
    for n in range(start, start + count):
        lines.append(f"P-{n:04d}\tProduct {n}\tText {n}\t{price} EUR\t3\tAcme")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def other_connection():
    """A second database session (autocommit), e.g. to hold a store's import lock."""
    params = connection.get_connection_params()
    conn = psycopg.connect(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")},
        autocommit=True,
    )
    yield conn
    conn.close()
