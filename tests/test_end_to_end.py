"""The main job on real input: real Shopify catalogues imported into three stores, one of
their products found, bought as a guest on the storefront, and seen by staff in admin."""

from decimal import Decimal

from django.urls import reverse
from django.utils import timezone

from imports.services import import_product_feed
from marketplace.models import Order, Product, StockMovement
from tests.conftest import FEEDS_DIR

ADDRESS = {
    "email": "marie@example.lu",
    "name": "Marie Weber",
    "street": "12 rue de la Gare",
    "postal_code": "L-1616",
    "city": "Luxembourg",
    "country": "LU",
    "phone": "",
    "billing_same": "on",
}


def test_shopper_buys_an_imported_product_and_staff_sees_the_order(
    client, make_store, platform_admin
):
    apparel = make_store("apparel", name="Apparel", order_prefix="APP")
    garden = make_store("garden", name="Home & Garden", order_prefix="GAR")
    jewels = make_store("jewels", name="Jewels", order_prefix="JEW")
    reports = {
        store.code: import_product_feed(store, FEEDS_DIR / name)
        for store, name in [
            (apparel, "shopify-apparel.csv"),
            (garden, "shopify-home-and-garden.csv"),
            (jewels, "shopify-jewelery.csv"),
        ]
    }
    assert {code: r.created for code, r in reports.items()} == {
        "apparel": 22,
        "garden": 21,
        "jewels": 23,
    }
    assert Product.objects.count() == 66

    # The shopper searches the marketplace and finds the copper light of the garden store.
    listing = client.get(reverse("marketplace:product_list"), {"q": "copper light"})
    found = [p.sku for p in listing.context["products"]]
    assert found[0] == "copper-light"
    light = Product.objects.get(store=garden, sku="copper-light")
    assert (light.price, light.sale_price, light.stock.on_hand) == (
        Decimal("75.00"),
        Decimal("59.99"),
        2,
    )

    client.post(reverse("marketplace:cart_add", args=[light.public_id]), {"quantity": "2"})
    response = client.post(reverse("marketplace:checkout"), ADDRESS, follow=True)

    order = Order.objects.get()
    number = f"GAR-{timezone.now().year}-000001"
    assert order.number == number
    assert (order.total, order.vat_total) == (Decimal("119.98"), Decimal("17.43"))
    assert number in response.content.decode()
    assert "Copper Light" in response.content.decode()
    light.stock.refresh_from_db()
    assert (light.stock.on_hand, light.stock.reserved) == (2, 2)
    assert list(
        StockMovement.objects.filter(product=light).values_list("kind", "reserved_delta")
    ) == [("reserve", 2), ("import", 0)]

    # Staff open the order in admin: its line, its event and the stock it moved.
    client.force_login(platform_admin)
    changelist = client.get(reverse("admin:marketplace_order_changelist"))
    assert number in changelist.content.decode()
    page = client.get(reverse("admin:marketplace_order_change", args=[order.pk])).content.decode()
    assert "copper-light" in page
    assert "119.98" in page
    assert "pending" in page.lower()
