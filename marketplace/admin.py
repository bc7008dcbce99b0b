"""Platform staff's view of the marketplace at `/admin/`.

Stores, teams and customers are edited here. Products are saved through
`marketplace.services.upsert_product`, so the search document and the stock row stay
consistent. Stock, carts, checkouts and orders are read-only: they change through
services (checkout, fulfilment, stock adjustments), never by editing a row.
Every changelist loads a fixed number of queries whatever its length.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from marketplace.models import (
    Cart,
    CartItem,
    Checkout,
    Customer,
    Invitation,
    Membership,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    ProductTranslation,
    Shipment,
    ShipmentLine,
    Stock,
    StockMovement,
    Store,
)
from marketplace.services import PRODUCT_FIELDS, upsert_product

# The platform staff's site; the stores' own is `marketplace.backoffice.site` at /store/.
admin.site.site_header = _("Wizamart administration")
admin.site.site_title = _("Wizamart administration")
admin.site.index_title = _("Platform administration")


class ReadOnlyAdminMixin:
    """View-only: rows of this model change through services, not through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    show_change_link = False


# --- stores and teams -----------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "city", "order_prefix", "is_active", "product_count"]
    list_filter = ["is_active", "country"]
    search_fields = ["code", "name", "legal_name", "vat_number"]
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(product_count=Count("products"))

    @admin.display(description=_("products"), ordering="product_count")
    def product_count(self, store: Store) -> int:
        return store.product_count


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "store", "role", "created_at"]
    list_filter = ["role", "store"]
    list_select_related = ["user", "store"]
    search_fields = ["user__username", "user__email", "store__code", "store__name"]
    raw_id_fields = ["user", "store"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Store owners invite, resend and revoke in the back office; staff only look."""

    list_display = ["email", "store", "role", "status", "expires_at", "created_at"]
    list_filter = ["status", "role"]
    list_select_related = ["store"]
    search_fields = ["email", "store__code", "store__name"]
    exclude = ["token_hash"]


# --- catalogue ------------------------------------------------------------------------


class ProductTranslationInline(admin.StackedInline):
    model = ProductTranslation
    fields = ["language", "title", "description"]
    # upsert_product adds and updates languages; it never removes one.
    can_delete = False

    def get_extra(self, request, obj=None, **kwargs):
        return 0 if obj else 1


# Feed links typed without a scheme are https (Django 6's default; said now, not warned).
URL_FIELDS_ASSUME_HTTPS = {models.URLField: {"assume_scheme": "https"}}


class ProductAdminMixin:
    """What the platform admin and the store back office share for products: the form
    saves through `upsert_product` (search text, stock row, translations stay consistent),
    (store, sku) is fixed once created, and the stock columns read the joined row."""

    formfield_overrides = URL_FIELDS_ASSUME_HTTPS

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("translations")

    def get_readonly_fields(self, request, obj=None):
        # (store, sku) is the natural key upsert_product saves by.
        fields = list(super().get_readonly_fields(request, obj))
        return ["store", "sku", *fields] if obj else fields

    def save_model(self, request, obj, form, change):
        # Nothing here: save_related writes the product and its translations in one
        # upsert_product call once the translation forms are validated.
        pass

    def save_related(self, request, form, formsets, change):
        translations = {}
        for formset in formsets:
            for translation_form in formset.forms:
                data = translation_form.cleaned_data
                if data and data.get("language"):
                    translations[data["language"]] = {
                        "title": data.get("title", ""),
                        "description": data.get("description", ""),
                    }
            # construct_change_message reads what a formset.save() would have set.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        fields = {
            name: form.cleaned_data[name] for name in PRODUCT_FIELDS if name in form.cleaned_data
        }
        product = form.instance
        result = upsert_product(
            product.store, product.sku, translations=translations, actor=request.user, **fields
        )
        # The admin goes on with this instance (log entry, redirect to the change page).
        product.pk = result.product.pk
        product.public_id = result.product.public_id
        product._state.adding = False

    @admin.display(description=_("title"))
    def title(self, product: Product) -> str:
        translation = product.translation("en")
        return translation.title if translation else ""

    def _stock(self, product: Product) -> Stock | None:
        if not product.pk:
            return None
        try:
            return product.stock
        except Stock.DoesNotExist:
            return None

    @admin.display(description=_("on hand"), ordering="stock__on_hand")
    def on_hand(self, product: Product) -> int | None:
        stock = self._stock(product)
        return stock.on_hand if stock else None

    @admin.display(description=_("reserved"), ordering="stock__reserved")
    def reserved(self, product: Product) -> int | None:
        stock = self._stock(product)
        return stock.reserved if stock else None

    @admin.display(description=_("available"))
    def available(self, product: Product) -> int | None:
        stock = self._stock(product)
        return stock.available if stock else None


@admin.register(Product)
class ProductAdmin(ProductAdminMixin, admin.ModelAdmin):
    list_display = [
        "sku",
        "title",
        "store",
        "brand",
        "price",
        "sale_price",
        "on_hand",
        "reserved",
        "is_active",
    ]
    list_filter = ["store", "availability", "is_active"]
    list_select_related = ["store", "stock"]
    search_fields = ["sku", "gtin", "brand", "translations__title"]
    inlines = [ProductTranslationInline]
    fields = [
        "store",
        "sku",
        ("gtin", "gtin_type"),
        ("brand", "mpn"),
        ("price", "sale_price", "vat_rate"),
        ("condition", "availability", "is_active"),
        ("group_id", "product_type"),
        "google_product_category",
        "link",
        "image_url",
        "additional_image_urls",
        "attributes",
        "stock_summary",
        "stock_movements",
        "public_id",
        ("created_at", "updated_at"),
    ]
    readonly_fields = ["stock_summary", "stock_movements", "public_id", "created_at", "updated_at"]

    @admin.display(description=_("stock"))
    def stock_summary(self, product: Product) -> str:
        stock = self._stock(product)
        if stock is None:
            return "-"
        return _("%(on_hand)s on hand, %(reserved)s reserved, %(available)s available") % {
            "on_hand": stock.on_hand,
            "reserved": stock.reserved,
            "available": stock.available,
        }

    @admin.display(description=_("stock movements"))
    def stock_movements(self, product: Product) -> str:
        if not product.pk:
            return "-"
        url = reverse("admin:marketplace_stockmovement_changelist")
        return format_html('<a href="{}?product__id__exact={}">{}</a>', url, product.pk, _("View"))


@admin.register(Stock)
class StockAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["product", "store", "on_hand", "reserved", "available", "updated_at"]
    list_filter = ["product__store"]
    list_select_related = ["product__store"]
    search_fields = ["product__sku", "product__gtin"]

    @admin.display(description=_("store"), ordering="product__store__name")
    def store(self, stock: Stock) -> Store:
        return stock.product.store

    @admin.display(description=_("available"))
    def available(self, stock: Stock) -> int:
        return stock.available


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "product",
        "kind",
        "on_hand_delta",
        "reserved_delta",
        "on_hand_after",
        "reserved_after",
        "order",
        "actor",
        "note",
    ]
    list_filter = ["kind", "product__store"]
    list_select_related = ["product__store", "order", "actor"]
    search_fields = ["product__sku", "order__number", "note"]
    date_hierarchy = "created_at"


# --- customers, carts, checkouts ------------------------------------------------------


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["email", "first_name", "last_name", "store", "user", "preferred_language"]
    list_filter = ["store", "preferred_language"]
    list_select_related = ["store", "user"]
    search_fields = ["email", "first_name", "last_name", "phone"]
    raw_id_fields = ["store", "user"]
    readonly_fields = ["created_at"]


class CartItemInline(ReadOnlyInline):
    model = CartItem
    fields = ["product", "quantity", "added_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product__store")


@admin.register(Cart)
class CartAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["token", "user", "status", "item_count", "created_at", "updated_at"]
    list_filter = ["status"]
    list_select_related = ["user"]
    search_fields = ["token", "user__username", "user__email"]
    inlines = [CartItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("items"))

    @admin.display(description=_("items"), ordering="item_count")
    def item_count(self, cart: Cart) -> int:
        return cart.item_count


class CheckoutOrderInline(ReadOnlyInline):
    model = Order
    fields = ["number", "store", "status", "total"]
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("store")


@admin.register(Checkout)
class CheckoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["public_id", "email", "user", "created_at"]
    list_select_related = ["user"]
    search_fields = ["public_id", "email"]
    date_hierarchy = "created_at"
    inlines = [CheckoutOrderInline]


# --- orders ---------------------------------------------------------------------------


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = [
        "sku",
        "gtin",
        "title",
        "product",
        "quantity",
        "quantity_shipped",
        "quantity_cancelled",
        "unit_price",
        "vat_rate",
        "line_total",
        "vat_amount",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product__store")


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "from_status", "to_status", "actor", "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class OrderShipmentInline(ReadOnlyInline):
    model = Shipment
    fields = ["created_at", "carrier", "tracking_number", "tracking_url", "created_by"]
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["number", "store", "channel", "status", "email", "total", "placed_at"]
    list_filter = ["status", "channel", "store"]
    list_select_related = ["store"]
    search_fields = ["number", "email", "external_id", "external_number"]
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline, OrderShipmentInline, OrderEventInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "store",
                    "channel",
                    "status",
                    "placed_at",
                    "paid_at",
                    "updated_at",
                ]
            },
        ),
        (_("Customer"), {"fields": ["email", "customer", "locale", "checkout"]}),
        (_("Addresses"), {"fields": ["billing_address", "shipping_address"]}),
        (
            _("Totals"),
            {
                "fields": [
                    "currency",
                    "vat_regime",
                    "subtotal",
                    "shipping_total",
                    "vat_total",
                    "total",
                ]
            },
        ),
        (_("External"), {"fields": ["external_id", "external_number", "public_id"]}),
    ]


class ShipmentLineInline(ReadOnlyInline):
    model = ShipmentLine
    fields = ["order_line", "quantity"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_line")


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Parcels as `ship_order_lines` wrote them; read-only like orders."""

    formfield_overrides = URL_FIELDS_ASSUME_HTTPS
    list_display = ["created_at", "order", "store", "carrier", "tracking_number", "created_by"]
    list_filter = ["carrier", "order__store"]
    list_select_related = ["order__store", "created_by"]
    search_fields = ["tracking_number", "order__number"]
    date_hierarchy = "created_at"
    inlines = [ShipmentLineInline]

    @admin.display(description=_("store"), ordering="order__store__name")
    def store(self, shipment: Shipment) -> Store:
        return shipment.order.store
