from __future__ import annotations

import json
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count

from imports.letzshop.models import LetzshopAccount
from imports.services import _LOCK_NAMESPACE
from marketplace.models import (
    Membership,
    Product,
    ProductTranslation,
    Stock,
    StockMovement,
    Store,
)
from marketplace.services import set_stock_on_hand
from tests.conftest import FEEDS_DIR
from tests.imports.conftest import QUIRKY_FEED, letzshop_feed


def test_import_products_prints_counts_and_rejected_lines(store, tmp_path):
    path = tmp_path / "feed.csv"
    path.write_bytes(QUIRKY_FEED)
    out = StringIO()

    call_command(
        "import_products", "--store", "lux-shop", str(path), "--language", "fr", stdout=out
    )

    output = out.getvalue()
    assert "6 rows read: 2 created, 0 updated, 0 unchanged, 4 rejected" in output
    assert "line 4 [price] 'twelve EUR': not a price" in output
    assert "line 6 [id] 'CAFE-1': duplicate SKU: already in this file (line 2)" in output
    assert ProductTranslation.objects.filter(product__store=store, language="fr").count() == 2


def test_import_products_real_file(store):
    out = StringIO()
    call_command(
        "import_products", "--store", store.code, str(FEEDS_DIR / "shopify-apparel.csv"), stdout=out
    )
    assert "22 rows read: 22 created, 0 updated, 0 unchanged, 0 rejected" in out.getvalue()
    assert Product.objects.filter(store=store).count() == 22


def test_import_products_unknown_store_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match="Unknown store code 'nope'"):
        call_command("import_products", "--store", "nope", str(FEEDS_DIR / "shopify-apparel.csv"))
    assert Product.objects.count() == 0


def test_import_products_unreadable_file_is_a_clear_error(store, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_products", "--store", store.code, str(tmp_path / "missing.tsv"))
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    with pytest.raises(CommandError, match="The file is empty"):
        call_command("import_products", "--store", store.code, str(empty))


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_creates_stores_products_and_logins(demo_var_dir, client):
    output = _seed()

    assert sorted(Store.objects.values_list("order_prefix", flat=True)) == ["EPI", "LIV", "MAI"]
    assert Store.objects.filter(vat_number__startswith="LU", country="LU").count() == 3
    # 112 generated products per store, plus the 3 that the Letzshop demo shipments order.
    assert Product.objects.count() == 339
    assert dict(Store.objects.annotate(n=Count("products")).values_list("code", "n")) == {
        "epicerie-moselle": 115,
        "maison-jardin": 112,
        "livres-jouets": 112,
    }
    for language in ("en", "fr", "de"):
        assert ProductTranslation.objects.filter(language=language).count() == 339
    tea = Product.objects.get(store__code="epicerie-moselle", gtin="5400000000027")
    assert (tea.sku, tea.price, tea.translation("de").title) == (
        "TEA-GREEN",
        Decimal("7.90"),
        "Grüner Tee",
    )
    account = LetzshopAccount.objects.get()
    assert (account.store.code, account.vendor_id, account.auto_sync) == (
        "epicerie-moselle",
        "VEN-1",
        True,
    )
    assert account.api_key == "letzshop-dev-key"
    assert "letzshop-dev-key" not in account.api_key_encrypted
    assert Stock.objects.filter(on_hand=0).exists()
    assert sorted(p.name for p in demo_var_dir.joinpath("demo").glob("*.tsv")) == [
        f"{code}-{language}.tsv"
        for code in ("epicerie-moselle", "livres-jouets", "maison-jardin")
        for language in ("de", "en", "fr")
    ]
    honey = Product.objects.get(store__code="epicerie-moselle", sku="EPI-0001")
    assert honey.translation("fr").title == "Miel bio 250 g"
    assert honey.translation("de").title == "Bio-Honig 250 g"
    titles = set(ProductTranslation.objects.filter(language="de").values_list("title", flat=True))
    assert {"Traditioneller Honig 250 g", "Handwerkliche Marmelade 500 g"} <= titles
    assert {
        "Klassisches Puzzle Band 1",
        "Klassische Bausteine Band 2",
        "Keramik-Vase klein",
    } <= titles
    assert (honey.gtin_type, len(honey.gtin)) == ("ean13", 13)

    passwords = json.loads(demo_var_dir.joinpath("demo", "passwords.json").read_text())
    assert f"admin / password {passwords['admin']}" in output
    assert f"staff / password {passwords['staff']}" in output
    assert f"shopper / password {passwords['shopper']}" in output
    admin = get_user_model().objects.get(username="admin")
    assert (admin.is_superuser, admin.is_staff) == (True, True)
    staff = get_user_model().objects.get(username="staff")
    assert list(staff.memberships.values_list("store__code", "role")) == [
        ("epicerie-moselle", Membership.Role.OWNER)
    ]
    assert client.login(username="shopper", password=passwords["shopper"])


def test_seed_demo_sells_at_luxembourg_vat_rates(demo_var_dir):
    _seed()

    def rates(code: str) -> dict[str, int]:
        by_rate = (
            Product.objects.filter(store__code=code).values_list("vat_rate").annotate(n=Count("pk"))
        )
        return {f"{rate}": n for rate, n in by_rate}

    # Food 3 %, still wine 14 %, Crémant (sparkling) 17 %; of the three Letzshop products
    # the tea and the cookbook at 3 %, the mug at 17 %.
    assert rates("epicerie-moselle") == {"3.00": 98, "14.00": 8, "17.00": 9}
    assert rates("maison-jardin") == {"17.00": 112}
    assert rates("livres-jouets") == {"3.00": 48, "17.00": 64}  # books / toys and games
    assert Store.objects.get(code="epicerie-moselle").default_vat_rate == Decimal("3.00")


def test_seed_demo_twice_changes_nothing_and_keeps_what_was_done_since(demo_var_dir):
    first = _seed()
    stock = Stock.objects.get(product__sku="EPI-0004")
    set_stock_on_hand(stock.product, stock.on_hand + 10, note="counted")
    movements = StockMovement.objects.count()
    stamps = dict(Product.objects.values_list("pk", "updated_at"))
    users = get_user_model().objects.count()

    second = _seed()

    assert re.findall(r"^(\S+): catalogue kept as it is \((\d+) products\)$", second, re.M) == [
        ("epicerie-moselle", "115"),
        ("maison-jardin", "112"),
        ("livres-jouets", "112"),
    ]
    assert "rows read" not in second
    assert Stock.objects.get(product__sku="EPI-0004").on_hand == stock.on_hand + 10
    assert LetzshopAccount.objects.count() == 1
    assert StockMovement.objects.count() == movements
    assert dict(Product.objects.values_list("pk", "updated_at")) == stamps
    assert get_user_model().objects.count() == users == 3
    assert Membership.objects.count() == 1
    assert first.splitlines()[-3:] == second.splitlines()[-3:]


def test_import_products_waits_for_no_one_and_says_another_import_runs(
    store, tmp_path, other_connection
):
    other_connection.execute("SELECT pg_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, store.pk])
    feed = tmp_path / "feed.tsv"
    feed.write_bytes(letzshop_feed(2))
    with pytest.raises(CommandError) as error:
        call_command("import_products", "--store", store.code, str(feed))
    assert str(error.value) == (
        f"Another import of store {store.code} is running; try again when it has finished."
    )
    assert Product.objects.filter(store=store).count() == 0
