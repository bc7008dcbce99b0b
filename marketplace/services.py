"""Marketplace writes: catalogue and stock. Every change of these rows goes through here."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import get_language, gettext

from marketplace.models import (
    LANGUAGE_CODES,
    Cart,
    CartItem,
    Checkout,
    Customer,
    Order,
    OrderEvent,
    OrderLine,
    OrderNumberSequence,
    Product,
    ProductTranslation,
    Stock,
    StockMovement,
    Store,
)
from marketplace.money import round_money, vat_included


class DomainError(Exception):
    """A rule of the domain refused the request. The message is shown to the user as is."""


class NotEnoughStock(DomainError):
    pass


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
            if _differs(getattr(product, name), value):
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


def _differs(current: Any, new: Any) -> bool:
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


def _next_order_number(store: Store, year: int) -> str:
    """Hand out the next number of (store, year) under a row lock: never max+1, never
    reused; a rolled-back checkout gives its number back with everything else."""
    sequence, _created = OrderNumberSequence.objects.get_or_create(store=store, year=year)
    sequence = OrderNumberSequence.objects.select_for_update().get(pk=sequence.pk)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return f"{store.order_prefix}-{year}-{sequence.last_value:06d}"


def _customer_for(store: Store, email: str, address: dict, locale: str, user) -> Customer:
    first_name = address.get("first_name") or ""
    last_name = address.get("last_name") or ""
    if not (first_name or last_name):
        first_name, _sep, last_name = (address.get("name") or "").strip().partition(" ")
    customer, created = Customer.objects.get_or_create(
        store=store,
        email=email,
        defaults={
            "user": user,
            "first_name": first_name[:100],
            "last_name": last_name.strip()[:100],
            "phone": (address.get("phone") or "")[:40],
            "preferred_language": locale,
        },
    )
    if not created and user is not None and customer.user_id is None:
        customer.user = user
        customer.save(update_fields=["user"])
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
        stocks = {
            stock.product_id: stock
            for stock in Stock.objects.select_for_update()
            .filter(product_id__in=[item.product_id for item in items])
            .order_by("pk")
        }
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
                number=_next_order_number(store, year),
                channel=Order.Channel.WEB,
                checkout=checkout,
                customer=_customer_for(store, email, shipping_address, locale, user),
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
                stock = stocks[product.pk]
                stock.reserved += item.quantity
                stock.save(update_fields=["reserved", "updated_at"])
                _record_movement(
                    stock,
                    StockMovement.Kind.RESERVE,
                    on_hand_delta=0,
                    reserved_delta=item.quantity,
                    order=order,
                    actor=user,
                    note=order.number,
                )
            OrderLine.objects.bulk_create(lines)
            order.subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
            order.vat_total = sum((line.vat_amount for line in lines), Decimal("0.00"))
            order.total = order.subtotal + order.shipping_total
            order.save(update_fields=["subtotal", "vat_total", "total"])
            OrderEvent.objects.create(
                order=order, actor=user, from_status="", to_status=Order.Status.PENDING
            )
        cart.status = Cart.Status.CHECKED_OUT
        if user is not None and cart.user_id is None:
            cart.user = user
        cart.save(update_fields=["status", "user", "updated_at"])
    return checkout


def register_shopper(*, username: str, email: str, password: str):
    """Create a shopper account (no store membership). The caller validated the input."""
    return get_user_model().objects.create_user(
        username=username, email=email.strip().lower(), password=password
    )
