"""The platform admin: every marketplace page opens, lists cost a fixed number of queries,
stock and orders cannot be edited, products are saved through the catalogue service."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from marketplace.models import (
    Cart,
    CartItem,
    Checkout,
    Customer,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    Stock,
    StockMovement,
)

pytestmark = pytest.mark.django_db

MODELS = [
    "store",
    "membership",
    "product",
    "stock",
    "stockmovement",
    "customer",
    "cart",
    "checkout",
    "order",
]


@pytest.fixture
def admin_client(client, platform_admin):
    client.force_login(platform_admin)
    return client


def make_order(store, product, number: str, *, email: str = "anna@example.lu") -> Order:
    checkout = Checkout.objects.create(email=email)
    customer, _ = Customer.objects.get_or_create(store=store, email=email)
    order = Order.objects.create(
        store=store,
        number=number,
        checkout=checkout,
        customer=customer,
        email=email,
        subtotal=Decimal("20.00"),
        vat_total=Decimal("2.91"),
        total=Decimal("20.00"),
    )
    OrderLine.objects.create(
        order=order,
        product=product,
        sku=product.sku,
        title="Kachkéis 250 g",
        quantity=2,
        unit_price=Decimal("10.00"),
        vat_rate=Decimal("17.00"),
        line_total=Decimal("20.00"),
        vat_amount=Decimal("2.91"),
    )
    OrderEvent.objects.create(order=order, to_status=Order.Status.PENDING, note="placed online")
    return order


@pytest.fixture
def catalogue(store, other_store, make_product, owner, shopper):
    products = [make_product(store, f"LUX-{n}", title=f"Product {n}") for n in range(3)]
    products.append(make_product(other_store, "OTH-1", title="Other product"))
    cart = Cart.objects.create(user=shopper)
    CartItem.objects.create(cart=cart, product=products[0], quantity=1)
    make_order(store, products[0], "LUX-2026-000001")
    return products


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_opens_for_a_superuser(admin_client, catalogue, model):
    response = admin_client.get(reverse(f"admin:marketplace_{model}_changelist"))

    assert response.status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_every_change_page_opens_for_a_superuser(admin_client, catalogue, model):
    from django.apps import apps

    obj = apps.get_model("marketplace", model).objects.first()

    response = admin_client.get(reverse(f"admin:marketplace_{model}_change", args=[obj.pk]))

    assert response.status_code == 200


def test_product_add_page_opens(admin_client):
    response = admin_client.get(reverse("admin:marketplace_product_add"))

    assert response.status_code == 200


def _product_changelist_queries(admin_client, django_assert_num_queries, expected: int):
    with django_assert_num_queries(expected):
        response = admin_client.get(reverse("admin:marketplace_product_changelist"))
    assert response.status_code == 200
    return response


# session, user, stores filter, count, full count, page of products, translations prefetch
PRODUCT_CHANGELIST_QUERIES = 7


def test_product_changelist_costs_the_same_queries_for_one_and_many_rows(
    admin_client, store, make_product, django_assert_num_queries
):
    make_product(store, "ONE", title="Only one")
    response = _product_changelist_queries(
        admin_client, django_assert_num_queries, PRODUCT_CHANGELIST_QUERIES
    )
    assert "Only one" in response.content.decode()

    for n in range(15):
        make_product(store, f"MANY-{n}", title=f"Many {n}", on_hand=n)
    response = _product_changelist_queries(
        admin_client, django_assert_num_queries, PRODUCT_CHANGELIST_QUERIES
    )
    assert "Many 14" in response.content.decode()


# session, user, stores filter, count, full count, page of orders, date hierarchy (2)
ORDER_CHANGELIST_QUERIES = 8


def test_order_changelist_costs_the_same_queries_for_one_and_many_rows(
    admin_client, store, other_store, make_product, django_assert_num_queries
):
    product = make_product(store, "ONE")
    other_product = make_product(other_store, "TWO")
    make_order(store, product, "LUX-2026-000001")
    url = reverse("admin:marketplace_order_changelist")
    with django_assert_num_queries(ORDER_CHANGELIST_QUERIES):
        assert admin_client.get(url).status_code == 200

    for n in range(2, 15):
        make_order(other_store, other_product, f"OTH-2026-{n:06d}", email=f"b{n}@example.lu")
    with django_assert_num_queries(ORDER_CHANGELIST_QUERIES):
        response = admin_client.get(url)
    assert response.status_code == 200
    assert "OTH-2026-000014" in response.content.decode()


def test_order_change_page_shows_its_lines_and_events(admin_client, store, make_product):
    order = make_order(store, make_product(store, "KACH-250"), "LUX-2026-000042")

    response = admin_client.get(reverse("admin:marketplace_order_change", args=[order.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "LUX-2026-000042" in page
    assert "Kachkéis 250 g" in page
    assert "KACH-250" in page
    assert "placed online" in page


@pytest.mark.parametrize("model", ["stock", "stockmovement", "order", "cart", "checkout"])
def test_service_owned_rows_cannot_be_added_in_the_admin(admin_client, model):
    response = admin_client.get(reverse(f"admin:marketplace_{model}_add"))

    assert response.status_code == 403


def test_stock_cannot_be_changed_in_the_admin(admin_client, store, make_product):
    product = make_product(store, "FIXED", on_hand=5)
    movements = StockMovement.objects.count()

    response = admin_client.post(
        reverse("admin:marketplace_stock_change", args=[product.pk]),
        {"on_hand": "500", "reserved": "0"},
    )

    assert response.status_code == 403
    stock = Stock.objects.get(pk=product.pk)
    assert (stock.on_hand, stock.reserved) == (5, 0)
    assert StockMovement.objects.count() == movements


def _product_form(store, sku: str, **overrides) -> dict:
    data = {
        "store": store.pk,
        "sku": sku,
        "gtin": "4006381333931",
        "gtin_type": "ean13",
        "brand": "Ramborn",
        "mpn": "",
        "price": "12.50",
        "sale_price": "",
        "vat_rate": "17.00",
        "condition": "new",
        "availability": "in_stock",
        "is_active": "on",
        "group_id": "",
        "product_type": "",
        "google_product_category": "",
        "link": "",
        "image_url": "",
        "additional_image_urls": "[]",
        "attributes": "{}",
        "translations-TOTAL_FORMS": "1",
        "translations-INITIAL_FORMS": "0",
        "translations-MIN_NUM_FORMS": "0",
        "translations-MAX_NUM_FORMS": "1000",
        "translations-0-language": "en",
        "translations-0-title": "Cider brut",
        "translations-0-description": "<p>Dry Luxembourg cider</p>",
    }
    data.update(overrides)
    return data


def test_adding_a_product_goes_through_the_catalogue_service(admin_client, store):
    response = admin_client.post(
        reverse("admin:marketplace_product_add"), _product_form(store, "CIDER-75")
    )

    assert response.status_code == 302
    product = Product.objects.get(store=store, sku="CIDER-75")
    assert product.price == Decimal("12.50")
    assert product.translation("en").title == "Cider brut"
    assert (
        product.search_document == "CIDER-75 4006381333931 Ramborn Cider brut Dry Luxembourg cider"
    )
    assert Stock.objects.filter(product=product, on_hand=0, reserved=0).exists()


def test_changing_a_product_keeps_its_search_document_and_stock(admin_client, store, make_product):
    product = make_product(store, "CIDER-75", title="Cider", on_hand=7)
    translation = product.translations.get()
    data = _product_form(
        store,
        "CIDER-75",
        price="13.00",
        **{
            "translations-INITIAL_FORMS": "1",
            "translations-0-id": str(translation.pk),
            "translations-0-product": str(product.pk),
            "translations-0-title": "Cider brut",
        },
    )

    response = admin_client.post(
        reverse("admin:marketplace_product_change", args=[product.pk]), data
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.price == Decimal("13.00")
    assert product.translation("en").title == "Cider brut"
    assert "Cider brut" in product.search_document
    assert product.stock.on_hand == 7
