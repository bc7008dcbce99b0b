"""The demo data is wired to the Letzshop development server: its first store syncs the
server's three demo shipments, matching the products seed_demo gave it."""

from decimal import Decimal
from io import StringIO

from django.core.management import call_command

from imports.letzshop.models import LetzshopAccount, OrderException
from imports.letzshop.services import sync_account
from marketplace.models import Order


def test_seeded_demo_store_syncs_the_dev_servers_shipments(db, settings, tmp_path, letzshop):
    settings.VAR_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", stdout=StringIO())
    account = LetzshopAccount.objects.select_related("store").get()
    LetzshopAccount.objects.filter(pk=account.pk).update(endpoint=letzshop.url)
    account.refresh_from_db()

    result = sync_account(account)

    assert (result.error, result.seen, result.created) == ("", 3, 3)
    orders = Order.objects.filter(store=account.store, channel=Order.Channel.LETZSHOP)
    assert orders.count() == 3
    matched = sorted(
        orders.filter(lines__product__isnull=False).values_list("lines__product__sku", flat=True)
    )
    assert matched == ["BOOK-FOLIO-1", "MUG-RED", "MUG-RED", "TEA-GREEN"]
    assert list(OrderException.objects.values_list("status", flat=True)) == ["open"]
    mug = account.store.products.get(sku="MUG-RED")
    assert (mug.price, mug.stock.on_hand, mug.stock.reserved) == (Decimal("12.50"), 25, 3)
