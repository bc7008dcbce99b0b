"""Billing: the tiers a store can subscribe to, its subscription, and the orders it took
beyond its tier's monthly limit.

Rows are written only through `billing.services` (tiers are seeded by migration and
edited by platform staff in the admin); the constraints here back the rules up.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from marketplace.models import Order, Store

ZERO = Decimal("0.00")


class Tier(models.Model):
    """A plan: its prices, its Stripe prices and its limits. A limit left empty means
    unlimited. An inactive tier is no longer offered; its subscribers keep it."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    monthly_price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(ZERO)]
    )
    annual_price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(ZERO)]
    )
    stripe_price_monthly = models.CharField(max_length=100, blank=True)
    stripe_price_annual = models.CharField(max_length=100, blank=True)
    max_orders_per_month = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    max_products = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    max_team_members = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    features = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True, help_text=_("Offered to stores."))

    class Meta:
        ordering = ["monthly_price", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(monthly_price__gte=0), name="tier_monthly_price_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(annual_price__gte=0), name="tier_annual_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """The tier a store pays for and where it stands with Stripe."""

    class Status(models.TextChoices):
        TRIALING = "trialing", _("Trialing")  # in the free trial; the tier's limits apply
        ACTIVE = "active", _("Active")  # paid up; the tier's limits apply
        PAST_DUE = "past_due", _("Past due")  # a payment failed; Stripe retries, limits stay
        CANCELLED = "cancelled", _("Cancelled")  # ended; the default tier's limits apply

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="subscription")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.TRIALING)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["store__code"]

    def __str__(self) -> str:
        return f"{self.store} on {self.tier} ({self.status})"


class OrderLimitBreach(models.Model):
    """An order imported although the store had reached its tier's monthly order limit.

    Informational: the order stands (the shopper paid). `period` is the first day of the
    month (Europe/Luxembourg) the order was placed in; `order_count` is the store's orders
    in that month when this one was imported, itself included. `notified`: this breach
    queued the store's `order_limit_exceeded` email (the first of its month)."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="order_limit_breaches")
    # One breach per order: a ForeignKey with the named constraint below, which is what a
    # OneToOneField would be, with a name the services can recognise.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="limit_breaches")
    period = models.DateField(help_text=_("First day of the month, Luxembourg time."))
    limit = models.PositiveIntegerField()
    order_count = models.PositiveIntegerField(help_text=_("Orders that month, this one included."))
    notified = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period", "-created_at", "-id"]
        verbose_name_plural = _("order limit breaches")
        constraints = [
            models.UniqueConstraint(fields=["order"], name="order_limit_breach_order_unique"),
            models.CheckConstraint(
                condition=Q(order_count__gt=models.F("limit")),
                name="order_limit_breach_count_over_limit",
            ),
        ]
        indexes = [
            models.Index(fields=["store", "period"], name="limit_breach_store_period"),
        ]

    def __str__(self) -> str:
        return f"{self.order} ({self.order_count} > {self.limit})"
