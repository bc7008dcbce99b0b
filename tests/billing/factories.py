"""Billing rows for tests in any folder: the seeded tiers and a tier with a given limit."""

from __future__ import annotations

import importlib
from decimal import Decimal

from django.apps import apps as django_apps

from billing.models import Tier


def seed_tiers() -> dict[str, Tier]:
    """The tiers of migration 0002, put back (get_or_create) in case a transactional test
    flushed them."""
    importlib.import_module("billing.migrations.0002_seed_tiers").seed(django_apps, None)
    return {tier.code: tier for tier in Tier.objects.all()}


def make_tier(max_orders_per_month: int) -> Tier:
    """A tier "Max N" allowing `max_orders_per_month` orders a month."""
    return Tier.objects.create(
        code=f"max-{max_orders_per_month}",
        name=f"Max {max_orders_per_month}",
        monthly_price=Decimal("9.00"),
        annual_price=Decimal("90.00"),
        max_orders_per_month=max_orders_per_month,
    )


def pin_billing_clock(monkeypatch, moment) -> None:
    """Make `moment` (aware) the billing services' now: which month is the current one."""
    import billing.services

    class _Clock:
        @staticmethod
        def now():
            return moment

    monkeypatch.setattr(billing.services, "timezone", _Clock)
