import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from marketplace.models import (
    Cart,
    Checkout,
    Customer,
    Order,
    OrderEvent,
    OrderLine,
    OrderNumberSequence,
    Stock,
    StockMovement,
)
from marketplace.money import round_money, vat_included
from marketplace.services import (
    DomainError,
    NotEnoughStock,
    add_to_cart,
    open_cart,
    place_orders,
)

ADDRESS = {
    "name": "Anna Muller",
    "first_name": "Anna",
    "last_name": "Muller",
    "street": "1 Rue du Marché",
    "postal_code": "L-1234",
    "city": "Luxembourg",
    "country": "LU",
    "phone": "",
}
YEAR = timezone.localdate().year


def _place(cart, email="guest@example.lu", user=None, locale="en"):
    return place_orders(
        cart,
        email=email,
        shipping_address=ADDRESS,
        billing_address=ADDRESS,
        locale=locale,
        user=user,
    )


def _counts():
    return (
        Order.objects.count(),
        OrderLine.objects.count(),
        OrderEvent.objects.count(),
        Checkout.objects.count(),
        Customer.objects.count(),
        StockMovement.objects.filter(kind=StockMovement.Kind.RESERVE).count(),
        list(Stock.objects.order_by("pk").values_list("reserved", flat=True)),
        list(OrderNumberSequence.objects.values_list("last_value", flat=True)),
    )


def test_round_money_is_half_up_to_the_cent():
    assert round_money(Decimal("0.005")) == Decimal("0.01")
    assert round_money(Decimal("2.675")) == Decimal("2.68")
    assert round_money(Decimal("-0.005")) == Decimal("-0.01")
    assert round_money(Decimal("3.6325")) == Decimal("3.63")


def test_vat_included_in_gross_amount():
    assert vat_included(Decimal("25.00"), Decimal("17")) == Decimal("3.63")
    assert vat_included(Decimal("10.00"), Decimal("3")) == Decimal("0.29")
    assert vat_included(Decimal("10.00"), Decimal("0")) == Decimal("0.00")


def test_multi_store_cart_becomes_one_order_per_store(store, other_store, make_product):
    mug = make_product(store, "MUG", title="Mug", price="12.50", on_hand=5)
    book = make_product(other_store, "BOOK", title="Book", price="20.00", vat_rate=Decimal("3"))
    cart = open_cart()
    add_to_cart(cart, mug, 2)
    add_to_cart(cart, book, 1)

    checkout = _place(cart)

    orders = {o.store_id: o for o in checkout.orders.all()}
    assert set(orders) == {store.pk, other_store.pk}
    lux, oth = orders[store.pk], orders[other_store.pk]
    assert lux.number == f"LUX-{YEAR}-000001"
    assert oth.number == f"OTH-{YEAR}-000001"
    assert (lux.subtotal, lux.vat_total, lux.total) == (
        Decimal("25.00"),
        Decimal("3.63"),
        Decimal("25.00"),
    )
    assert (oth.subtotal, oth.vat_total, oth.total) == (
        Decimal("20.00"),
        Decimal("0.58"),
        Decimal("20.00"),
    )
    line = lux.lines.get()
    assert (line.title, line.sku, line.quantity, line.unit_price, line.line_total) == (
        "Mug",
        "MUG",
        2,
        Decimal("12.50"),
        Decimal("25.00"),
    )
    assert (line.vat_rate, line.vat_amount) == (Decimal("17.00"), Decimal("3.63"))
    assert lux.status == Order.Status.PENDING
    assert lux.channel == Order.Channel.WEB
    assert lux.email == "guest@example.lu"
    assert lux.shipping_address == ADDRESS
    assert lux.billing_address == ADDRESS
    assert list(lux.events.values_list("from_status", "to_status")) == [("", "pending")]
    assert lux.customer.store == store
    assert (lux.customer.email, lux.customer.first_name, lux.customer.last_name) == (
        "guest@example.lu",
        "Anna",
        "Muller",
    )
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.CHECKED_OUT


def test_checkout_reserves_stock_and_records_movements(store, make_product):
    mug = make_product(store, "MUG", price="12.50", on_hand=5)
    cart = open_cart()
    add_to_cart(cart, mug, 2)

    checkout = _place(cart)

    order = checkout.orders.get()
    stock = Stock.objects.get(product=mug)
    assert (stock.on_hand, stock.reserved) == (5, 2)
    movement = StockMovement.objects.get(kind=StockMovement.Kind.RESERVE)
    assert (movement.product_id, movement.order, movement.on_hand_delta) == (mug.pk, order, 0)
    assert (movement.reserved_delta, movement.on_hand_after, movement.reserved_after) == (2, 5, 2)


def test_sale_price_is_snapshotted(store, make_product):
    product = make_product(store, "SALE", price="20.00", sale_price=Decimal("15.00"))
    cart = open_cart()
    add_to_cart(cart, product, 1)

    order = _place(cart).orders.get()

    assert order.lines.get().unit_price == Decimal("15.00")
    assert order.total == Decimal("15.00")
    assert order.vat_total == Decimal("2.18")


def test_order_numbers_continue_per_store_and_year(store, make_product):
    product = make_product(store, "MUG", on_hand=10)
    numbers = []
    for _ in range(3):
        cart = open_cart()
        add_to_cart(cart, product, 1)
        numbers.append(_place(cart).orders.get().number)

    assert numbers == [f"LUX-{YEAR}-00000{n}" for n in (1, 2, 3)]
    assert OrderNumberSequence.objects.get(store=store, year=YEAR).last_value == 3


def test_not_enough_stock_is_refused_and_nothing_is_written(store, other_store, make_product):
    plenty = make_product(other_store, "PLENTY", title="Plenty", on_hand=10)
    scarce = make_product(store, "SCARCE", title="Scarce lamp", on_hand=3)
    cart = open_cart()
    add_to_cart(cart, plenty, 1)
    add_to_cart(cart, scarce, 3)
    other = open_cart()
    add_to_cart(other, scarce, 2)
    _place(other)
    before = _counts()

    with pytest.raises(NotEnoughStock) as refused:
        _place(cart)

    assert str(refused.value) == ("Not enough stock for Scarce lamp: 1 available, 3 requested.")
    assert _counts() == before
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.OPEN


def test_empty_cart_is_refused(db):
    with pytest.raises(DomainError, match="Your cart is empty."):
        _place(open_cart())
    assert Order.objects.count() == 0


def test_inactive_product_is_refused_and_nothing_written(store, make_product):
    product = make_product(store, "GONE", title="Old lamp")
    cart = open_cart()
    add_to_cart(cart, product, 1)
    product.is_active = False
    product.save()
    before = _counts()

    with pytest.raises(DomainError, match="Old lamp is no longer sold."):
        _place(cart)
    assert _counts() == before


def test_out_of_stock_product_is_refused(store, make_product):
    product = make_product(store, "OOS", title="Sold out lamp")
    cart = open_cart()
    add_to_cart(cart, product, 1)
    product.availability = "out_of_stock"
    product.save()

    with pytest.raises(DomainError, match="Sold out lamp is out of stock."):
        _place(cart)
    assert Order.objects.count() == 0


def test_checked_out_cart_cannot_be_placed_twice(store, make_product):
    product = make_product(store, "MUG")
    cart = open_cart()
    add_to_cart(cart, product, 1)
    _place(cart)

    with pytest.raises(DomainError, match="already been checked out"):
        _place(cart)
    assert Order.objects.count() == 1


def test_customer_is_reused_per_store_but_never_linked_to_a_later_account(
    store, make_product, shopper
):
    product = make_product(store, "MUG")
    first = open_cart()
    add_to_cart(first, product, 1)
    _place(first, email="Anna@Example.lu")
    second = open_cart(user=shopper)
    add_to_cart(second, product, 1)

    checkout = _place(second, email="anna@example.lu", user=shopper)

    customer = Customer.objects.get()
    # The guest's customer row is not handed to whoever types the same email.
    assert (customer.email, customer.user) == ("anna@example.lu", None)
    assert checkout.user == shopper
    assert Order.objects.filter(customer=customer).count() == 2


def test_new_customer_is_linked_to_the_account_whose_email_it_is(store, make_product, shopper):
    cart = open_cart(user=shopper)
    add_to_cart(cart, make_product(store, "MUG"), 1)

    _place(cart, email="SHOPPER@example.lu", user=shopper)

    assert Customer.objects.get().user == shopper


@pytest.mark.django_db(transaction=True)
def test_two_checkouts_for_the_last_unit_only_one_wins(store, make_product):
    product = make_product(store, "LAST", title="Last one", on_hand=1)
    carts = [open_cart(), open_cart()]
    for cart in carts:
        add_to_cart(cart, product, 1)
    barrier = threading.Barrier(2)
    results = []

    def attempt(cart):
        barrier.wait()
        try:
            results.append(_place(cart).orders.get().number)
        except NotEnoughStock as exc:
            results.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(cart,)) for cart in carts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [
        f"LUX-{YEAR}-000001",
        "Not enough stock for Last one: 0 available, 1 requested.",
    ]
    assert Stock.objects.get(product=product).reserved == 1


# --- through the pages ----------------------------------------------------------------

CHECKOUT_POST = {
    "email": "guest@example.lu",
    "name": "Anna Muller",
    "street": "1 Rue du Marché",
    "postal_code": "L-1234",
    "city": "Luxembourg",
    "country": "LU",
    "phone": "",
    "billing_same": "on",
}


def test_guest_checkout_end_to_end(client, store, other_store, make_product):
    make_product(store, "BR-1", title="Silver bracelet", price="12.50", on_hand=4)
    make_product(other_store, "CUP-1", title="Coffee cup", price="8.00", on_hand=4)

    found = client.get(reverse("marketplace:product_list"), {"q": "brace"})
    bracelet = found.context["products"][0]
    assert [p.sku for p in found.context["products"]] == ["BR-1"]
    cup = client.get(reverse("marketplace:product_list"), {"q": "coffee"}).context["products"][0]
    client.post(reverse("marketplace:cart_add", args=[bracelet.public_id]), {"quantity": "2"})
    client.post(reverse("marketplace:cart_add", args=[cup.public_id]), {"quantity": "1"})
    assert client.get(reverse("marketplace:checkout")).status_code == 200

    response = client.post(reverse("marketplace:checkout"), CHECKOUT_POST, follow=True)

    checkout = Checkout.objects.get()
    assert response.redirect_chain == [
        (reverse("marketplace:checkout_done", args=[checkout.public_id]), 302)
    ]
    page = response.content.decode()
    assert f"LUX-{YEAR}-000001" in page
    assert f"OTH-{YEAR}-000001" in page
    assert "33.00 €" in page
    assert Order.objects.count() == 2
    assert Stock.objects.get(product=bracelet).reserved == 2
    lux_order = Order.objects.get(store=store)
    assert (lux_order.shipping_address, lux_order.billing_address) == (ADDRESS, ADDRESS)
    # The cart is gone from the session: a new visit starts empty.
    assert client.get(reverse("marketplace:cart")).context["groups"] == []


def test_checkout_form_errors_rerender_with_messages(client, store, make_product):
    product = make_product(store, "MUG")
    client.post(reverse("marketplace:cart_add", args=[product.public_id]), {"quantity": "1"})

    response = client.post(
        reverse("marketplace:checkout"),
        {**CHECKOUT_POST, "email": "not-an-email", "city": "", "billing_same": ""},
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["email"] == ["Enter a valid email address."]
    assert errors["city"] == ["This field is required."]
    assert errors["billing_street"] == ["This field is required."]
    assert "Enter a valid email address." in response.content.decode()
    assert Order.objects.count() == 0


def test_checkout_page_shows_not_enough_stock(client, store, make_product):
    product = make_product(store, "MUG", title="Blue mug", on_hand=2)
    client.post(reverse("marketplace:cart_add", args=[product.public_id]), {"quantity": "2"})
    other = open_cart()
    add_to_cart(other, product, 1)
    _place(other)

    response = client.post(reverse("marketplace:checkout"), CHECKOUT_POST)

    assert response.status_code == 200
    assert "Not enough stock for Blue mug: 1 available, 2 requested." in response.content.decode()
    assert Order.objects.count() == 1


def test_confirmation_page_is_private_to_its_session(client, store, make_product):
    product = make_product(store, "MUG")
    cart = open_cart()
    add_to_cart(cart, product, 1)
    checkout = _place(cart)

    response = client.get(reverse("marketplace:checkout_done", args=[checkout.public_id]))

    assert response.status_code == 404


def test_logged_in_checkout_links_the_user(client, shopper, store, make_product):
    product = make_product(store, "MUG")
    client.force_login(shopper)
    client.post(reverse("marketplace:cart_add", args=[product.public_id]), {"quantity": "1"})

    client.post(reverse("marketplace:checkout"), {**CHECKOUT_POST, "email": shopper.email})

    order = Order.objects.get()
    assert order.checkout.user == shopper
    assert order.customer.user == shopper
    assert (
        client.get(
            reverse("marketplace:checkout_done", args=[order.checkout.public_id])
        ).status_code
        == 200
    )


def test_checkout_queues_confirmation_for_shopper_and_notice_for_each_store(
    store, other_store, make_product, django_capture_on_commit_callbacks
):
    from notifications.models import OutboundEmail

    store.email = "orders@lux-shop.lu"
    store.save()
    other_store.email = "shop@other.lu"
    other_store.default_language = "de"
    other_store.save()
    cart = open_cart()
    add_to_cart(cart, make_product(store, "A", price="5.00"), 1)
    add_to_cart(cart, make_product(other_store, "B", price="7.00"), 1)

    with django_capture_on_commit_callbacks() as callbacks:
        checkout = _place(cart, locale="fr")

    numbers = sorted(o.number for o in checkout.orders.all())
    emails = sorted(OutboundEmail.objects.values_list("template_code", "to", "language", "status"))
    assert emails == [
        ("order_confirmation", "guest@example.lu", "fr", "queued"),
        ("order_confirmation", "guest@example.lu", "fr", "queued"),
        ("store_new_order", "orders@lux-shop.lu", "en", "queued"),
        ("store_new_order", "shop@other.lu", "de", "queued"),
    ]
    assert len(callbacks) == 4
    assert numbers == [f"LUX-{YEAR}-000001", f"OTH-{YEAR}-000001"]


def test_refused_checkout_queues_no_email(store, make_product):
    from notifications.models import OutboundEmail

    cart = open_cart()
    add_to_cart(cart, make_product(store, "A", on_hand=1), 1)
    Stock.objects.filter(product__sku="A").update(reserved=1)

    with pytest.raises(NotEnoughStock):
        _place(cart)

    assert OutboundEmail.objects.count() == 0


def test_checkout_offers_exactly_the_eu_member_states_as_eu_countries():
    from marketplace.forms import EU_COUNTRIES
    from marketplace.models import EU_COUNTRY_CODES

    assert {code for code, _label in EU_COUNTRIES} == EU_COUNTRY_CODES
    assert len(EU_COUNTRY_CODES) == 27
