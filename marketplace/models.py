"""Marketplace: stores and their teams, catalogue, stock, carts and orders.

Rows are written only through `marketplace.services`; the constraints here are the last
line of defence for the rules those services keep.
"""

from __future__ import annotations

import hashlib
import posixpath
import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

LANGUAGE_CODES = ["en", "fr", "de"]
# Member states of the European Union (ISO 3166-1 alpha-2): decides the VAT regime.
EU_COUNTRY_CODES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)


class Language(models.TextChoices):
    EN = "en", _("English")
    FR = "fr", _("French")
    DE = "de", _("German")


def _default_languages() -> list[str]:
    return list(LANGUAGE_CODES)


# --- stores and teams -----------------------------------------------------------------


class Store(models.Model):
    """A merchant selling on Wizamart. `code` is public and appears in URLs."""

    code = models.SlugField(
        max_length=32,
        unique=True,
        validators=[
            RegexValidator(r"^[a-z0-9][a-z0-9-]*$", _("Lowercase letters, digits and dashes."))
        ],
    )
    name = models.CharField(max_length=200)
    legal_name = models.CharField(max_length=200, blank=True)
    vat_number = models.CharField(max_length=20, blank=True, help_text=_("e.g. LU12345678"))
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    street = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, default="LU")
    languages = ArrayField(
        models.CharField(max_length=2, choices=Language.choices), default=_default_languages
    )
    default_language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    default_vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("17.00"))
    currency = models.CharField(max_length=3, default="EUR")
    order_prefix = models.CharField(
        max_length=8,
        validators=[RegexValidator(r"^[A-Z0-9]{2,8}$", _("2 to 8 capital letters or digits."))],
        help_text=_("Starts every order number, e.g. LUX in LUX-2026-000123."),
    )
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["order_prefix"], name="store_order_prefix_unique"),
            models.CheckConstraint(
                condition=Q(default_vat_rate__gte=0) & Q(default_vat_rate__lte=100),
                name="store_default_vat_rate_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's place in a store's team."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")  # everything, including team and billing
        MANAGER = "manager", _("Manager")  # catalogue, stock, orders, settings; not team or billing
        STAFF = "staff", _("Staff")  # daily work: orders and stock

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "store"], name="membership_user_store_unique"),
        ]

    def __str__(self) -> str:
        # Name or email, never the username: team pages show members this way.
        user = self.user
        who = user.get_full_name() or user.email or user.get_username()
        return f"{who} @ {self.store} ({self.role})"


class Invitation(models.Model):
    """An offer, sent by email, to join a store's team with a role.

    Nobody becomes a member until the person at `email` opens the link, logs in (or signs
    up) with an account of that email and accepts. Only a SHA-256 hash of the link's
    token is stored: the token itself exists in the email alone, and a resend replaces it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")  # sent, waiting for the invitee (until expires_at)
        ACCEPTED = "accepted", _("Accepted")  # the invitee joined the team (final)
        REVOKED = "revoked", _("Revoked")  # withdrawn by an owner (final)
        EXPIRED = "expired", _("Expired")  # opened after expires_at, never accepted (final)

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(help_text=_("Lowercase; the accepting account must have it."))
    role = models.CharField(max_length=10, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "email"],
                condition=Q(status="pending"),
                name="invitation_one_pending_per_store_email",
            ),
            models.CheckConstraint(
                condition=Q(email=Lower("email")),
                name="invitation_email_lowercase",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} @ {self.store} ({self.role}, {self.status})"

    @staticmethod
    def hash_token(token: str) -> str:
        """What `token_hash` holds for the link's token."""
        return hashlib.sha256(token.encode()).hexdigest()


# --- catalogue ------------------------------------------------------------------------


def image_copy_key(url: str) -> str:
    """The file name (less extension) of a product image copied from `url` to storage
    (`imports.images`): one per URL, so a copy tells which URL it is of."""
    return hashlib.sha256(url.encode()).hexdigest()[:20]


class Product(models.Model):
    """A sellable item of one store, unique by (store, sku). Prices are gross (VAT included)."""

    class GtinType(models.TextChoices):
        NONE = "", _("None")
        EAN13 = "ean13", "EAN-13"
        EAN8 = "ean8", "EAN-8"
        UPC = "upc", "UPC-A"
        ISBN = "isbn", "ISBN"
        GTIN14 = "gtin14", "GTIN-14"

    class Condition(models.TextChoices):
        NEW = "new", _("New")
        REFURBISHED = "refurbished", _("Refurbished")
        USED = "used", _("Used")

    class Availability(models.TextChoices):
        IN_STOCK = "in_stock", _("In stock")  # sold from stock on hand
        OUT_OF_STOCK = "out_of_stock", _("Out of stock")  # not orderable
        PREORDER = "preorder", _("Pre-order")  # orderable before it arrives
        BACKORDER = "backorder", _("Backorder")  # orderable, ships later

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of its own: (store, sku) unique and (store, gtin) lead with the store.
    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, related_name="products", db_index=False
    )
    sku = models.CharField(max_length=100)
    gtin = models.CharField(max_length=14, blank=True)
    gtin_type = models.CharField(max_length=8, choices=GtinType.choices, blank=True)
    brand = models.CharField(max_length=120, blank=True)
    mpn = models.CharField(max_length=70, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    sale_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("17.00"))
    condition = models.CharField(max_length=12, choices=Condition.choices, default=Condition.NEW)
    availability = models.CharField(
        max_length=12, choices=Availability.choices, default=Availability.IN_STOCK
    )
    is_active = models.BooleanField(default=True)
    group_id = models.CharField(
        max_length=100, blank=True, help_text=_("item_group_id / Shopify handle")
    )
    product_type = models.CharField(max_length=250, blank=True)
    google_product_category = models.CharField(max_length=250, blank=True)
    link = models.URLField(max_length=500, blank=True)
    image_url = models.URLField(max_length=1000, blank=True)
    additional_image_urls = models.JSONField(default=list, blank=True)
    image = models.FileField(
        upload_to="products/%Y/%m/", blank=True, help_text=_("Copy of image_url on our storage")
    )
    attributes = models.JSONField(
        default=dict, blank=True, help_text=_("Feed columns without a field of their own")
    )
    # Plain text of titles, descriptions, brand, GTIN and SKU, kept by the catalogue
    # services so the full-text vector can be a generated column.
    search_document = models.TextField(blank=True, editable=False)
    search_vector = models.GeneratedField(
        expression=SearchVector("search_document", config="simple"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["store", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["store", "sku"], name="product_store_sku_unique"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_non_negative"),
            models.CheckConstraint(
                condition=Q(sale_price__isnull=True) | Q(sale_price__gte=0),
                name="product_sale_price_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lte=100), name="product_vat_rate_range"
            ),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="product_search_gin"),
            models.Index(fields=["store", "is_active", "price"], name="product_store_active_price"),
            models.Index(fields=["brand"], name="product_brand"),
            # Letzshop order lines are matched by GTIN within their store.
            models.Index(fields=["store", "gtin"], name="product_store_gtin"),
        ]

    def __str__(self) -> str:
        return f"{self.store.code}:{self.sku}"

    @property
    def image_src(self) -> str:
        """The image to show: the stored copy while it is a copy of the current
        `image_url` (storage may have added `_<random>` to its name), else `image_url`."""
        if self.image and self.image_url:
            name = posixpath.splitext(posixpath.basename(self.image.name))[0]
            if name.partition("_")[0] == image_copy_key(self.image_url):
                return self.image.url
        return self.image_url

    @property
    def current_price(self) -> Decimal:
        """What a shopper pays for one unit now: the sale price when there is one."""
        if self.sale_price is not None and self.sale_price < self.price:
            return self.sale_price
        return self.price

    def translation(self, language: str) -> ProductTranslation | None:
        """The text in `language`, else the store's language, else English, else any.

        Reads `translations.all()` so a prefetch serves it without queries.
        """
        by_language = {t.language: t for t in self.translations.all()}
        for code in (language, self.store.default_language, "en"):
            if code in by_language:
                return by_language[code]
        return next(iter(by_language.values()), None)


class ProductTranslation(models.Model):
    """Title and description of a product in one language. Descriptions may hold HTML
    from feeds: store it as received, sanitise when rendering."""

    # No index of its own: (product, language) unique leads with the product.
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="translations", db_index=False
    )
    language = models.CharField(max_length=2, choices=Language.choices)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product", "language"], name="product_translation_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} [{self.language}]"


# --- stock ----------------------------------------------------------------------------


class Stock(models.Model):
    """Units of a product: on hand in the warehouse, and reserved by open orders.

    Available to sell = on_hand - reserved. Every change is a StockMovement.
    """

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, primary_key=True, related_name="stock"
    )
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_non_negative"),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="stock_reserved_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(models.Model):
    """One audited change of a product's stock. Deltas are signed."""

    class Kind(models.TextChoices):
        RESERVE = "reserve", _("Reserve")  # checkout holds units for an order
        RELEASE = "release", _("Release")  # a cancelled/expired order gives them back
        FULFIL = "fulfil", _("Fulfil")  # shipped: leaves on hand and reserved
        ADJUST = "adjust", _("Adjust")  # manual correction by the team
        IMPORT = "import", _("Import")  # set by a product or stock feed
        RETURN = "return", _("Return")  # a returned unit back on hand

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stock_movements")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    on_hand_after = models.IntegerField()
    reserved_after = models.IntegerField()
    order = models.ForeignKey(
        "Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="stock_movements"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.product_id} ({self.on_hand_delta:+d}/{self.reserved_delta:+d})"


# --- customers and carts --------------------------------------------------------------


class Customer(models.Model):
    """A buyer as one store knows them: an account user or a guest email."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="customers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customers",
    )
    email = models.EmailField()
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    preferred_language = models.CharField(
        max_length=2, choices=Language.choices, default=Language.EN
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["store", "email"], name="customer_store_email_unique"),
        ]

    def __str__(self) -> str:
        return self.email


class Cart(models.Model):
    """A shopper's basket across the whole marketplace (may hold several stores)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")  # being filled
        CHECKED_OUT = "checked_out", _("Checked out")  # turned into orders
        EXPIRED = "expired", _("Expired")  # abandoned and cleaned up

    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="carts",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return str(self.token)


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "product"], name="cart_item_unique"),
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="cart_item_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"


# --- orders ---------------------------------------------------------------------------


class Checkout(models.Model):
    """One shopper's checkout: the orders it created, one per store, shown together."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.public_id)


class OrderNumberSequence(models.Model):
    """Last order number handed out per store and year; incremented under a row lock."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    year = models.PositiveIntegerField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "year"], name="order_number_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.year}: {self.last_value}"


class Order(models.Model):
    """An order of one store, from any channel. Totals are gross (VAT included)."""

    class Channel(models.TextChoices):
        WEB = "web", _("Web shop")
        LETZSHOP = "letzshop", _("Letzshop")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")  # placed, stock reserved, not yet handled
        PROCESSING = "processing", _("Processing")  # accepted, being prepared
        PARTIALLY_SHIPPED = "partially_shipped", _("Partially shipped")  # some lines shipped
        SHIPPED = "shipped", _("Shipped")  # every line shipped
        DELIVERED = "delivered", _("Delivered")  # received by the customer (final)
        CANCELLED = "cancelled", _("Cancelled")  # nothing will ship; reservations released (final)
        REFUNDED = "refunded", _("Refunded")  # money returned (final)

    class VatRegime(models.TextChoices):
        DOMESTIC = "domestic", _("Domestic (LU)")
        OSS = "oss", _("EU consumer (OSS)")
        REVERSE_CHARGE = "reverse_charge", _("EU business (reverse charge)")
        EXPORT = "export", _("Export (outside the EU)")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=32)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    external_id = models.CharField(max_length=100, blank=True)
    external_number = models.CharField(max_length=100, blank=True)
    checkout = models.ForeignKey(
        Checkout, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    email = models.EmailField()
    locale = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    billing_address = models.JSONField(default=dict)
    shipping_address = models.JSONField(default=dict)
    currency = models.CharField(max_length=3, default="EUR")
    vat_regime = models.CharField(
        max_length=16, choices=VatRegime.choices, default=VatRegime.DOMESTIC
    )
    subtotal = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    shipping_total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    vat_total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    placed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When payment was confirmed; a pending web order still unpaid after
    # WIZAMART_UNPAID_ORDER_TTL_HOURS is cancelled by the expiry sweep.
    paid_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "number"], name="order_store_number_unique"),
            models.UniqueConstraint(
                fields=["store", "channel", "external_id"],
                condition=~Q(external_id=""),
                name="order_external_id_unique",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_non_negative"),
        ]
        indexes = [
            models.Index(fields=["store", "status", "channel"], name="order_store_status_channel"),
            models.Index(fields=["store", "placed_at"], name="order_store_placed_at"),
            models.Index(
                fields=["placed_at"],
                condition=Q(status="pending"),
                name="order_pending_placed_at",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    """One product of an order with its price and VAT as they were when ordered."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, null=True, blank=True, related_name="order_lines"
    )
    sku = models.CharField(max_length=100, blank=True)
    gtin = models.CharField(max_length=14, blank=True)
    title = models.CharField(max_length=300)
    quantity = models.PositiveIntegerField()
    quantity_shipped = models.PositiveIntegerField(default=0)
    # Units that will never ship (declined, cancelled by the store); their reservation is
    # released when they are cancelled. A line is done when shipped + cancelled = quantity.
    quantity_cancelled = models.PositiveIntegerField(default=0)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    line_total = models.DecimalField(max_digits=12, decimal_places=2)
    vat_amount = models.DecimalField(max_digits=12, decimal_places=2)
    external_unit_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="order_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=F("quantity_shipped") + F("quantity_cancelled")),
                name="order_line_shipped_and_cancelled_within_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.title}"

    @property
    def quantity_left(self) -> int:
        """Units still to ship: neither shipped nor cancelled."""
        return self.quantity - self.quantity_shipped - self.quantity_cancelled


class OrderEvent(models.Model):
    """Audit trail of an order: who moved it from which status to which, and when."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    from_status = models.CharField(max_length=20, choices=Order.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Order.Status.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '-'} -> {self.to_status}"


class Shipment(models.Model):
    """One parcel of an order: which lines (and how many units of each) left, with what
    carrier and tracking number. Written only by `services.ship_order_lines`."""

    class Carrier(models.TextChoices):
        POST_LU = "post_lu", "POST Luxembourg"
        DHL = "dhl", "DHL"
        DPD = "dpd", "DPD"
        GLS = "gls", "GLS"
        UPS = "ups", "UPS"
        FEDEX = "fedex", "FedEx"
        BPOST = "bpost", "bpost"
        OTHER = "other", _("Other")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    carrier = models.CharField(max_length=20, choices=Carrier.choices)
    tracking_number = models.CharField(max_length=100)
    tracking_url = models.URLField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "carrier", "tracking_number"], name="shipment_tracking_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_carrier_display()} {self.tracking_number}"


class ShipmentLine(models.Model):
    """Units of one order line that left in one shipment."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        OrderLine, on_delete=models.PROTECT, related_name="shipment_lines"
    )
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["shipment", "order_line"], name="shipment_line_unique"),
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="shipment_line_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.order_line_id}"
