from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone, translation

from marketplace.models import Order, Store
from marketplace.services import add_to_cart, open_cart, place_orders
from marketplace.templatetags.storefront import long_date

LIST = reverse("marketplace:product_list")


@pytest.fixture
def catalogue(store, other_store, make_product):
    """Five visible products in two stores (created in this order) and one inactive."""
    return {
        "BR-1": make_product(
            store,
            "BR-1",
            price="45.00",
            brand="Argento",
            gtin="4006381333931",
            on_hand=3,
            translations={
                "en": {"title": "Silver bracelet", "description": "<p>Handmade in <b>Esch</b></p>"},
                "fr": {"title": "Bracelet en argent", "description": ""},
            },
        ),
        "MUG-1": make_product(
            store,
            "MUG-1",
            title="Blue mug",
            price="12.50",
            sale_price=Decimal("9.90"),
            brand="Villeroy",
            on_hand=0,
            translations={"en": {"title": "Blue mug", "description": "Stoneware cup"}},
        ),
        "LAMP-7": make_product(
            store,
            "LAMP-7",
            price="80.00",
            brand="Lumo",
            on_hand=5,
            translations={"en": {"title": "Desk lamp", "description": "A lamp with lamp light"}},
        ),
        "BOOK-1": make_product(
            other_store,
            "BOOK-1",
            title="Luxembourg cookbook",
            price="25.00",
            gtin="9780306406157",
            on_hand=2,
        ),
        "VASE-2": make_product(
            other_store,
            "VASE-2",
            price="30.00",
            brand="Villeroy",
            on_hand=1,
            translations={"en": {"title": "Glass vase", "description": "Pairs with a lamp"}},
        ),
        "HIDDEN": make_product(store, "HIDDEN", title="Hidden lamp", is_active=False),
    }


def skus(client, **params):
    response = client.get(LIST, params)
    assert response.status_code == 200
    return [p.sku for p in response.context["products"]]


# --- pages ------------------------------------------------------------------------------


def test_home_shows_new_arrivals_and_stores(client, catalogue):
    response = client.get(reverse("marketplace:home"))

    assert response.status_code == 200
    # Newest first, taking turns between the stores.
    assert [p.sku for p in response.context["products"]] == [
        "VASE-2",
        "LAMP-7",
        "BOOK-1",
        "MUG-1",
        "BR-1",
    ]
    assert [s.code for s in response.context["stores"]] == ["lux-shop", "other-shop"]
    page = response.content.decode()
    assert "Silver bracelet" in page
    assert "Hidden lamp" not in page


def test_product_card_shows_sale_price_badges_and_placeholder(client, catalogue):
    page = client.get(LIST, {"q": "mug"}).content.decode()

    assert '<span class="price-now price-sale">9.90 €</span>' in page
    assert '<s class="price-was">12.50 €</s>' in page
    assert '<span class="badge badge-out">Out of stock</span>' in page
    assert 'class="placeholder"' in page
    in_stock = client.get(LIST, {"q": "lamp"}).content.decode()
    assert '<span class="badge badge-ok">In stock</span>' in in_stock


def test_store_page_lists_only_its_products(client, catalogue):
    response = client.get(reverse("marketplace:store_detail", args=["other-shop"]))

    assert response.status_code == 200
    assert [p.sku for p in response.context["products"]] == ["VASE-2", "BOOK-1"]
    assert "<h1>Other Shop</h1>" in response.content.decode()


def test_unknown_or_inactive_store_is_404(client, catalogue, other_store):
    assert client.get(reverse("marketplace:store_detail", args=["nope"])).status_code == 404
    Store.objects.filter(pk=other_store.pk).update(is_active=False)
    assert client.get(reverse("marketplace:store_detail", args=["other-shop"])).status_code == 404
    assert skus(client, sort="price_asc") == ["MUG-1", "BR-1", "LAMP-7"]


def test_product_detail_renders(client, catalogue):
    product = catalogue["BR-1"]

    response = client.get(reverse("marketplace:product_detail", args=[product.public_id]))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<h1 class="product-title">Silver bracelet</h1>' in page
    assert "4006381333931" in page
    assert '<span class="price-now">45.00 €</span>' in page
    assert [p.sku for p in response.context["more"]] == ["LAMP-7", "MUG-1"]


def test_unknown_or_inactive_product_is_404(client, catalogue):
    hidden = catalogue["HIDDEN"]
    url = reverse("marketplace:product_detail", args=[hidden.public_id])
    assert client.get(url).status_code == 404
    unknown = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/products/{unknown}/").status_code == 404


def test_description_html_is_sanitised(client, store, make_product):
    product = make_product(
        store,
        "XSS",
        translations={
            "en": {
                "title": "Tricky",
                "description": '<b>Bold</b><script>alert("x")</script>'
                '<img src=x onerror="alert(1)"><a href="javascript:alert(2)">link</a>',
            }
        },
    )

    page = client.get(reverse("marketplace:product_detail", args=[product.public_id])).content
    page = page.decode()

    assert "<b>Bold</b>" in page
    assert "<script" not in page
    assert "alert" not in page
    assert "onerror" not in page


# --- search -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("bracelet", ["BR-1"]),
        ("brace", ["BR-1"]),
        ("BRACELET silver", ["BR-1"]),
        ("argent", ["BR-1"]),
        ("villeroy", ["MUG-1", "VASE-2"]),
        ("4006381333931", ["BR-1"]),
        ("9780306406157", ["BOOK-1"]),
        ("LAMP-7", ["LAMP-7"]),
        ("stoneware", ["MUG-1"]),
        ("esch", ["BR-1"]),
        ("villeroy -mug", ["VASE-2"]),
        ("hidden", []),
        ("nothing-like-this", []),
    ],
)
def test_search_finds_by_title_brand_gtin_sku_and_description(client, catalogue, q, expected):
    assert sorted(skus(client, q=q)) == expected


def test_search_input_with_tsquery_syntax_is_harmless(client, catalogue):
    for q in ["a:* & | ! ( ' \\", "':*", "&&&", "<->", "(((", "'"]:
        assert client.get(LIST, {"q": q}).status_code == 200


def test_relevance_sort_puts_the_best_match_first(client, catalogue):
    assert skus(client, q="lamp") == ["LAMP-7", "VASE-2"]
    assert skus(client, q="lamp", sort="price_asc") == ["VASE-2", "LAMP-7"]


# --- filters, sorting, pagination -------------------------------------------------------


def test_filter_by_store(client, catalogue):
    assert skus(client, store="other-shop", sort="price_asc") == ["BOOK-1", "VASE-2"]


def test_filter_by_brand(client, catalogue):
    assert skus(client, brand="Villeroy", sort="price_asc") == ["MUG-1", "VASE-2"]
    assert skus(client, brand=["Villeroy", "Lumo"], sort="price_asc") == [
        "MUG-1",
        "VASE-2",
        "LAMP-7",
    ]


def test_filter_by_price_range_uses_the_sale_price(client, catalogue):
    assert skus(client, min_price="20", max_price="45", sort="price_asc") == [
        "BOOK-1",
        "VASE-2",
        "BR-1",
    ]
    assert skus(client, max_price="10") == ["MUG-1"]


def test_filter_in_stock(client, catalogue):
    assert skus(client, in_stock="on", sort="price_asc") == ["BOOK-1", "VASE-2", "BR-1", "LAMP-7"]


def test_invalid_filter_values_are_ignored(client, catalogue):
    assert skus(client, min_price="abc", sort="price_asc", page="zz") == [
        "MUG-1",
        "BOOK-1",
        "VASE-2",
        "BR-1",
        "LAMP-7",
    ]


def test_brand_facet_lists_brands_of_the_search(client, catalogue):
    assert client.get(LIST).context["brands"] == ["Argento", "Lumo", "Villeroy"]
    assert client.get(LIST, {"q": "lamp"}).context["brands"] == ["Lumo", "Villeroy"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("price_asc", ["MUG-1", "BOOK-1", "VASE-2", "BR-1", "LAMP-7"]),
        ("price_desc", ["LAMP-7", "BR-1", "VASE-2", "BOOK-1", "MUG-1"]),
        ("newest", ["VASE-2", "BOOK-1", "LAMP-7", "MUG-1", "BR-1"]),
        ("title", ["MUG-1", "LAMP-7", "VASE-2", "BOOK-1", "BR-1"]),
        ("", ["VASE-2", "BOOK-1", "LAMP-7", "MUG-1", "BR-1"]),
    ],
)
def test_sorting(client, catalogue, sort, expected):
    assert skus(client, sort=sort) == expected


def test_title_sort_follows_the_active_language(client, catalogue):
    client.post(reverse("set_language"), {"language": "fr"})
    # BR-1 is "Bracelet en argent" in French; the others fall back to English.
    assert skus(client, sort="title") == ["MUG-1", "BR-1", "LAMP-7", "VASE-2", "BOOK-1"]


def test_pagination(client, catalogue, settings):
    settings.WIZAMART_PRODUCTS_PER_PAGE = 2

    assert skus(client, sort="price_asc") == ["MUG-1", "BOOK-1"]
    assert skus(client, sort="price_asc", page=2) == ["VASE-2", "BR-1"]
    assert skus(client, sort="price_asc", page=3) == ["LAMP-7"]
    assert skus(client, sort="price_asc", page=99) == ["LAMP-7"]
    page = client.get(LIST, {"sort": "price_asc", "page": 2}).content.decode()
    assert 'href="?sort=price_asc&amp;page=3"' in page
    assert 'href="?sort=price_asc&amp;page=1"' in page
    assert "Page 2 of 3" in page


@pytest.mark.parametrize("per_page", [5, 40])
def test_product_list_query_count_does_not_depend_on_page_size(
    client, store, other_store, make_product, settings, django_assert_num_queries, per_page
):
    for n in range(40):
        make_product(
            store if n % 2 else other_store,
            f"P-{n:02d}",
            price=f"{10 + n}.00",
            brand=f"Brand {n % 4}",
            translations={
                "en": {"title": f"Ring {n}", "description": ""},
                "fr": {"title": f"Bague {n}", "description": ""},
            },
        )
    settings.WIZAMART_PRODUCTS_PER_PAGE = per_page

    # count, page of products, translations, brand facet, store facet
    with django_assert_num_queries(5):
        response = client.get(LIST, {"q": "ring", "sort": "price_asc"})

    assert len(response.context["products"]) == per_page
    assert "Ring 0" in response.content.decode()


# --- language ---------------------------------------------------------------------------


def test_switching_to_french_shows_the_french_title(client, catalogue):
    url = reverse("marketplace:product_detail", args=[catalogue["BR-1"].public_id])
    assert '<h1 class="product-title">Silver bracelet</h1>' in client.get(url).content.decode()

    response = client.post(reverse("set_language"), {"language": "fr", "next": url}, follow=True)

    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert '<h1 class="product-title">Bracelet en argent</h1>' in page
    assert "Ajouter au panier" in page
    # No French text for the lamp: English is the fallback.
    lamp = reverse("marketplace:product_detail", args=[catalogue["LAMP-7"].public_id])
    assert '<h1 class="product-title">Desk lamp</h1>' in client.get(lamp).content.decode()


def test_german_interface(client, catalogue):
    client.post(reverse("set_language"), {"language": "de"})

    page = client.get(LIST).content.decode()

    assert "Alle Produkte" in page
    assert "Warenkorb" in page
    assert "5 Produkte" in page


# --- accounts ---------------------------------------------------------------------------


def test_registration_creates_and_logs_in_a_shopper(client, db):
    response = client.post(
        reverse("marketplace:register"),
        {
            "username": "lena",
            "email": "Lena@Example.lu",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )

    assert response.url == reverse("marketplace:my_orders")
    user = get_user_model().objects.get(username="lena")
    assert user.email == "lena@example.lu"
    assert client.get(reverse("marketplace:my_orders")).status_code == 200


def test_registration_errors_rerender(client, shopper):
    response = client.post(
        reverse("marketplace:register"),
        {"username": "x", "email": "shopper@example.lu", "password1": "a", "password2": "b"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [
        "An account with this email already exists."
    ]
    assert get_user_model().objects.count() == 1


def test_login_page_and_my_orders_requires_login(client, db):
    assert client.get(reverse("marketplace:login")).status_code == 200
    response = client.get(reverse("marketplace:my_orders"))
    assert response.url == f"{reverse('marketplace:login')}?next=/account/orders/"


def _order_for(email, product, user=None):
    cart = open_cart(user=user)
    add_to_cart(cart, product, 1)
    address = {
        "name": "A B",
        "street": "1 Rue",
        "postal_code": "1234",
        "city": "Lux",
        "country": "LU",
    }
    checkout = place_orders(
        cart,
        email=email,
        shipping_address=address,
        billing_address=address,
        locale="en",
        user=user,
    )
    return checkout.orders.get()


def test_my_orders_shows_only_own_orders(client, shopper, store, make_product):
    product = make_product(store, "MUG", on_hand=10)
    mine = _order_for(shopper.email, product, user=shopper)
    # Another shopper's guest order in the same store.
    theirs = _order_for("someone@example.lu", product)
    client.force_login(shopper)

    response = client.get(reverse("marketplace:my_orders"))

    assert [o.number for o in response.context["orders"]] == [mine.number]
    page = response.content.decode()
    assert mine.number in page and theirs.number not in page
    detail = reverse("marketplace:order_detail", args=[mine.public_id])
    assert mine.number in client.get(detail).content.decode()
    other = reverse("marketplace:order_detail", args=[theirs.public_id])
    assert client.get(other).status_code == 404


def test_typing_a_guests_email_at_checkout_does_not_reveal_their_orders(
    client, shopper, store, make_product
):
    product = make_product(store, "MUG", on_hand=10)
    victims = _order_for("victim@example.lu", product)
    # The attacker checks out logged in, giving the victim's email as theirs.
    _order_for("victim@example.lu", product, user=shopper)
    client.force_login(shopper)

    listed = [o.number for o in client.get(reverse("marketplace:my_orders")).context["orders"]]
    detail = client.get(reverse("marketplace:order_detail", args=[victims.public_id]))

    assert victims.number not in listed
    assert len(listed) == 1
    assert detail.status_code == 404


# --- what a new shopper noticed ---------------------------------------------------------

DEAD_IMAGE = "https://images.example.lu/gone.jpg"
FALLBACK_IMG = (
    f'<img class="media-img" src="{DEAD_IMAGE}" alt="" loading="lazy" onerror="this.hidden=true">'
)


def test_a_dead_product_image_falls_back_to_the_placeholder_everywhere(client, store, make_product):
    product = make_product(store, "MUG", title="Blue mug", image_url=DEAD_IMAGE)
    detail = reverse("marketplace:product_detail", args=[product.public_id])

    card_page = client.get(LIST).content.decode()
    product_page = client.get(detail).content.decode()
    client.post(reverse("marketplace:cart_add", args=[product.public_id]), {"quantity": "1"})
    cart_page = client.get(reverse("marketplace:cart")).content.decode()

    assert FALLBACK_IMG in card_page and FALLBACK_IMG in cart_page
    assert (
        f'<img class="media-img" src="{DEAD_IMAGE}" alt="Blue mug" onerror="this.hidden=true">'
        in product_page
    )
    # The placeholder is always there, under the image: a hidden image uncovers it.
    for page in (card_page, cart_page):
        assert page.count('<span class="placeholder" aria-hidden="true">') == 1
    assert '<span class="placeholder placeholder-lg" aria-hidden="true">' in product_page


def test_product_without_image_shows_only_the_placeholder(client, store, make_product):
    make_product(store, "MUG", image_url="")

    page = client.get(LIST).content.decode()

    assert '<span class="placeholder" aria-hidden="true">' in page
    assert "<img" not in page


def _checkout_two_stores(client, store, other_store, make_product):
    for product in (make_product(store, "A", price="5.00"), make_product(other_store, "B")):
        client.post(reverse("marketplace:cart_add", args=[product.public_id]), {"quantity": "1"})
    data = {
        "email": "guest@example.lu",
        "name": "Anna Muller",
        "street": "1 Rue du Marché",
        "postal_code": "L-1234",
        "city": "Luxembourg",
        "country": "LU",
        "billing_same": "on",
    }
    return client.post(reverse("marketplace:checkout"), data, follow=True)


def test_confirmation_of_unpaid_orders_says_total_to_pay_not_total_paid(
    client, store, other_store, make_product
):
    page = _checkout_two_stores(client, store, other_store, make_product).content.decode()

    assert '<p class="grand-total">Total to pay: <strong>15.00 €</strong></p>' in page
    assert "Total paid" not in page


def test_confirmation_of_paid_orders_says_total_paid(client, store, other_store, make_product):
    response = _checkout_two_stores(client, store, other_store, make_product)
    Order.objects.update(paid_at=timezone.now())

    page = client.get(response.redirect_chain[-1][0]).content.decode()

    assert '<p class="grand-total">Total paid: <strong>15.00 €</strong></p>' in page
    assert "Total to pay" not in page


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "3 December 2026"), ("fr", "3 décembre 2026"), ("de", "3. Dezember 2026")],
)
def test_dates_name_the_month_in_every_language(language, expected):
    # 23:30 UTC is already the 4th in Luxembourg: the local date is the one shown.
    with translation.override(language):
        assert long_date(datetime(2026, 12, 3, 12, 0, tzinfo=UTC)) == expected
        assert long_date(datetime(2026, 12, 3, 23, 30, tzinfo=UTC)) == expected.replace("3", "4", 1)


def test_my_orders_shows_the_order_date_with_the_month_name(client, shopper, store, make_product):
    order = _order_for(shopper.email, make_product(store, "MUG"), user=shopper)
    Order.objects.filter(pk=order.pk).update(placed_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    client.force_login(shopper)

    listing = client.get(reverse("marketplace:my_orders")).content.decode()
    detail = client.get(reverse("marketplace:order_detail", args=[order.public_id]))

    assert "<td>3 December 2026</td>" in listing
    assert "12/03/2026" not in listing
    assert "Lux Shop · 3 December 2026" in detail.content.decode()


def test_checkout_with_an_empty_cart_says_so_once(client, db):
    response = client.get(reverse("marketplace:checkout"), follow=True)

    assert response.redirect_chain == [(reverse("marketplace:cart"), 302)]
    assert response.content.decode().count("Your cart is empty.") == 1


def test_new_arrivals_take_turns_between_stores_in_a_fixed_number_of_queries(
    client, store, other_store, make_store, make_product, django_assert_num_queries
):
    third = make_store("third-shop", name="Third Shop", order_prefix="THI")
    make_product(third, "OLD-3")
    make_product(other_store, "OLD-2")
    for n in range(12):  # one big import, the newest of all
        make_product(store, f"NEW-{n:02d}")

    # products (one window query), their translations, the stores strip
    with django_assert_num_queries(3):
        response = client.get(reverse("marketplace:home"))

    shown = [p.sku for p in response.context["products"]]
    assert shown[:3] == ["NEW-11", "OLD-2", "OLD-3"]
    assert shown[3:] == ["NEW-10", "NEW-09", "NEW-08", "NEW-07", "NEW-06"]
