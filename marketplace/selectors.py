"""Marketplace reads reused by pages and the API: product search and listing, carts,
team invitations."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from marketplace.models import (
    Cart,
    CartItem,
    Invitation,
    Order,
    OrderLine,
    Product,
    ProductTranslation,
    Shipment,
    Store,
)

SORTS = ("relevance", "newest", "price_asc", "price_desc", "title")

# Words of a query, kept whole when joined by a dash or a dot (SKUs like "MUG-1").
_TOKEN = re.compile(r"[^\W_]+(?:[-.][^\W_]+)*")
_WEBSEARCH_SYNTAX = re.compile(r'"|(?:^|\s)-\S|\s(?:or|OR)\s')
MAX_QUERY_WORDS = 12


@dataclass(frozen=True)
class ProductFilters:
    """What a shopper asked the product list for. Empty values mean "no filter"."""

    q: str = ""
    store: str = ""
    brands: tuple[str, ...] = field(default_factory=tuple)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = False
    sort: str = ""


def search_query(text: str) -> SearchQuery | None:
    """The full-text query for what a shopper typed, or None when there is nothing to find.

    Plain words match as prefixes ("brace" finds "bracelet"): the raw tsquery is built
    only from sanitized words, each quoted, so no tsquery syntax can come from the user.
    Text using web search syntax (quotes, -exclusion, or) goes to websearch_to_tsquery.
    """
    text = text.strip()[:200]
    if not text:
        return None
    if _WEBSEARCH_SYNTAX.search(text):
        return SearchQuery(text, config="simple", search_type="websearch")
    words = _TOKEN.findall(text.lower())[:MAX_QUERY_WORDS]
    if not words:
        return None
    raw = " & ".join(f"'{word}':*" for word in words)
    return SearchQuery(raw, config="simple", search_type="raw")


def _effective_price() -> Case:
    return Case(
        When(sale_price__isnull=False, sale_price__lt=F("price"), then=F("sale_price")),
        default=F("price"),
        output_field=DecimalField(max_digits=10, decimal_places=2),
    )


def _available_expression() -> Coalesce:
    return Coalesce(
        F("stock__on_hand") - F("stock__reserved"), Value(0), output_field=IntegerField()
    )


def visible_products() -> QuerySet[Product]:
    """Active products of active stores, with what a product card needs in two queries:
    store and stock joined, translations prefetched (see `Product.translation`)."""
    return (
        Product.objects.filter(is_active=True, store__is_active=True)
        .select_related("store", "stock")
        .prefetch_related("translations")
    )


def _title_in(language: str) -> Subquery:
    return Subquery(
        ProductTranslation.objects.filter(product=OuterRef("pk"), language=language).values(
            "title"
        )[:1]
    )


def search_products(filters: ProductFilters, *, language: str) -> QuerySet[Product]:
    """Visible products matching `filters`, annotated with `effective_price` and
    `available`, sorted (default: relevance when searching, else newest)."""
    qs = _searched(filters).annotate(
        effective_price=_effective_price(), available=_available_expression()
    )
    if filters.store:
        qs = qs.filter(store__code=filters.store)
    if filters.brands:
        qs = qs.filter(brand__in=filters.brands)
    if filters.min_price is not None:
        qs = qs.filter(effective_price__gte=filters.min_price)
    if filters.max_price is not None:
        qs = qs.filter(effective_price__lte=filters.max_price)
    if filters.in_stock:
        qs = qs.filter(available__gt=0).exclude(availability=Product.Availability.OUT_OF_STOCK)

    sort = filters.sort if filters.sort in SORTS else ""
    query = search_query(filters.q)
    if not sort or (sort == "relevance" and query is None):
        sort = "relevance" if query is not None else "newest"
    if sort == "relevance":
        return qs.annotate(rank=SearchRank(F("search_vector"), query)).order_by("-rank", "-id")
    if sort == "price_asc":
        return qs.order_by("effective_price", "id")
    if sort == "price_desc":
        return qs.order_by("-effective_price", "-id")
    if sort == "title":
        title = Coalesce(_title_in(language), _title_in("en"), F("sku"))
        return qs.annotate(sort_title=title).order_by("sort_title", "id")
    return qs.order_by("-created_at", "-id")


def _searched(filters: ProductFilters) -> QuerySet[Product]:
    qs = visible_products()
    query = search_query(filters.q)
    if query is not None:
        qs = qs.filter(search_vector=query)
    return qs


def brand_facet(filters: ProductFilters) -> list[str]:
    """Brands a shopper can narrow the current search (and store) to: one query."""
    qs = _searched(filters)
    if filters.store:
        qs = qs.filter(store__code=filters.store)
    return list(qs.exclude(brand="").order_by("brand").values_list("brand", flat=True).distinct())


def active_stores() -> QuerySet[Store]:
    """Stores open for business that have at least one product to show."""
    return Store.objects.filter(
        is_active=True,
        pk__in=Product.objects.filter(is_active=True).values("store_id"),
    ).order_by("name")


def get_visible_product(public_id) -> Product | None:
    return visible_products().filter(public_id=public_id).first()


def get_open_cart(token) -> Cart | None:
    """The open cart with this token, its items, products, stores, stock and texts."""
    if not token:
        return None
    items = CartItem.objects.select_related("product__store", "product__stock").prefetch_related(
        "product__translations"
    )
    return (
        Cart.objects.filter(token=token, status=Cart.Status.OPEN)
        .prefetch_related(Prefetch("items", queryset=items))
        .first()
    )


def cart_item_count(token) -> int:
    """Units in the open cart with this token (0 when there is none)."""
    if not token:
        return 0
    total = CartItem.objects.filter(cart__token=token, cart__status=Cart.Status.OPEN).values_list(
        "quantity", flat=True
    )
    return sum(total)


@dataclass
class CartLine:
    item: CartItem
    product: Product
    unit_price: Decimal
    line_total: Decimal


@dataclass
class CartGroup:
    store: Store
    lines: list[CartLine]
    subtotal: Decimal


def cart_groups(cart: Cart) -> tuple[list[CartGroup], Decimal]:
    """The cart's lines grouped per store (store name order) and the grand total.
    Reads only what `get_open_cart` prefetched."""
    groups: dict[int, CartGroup] = {}
    for item in cart.items.all():
        product = item.product
        unit_price = product.current_price
        line = CartLine(item, product, unit_price, unit_price * item.quantity)
        group = groups.setdefault(product.store_id, CartGroup(product.store, [], Decimal("0.00")))
        group.lines.append(line)
        group.subtotal += line.line_total
    ordered = sorted(groups.values(), key=lambda g: (g.store.name, g.store.pk))
    return ordered, sum((g.subtotal for g in ordered), Decimal("0.00"))


def orders_of_user(user) -> QuerySet[Order]:
    """Orders placed by `user` while logged in. Not the orders of a Customer with the
    same email: an email typed at checkout proves nothing about who owns it."""
    return (
        Order.objects.filter(checkout__user=user)
        .select_related("store")
        .order_by("-placed_at", "-id")
    )


def checkout_orders(checkout) -> list[Order]:
    return list(
        checkout.orders.select_related("store").prefetch_related("lines").order_by("store__name")
    )


# --- store back office: dashboard ---------------------------------------------------------

LOW_STOCK_THRESHOLD = 3
PENDING_EXCEPTION_AFTER = timedelta(hours=24)
CHART_DAYS = 30
# Orders that brought no money: left out of revenue (a cancelled order only when it
# shipped nothing: what it shipped before was sold).
NO_REVENUE_STATUSES = (Order.Status.CANCELLED, Order.Status.REFUNDED)


@dataclass(frozen=True)
class DayFigures:
    day: date
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class StoreDashboard:
    orders_today: int
    orders_week: int
    revenue_today: Decimal
    revenue_week: Decimal
    revenue_30_days: Decimal
    low_stock: list[Product]
    pending_exceptions: list[Order]
    pending_exception_count: int
    days: list[DayFigures]


def store_dashboard(store_ids: list[int], *, now: datetime | None = None) -> StoreDashboard:
    """Figures of the back office home for these stores, in five queries.

    Today, the week (from Monday) and the 30 days (today included) are local dates.
    Revenue is the sum of order totals less what their cancelled units were charged,
    refunded orders and cancelled ones that shipped nothing left out. Low stock:
    active products with at most LOW_STOCK_THRESHOLD units available. Pending exceptions:
    orders still pending PENDING_EXCEPTION_AFTER after they were placed.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    tz = timezone.get_current_timezone()

    def start_of(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=tz)

    today_start = start_of(today)
    week_start = start_of(today - timedelta(days=today.weekday()))
    first_day = today - timedelta(days=CHART_DAYS - 1)
    zero = Value(Decimal("0.00"), output_field=DecimalField(max_digits=12, decimal_places=2))
    # What the units cancelled after the order was placed (declined, not available) were
    # charged: not revenue.
    cancelled = (
        OrderLine.objects.filter(order=OuterRef("pk"), quantity_cancelled__gt=0)
        .order_by()
        .values("order")
        .annotate(value=Sum(F("unit_price") * F("quantity_cancelled")))
        .values("value")
    )
    orders = Order.objects.filter(store_id__in=store_ids).annotate(
        net=F("total") - Coalesce(Subquery(cancelled), zero),
        shipped=Exists(Shipment.objects.filter(order=OuterRef("pk"))),
    )
    earning = ~Q(status__in=NO_REVENUE_STATUSES) | Q(status=Order.Status.CANCELLED, shipped=True)
    totals = orders.filter(placed_at__gte=min(start_of(first_day), week_start)).aggregate(
        orders_today=Count("pk", filter=Q(placed_at__gte=today_start)),
        orders_week=Count("pk", filter=Q(placed_at__gte=week_start)),
        revenue_today=Coalesce(Sum("net", filter=earning & Q(placed_at__gte=today_start)), zero),
        revenue_week=Coalesce(Sum("net", filter=earning & Q(placed_at__gte=week_start)), zero),
        revenue_30_days=Coalesce(
            Sum("net", filter=earning & Q(placed_at__gte=start_of(first_day))), zero
        ),
    )
    per_day = {
        row["day"]: row
        for row in orders.filter(placed_at__gte=start_of(first_day))
        .annotate(day=TruncDate("placed_at", tzinfo=tz))
        .order_by()
        .values("day")
        .annotate(count=Count("pk"), revenue=Coalesce(Sum("net", filter=earning), zero))
    }
    days = []
    for offset in range(CHART_DAYS):
        day = first_day + timedelta(days=offset)
        row = per_day.get(day)
        days.append(
            DayFigures(
                day=day,
                orders=row["count"] if row else 0,
                revenue=row["revenue"] if row else Decimal("0.00"),
            )
        )
    low_stock = list(
        Product.objects.filter(store_id__in=store_ids, is_active=True)
        .annotate(available=F("stock__on_hand") - F("stock__reserved"))
        .filter(available__lte=LOW_STOCK_THRESHOLD)
        .select_related("store", "stock")
        .prefetch_related("translations")
        .order_by("available", "sku")[:20]
    )
    late = orders.filter(status=Order.Status.PENDING, placed_at__lt=now - PENDING_EXCEPTION_AFTER)
    pending = list(late.select_related("store").order_by("placed_at")[:20])
    pending_count = len(pending) if len(pending) < 20 else late.count()
    return StoreDashboard(
        days=days,
        low_stock=low_stock,
        pending_exceptions=pending,
        pending_exception_count=pending_count,
        **totals,
    )


# --- store teams --------------------------------------------------------------------------


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation whose link carries `token` (any status), with its store; None when
    no invitation has it."""
    return (
        Invitation.objects.select_related("store")
        .filter(token_hash=Invitation.hash_token(token))
        .first()
    )


def pending_invitations(store_ids: list[int]) -> QuerySet[Invitation]:
    """Pending invitations of these stores, soonest expiry first (some may be past it)."""
    return (
        Invitation.objects.filter(store_id__in=store_ids, status=Invitation.Status.PENDING)
        .select_related("store")
        .order_by("expires_at", "pk")
    )
