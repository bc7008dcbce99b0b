"""The store back office at /store/: each team sees and changes only its own store."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from marketplace.models import (
    Customer,
    Invitation,
    Membership,
    Order,
    OrderEvent,
    Product,
    Shipment,
    Stock,
    StockMovement,
)
from marketplace.services import (
    add_to_cart,
    cancel_order_line_units,
    open_cart,
    place_orders,
    ship_order_lines,
)
from notifications.models import OutboundEmail

pytestmark = pytest.mark.django_db

ADDRESS = {"first_name": "Anna", "last_name": "Muller", "city": "Luxembourg", "country": "LU"}
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def broker(monkeypatch):
    from notifications import tasks

    monkeypatch.setattr(tasks.send_email, "apply_async", lambda *a, **kw: None)


def member(store, username, role):
    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.lu", password=PASSWORD
    )
    Membership.objects.create(user=user, store=store, role=role)
    return user


@pytest.fixture
def manager(store):
    return member(store, "manager", Membership.Role.MANAGER)


@pytest.fixture
def staff(store):
    return member(store, "staff", Membership.Role.STAFF)


def place(product, quantity=1, email="anna@example.lu") -> Order:
    cart = open_cart()
    add_to_cart(cart, product, quantity)
    done = place_orders(
        cart, email=email, shipping_address=ADDRESS, billing_address=ADDRESS, locale="en"
    )
    return done.orders.get()


def url(name, *args):
    return reverse(f"backoffice:marketplace_{name}", args=args)


def state() -> tuple:
    return (
        list(Order.objects.order_by("pk").values_list("status", flat=True)),
        OrderEvent.objects.count(),
        StockMovement.objects.count(),
        Shipment.objects.count(),
        list(Stock.objects.order_by("pk").values_list("on_hand", "reserved")),
        list(Membership.objects.order_by("pk").values_list("user_id", "store_id", "role")),
        list(Product.objects.order_by("pk").values_list("price", flat=True)),
        list(Invitation.objects.order_by("pk").values_list("status", "token_hash", "expires_at")),
        OutboundEmail.objects.count(),
    )


@pytest.fixture
def shop_a(store, make_product):
    """Store A (LUX) with a product, an order and its customer."""
    mug = make_product(store, "MUG", title="Mug", on_hand=10)
    order = place(mug, 2)
    return {"product": mug, "order": order, "customer": order.customer}


# --- who gets in ----------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_back_office_login(client):
    response = client.get("/store/")
    assert response.status_code == 302
    assert response["Location"] == "/store/login/?next=/store/"


def test_user_without_membership_cannot_log_in_or_enter(client, shopper):
    response = client.post("/store/login/", {"username": "shopper", "password": PASSWORD})
    assert response.status_code == 200
    assert "not part of a store" in response.content.decode()
    client.force_login(shopper)
    response = client.get("/store/")
    assert response.status_code == 302
    assert response["Location"].startswith("/store/login/")
    assert client.get(url("order_changelist")).status_code == 302


def test_store_member_logs_in_without_being_platform_staff(client, owner):
    assert not owner.is_staff
    response = client.post("/store/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/store/").status_code == 200
    assert client.get("/admin/").status_code == 302  # the platform admin stays closed


# --- isolation: store B's staff sees nothing of store A -------------------------------------


def test_lists_show_only_own_store(client, shop_a, other_store, staff_of_other_store, make_product):
    theirs = make_product(other_store, "THEIRS", title="Theirs", on_hand=5)
    own_order = place(theirs, 1, email="bob@example.lu")
    client.force_login(staff_of_other_store)

    def listed(name):
        # The rows of the changelist, not its HTML: a random CSRF token may spell "MUG".
        return client.get(url(name)).context["cl"].result_list

    assert [o.number for o in listed("order_changelist")] == [own_order.number]
    assert [p.sku for p in listed("product_changelist")] == ["THEIRS"]
    assert {m.product.sku for m in listed("stockmovement_changelist")} == {"THEIRS"}


@pytest.mark.parametrize("page", ["change", "history", "delete"])
def test_guessing_another_stores_ids_is_404(client, shop_a, owner, staff_of_other_store, page):
    client.force_login(staff_of_other_store)
    movement = StockMovement.objects.filter(product=shop_a["product"]).first()
    membership = Membership.objects.get(user=owner)
    for model, pk in [
        ("product", shop_a["product"].pk),
        ("order", shop_a["order"].pk),
        ("customer", shop_a["customer"].pk),
        ("stockmovement", movement.pk),
        ("membership", membership.pk),
    ]:
        response = client.get(url(f"{model}_{page}", pk))
        assert response.status_code == 404, (model, page, response.status_code)
    assert client.get(url("order_change", 999999)).status_code == 404


def test_order_work_on_another_stores_order_is_404_and_changes_nothing(
    client, shop_a, staff_of_other_store
):
    order = shop_a["order"]
    line = order.lines.get()
    client.force_login(staff_of_other_store)
    before = state()

    assert client.get(url("order_ship", order.pk)).status_code == 404
    ship = {f"line_{line.pk}": "2", "carrier": "dhl", "tracking_number": "X1"}
    assert client.post(url("order_ship", order.pk), ship).status_code == 404
    for to in ("cancelled", "processing", "delivered"):
        assert client.post(url("order_transition", order.pk, to)).status_code == 404

    assert state() == before


@pytest.mark.parametrize("action", ["cancel_selected", "accept_selected", "deliver_selected"])
def test_order_actions_with_another_stores_ids_are_refused(
    client, shop_a, other_store, staff_of_other_store, make_product, action
):
    own = place(make_product(other_store, "THEIRS", on_hand=5), 1, email="bob@example.lu")
    client.force_login(staff_of_other_store)
    before = state()

    response = client.post(
        url("order_changelist"),
        {"action": action, "index": "0", "_selected_action": [own.pk, shop_a["order"].pk]},
    )

    assert response.status_code == 403
    assert state() == before


def test_stock_action_with_another_stores_ids_is_refused(client, shop_a, staff_of_other_store):
    client.force_login(staff_of_other_store)
    before = state()
    response = client.post(
        url("product_changelist"),
        {
            "action": "adjust_stock",
            "_selected_action": [shop_a["product"].pk],
            "mode": "add",
            "units": "5",
            "apply": "1",
        },
    )
    assert response.status_code == 403
    assert state() == before


def test_store_choices_are_only_own_stores(client, owner, store, other_store):
    client.force_login(owner)
    form = client.get(url("product_add")).context["adminform"].form
    assert list(form.fields["store"].queryset) == [store]
    invite = client.get(url("invitation_add")).context["adminform"].form
    assert list(invite.fields["store"].queryset) == [store]


# --- roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["staff", "manager"])
def test_only_owners_open_team_pages(client, who, request, owner, store):
    user = request.getfixturevalue(who)
    client.force_login(user)
    membership = Membership.objects.get(user=owner)
    assert client.get(url("membership_changelist")).status_code == 403
    assert client.get(url("invitation_changelist")).status_code == 403
    assert client.get(url("invitation_add")).status_code == 403
    assert client.get(url("membership_change", membership.pk)).status_code in (403, 404)
    before = state()
    response = client.post(
        url("invitation_add"), {"email": "x@example.lu", "store": store.pk, "role": "owner"}
    )
    assert response.status_code == 403
    assert state() == before


def test_staff_sees_products_read_only_and_no_customers(client, staff, shop_a):
    client.force_login(staff)
    product = shop_a["product"]
    assert client.get(url("product_change", product.pk)).status_code == 200
    assert client.get(url("product_add")).status_code == 403
    before = state()
    client.post(url("product_change", product.pk), {"price": "1.00"})
    assert state() == before
    assert client.get(url("customer_changelist")).status_code == 403
    assert client.get(url("order_change", shop_a["order"].pk)).status_code == 200


def test_manager_edits_a_product_through_the_catalogue_service(client, manager, shop_a):
    client.force_login(manager)
    product = shop_a["product"]
    translation = product.translations.get()
    response = client.post(
        url("product_change", product.pk),
        {
            "gtin": "",
            "gtin_type": "",
            "brand": "Acme",
            "mpn": "",
            "price": "14.50",
            "sale_price": "",
            "vat_rate": "17.00",
            "condition": "new",
            "availability": "in_stock",
            "is_active": "on",
            "product_type": "",
            "link": "",
            "image_url": "",
            "translations-TOTAL_FORMS": "1",
            "translations-INITIAL_FORMS": "1",
            "translations-MIN_NUM_FORMS": "0",
            "translations-MAX_NUM_FORMS": "1000",
            "translations-0-id": translation.pk,
            "translations-0-product": product.pk,
            "translations-0-language": "en",
            "translations-0-title": "Big mug",
            "translations-0-description": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    product.refresh_from_db()
    assert (product.price, product.brand) == (Decimal("14.50"), "Acme")
    assert product.translations.get().title == "Big mug"
    assert "big mug" in product.search_document.lower()
    assert Stock.objects.get(product=product).on_hand == 10


def test_owner_invites_by_email_and_nobody_joins_until_the_invitation_is_accepted(
    client, owner, store
):
    client.force_login(owner)
    response = client.post(
        url("invitation_add"),
        {"email": "New.Person@Example.lu", "store": store.pk, "role": "staff"},
    )
    assert response.status_code == 302
    assert response["Location"] == url("membership_changelist")
    invitation = Invitation.objects.get()
    assert (invitation.store, invitation.email, invitation.role, invitation.status) == (
        store,
        "new.person@example.lu",
        "staff",
        "pending",
    )
    assert list(Membership.objects.values_list("user", flat=True)) == [owner.pk]
    assert not get_user_model().objects.filter(email="new.person@example.lu").exists()
    email = OutboundEmail.objects.get(template_code="team_invitation")
    assert email.to == "new.person@example.lu"
    token = email.context["accept_url"].removeprefix(f"{settings.SITE_URL}/team/invitations/")
    assert Invitation.hash_token(token.rstrip("/")) == invitation.token_hash


def test_last_owner_cannot_be_demoted(client, owner):
    client.force_login(owner)
    membership = Membership.objects.get(user=owner)
    response = client.post(url("membership_change", membership.pk), {"role": "staff"})
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.get(pk=membership.pk).role == "owner"


# --- order work -----------------------------------------------------------------------------


def test_staff_ships_lines_from_the_back_office(client, staff, shop_a):
    order, product = shop_a["order"], shop_a["product"]
    line = order.lines.get()
    client.force_login(staff)
    assert client.get(url("order_ship", order.pk)).status_code == 200

    response = client.post(
        url("order_ship", order.pk),
        {f"line_{line.pk}": "1", "carrier": "post_lu", "tracking_number": "LU123"},
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == "partially_shipped"
    shipment = order.shipments.get()
    assert (shipment.carrier, shipment.tracking_number, shipment.created_by) == (
        "post_lu",
        "LU123",
        staff,
    )
    assert Stock.objects.filter(product=product).values_list("on_hand", "reserved").get() == (9, 1)

    before = state()
    response = client.post(
        url("order_ship", order.pk),
        {f"line_{line.pk}": "5", "carrier": "post_lu", "tracking_number": "LU124"},
    )
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 1" in response.content.decode()
    assert state() == before

    page = client.get(url("order_change", order.pk)).content.decode()
    assert "LU123" in page and "Partially shipped" in page


def test_cancel_twice_and_refusals_show_messages(client, staff, shop_a):
    order = shop_a["order"]
    client.force_login(staff)

    response = client.post(
        url("order_transition", order.pk, "cancelled"), {"note": "No stock"}, follow=True
    )
    assert f"Order {order.number} is now Cancelled." in response.content.decode()
    before = state()
    response = client.post(url("order_transition", order.pk, "cancelled"), follow=True)
    assert f"Order {order.number} already is Cancelled." in response.content.decode()
    response = client.post(url("order_transition", order.pk, "delivered"), follow=True)
    assert "is cancelled: it can no longer change" in response.content.decode()
    assert state() == before
    assert client.post(url("order_transition", order.pk, "shipped")).status_code == 404


def test_cancel_action_on_changelist(client, manager, store, make_product):
    product = make_product(store, "CUP", on_hand=5)
    orders = [place(product, 1), place(product, 1)]
    ship_order_lines(orders[1], {orders[1].lines.get().pk: 1}, carrier="dhl", tracking_number="D1")
    client.force_login(manager)
    response = client.post(
        url("order_changelist"),
        {"action": "cancel_selected", "index": "0", "_selected_action": [o.pk for o in orders]},
        follow=True,
    )
    page = response.content.decode()
    assert "1 order changed." in page
    assert "is shipped and cannot become cancelled" in page
    assert list(Order.objects.order_by("pk").values_list("status", flat=True)) == [
        "cancelled",
        "shipped",
    ]


def test_stock_adjust_action_adds_and_sets(client, staff, store, make_product, shop_a):
    cup = make_product(store, "CUP", on_hand=5)
    client.force_login(staff)
    form = client.post(
        url("product_changelist"),
        {"action": "adjust_stock", "index": "0", "_selected_action": [cup.pk]},
    )
    assert form.status_code == 200
    assert "stock-adjust-form" in form.content.decode()

    client.post(
        url("product_changelist"),
        {
            "action": "adjust_stock",
            "_selected_action": [cup.pk],
            "mode": "add",
            "units": "3",
            "apply": "1",
        },
    )
    assert Stock.objects.get(product=cup).on_hand == 8
    movement = StockMovement.objects.filter(product=cup).first()
    assert (movement.kind, movement.on_hand_delta, movement.actor) == ("adjust", 3, staff)

    before = state()
    response = client.post(
        url("product_changelist"),
        {
            "action": "adjust_stock",
            "_selected_action": [cup.pk, shop_a["product"].pk],
            "mode": "set",
            "units": "1",
            "apply": "1",
        },
        follow=True,
    )
    assert "2 units are reserved" in response.content.decode()
    assert state() == before


# --- dashboard ------------------------------------------------------------------------------


def test_dashboard_figures_are_per_store(client, owner, store, other_store, make_product):
    mug = make_product(store, "MUG", price="10.00", on_hand=20)
    low = make_product(store, "LOW", price="5.00", on_hand=3)
    make_product(other_store, "THEIRS", price="99.00", on_hand=1)
    today = place(mug, 2)
    cancelled = place(mug, 1)
    from marketplace.services import cancel_order

    cancel_order(cancelled)
    old = place(mug, 1)
    Order.objects.filter(pk=old.pk).update(placed_at=timezone.now() - timedelta(days=2))
    place(make_product(other_store, "OTHER", price="50.00", on_hand=5), 1, email="b@example.lu")
    partly = place(low, 2)  # 10.00, then one unit is not available
    cancel_order_line_units(partly, {partly.lines.get().pk: 1})
    half = place(mug, 2)  # 20.00: one mug ships, then the order is cancelled
    ship_order_lines(half, {half.lines.get().pk: 1}, carrier="post_lu", tracking_number="LU9")
    cancel_order(half)
    client.force_login(owner)

    response = client.get("/store/")

    assert half.lines.get().quantity_cancelled == 1
    dashboard = response.context["dashboard"]
    assert dashboard.orders_today == 4
    assert dashboard.revenue_today == Decimal("35.00")
    assert dashboard.revenue_30_days == Decimal("45.00")
    assert sum(day.revenue for day in dashboard.days) == Decimal("45.00")
    assert [p.sku for p in dashboard.low_stock] == ["LOW"]
    assert [o.number for o in dashboard.pending_exceptions] == [old.number]
    assert sum(day.orders for day in dashboard.days) == 5
    page = response.content.decode()
    assert "<svg" in page and page.count("<rect") == 30
    assert "THEIRS" not in page and "OTHER" not in page
    assert today.number not in page  # not an exception
    assert low.sku in page


def test_dashboard_and_order_list_cost_a_fixed_number_of_queries(
    client, owner, store, make_product, django_assert_max_num_queries
):
    product = make_product(store, "MUG", on_hand=100)
    for _ in range(15):
        place(product, 1)
    client.force_login(owner)
    with django_assert_max_num_queries(20):
        assert client.get("/store/").status_code == 200
    with django_assert_max_num_queries(20):
        assert client.get(url("order_changelist")).status_code == 200
    assert Customer.objects.count() == 1


def test_platform_admin_sees_shipments_of_every_store(client, platform_admin, shop_a):
    order = shop_a["order"]
    shipment = ship_order_lines(
        order, {order.lines.get().pk: 2}, carrier="gls", tracking_number="GLS-9"
    )
    client.force_login(platform_admin)
    assert "GLS-9" in client.get(reverse("admin:marketplace_shipment_changelist")).content.decode()
    page = client.get(reverse("admin:marketplace_shipment_change", args=[shipment.pk]))
    assert page.status_code == 200
    assert (
        "GLS-9"
        in client.get(reverse("admin:marketplace_order_change", args=[order.pk])).content.decode()
    )
