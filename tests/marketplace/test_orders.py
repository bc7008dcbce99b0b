"""The order lifecycle: transitions, shipments, stock, expiry and their refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from marketplace.models import (
    Cart,
    Order,
    OrderEvent,
    OrderLine,
    Shipment,
    ShipmentLine,
    Stock,
    StockMovement,
)
from marketplace.services import (
    FINAL_STATUSES,
    ORDER_TRANSITIONS,
    DomainError,
    TransitionNotAllowed,
    accept_order,
    add_to_cart,
    cancel_order,
    cancel_order_line_units,
    expire_abandoned_carts,
    expire_unpaid_orders,
    mark_delivered,
    mark_order_paid,
    open_cart,
    place_orders,
    refund_order,
    ship_order_lines,
    transition_order,
)
from notifications.models import OutboundEmail

pytestmark = pytest.mark.django_db

ADDRESS = {"first_name": "Anna", "last_name": "Muller", "city": "Luxembourg", "country": "LU"}


@pytest.fixture(autouse=True)
def broker(monkeypatch):
    """Emails queued after commit go to a list, not to Redis."""
    from notifications import tasks

    published: list = []
    monkeypatch.setattr(
        tasks.send_email, "apply_async", lambda args=None, **kw: published.append(args)
    )
    return published


def place(*products_and_quantities, email="anna@example.lu") -> Order:
    cart = open_cart()
    for product, quantity in products_and_quantities:
        add_to_cart(cart, product, quantity)
    checkout = place_orders(
        cart, email=email, shipping_address=ADDRESS, billing_address=ADDRESS, locale="en"
    )
    return checkout.orders.get()


def stock(product) -> tuple[int, int]:
    row = Stock.objects.get(product=product)
    return row.on_hand, row.reserved


def snapshot() -> tuple:
    return (
        OrderEvent.objects.count(),
        StockMovement.objects.count(),
        Shipment.objects.count(),
        ShipmentLine.objects.count(),
        list(Stock.objects.order_by("pk").values_list("on_hand", "reserved")),
        list(Order.objects.order_by("pk").values_list("status", "updated_at")),
        list(
            OrderLine.objects.order_by("pk").values_list("quantity_shipped", "quantity_cancelled")
        ),
        OutboundEmail.objects.count(),
    )


def line_of(order, product) -> OrderLine:
    return order.lines.get(product=product)


# --- the table --------------------------------------------------------------------------


def test_transition_table_covers_every_status_and_final_states_lead_nowhere():
    assert set(ORDER_TRANSITIONS) == set(Order.Status.values)
    assert FINAL_STATUSES == {"delivered", "cancelled", "refunded"}
    for targets in ORDER_TRANSITIONS.values():
        assert targets <= set(Order.Status.values)


def test_accept_writes_one_event_with_actor_and_note(store, make_product, owner):
    order = place((make_product(store, "MUG", on_hand=5), 1))
    assert accept_order(order, actor=owner, note="Packing today") is True
    order.refresh_from_db()
    assert order.status == "processing"
    event = order.events.last()
    assert (event.from_status, event.to_status, event.actor, event.note) == (
        "pending",
        "processing",
        owner,
        "Packing today",
    )
    assert accept_order(order, actor=owner) is False
    assert order.events.count() == 2


# --- cancel -----------------------------------------------------------------------------


def test_cancel_releases_reservation_and_queues_email(store, make_product, broker):
    mug = make_product(store, "MUG", on_hand=5)
    order = place((mug, 2))
    assert stock(mug) == (5, 2)

    assert cancel_order(order, note="Customer asked") is True

    assert order.status == "cancelled"
    assert stock(mug) == (5, 0)
    release = StockMovement.objects.get(kind="release")
    assert (release.order, release.reserved_delta, release.reserved_after) == (order, -2, 0)
    assert list(order.events.values_list("from_status", "to_status")) == [
        ("", "pending"),
        ("pending", "cancelled"),
    ]
    email = OutboundEmail.objects.get(template_code="order_cancelled")
    assert email.to == "anna@example.lu"


def test_cancelling_twice_changes_nothing_the_second_time(store, make_product):
    mug = make_product(store, "MUG", on_hand=5)
    order = place((mug, 2))
    cancel_order(order)
    before = snapshot()

    assert cancel_order(order) is False
    assert transition_order(Order.objects.get(pk=order.pk), "cancelled") is False

    assert snapshot() == before


@pytest.mark.parametrize("final", ["cancelled", "delivered", "refunded"])
def test_transition_out_of_final_state_is_refused_and_nothing_written(final, store, make_product):
    mug = make_product(store, "MUG", on_hand=5)
    order = place((mug, 1))
    if final == "cancelled":
        cancel_order(order)
    elif final == "refunded":
        accept_order(order)
        refund_order(order)
    else:
        ship_order_lines(
            order, {line_of(order, mug).pk: 1}, carrier="post_lu", tracking_number="LU1"
        )
        mark_delivered(order)
    before = snapshot()

    for target in ("processing", "cancelled", "refunded", "pending", "delivered"):
        if target == final:
            continue
        with pytest.raises(TransitionNotAllowed) as refused:
            transition_order(order, target)
        assert f"is {final}: it can no longer change" in str(refused.value)
    assert snapshot() == before


def test_forbidden_move_names_both_statuses(store, make_product):
    order = place((make_product(store, "MUG", on_hand=5), 1))
    with pytest.raises(TransitionNotAllowed) as refused:
        mark_delivered(order)
    assert str(refused.value) == (f"Order {order.number} is pending and cannot become delivered.")
    with pytest.raises(TransitionNotAllowed, match="Ship the lines"):
        transition_order(order, "shipped")
    with pytest.raises(TransitionNotAllowed, match="Unknown order status"):
        transition_order(order, "lost")
    assert Order.objects.get(pk=order.pk).status == "pending"


# --- shipping ---------------------------------------------------------------------------


def test_partial_then_full_shipment_fulfils_stock_and_moves_status(store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    cup = make_product(store, "CUP", on_hand=10)
    order = place((mug, 3), (cup, 1))
    mug_line, cup_line = line_of(order, mug), line_of(order, cup)

    first = ship_order_lines(
        order, {mug_line.pk: 2}, carrier="post_lu", tracking_number="LU100", actor=None
    )
    assert order.status == "partially_shipped"
    assert stock(mug) == (8, 1)
    assert stock(cup) == (10, 1)
    assert list(first.lines.values_list("order_line_id", "quantity")) == [(mug_line.pk, 2)]

    ship_order_lines(
        order,
        {mug_line.pk: 1, cup_line.pk: 1},
        carrier="dhl",
        tracking_number="DHL200",
        tracking_url="https://dhl.example/DHL200",
    )
    order.refresh_from_db()
    assert order.status == "shipped"
    assert stock(mug) == (7, 0)
    assert stock(cup) == (9, 0)
    assert list(order.lines.values_list("quantity", "quantity_shipped")) == [(3, 3), (1, 1)]
    assert list(order.events.values_list("to_status", flat=True)) == [
        "pending",
        "partially_shipped",
        "shipped",
    ]
    fulfil = StockMovement.objects.filter(kind="fulfil", product=mug).order_by("id")
    assert list(fulfil.values_list("on_hand_delta", "reserved_delta")) == [(-2, -2), (-1, -1)]
    assert OutboundEmail.objects.filter(template_code="order_shipped").count() == 2


def test_shipping_an_already_shipped_line_is_refused_and_nothing_written(store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    cup = make_product(store, "CUP", on_hand=10)
    order = place((mug, 1), (cup, 2))
    mug_line = line_of(order, mug)
    ship_order_lines(order, {mug_line.pk: 1}, carrier="gls", tracking_number="G1")
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        ship_order_lines(order, {mug_line.pk: 1}, carrier="gls", tracking_number="G2")
    assert str(refused.value) == "Cannot ship 1 of MUG: 0 left to ship."
    with pytest.raises(DomainError, match="2 left to ship"):
        ship_order_lines(
            order,
            {line_of(order, cup).pk: 3},
            carrier="gls",
            tracking_number="G3",
        )
    assert snapshot() == before


def test_same_parcel_twice_is_a_no_op(store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    order = place((mug, 3))
    line = line_of(order, mug)
    first = ship_order_lines(order, {line.pk: 1}, carrier="dpd", tracking_number="D1")
    before = snapshot()

    again = ship_order_lines(order, {line.pk: 1}, carrier="dpd", tracking_number="D1")

    assert again == first
    assert snapshot() == before
    with pytest.raises(DomainError, match="already used"):
        ship_order_lines(order, {line.pk: 2}, carrier="dpd", tracking_number="D1")


def test_shipping_a_line_of_another_order_is_refused(store, other_store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    theirs = make_product(other_store, "THEIRS", on_hand=10)
    order = place((mug, 1))
    other = place((theirs, 1))
    before = snapshot()
    with pytest.raises(DomainError, match="is not part of order"):
        ship_order_lines(order, {line_of(other, theirs).pk: 1}, carrier="ups", tracking_number="U1")
    assert snapshot() == before


def test_shipping_a_cancelled_order_is_refused(store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    order = place((mug, 1))
    cancel_order(order)
    before = snapshot()
    with pytest.raises(TransitionNotAllowed, match="is cancelled: nothing can be shipped"):
        ship_order_lines(order, {line_of(order, mug).pk: 1}, carrier="ups", tracking_number="U")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("carrier", "tracking", "quantities", "message"),
    [
        ("", "T1", None, "Choose the carrier."),
        ("pigeon", "T1", None, "Choose the carrier."),
        ("dhl", "  ", None, "Enter the tracking number."),
        ("dhl", "T1", {}, "Choose at least one unit to ship."),
    ],
)
def test_incomplete_shipment_is_refused(
    store, make_product, carrier, tracking, quantities, message
):
    mug = make_product(store, "MUG", on_hand=10)
    order = place((mug, 1))
    quantities = {line_of(order, mug).pk: 1} if quantities is None else quantities
    before = snapshot()
    with pytest.raises(DomainError) as refused:
        ship_order_lines(order, quantities, carrier=carrier, tracking_number=tracking)
    assert str(refused.value) == message
    assert snapshot() == before


def test_cancelling_a_partially_shipped_order_releases_only_the_rest(store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    order = place((mug, 3))
    ship_order_lines(order, {line_of(order, mug).pk: 1}, carrier="gls", tracking_number="G1")
    assert stock(mug) == (9, 2)

    cancel_order(order)

    assert stock(mug) == (9, 0)
    release = StockMovement.objects.get(kind="release")
    assert release.reserved_delta == -2


# --- cancelling units -------------------------------------------------------------------


def test_cancelling_more_units_than_left_is_refused_and_nothing_written(store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    cup = make_product(store, "CUP", on_hand=10)
    order = place((mug, 3), (cup, 1))
    other = place((make_product(store, "LAMP", on_hand=1), 1))
    mug_line, cup_line = line_of(order, mug), line_of(order, cup)
    ship_order_lines(order, {mug_line.pk: 2}, carrier="gls", tracking_number="G1")
    before = snapshot()

    with pytest.raises(DomainError) as refused:
        cancel_order_line_units(order, {cup_line.pk: 1, mug_line.pk: 2})
    assert str(refused.value) == "Cannot cancel 2 of MUG: 1 left."
    with pytest.raises(DomainError, match="cannot be negative"):
        cancel_order_line_units(order, {mug_line.pk: -1})
    with pytest.raises(DomainError, match="is not part of order"):
        cancel_order_line_units(order, {other.lines.get().pk: 1})

    assert snapshot() == before
    assert stock(mug) == (8, 1)


def test_cancelling_some_units_then_shipping_the_rest_ships_the_order(store, make_product, owner):
    mug = make_product(store, "MUG", on_hand=10)
    cup = make_product(store, "CUP", on_hand=10)
    order = place((mug, 3), (cup, 1))
    mug_line, cup_line = line_of(order, mug), line_of(order, cup)

    assert cancel_order_line_units(order, {mug_line.pk: 1}, actor=owner, note="Chipped.") is True

    assert order.status == "pending"
    assert stock(mug) == (10, 2)
    release = StockMovement.objects.get(kind="release")
    assert (release.order, release.product, release.reserved_delta, release.actor) == (
        order,
        mug,
        -1,
        owner,
    )
    event = order.events.last()
    assert (event.from_status, event.to_status, event.actor, event.note) == (
        "pending",
        "pending",
        owner,
        "Cancelled 1 x MUG. Chipped.",
    )
    with pytest.raises(DomainError, match="Cannot ship 3 of MUG: 2 left to ship."):
        ship_order_lines(order, {mug_line.pk: 3}, carrier="dhl", tracking_number="D1")

    ship_order_lines(order, {mug_line.pk: 2, cup_line.pk: 1}, carrier="dhl", tracking_number="D1")

    order.refresh_from_db()
    assert order.status == "shipped"
    assert list(order.lines.values_list("quantity", "quantity_shipped", "quantity_cancelled")) == [
        (3, 2, 1),
        (1, 1, 0),
    ]
    assert stock(mug) == (8, 0)
    assert stock(cup) == (9, 0)
    assert list(order.events.values_list("from_status", "to_status")) == [
        ("", "pending"),
        ("pending", "pending"),
        ("pending", "shipped"),
    ]


def test_cancelling_the_units_left_after_a_parcel_ships_the_order(store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    order = place((mug, 3))
    line = line_of(order, mug)
    ship_order_lines(order, {line.pk: 1}, carrier="gls", tracking_number="G1")
    shipped_emails = OutboundEmail.objects.filter(template_code="order_shipped").count()

    cancel_order_line_units(order, {line.pk: 2})

    assert Order.objects.get(pk=order.pk).status == "shipped"
    assert order.events.last().note == "Cancelled 2 x MUG."
    assert stock(mug) == (9, 0)
    assert OutboundEmail.objects.filter(template_code="order_shipped").count() == shipped_emails
    assert OutboundEmail.objects.filter(template_code="order_cancelled").count() == 0


def test_cancelling_every_unit_cancels_the_order_and_releases_its_reservation(store, make_product):
    mug = make_product(store, "MUG", on_hand=10)
    cup = make_product(store, "CUP", on_hand=10)
    order = place((mug, 2), (cup, 1))
    mug_line, cup_line = line_of(order, mug), line_of(order, cup)
    cancel_order_line_units(order, {mug_line.pk: 1})

    cancel_order_line_units(order, {mug_line.pk: 1, cup_line.pk: 1}, note="Out of stock.")

    assert order.status == "cancelled"
    assert stock(mug) == (10, 0)
    assert stock(cup) == (10, 0)
    assert list(
        StockMovement.objects.filter(kind="release")
        .order_by("id")
        .values_list("product__sku", "reserved_delta")
    ) == [("MUG", -1), ("MUG", -1), ("CUP", -1)]
    assert order.events.last().note == "Cancelled 1 x MUG, 1 x CUP. Out of stock."
    assert OutboundEmail.objects.filter(template_code="order_cancelled").count() == 1
    before = snapshot()
    assert cancel_order_line_units(order, {}) is False
    with pytest.raises(TransitionNotAllowed, match="can no longer be cancelled"):
        cancel_order_line_units(order, {mug_line.pk: 1})
    assert cancel_order(order) is False
    assert snapshot() == before


def test_delivered_after_shipped(store, make_product, owner):
    mug = make_product(store, "MUG", on_hand=10)
    order = place((mug, 1))
    ship_order_lines(order, {line_of(order, mug).pk: 1}, carrier="gls", tracking_number="G1")
    assert mark_delivered(order, actor=owner) is True
    assert mark_delivered(order, actor=owner) is False
    assert order.events.filter(to_status="delivered").count() == 1


# --- expiry -----------------------------------------------------------------------------


def _age(order, hours):
    Order.objects.filter(pk=order.pk).update(placed_at=timezone.now() - timedelta(hours=hours))


def test_old_unpaid_order_expires_and_releases_stock(store, make_product):
    ttl = settings.WIZAMART_UNPAID_ORDER_TTL_HOURS
    mug = make_product(store, "MUG", on_hand=5)
    old = place((mug, 2))
    _age(old, ttl + 1)
    paid = place((mug, 1))
    _age(paid, ttl + 1)
    mark_order_paid(paid)
    fresh = place((mug, 1))

    assert expire_unpaid_orders() == 1
    assert expire_unpaid_orders() == 0

    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "cancelled", paid.pk: "pending", fresh.pk: "pending"}
    assert stock(mug) == (5, 2)
    assert OrderEvent.objects.filter(order=old, to_status="cancelled").count() == 1
    assert OrderEvent.objects.get(order=old, to_status="cancelled").note == (
        f"Unpaid after {ttl} hours."
    )


def test_mark_order_paid_is_idempotent(store, make_product):
    order = place((make_product(store, "MUG", on_hand=5), 1))
    assert mark_order_paid(order) is True
    first = order.paid_at
    assert mark_order_paid(order) is False
    order.refresh_from_db()
    assert order.paid_at == first


def test_abandoned_carts_expire_and_cannot_be_checked_out(store, make_product):
    mug = make_product(store, "MUG", on_hand=5)
    old, fresh = open_cart(), open_cart()
    add_to_cart(old, mug, 1)
    add_to_cart(fresh, mug, 1)
    Cart.objects.filter(pk=old.pk).update(
        updated_at=timezone.now() - timedelta(hours=settings.WIZAMART_CART_TTL_HOURS + 1)
    )

    assert expire_abandoned_carts() == 1
    assert expire_abandoned_carts() == 0

    assert Cart.objects.get(pk=old.pk).status == "expired"
    assert Cart.objects.get(pk=fresh.pk).status == "open"
    with pytest.raises(DomainError, match="This cart has expired."):
        place_orders(
            old, email="a@example.lu", shipping_address={}, billing_address={}, locale="en"
        )


def test_expiry_tasks_are_scheduled():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["marketplace-expire-unpaid-orders"]["task"] == (
        "marketplace.tasks.expire_unpaid_orders"
    )
    assert schedule["marketplace-expire-abandoned-carts"]["task"] == (
        "marketplace.tasks.expire_abandoned_carts"
    )
    from marketplace import tasks

    assert tasks.expire_unpaid_orders.name == "marketplace.tasks.expire_unpaid_orders"
