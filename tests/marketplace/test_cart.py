from decimal import Decimal

import pytest
from django.urls import reverse

from marketplace.models import Cart, CartItem
from marketplace.services import (
    DomainError,
    NotEnoughStock,
    add_to_cart,
    open_cart,
    remove_from_cart,
    update_cart_item,
)


def _add(client, product, quantity="1"):
    return client.post(
        reverse("marketplace:cart_add", args=[product.public_id]), {"quantity": quantity}
    )


def test_add_to_cart_keeps_the_cart_in_the_session(client, store, make_product):
    product = make_product(store, "MUG", title="Blue mug", price="12.50")

    response = _add(client, product, "2")

    assert response.status_code == 302
    cart = Cart.objects.get()
    assert client.session["cart_token"] == str(cart.token)
    assert list(cart.items.values_list("product__sku", "quantity")) == [("MUG", 2)]
    page = client.get(reverse("marketplace:cart")).content.decode()
    assert "Blue mug" in page
    assert '<span class="cart-count" data-testid="cart-count">2</span>' in page


def test_adding_twice_adds_up(client, store, make_product):
    product = make_product(store, "MUG")
    _add(client, product, "2")
    _add(client, product, "3")

    assert CartItem.objects.get().quantity == 5
    assert Cart.objects.count() == 1


def test_cart_groups_items_per_store_with_subtotals(client, store, other_store, make_product):
    _add(client, make_product(store, "A", title="Lamp", price="12.50"), "2")
    _add(client, make_product(store, "B", title="Vase", price="5.00"), "1")
    _add(client, make_product(other_store, "C", title="Book", price="20.00"), "1")

    response = client.get(reverse("marketplace:cart"))

    groups = response.context["groups"]
    assert [(g.store.code, g.subtotal) for g in groups] == [
        ("lux-shop", Decimal("30.00")),
        ("other-shop", Decimal("20.00")),
    ]
    assert [[line.product.sku for line in g.lines] for g in groups] == [["A", "B"], ["C"]]
    assert response.context["total"] == Decimal("50.00")
    page = response.content.decode()
    assert "30.00 €" in page and "50.00 €" in page


def test_update_and_remove_from_the_cart_page(client, store, make_product):
    mug = make_product(store, "MUG")
    vase = make_product(store, "VASE")
    _add(client, mug)
    _add(client, vase)

    client.post(reverse("marketplace:cart_update", args=[mug.public_id]), {"quantity": "4"})
    client.post(reverse("marketplace:cart_remove", args=[vase.public_id]))

    assert list(CartItem.objects.values_list("product__sku", "quantity")) == [("MUG", 4)]

    client.post(reverse("marketplace:cart_update", args=[mug.public_id]), {"quantity": "0"})
    assert CartItem.objects.count() == 0


def test_adding_more_than_available_is_refused_with_a_message(client, store, make_product):
    product = make_product(store, "MUG", title="Blue mug", on_hand=2)

    response = _add(client, product, "3")

    assert response.url == reverse("marketplace:product_detail", args=[product.public_id])
    page = client.get(response.url).content.decode()
    assert "Not enough stock for Blue mug: 2 available, 3 requested." in page
    assert CartItem.objects.count() == 0


def test_out_of_stock_product_cannot_be_added(store, make_product):
    product = make_product(store, "OOS", title="Lamp", availability="out_of_stock")
    with pytest.raises(DomainError, match="Lamp is out of stock."):
        add_to_cart(open_cart(), product, 1)
    assert CartItem.objects.count() == 0


def test_invalid_quantity_does_not_crash(client, store, make_product):
    product = make_product(store, "MUG")

    response = _add(client, product, "abc")

    assert response.status_code == 302
    assert CartItem.objects.count() == 0


def test_inactive_product_cannot_be_added(client, store, make_product):
    product = make_product(store, "OLD", is_active=False)

    assert _add(client, product).status_code == 404
    assert CartItem.objects.count() == 0


def test_update_beyond_stock_is_refused(store, make_product):
    product = make_product(store, "MUG", title="Mug", on_hand=3)
    cart = open_cart()
    add_to_cart(cart, product, 1)

    with pytest.raises(NotEnoughStock):
        update_cart_item(cart, product, 4)
    assert CartItem.objects.get().quantity == 1


def test_remove_is_idempotent(store, make_product):
    product = make_product(store, "MUG")
    cart = open_cart()
    remove_from_cart(cart, product)
    assert CartItem.objects.count() == 0


def test_logging_in_attaches_the_session_cart_to_the_user(client, store, make_product, shopper):
    _add(client, make_product(store, "MUG"))
    client.post(
        reverse("marketplace:login"),
        {"username": "shopper", "password": "correct-horse-battery"},
    )

    client.get(reverse("marketplace:cart"))

    assert Cart.objects.get().user == shopper


def test_checked_out_cart_refuses_changes(store, make_product):
    product = make_product(store, "MUG")
    cart = open_cart()
    add_to_cart(cart, product, 1)
    Cart.objects.filter(pk=cart.pk).update(status=Cart.Status.CHECKED_OUT)
    cart.refresh_from_db()

    with pytest.raises(DomainError, match="already been checked out"):
        add_to_cart(cart, product, 1)
