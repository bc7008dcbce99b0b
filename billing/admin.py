"""Platform staff's view of billing at `/admin/`: tiers are edited here; subscriptions
are edited here until the Stripe webhooks own them; order-limit breaches are read-only
(written by `billing.services.flag_order_over_limit`)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from billing.models import OrderLimitBreach, Subscription, Tier
from marketplace.admin import ReadOnlyAdminMixin


def _unlimited(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "monthly_price",
        "annual_price",
        "orders_per_month",
        "products",
        "team_members",
        "is_active",
    ]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]

    @admin.display(description="Orders / month", ordering="max_orders_per_month")
    def orders_per_month(self, tier: Tier) -> str:
        return _unlimited(tier.max_orders_per_month)

    @admin.display(description="Products", ordering="max_products")
    def products(self, tier: Tier) -> str:
        return _unlimited(tier.max_products)

    @admin.display(description="Team members", ordering="max_team_members")
    def team_members(self, tier: Tier) -> str:
        return _unlimited(tier.max_team_members)


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["store", "tier", "status", "trial_ends_at", "current_period_end", "updated_at"]
    list_filter = ["status", "tier"]
    list_select_related = ["store", "tier"]
    search_fields = ["store__code", "store__name", "stripe_customer_id", "stripe_subscription_id"]
    autocomplete_fields = ["store"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(OrderLimitBreach)
class OrderLimitBreachAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "order_link",
        "store",
        "period",
        "order_count",
        "limit",
        "notified",
        "created_at",
    ]
    list_filter = ["period", "notified"]
    list_select_related = ["order", "store"]
    search_fields = ["store__code", "store__name", "order__number", "order__external_number"]
    date_hierarchy = "created_at"

    @admin.display(description="Order", ordering="order__number")
    def order_link(self, breach: OrderLimitBreach) -> str:
        url = reverse("admin:marketplace_order_change", args=[breach.order_id])
        return format_html('<a href="{}">{}</a>', url, breach.order.number)
