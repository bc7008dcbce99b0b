"""Marketplace writes: catalogue, stock, carts, checkout, the order lifecycle and teams.

Every change of these rows goes through here. The order lifecycle (statuses, who may move
an order where, what each move does to stock) is documented in docs/orders.md and encoded
in ORDER_TRANSITIONS below.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import get_language, gettext

from marketplace.models import (
    LANGUAGE_CODES,
    Cart,
    CartItem,
    Checkout,
    Customer,
    Invitation,
    Membership,
    Order,
    OrderEvent,
    OrderLine,
    OrderNumberSequence,
    Product,
    ProductTranslation,
    Shipment,
    ShipmentLine,
    Stock,
    StockMovement,
    Store,
)
from marketplace.money import round_money, vat_included
from notifications import services as notifications
from notifications.selectors import UnknownEmailTemplate


class DomainError(Exception):
    """A rule of the domain refused the request. The message is shown to the user as is."""


class NotEnoughStock(DomainError):
    pass


class TransitionNotAllowed(DomainError):
    """The order cannot go from its status to the one asked (see ORDER_TRANSITIONS)."""


logger = logging.getLogger(__name__)


# --- catalogue ------------------------------------------------------------------------

PRODUCT_FIELDS = {
    "gtin",
    "gtin_type",
    "brand",
    "mpn",
    "price",
    "sale_price",
    "currency",
    "vat_rate",
    "condition",
    "availability",
    "is_active",
    "group_id",
    "product_type",
    "google_product_category",
    "link",
    "image_url",
    "additional_image_urls",
    "attributes",
}


@dataclass(frozen=True)
class UpsertResult:
    product: Product
    outcome: str  # "created", "updated" or "unchanged"


def build_search_document(product: Product, translations: list[ProductTranslation]) -> str:
    """The plain text that full-text search indexes: titles and descriptions in every
    language, brand, GTIN and SKU."""
    parts = [product.sku, product.gtin, product.brand, product.mpn]
    for translation in sorted(translations, key=lambda t: t.language):
        parts.append(translation.title)
        parts.append(strip_tags(translation.description))
    return " ".join(p.strip() for p in parts if p and p.strip())


@transaction.atomic
def upsert_product(
    store: Store,
    sku: str,
    *,
    translations: dict[str, dict[str, str]],
    on_hand: int | None = None,
    actor=None,
    **fields: Any,
) -> UpsertResult:
    """Create or update the product (store, sku) with `fields`, the given translations
    ({"en": {"title": ..., "description": ...}}) and, when `on_hand` is given, its stock.

    Writes only what differs; a call that changes nothing reports "unchanged" and writes
    nothing (no stock movement, no `updated_at` bump). Languages not given are left as
    they are. Raises ValueError on an unknown field or language.
    """
    unknown = set(fields) - PRODUCT_FIELDS
    if unknown:
        raise ValueError(f"unknown product fields: {', '.join(sorted(unknown))}")
    bad_languages = set(translations) - set(LANGUAGE_CODES)
    if bad_languages:
        raise ValueError(f"unknown languages: {', '.join(sorted(bad_languages))}")

    fields.setdefault("currency", store.currency)
    product = Product.objects.select_for_update().filter(store=store, sku=sku).first()
    created = product is None
    changed_fields: list[str] = []
    if created:
        fields.setdefault("vat_rate", store.default_vat_rate)
        product = Product(store=store, sku=sku, **fields)
    else:
        for name, value in fields.items():
            if differs(getattr(product, name), value):
                setattr(product, name, value)
                changed_fields.append(name)

    existing = {} if created else {t.language: t for t in product.translations.all()}
    translations_changed = False
    pending: list[ProductTranslation] = []
    for language, text in translations.items():
        title = (text.get("title") or "").strip()
        description = text.get("description") or ""
        current = existing.get(language)
        if current is None:
            current = ProductTranslation(language=language, title=title, description=description)
            existing[language] = current
            pending.append(current)
            translations_changed = True
        elif current.title != title or current.description != description:
            current.title, current.description = title, description
            pending.append(current)
            translations_changed = True

    document = build_search_document(product, list(existing.values()))
    if document != product.search_document:
        product.search_document = document
        if not created:
            changed_fields.append("search_document")

    if created:
        product.save()
    elif changed_fields or translations_changed:
        product.save(update_fields=[*changed_fields, "updated_at"])
    for translation in pending:
        translation.product = product
        translation.save()

    stock_changed = False
    if created:
        Stock.objects.create(product=product)
    if on_hand is not None:
        stock_changed = set_stock_on_hand(
            product, on_hand, kind=StockMovement.Kind.IMPORT, actor=actor
        )

    if created:
        outcome = "created"
    elif changed_fields or translations_changed or stock_changed:
        outcome = "updated"
    else:
        outcome = "unchanged"
    return UpsertResult(product=product, outcome=outcome)


def differs(current: Any, new: Any) -> bool:
    """Whether a stored value and a new one differ (Decimals by value: 12.5 == 12.50)."""
    if isinstance(current, Decimal) or isinstance(new, Decimal):
        if current is None or new is None:
            return current is not new
        return Decimal(current) != Decimal(new)
    return current != new


# --- stock ----------------------------------------------------------------------------


def _record_movement(
    stock: Stock,
    kind: str,
    *,
    on_hand_delta: int,
    reserved_delta: int,
    order=None,
    actor=None,
    note: str = "",
) -> StockMovement:
    return StockMovement.objects.create(
        product_id=stock.product_id,
        kind=kind,
        on_hand_delta=on_hand_delta,
        reserved_delta=reserved_delta,
        on_hand_after=stock.on_hand,
        reserved_after=stock.reserved,
        order=order,
        actor=actor,
        note=note,
    )


@transaction.atomic
def set_stock_on_hand(
    product: Product,
    on_hand: int,
    *,
    kind: str = StockMovement.Kind.ADJUST,
    actor=None,
    note: str = "",
) -> bool:
    """Set the units on hand to `on_hand` under a row lock and record the movement.

    Returns False (and writes nothing) when it already is. Raises DomainError when the
    new level is negative or below the units reserved by open orders.
    """
    if on_hand < 0:
        raise DomainError(f"Stock on hand cannot be negative (got {on_hand}).")
    stock, _ = Stock.objects.get_or_create(product=product)
    stock = Stock.objects.select_for_update().get(pk=stock.pk)
    if stock.on_hand == on_hand:
        return False
    if on_hand < stock.reserved:
        raise DomainError(
            f"{product.sku}: cannot set stock to {on_hand}, {stock.reserved} units are reserved by open orders."
        )
    delta = on_hand - stock.on_hand
    stock.on_hand = on_hand
    stock.save(update_fields=["on_hand", "updated_at"])
    product.stock = stock
    _record_movement(stock, kind, on_hand_delta=delta, reserved_delta=0, actor=actor, note=note)
    return True


@transaction.atomic
def add_stock_on_hand(
    product: Product,
    units: int,
    *,
    kind: str = StockMovement.Kind.ADJUST,
    actor=None,
    note: str = "",
) -> bool:
    """Add `units` (negative to remove) to the units on hand, computed under the row lock
    so concurrent deliveries add up. Same contract as set_stock_on_hand."""
    stock, _ = Stock.objects.get_or_create(product=product)
    stock = Stock.objects.select_for_update().get(pk=stock.pk)
    return set_stock_on_hand(product, stock.on_hand + units, kind=kind, actor=actor, note=note)


# --- stock held by orders ---------------------------------------------------------------
#
# An order's reservation is the sum of the reserved deltas of its StockMovements: checkout
# (or an import) reserves, shipping fulfils, cancelling releases. Every writer locks the
# order row first, then the Stock rows in primary-key order, so none deadlocks another.


def _lock_stocks(product_ids: Iterable[int]) -> dict[int, Stock]:
    return {
        stock.product_id: stock
        for stock in Stock.objects.select_for_update()
        .filter(product_id__in=set(product_ids))
        .order_by("pk")
    }


def reservations_held(order: Order) -> dict[int, int]:
    """Units each product still has reserved for this order (Product id -> units), from
    its stock movements (reserve adds, fulfil and release take away). An order that never
    reserved (e.g. imported already shipped) holds nothing. Reads only."""
    rows = (
        StockMovement.objects.filter(order=order)
        .order_by()
        .values("product_id")
        .annotate(held=Sum("reserved_delta"))
    )
    return {row["product_id"]: row["held"] for row in rows if row["held"] > 0}


def _reserve_locked(
    order: Order,
    stocks: dict[int, Stock],
    units: dict[int, int],
    *,
    actor=None,
    allow_short: bool = False,
) -> dict[int, int]:
    """reserve_for_order with the Stock rows already locked by the caller."""
    reserved: dict[int, int] = {}
    for product_id in sorted(units):
        quantity = units[product_id]
        stock = stocks.get(product_id)
        if stock is not None and stock.available >= quantity:
            reserved[product_id] = quantity
        elif not allow_short:
            # Raises NotEnoughStock naming the product and what is available.
            _check_available(Product.objects.get(pk=product_id), quantity, stock or Stock())
    for product_id, quantity in reserved.items():
        stock = stocks[product_id]
        stock.reserved += quantity
        stock.save(update_fields=["reserved", "updated_at"])
        _record_movement(
            stock,
            StockMovement.Kind.RESERVE,
            on_hand_delta=0,
            reserved_delta=quantity,
            order=order,
            actor=actor,
            note=order.number,
        )
    return reserved


def reserve_for_order(
    order: Order, units: dict[int, int], *, actor=None, allow_short: bool = False
) -> dict[int, int]:
    """Reserve stock for `order`: `units` maps Product id -> units (0 or less: skipped).

    Locks the Stock rows (primary-key order), raises `reserved` and writes a StockMovement
    kind reserve per product. Without `allow_short`, a product with fewer units available
    than asked (or no Stock row) raises NotEnoughStock and nothing is written. With it,
    for an order that exists whatever our stock says (Letzshop), such a product reserves
    nothing and the rest is reserved. Returns Product id -> units reserved.

    Not idempotent: every call reserves again; reservations_held(order) tells what the
    order holds.
    """
    wanted = {int(product_id): int(n) for product_id, n in units.items() if int(n) > 0}
    if not wanted:
        return {}
    with transaction.atomic():
        return _reserve_locked(
            order, _lock_stocks(wanted), wanted, actor=actor, allow_short=allow_short
        )


def release_for_order(order: Order, units: dict[int, int], *, actor=None) -> dict[int, int]:
    """Give back to stock up to `units` (Product id -> units) of what `order` holds
    reserved: never more than reservations_held(order) per product, read after the Stock
    rows are locked (primary-key order), so two releases at once cannot give the same
    units back twice. Lowers `reserved`, writes a StockMovement kind release per product.

    Returns Product id -> units released; an order that holds nothing of a product
    releases nothing of it (no write).
    """
    wanted = {int(product_id): int(n) for product_id, n in units.items() if int(n) > 0}
    if not wanted:
        return {}
    released: dict[int, int] = {}
    with transaction.atomic():
        stocks = _lock_stocks(wanted)
        held = reservations_held(order)
        for product_id, stock in stocks.items():
            quantity = min(wanted[product_id], held.get(product_id, 0))
            if quantity <= 0:
                continue
            stock.reserved -= quantity
            stock.save(update_fields=["reserved", "updated_at"])
            _record_movement(
                stock,
                StockMovement.Kind.RELEASE,
                on_hand_delta=0,
                reserved_delta=-quantity,
                order=order,
                actor=actor,
                note=order.number,
            )
            released[product_id] = quantity
    return released


# --- cart and checkout ----------------------------------------------------------------

MAX_CART_QUANTITY = 99


def open_cart(*, user=None) -> Cart:
    """Create an empty open cart, owned by `user` when the shopper is logged in."""
    return Cart.objects.create(user=user if user is not None and user.is_authenticated else None)


def attach_cart_to_user(cart: Cart, user) -> None:
    """Give an anonymous open cart to the user who just logged in. No-op when it has one."""
    if cart.user_id is None and user.is_authenticated:
        Cart.objects.filter(pk=cart.pk, user__isnull=True).update(user=user)
        cart.user = user


def _ensure_open(cart: Cart) -> None:
    if cart.status == Cart.Status.EXPIRED:
        raise DomainError(gettext("This cart has expired."))
    if cart.status != Cart.Status.OPEN:
        raise DomainError(gettext("This cart has already been checked out."))


def _ensure_sellable(product: Product) -> None:
    title = _product_title(product)
    if not product.is_active or not product.store.is_active:
        raise DomainError(gettext("%(title)s is no longer sold.") % {"title": title})
    if product.availability == Product.Availability.OUT_OF_STOCK:
        raise DomainError(gettext("%(title)s is out of stock.") % {"title": title})


def _product_title(product: Product, language: str | None = None) -> str:
    text = product.translation(language or get_language() or "en")
    return text.title if text is not None else product.sku


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_CART_QUANTITY:
        raise DomainError(
            gettext("Quantity must be between 1 and %(max)d.") % {"max": MAX_CART_QUANTITY}
        )


@transaction.atomic
def add_to_cart(cart: Cart, product: Product, quantity: int = 1) -> CartItem:
    """Add `quantity` units of `product` to the open cart (adding to a line already there).

    Raises DomainError for a closed cart, a product not sold, a quantity out of range;
    NotEnoughStock when the cart would hold more than is available. Stock is only
    checked here, reserved at checkout.
    """
    _ensure_open(cart)
    _ensure_sellable(product)
    item = CartItem.objects.select_for_update().filter(cart=cart, product=product).first()
    new_quantity = quantity + (item.quantity if item else 0)
    _check_quantity(new_quantity)
    _check_available(product, new_quantity)
    if item is None:
        item = CartItem.objects.create(cart=cart, product=product, quantity=new_quantity)
    else:
        item.quantity = new_quantity
        item.save(update_fields=["quantity"])
    Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())
    return item


@transaction.atomic
def update_cart_item(cart: Cart, product: Product, quantity: int) -> CartItem | None:
    """Set the quantity of `product` in the open cart; 0 removes the line (returns None).

    Raises DomainError when the product is not in the cart or the quantity is out of
    range; NotEnoughStock when more is asked than is available.
    """
    _ensure_open(cart)
    if quantity == 0:
        remove_from_cart(cart, product)
        return None
    item = CartItem.objects.select_for_update().filter(cart=cart, product=product).first()
    if item is None:
        raise DomainError(gettext("This product is not in your cart."))
    _check_quantity(quantity)
    _check_available(product, quantity)
    if item.quantity != quantity:
        item.quantity = quantity
        item.save(update_fields=["quantity"])
        Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())
    return item


@transaction.atomic
def remove_from_cart(cart: Cart, product: Product) -> None:
    """Remove `product` from the open cart. Idempotent: a missing line is a no-op."""
    _ensure_open(cart)
    deleted, _unused = CartItem.objects.filter(cart=cart, product=product).delete()
    if deleted:
        Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())


def _check_available(product: Product, quantity: int, stock: Stock | None = None) -> None:
    if stock is None:
        stock = Stock.objects.filter(product=product).first()
    available = max(stock.available, 0) if stock is not None else 0
    if quantity > available:
        raise NotEnoughStock(
            gettext(
                "Not enough stock for %(title)s: %(available)d available, %(quantity)d requested."
            )
            % {"title": _product_title(product), "available": available, "quantity": quantity}
        )


def next_order_number(store: Store, year: int) -> str:
    """Hand out the next order number of (store, year), e.g. LUX-2026-000123: one upsert
    that takes the sequence row's lock until commit (created at 1 on the year's first
    order), so never max+1 and never reused; a rolled-back transaction gives its number
    back with everything else. Call inside the transaction that creates the order."""
    table = OrderNumberSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (store_id, year, last_value) VALUES (%s, %s, 1) "  # noqa: S608
            f"ON CONFLICT (store_id, year) DO UPDATE SET last_value = {table}.last_value + 1 "
            "RETURNING last_value",
            [store.pk, year],
        )
        (value,) = cursor.fetchone()
    return f"{store.order_prefix}-{year}-{value:06d}"


def customer_for_order(store: Store, email: str, address: dict, locale: str, user) -> Customer:
    """The store's Customer with `email`, created from `address` (names, phone) and
    `locale` when new. Never changes an existing customer: in particular a checkout never
    links an account to a customer someone else created, since anyone may type any email
    (orders a shopper sees are those of their own checkouts, see `orders_of_user`). A new
    customer is linked to `user` only when the email is the account's own."""
    first_name = address.get("first_name") or ""
    last_name = address.get("last_name") or ""
    if not (first_name or last_name):
        first_name, _sep, last_name = (address.get("name") or "").strip().partition(" ")
    owns_email = user is not None and (user.email or "").strip().lower() == email.lower()
    customer, _created = Customer.objects.get_or_create(
        store=store,
        email=email,
        defaults={
            "user": user if owns_email else None,
            "first_name": first_name[:100],
            "last_name": last_name.strip()[:100],
            "phone": (address.get("phone") or "")[:40],
            "preferred_language": locale,
        },
    )
    return customer


def place_orders(
    cart: Cart,
    *,
    email: str,
    shipping_address: dict,
    billing_address: dict,
    locale: str,
    user=None,
) -> Checkout:
    """Turn the open cart into one pending Order per store, grouped by a Checkout.

    In one transaction: locks the cart and the Stock rows (primary-key order, so two
    checkouts cannot deadlock), checks and reserves stock (StockMovement kind reserve),
    numbers each order from its store's OrderNumberSequence, snapshots prices, VAT and
    addresses, gets or creates the store's Customer by email (linking `user`), writes an
    OrderEvent "" -> pending per order and marks the cart checked out.

    Raises DomainError (empty or closed cart, product no longer sold or out of stock) and
    NotEnoughStock (naming the product and what is available); then nothing is written.
    Not idempotent by itself: a second call on the same cart is refused as checked out.
    """
    if user is not None and not user.is_authenticated:
        user = None
    email = email.strip().lower()
    locale = locale if locale in LANGUAGE_CODES else "en"
    with transaction.atomic():
        cart = Cart.objects.select_for_update().get(pk=cart.pk)
        _ensure_open(cart)
        items = list(
            cart.items.select_related("product__store")
            .prefetch_related("product__translations")
            .order_by("product_id")
        )
        if not items:
            raise DomainError(gettext("Your cart is empty."))
        for item in items:
            _ensure_sellable(item.product)
        stocks = _lock_stocks(item.product_id for item in items)
        for item in items:
            _check_available(item.product, item.quantity, stocks.get(item.product_id) or Stock())

        checkout = Checkout.objects.create(email=email, user=user)
        year = timezone.localdate().year
        by_store: dict[int, list[CartItem]] = {}
        for item in items:
            by_store.setdefault(item.product.store_id, []).append(item)
        for store_id in sorted(by_store):
            store_items = by_store[store_id]
            store = store_items[0].product.store
            order = Order.objects.create(
                store=store,
                number=next_order_number(store, year),
                channel=Order.Channel.WEB,
                checkout=checkout,
                customer=customer_for_order(store, email, shipping_address, locale, user),
                status=Order.Status.PENDING,
                email=email,
                locale=locale,
                billing_address=billing_address,
                shipping_address=shipping_address,
                currency=store.currency,
                vat_regime=Order.VatRegime.DOMESTIC,
            )
            lines = []
            for item in store_items:
                product = item.product
                unit_price = round_money(product.current_price)
                line_total = round_money(unit_price * item.quantity)
                lines.append(
                    OrderLine(
                        order=order,
                        product=product,
                        sku=product.sku,
                        gtin=product.gtin,
                        title=_product_title(product, locale)[:300],
                        quantity=item.quantity,
                        unit_price=unit_price,
                        vat_rate=product.vat_rate,
                        line_total=line_total,
                        vat_amount=vat_included(line_total, product.vat_rate),
                    )
                )
            OrderLine.objects.bulk_create(lines)
            # Stock rows locked and checked above, before any number was taken.
            _reserve_locked(
                order,
                stocks,
                {item.product_id: item.quantity for item in store_items},
                actor=user,
            )
            order.subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
            order.vat_total = sum((line.vat_amount for line in lines), Decimal("0.00"))
            order.total = order.subtotal + order.shipping_total
            order.save(update_fields=["subtotal", "vat_total", "total"])
            OrderEvent.objects.create(
                order=order, actor=user, from_status="", to_status=Order.Status.PENDING
            )
            _notify(notifications.queue_order_placed_emails, order)
        cart.status = Cart.Status.CHECKED_OUT
        if user is not None and cart.user_id is None:
            cart.user = user
        cart.save(update_fields=["status", "user", "updated_at"])
    return checkout


# --- order lifecycle --------------------------------------------------------------------
#
# Who may move an order where. A status maps to the statuses it may go to; a final status
# maps to nothing. docs/orders.md explains each move and what it does to stock.

_S = Order.Status

ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    _S.PENDING: frozenset({_S.PROCESSING, _S.PARTIALLY_SHIPPED, _S.SHIPPED, _S.CANCELLED}),
    _S.PROCESSING: frozenset({_S.PARTIALLY_SHIPPED, _S.SHIPPED, _S.CANCELLED, _S.REFUNDED}),
    _S.PARTIALLY_SHIPPED: frozenset({_S.SHIPPED, _S.CANCELLED, _S.REFUNDED}),
    _S.SHIPPED: frozenset({_S.DELIVERED, _S.REFUNDED}),
    _S.DELIVERED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REFUNDED: frozenset(),
}
FINAL_STATUSES = frozenset(status for status, to in ORDER_TRANSITIONS.items() if not to)
# Reached only by shipping lines (ship_order_lines), never by asking for the status.
SHIPPING_STATUSES = frozenset({_S.PARTIALLY_SHIPPED, _S.SHIPPED})
# Statuses from which lines can still be shipped.
SHIPPABLE_STATUSES = frozenset({_S.PENDING, _S.PROCESSING, _S.PARTIALLY_SHIPPED})
# Reaching these gives the units still reserved for unshipped lines back to stock.
RELEASING_STATUSES = frozenset({_S.CANCELLED, _S.REFUNDED})


def _status_label(status: str) -> str:
    return str(Order.Status(status).label).lower()


def _lock_order(order: Order) -> Order:
    return Order.objects.select_for_update().select_related("store").get(pk=order.pk)


def _copy_state(order: Order, locked: Order) -> None:
    """Let the caller's instance show what the locked copy now holds."""
    order.status = locked.status
    order.paid_at = locked.paid_at
    order.updated_at = locked.updated_at


def _notify(queue: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Queue an email through notifications, in the caller's transaction (the outbox row
    commits or rolls back with the change; sending happens after commit). A refused
    address or a missing template is logged, never a reason to refuse the change."""
    try:
        with transaction.atomic():
            queue(*args, **kwargs)
    except (ValidationError, UnknownEmailTemplate):
        logger.warning("%s not queued", queue.__name__, exc_info=True)


def _release_reservations(order: Order, *, actor=None) -> None:
    """Give back what the order holds for units still to ship (not shipped, not
    already cancelled), and record those units as cancelled on their lines: they will
    never ship (an order cancelled after a partial shipment keeps what it shipped)."""
    left: dict[int, int] = {}
    lines = [line for line in order.lines.all() if line.quantity_left > 0]
    for line in lines:
        if line.product_id is not None:
            left[line.product_id] = left.get(line.product_id, 0) + line.quantity_left
        line.quantity_cancelled += line.quantity_left
    release_for_order(order, left, actor=actor)
    OrderLine.objects.bulk_update(lines, ["quantity_cancelled"])


def _transition_locked(
    order: Order, to: str, *, actor=None, note: str = "", shipping: bool = False
) -> bool:
    """Move a row already locked by the caller. See transition_order."""
    try:
        to = Order.Status(to)
    except ValueError:
        raise TransitionNotAllowed(gettext("Unknown order status %(to)r.") % {"to": to}) from None
    if order.status == to:
        return False
    if order.status in FINAL_STATUSES:
        raise TransitionNotAllowed(
            gettext("Order %(number)s is %(status)s: it can no longer change.")
            % {"number": order.number, "status": _status_label(order.status)}
        )
    if to not in ORDER_TRANSITIONS[order.status]:
        raise TransitionNotAllowed(
            gettext("Order %(number)s is %(status)s and cannot become %(to)s.")
            % {
                "number": order.number,
                "status": _status_label(order.status),
                "to": _status_label(to),
            }
        )
    if to in SHIPPING_STATUSES and not shipping:
        raise TransitionNotAllowed(
            gettext("Ship the lines of order %(number)s (carrier and tracking) to mark it %(to)s.")
            % {"number": order.number, "to": _status_label(to)}
        )
    if to in RELEASING_STATUSES:
        _release_reservations(order, actor=actor)
    from_status = order.status
    order.status = to
    order.save(update_fields=["status", "updated_at"])
    OrderEvent.objects.create(
        order=order, actor=actor, from_status=from_status, to_status=to, note=note
    )
    if to == _S.CANCELLED:
        _notify(notifications.queue_order_cancelled_email, order, reason=note)
    return True


def transition_order(order: Order, to: str, *, actor=None, note: str = "") -> bool:
    """Move `order` to status `to`, the one way every status changes.

    Locks the order row, checks ORDER_TRANSITIONS, writes only `status`/`updated_at`, adds
    an OrderEvent (actor, from, to, note). Reaching cancelled or refunded releases the
    units still reserved for unshipped lines (StockMovement kind release) and, for
    cancelled, queues the shopper's cancellation email (sent after commit).

    Idempotent: when the order already is in `to`, writes nothing and returns False.
    Raises TransitionNotAllowed for a move the table forbids, out of a final status, or
    to shipped/partially shipped (those come from ship_order_lines); nothing is written.
    Updates `order` in place and returns True when it moved.
    """
    with transaction.atomic():
        locked = _lock_order(order)
        changed = _transition_locked(locked, to, actor=actor, note=note)
    _copy_state(order, locked)
    return changed


def letzshop_ship_refusal(order: Order) -> str:
    """Why a Letzshop order is not shipped through the generic ship form."""
    return gettext(
        "Order %(number)s comes from Letzshop: confirm its units, then send the tracking "
        "from the Letzshop section."
    ) % {"number": order.number}


def _refuse_for_letzshop(order: Order) -> None:
    """A Letzshop order's status follows the decisions on its units, which Letzshop must
    hear about: accepting or cancelling it wholesale here would leave Letzshop waiting."""
    if order.channel == Order.Channel.LETZSHOP:
        raise TransitionNotAllowed(
            gettext("Order %(number)s comes from Letzshop: confirm or decline its units instead.")
            % {"number": order.number}
        )


def accept_order(order: Order, *, actor=None, note: str = "") -> bool:
    """pending -> processing: the store is preparing the order. See transition_order.
    Refused for Letzshop orders (confirm their units instead)."""
    _refuse_for_letzshop(order)
    return transition_order(order, _S.PROCESSING, actor=actor, note=note)


def cancel_order(order: Order, *, actor=None, note: str = "") -> bool:
    """-> cancelled: unshipped reservations go back to stock, the shopper is told.
    See transition_order. Refused for Letzshop orders (decline their units instead)."""
    _refuse_for_letzshop(order)
    return transition_order(order, _S.CANCELLED, actor=actor, note=note)


def mark_delivered(order: Order, *, actor=None, note: str = "") -> bool:
    """shipped -> delivered (final). See transition_order."""
    return transition_order(order, _S.DELIVERED, actor=actor, note=note)


def refund_order(order: Order, *, actor=None, note: str = "") -> bool:
    """-> refunded (final): money returned; unshipped reservations released. Records the
    fact only: the payment provider call happens before, outside this transaction."""
    return transition_order(order, _S.REFUNDED, actor=actor, note=note)


def mark_order_paid(order: Order, *, paid_at=None) -> bool:
    """Record that the order is paid (sets `paid_at`), so the unpaid-order sweep leaves
    it alone. Idempotent: an order already paid keeps its first date; returns False."""
    with transaction.atomic():
        locked = _lock_order(order)
        changed = locked.paid_at is None
        if changed:
            locked.paid_at = paid_at or timezone.now()
            locked.save(update_fields=["paid_at", "updated_at"])
    _copy_state(order, locked)
    return changed


def _units_per_line(quantities: dict[int, int], negative: str) -> dict[int, int]:
    """OrderLine id -> units asked, zeros dropped; DomainError(`negative`) below zero."""
    wanted: dict[int, int] = {}
    for line_id, quantity in quantities.items():
        quantity = int(quantity)
        if quantity < 0:
            raise DomainError(negative)
        if quantity:
            wanted[int(line_id)] = quantity
    return wanted


def _lines_with_units_left(
    order: Order, wanted: dict[int, int], too_many: str
) -> dict[int, OrderLine]:
    """The order's lines by id, once every line of `wanted` is one of them with that many
    units left; else DomainError (`too_many` takes quantity, sku and left)."""
    lines = {line.pk: line for line in order.lines.all()}
    for line_id, quantity in wanted.items():
        line = lines.get(line_id)
        if line is None:
            raise DomainError(
                gettext("Line %(line)s is not part of order %(number)s.")
                % {"line": line_id, "number": order.number}
            )
        if quantity > line.quantity_left:
            raise DomainError(
                too_many
                % {"quantity": quantity, "sku": line.sku or line.title, "left": line.quantity_left}
            )
    return lines


def _clean_tracking(carrier: str, tracking_number: str) -> tuple[str, str]:
    carrier = (carrier or "").strip()
    tracking_number = (tracking_number or "").strip()
    if carrier not in Shipment.Carrier.values:
        raise DomainError(gettext("Choose the carrier."))
    if not tracking_number:
        raise DomainError(gettext("Enter the tracking number."))
    return carrier, tracking_number


def ship_order_lines(
    order: Order,
    quantities: dict[int, int],
    *,
    carrier: str,
    tracking_number: str,
    actor=None,
    tracking_url: str = "",
    note: str = "",
    from_letzshop: bool = False,
) -> Shipment:
    """Ship units of some lines in one parcel: `quantities` maps OrderLine id -> units.

    A Letzshop order is shipped only by the Letzshop tracking path
    (`imports.letzshop.services.set_tracking`, `from_letzshop=True`), which tells
    Letzshop; anyone else gets TransitionNotAllowed and nothing is written.

    In one transaction, with the order row then the Stock rows locked (primary-key
    order): checks every line belongs to the order and has that many units left to
    ship (neither shipped nor cancelled); fulfils stock (on hand and the order's
    reservation both go down, StockMovement kind fulfil); writes a Shipment with its
    ShipmentLines; raises `quantity_shipped`; moves the order to shipped when every line
    is done (shipped + cancelled = quantity), else partially shipped (OrderEvent); queues
    the shopper's shipped email with tracking.

    Idempotent on (carrier, tracking number): the same parcel again returns the existing
    Shipment and writes nothing. Raises DomainError (no carrier or tracking, nothing to
    ship, a foreign line, more than left to ship, tracking already used for other
    units), TransitionNotAllowed (order cancelled, shipped or closed) and NotEnoughStock
    (fewer units on hand than shipped); then nothing is written.
    """
    carrier, tracking_number = _clean_tracking(carrier, tracking_number)
    wanted = _units_per_line(quantities, gettext("Quantities to ship cannot be negative."))
    if not wanted:
        raise DomainError(gettext("Choose at least one unit to ship."))

    with transaction.atomic():
        locked = _lock_order(order)
        if locked.channel == Order.Channel.LETZSHOP and not from_letzshop:
            raise TransitionNotAllowed(letzshop_ship_refusal(locked))
        existing = (
            Shipment.objects.filter(order=locked, carrier=carrier, tracking_number=tracking_number)
            .prefetch_related("lines")
            .first()
        )
        if existing is not None:
            if {line.order_line_id: line.quantity for line in existing.lines.all()} == wanted:
                _copy_state(order, locked)
                return existing
            raise DomainError(
                gettext("Tracking number %(tracking)s is already used for this order.")
                % {"tracking": tracking_number}
            )
        if locked.status not in SHIPPABLE_STATUSES:
            raise TransitionNotAllowed(
                gettext("Order %(number)s is %(status)s: nothing can be shipped.")
                % {"number": locked.number, "status": _status_label(locked.status)}
            )
        lines = _lines_with_units_left(
            locked,
            wanted,
            gettext("Cannot ship %(quantity)d of %(sku)s: %(left)d left to ship."),
        )

        per_product: dict[int, int] = {}
        for line_id, quantity in wanted.items():
            product_id = lines[line_id].product_id
            if product_id is not None:
                per_product[product_id] = per_product.get(product_id, 0) + quantity
        stocks = _lock_stocks(per_product)
        held = reservations_held(locked)
        for product_id in sorted(per_product):
            quantity = per_product[product_id]
            unreserve = min(quantity, held.get(product_id, 0))
            stock = stocks.get(product_id)
            if stock is None or stock.on_hand - quantity < stock.reserved - unreserve:
                sku = next(li.sku for li in lines.values() if li.product_id == product_id)
                raise NotEnoughStock(
                    gettext("Not enough stock on hand to ship %(quantity)d of %(sku)s.")
                    % {"quantity": quantity, "sku": sku}
                )
            stock.on_hand -= quantity
            stock.reserved -= unreserve
            stock.save(update_fields=["on_hand", "reserved", "updated_at"])
            _record_movement(
                stock,
                StockMovement.Kind.FULFIL,
                on_hand_delta=-quantity,
                reserved_delta=-unreserve,
                order=locked,
                actor=actor,
                note=f"{locked.number} {tracking_number}",
            )

        shipment = Shipment.objects.create(
            order=locked,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            created_by=actor,
        )
        ShipmentLine.objects.bulk_create(
            ShipmentLine(shipment=shipment, order_line_id=line_id, quantity=quantity)
            for line_id, quantity in wanted.items()
        )
        for line_id, quantity in wanted.items():
            lines[line_id].quantity_shipped += quantity
        OrderLine.objects.bulk_update([lines[line_id] for line_id in wanted], ["quantity_shipped"])
        _transition_locked(
            locked,
            _S.SHIPPED if _all_done(lines.values()) else _S.PARTIALLY_SHIPPED,
            actor=actor,
            note=note or f"{shipment.get_carrier_display()} {tracking_number}",
            shipping=True,
        )
        _notify(
            notifications.queue_order_shipped_email,
            locked,
            tracking_number,
            shipment.get_carrier_display(),
            tracking_url,
        )
    _copy_state(order, locked)
    return shipment


def change_shipment_tracking(
    shipment: Shipment, *, carrier: str, tracking_number: str, actor=None, note: str = ""
) -> bool:
    """Relabel a parcel: the same Shipment (same lines, same units, stock untouched) gets
    a new carrier and tracking number (its old tracking URL is dropped), with an
    OrderEvent saying from what to what, and the shopper gets the shipment email again
    with the new tracking. No new Shipment, which would count its units twice. Used when
    Letzshop is given a new tracking for a shipped order. The same tracking again is a
    no-op (False). Raises DomainError when the order has another parcel with that
    tracking."""
    carrier, tracking_number = _clean_tracking(carrier, tracking_number)
    with transaction.atomic():
        locked = _lock_order(shipment.order)
        current = Shipment.objects.select_for_update().get(pk=shipment.pk)
        old = f"{current.get_carrier_display()} {current.tracking_number}"
        if (current.carrier, current.tracking_number) == (carrier, tracking_number):
            return False
        clash = Shipment.objects.filter(
            order=locked, carrier=carrier, tracking_number=tracking_number
        ).exists()
        if clash:
            raise DomainError(
                gettext("Tracking number %(tracking)s is already used for this order.")
                % {"tracking": tracking_number}
            )
        current.carrier, current.tracking_number = carrier, tracking_number
        current.tracking_url = ""
        current.save(update_fields=["carrier", "tracking_number", "tracking_url"])
        event = OrderEvent.objects.create(
            order=locked,
            actor=actor,
            from_status=locked.status,
            to_status=locked.status,
            note=note
            or f"Tracking changed from {old} to {current.get_carrier_display()} {tracking_number}",
        )
        _notify(
            notifications.queue_order_shipped_email,
            locked,
            tracking_number,
            current.get_carrier_display(),
            change=f"event-{event.pk}",
        )
    shipment.carrier, shipment.tracking_number = carrier, tracking_number
    shipment.tracking_url = ""
    return True


def _all_done(lines: Iterable[OrderLine]) -> bool:
    return all(line.quantity_left == 0 for line in lines)


def cancel_order_line_units(
    order: Order, quantities: dict[int, int], *, actor=None, note: str = ""
) -> bool:
    """Cancel units of some lines that will never ship (declined, not available):
    `quantities` maps OrderLine id -> units.

    In one transaction, with the order row then the Stock rows locked: checks every line
    belongs to the order and has that many units left (neither shipped nor cancelled);
    raises `quantity_cancelled`; releases that many units of the order's reservation
    (never more than it holds; StockMovement kind release). Then moves the order to
    cancelled when every unit is cancelled (cancellation email), to shipped when every
    other unit has shipped, and otherwise keeps its status; either way one OrderEvent
    tells which units were cancelled, followed by `note`.

    Units add up: calling again cancels more (callers record their decisions, e.g.
    Letzshop units). No units at all is a quiet no-op returning False. Raises DomainError
    (negative units, a foreign line, more than left) and TransitionNotAllowed (order
    shipped or closed); then nothing is written. Updates `order` in place, returns True.
    """
    wanted = _units_per_line(quantities, gettext("Quantities to cancel cannot be negative."))
    if not wanted:
        return False

    with transaction.atomic():
        locked = _lock_order(order)
        if locked.status not in SHIPPABLE_STATUSES:
            raise TransitionNotAllowed(
                gettext("Order %(number)s is %(status)s: its units can no longer be cancelled.")
                % {"number": locked.number, "status": _status_label(locked.status)}
            )
        lines = _lines_with_units_left(
            locked, wanted, gettext("Cannot cancel %(quantity)d of %(sku)s: %(left)d left.")
        )

        per_product: dict[int, int] = {}
        for line_id, quantity in wanted.items():
            line = lines[line_id]
            line.quantity_cancelled += quantity
            if line.product_id is not None:
                per_product[line.product_id] = per_product.get(line.product_id, 0) + quantity
        OrderLine.objects.bulk_update(
            [lines[line_id] for line_id in wanted], ["quantity_cancelled"]
        )
        release_for_order(locked, per_product, actor=actor)

        cancelled = ", ".join(
            f"{quantity} x {lines[line_id].sku or lines[line_id].title}"
            for line_id, quantity in wanted.items()
        )
        event_note = gettext("Cancelled %(units)s.") % {"units": cancelled}
        if note:
            event_note = f"{event_note} {note}"
        if all(line.quantity_cancelled == line.quantity for line in lines.values()):
            _transition_locked(locked, _S.CANCELLED, actor=actor, note=event_note)
        elif _all_done(lines.values()):
            _transition_locked(locked, _S.SHIPPED, actor=actor, note=event_note, shipping=True)
        else:
            OrderEvent.objects.create(
                order=locked,
                actor=actor,
                from_status=locked.status,
                to_status=locked.status,
                note=event_note,
            )
    _copy_state(order, locked)
    return True


# --- expiry sweeps ----------------------------------------------------------------------


def expire_unpaid_orders(*, now=None, limit: int = 1000) -> int:
    """Cancel pending web orders still unpaid WIZAMART_UNPAID_ORDER_TTL_HOURS after they
    were placed, releasing their reservations (through the cancel transition: event,
    release movements, email). Letzshop orders are paid through Letzshop and never expire.

    One order per transaction (order row, then its Stock rows in key order, like
    checkout and shipping, so no deadlock), at most `limit` per run. Safe to run twice at
    once: rows are taken with SKIP LOCKED and a cancelled order is a no-op. An order that
    fails is logged and skipped. Returns how many orders this run cancelled.
    """
    now = now or timezone.now()
    hours = settings.WIZAMART_UNPAID_ORDER_TTL_HOURS
    due = Order.objects.filter(
        status=_S.PENDING,
        paid_at__isnull=True,
        channel=Order.Channel.WEB,
        placed_at__lt=now - timedelta(hours=hours),
    ).order_by("placed_at", "pk")
    note = gettext("Unpaid after %(hours)d hours.") % {"hours": hours}
    cancelled = 0
    failed: set[int] = set()
    while cancelled + len(failed) < limit:
        with transaction.atomic():
            order = (
                due.exclude(pk__in=failed)
                .select_for_update(skip_locked=True)
                .select_related("store")
                .first()
            )
            if order is None:
                break
            try:
                with transaction.atomic():
                    cancelled += _transition_locked(order, _S.CANCELLED, note=note)
            except Exception:
                failed.add(order.pk)
                logger.exception("could not expire order %s", order.pk)
    return cancelled


def expire_abandoned_carts(*, now=None, batch_size: int = 500) -> int:
    """Mark open carts untouched for WIZAMART_CART_TTL_HOURS as expired. Carts hold no
    reservation (stock is reserved at checkout), so nothing else changes; a shopper who
    comes back gets a new cart. Safe to run twice at once (SKIP LOCKED, conditional
    update). Returns how many carts this run expired."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.WIZAMART_CART_TTL_HOURS)
    expired = 0
    while True:
        with transaction.atomic():
            ids = list(
                Cart.objects.select_for_update(skip_locked=True)
                .filter(status=Cart.Status.OPEN, updated_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if ids:
                expired += Cart.objects.filter(pk__in=ids, status=Cart.Status.OPEN).update(
                    status=Cart.Status.EXPIRED, updated_at=now
                )
        if len(ids) < batch_size:
            return expired


# --- store teams ------------------------------------------------------------------------


def _owner_count(store: Store) -> int:
    # Locks the owners' rows so two demotions cannot both leave the store without one.
    return len(
        Membership.objects.select_for_update()
        .filter(store=store, role=Membership.Role.OWNER)
        .values_list("pk", flat=True)
    )


class InvitationRefused(DomainError):
    """The invitation cannot be accepted (wrong account, expired, revoked, used)."""


def _invitation_url(token: str) -> str:
    path = reverse("marketplace:team_invitation", kwargs={"token": token})
    return settings.SITE_URL.rstrip("/") + path


def _send_invitation(invitation: Invitation, *, invited_by) -> None:
    """Give `invitation` a new token and a new expiry, save it, queue the email with the
    link (after commit). The previous link stops working."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = Invitation.hash_token(token)
    invitation.expires_at = timezone.now() + timedelta(days=settings.WIZAMART_INVITATION_TTL_DAYS)
    invitation.invited_by = invited_by
    if invitation.pk is None:
        invitation.save()
    else:
        invitation.save(update_fields=["role", "token_hash", "expires_at", "invited_by"])
    _notify(
        notifications.queue_team_invitation_email,
        to=invitation.email,
        store=invitation.store,
        invited_by=(invited_by.get_full_name() or invited_by.get_username())
        if invited_by is not None
        else invitation.store.name,
        role=str(invitation.get_role_display()),
        accept_url=_invitation_url(token),
        dedupe_key=f"team_invitation:{invitation.pk}:{invitation.token_hash[:16]}",
    )


def is_team_member(store: Store, email: str) -> bool:
    """Whether an account with `email` (any case) is already in `store`'s team."""
    return Membership.objects.filter(store=store, user__email__iexact=email.strip()).exists()


def invite_team_member(store: Store, email: str, role: str, *, invited_by) -> Invitation:
    """Invite the person at `email` to join `store`'s team with `role`.

    Writes or refreshes the store's one pending Invitation for this email (new role, new
    token, new expiry) and queues the invitation email with the link (after commit). It
    never creates a user or a Membership and behaves the same whether or not an account
    has this email. Calling it again is a resend: the earlier link stops working. Raises
    DomainError for a bad email or role, or when someone with this email is already in
    the team.
    """
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise DomainError(gettext("Enter a valid email address.")) from None
    if role not in Membership.Role.values:
        raise DomainError(gettext("Unknown role %(role)r.") % {"role": role})
    if is_team_member(store, email):
        raise DomainError(gettext("%(email)s is already in the team.") % {"email": email})
    pending = Invitation.objects.filter(store=store, email=email, status=Invitation.Status.PENDING)
    for _attempt in range(2):
        try:
            with transaction.atomic():
                invitation = pending.select_for_update().first() or Invitation(
                    store=store, email=email
                )
                invitation.role = role
                _send_invitation(invitation, invited_by=invited_by)
                return invitation
        except IntegrityError:
            # Two owners invited the same email at once: the other invitation won the
            # one-pending constraint; refresh that one instead.
            continue
    raise DomainError(gettext("Please try again."))


@transaction.atomic
def resend_invitation(invitation: Invitation, *, actor) -> Invitation:
    """Send a pending invitation again with a new link and a new expiry (the previous
    link stops working). Raises DomainError when it is no longer pending."""
    locked = Invitation.objects.select_for_update().select_related("store").get(pk=invitation.pk)
    if locked.status != Invitation.Status.PENDING:
        raise DomainError(
            gettext("This invitation is %(status)s: invite again instead.")
            % {"status": str(locked.get_status_display()).lower()}
        )
    _send_invitation(locked, invited_by=actor)
    invitation.token_hash, invitation.expires_at = locked.token_hash, locked.expires_at
    invitation.invited_by = locked.invited_by
    return locked


@transaction.atomic
def revoke_invitation(invitation: Invitation, *, actor=None) -> bool:
    """Withdraw a pending invitation: its link stops working. No-op (False) when it is
    already revoked or expired. Raises DomainError when it was accepted (remove the
    member instead)."""
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.status == Invitation.Status.ACCEPTED:
        raise DomainError(
            gettext("This invitation was already accepted: remove the member instead.")
        )
    if locked.status != Invitation.Status.PENDING:
        return False
    locked.status = invitation.status = Invitation.Status.REVOKED
    locked.save(update_fields=["status"])
    return True


def accept_invitation(token: str, user) -> bool:
    """Let `user` join the team with the invitation's role.

    Under a lock on the invitation: requires it to be pending and not past expires_at,
    and `user`'s email to be the invited one (any case); then creates the Membership and
    marks the invitation accepted, in one transaction. A user already in the team keeps
    their role. Idempotent: the same user accepting again is a no-op (False). Raises
    InvitationRefused (nothing written; an invitation found past its expiry is marked
    expired).
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(token_hash=Invitation.hash_token(token or ""))
            .first()
        )
        if invitation is None:
            raise InvitationRefused(gettext("This invitation link is not valid."))
        if invitation.status == Invitation.Status.ACCEPTED and invitation.accepted_by_id == user.pk:
            return False
        refusal = invitation_closed_reason(invitation)
        if invitation.status != Invitation.Status.PENDING:
            raise InvitationRefused(refusal)
        if refusal:  # pending, but past expires_at
            invitation.status = Invitation.Status.EXPIRED
            invitation.save(update_fields=["status"])
        elif (user.email or "").strip().lower() != invitation.email:
            raise InvitationRefused(
                gettext(
                    "This invitation is for %(email)s. Log in with the account of that "
                    "email to accept it."
                )
                % {"email": invitation.email}
            )
        else:
            Membership.objects.get_or_create(
                user=user, store_id=invitation.store_id, defaults={"role": invitation.role}
            )
            invitation.status = Invitation.Status.ACCEPTED
            invitation.accepted_by = user
            invitation.accepted_at = timezone.now()
            invitation.save(update_fields=["status", "accepted_by", "accepted_at"])
            return True
    raise InvitationRefused(refusal)


def invitation_closed_reason(invitation: Invitation) -> str:
    """Why the invitation can no longer be accepted, or "" while it can."""
    Status = Invitation.Status
    if invitation.status == Status.REVOKED:
        return gettext("This invitation was withdrawn by the store.")
    if invitation.status == Status.ACCEPTED:
        return gettext("This invitation has already been used.")
    if invitation.status == Status.EXPIRED or invitation.expires_at <= timezone.now():
        return gettext("This invitation has expired. Ask the store's owner to send a new one.")
    return ""


@transaction.atomic
def change_member_role(membership: Membership, role: str, *, actor=None) -> bool:
    """Set a member's role. No-op (False) when it already is. Raises DomainError for an
    unknown role or when it would leave the store without an owner."""
    if role not in Membership.Role.values:
        raise DomainError(gettext("Unknown role %(role)r.") % {"role": role})
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == role:
        return False
    if locked.role == Membership.Role.OWNER and _owner_count(locked.store) <= 1:
        raise DomainError(gettext("A store keeps at least one owner."))
    locked.role = role
    locked.save(update_fields=["role"])
    membership.role = role
    return True


@transaction.atomic
def remove_team_member(membership: Membership, *, actor=None) -> bool:
    """Remove a member from the store's team. No-op (False) when already gone. Raises
    DomainError when it is the store's last owner."""
    locked = Membership.objects.select_for_update().filter(pk=membership.pk).first()
    if locked is None:
        return False
    if locked.role == Membership.Role.OWNER and _owner_count(locked.store) <= 1:
        raise DomainError(gettext("A store keeps at least one owner."))
    locked.delete()
    return True


def register_shopper(*, username: str, email: str, password: str):
    """Create a shopper account (no store membership). The caller validated the input."""
    return get_user_model().objects.create_user(
        username=username, email=email.strip().lower(), password=password
    )
