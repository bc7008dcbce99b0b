"""Seed the three tiers: starter, business, enterprise (unlimited).

Reversible: the reverse removes these tiers unless a subscription uses one (PROTECT).
Tiers that already exist are left as they are (staff may have edited them).
"""

from decimal import Decimal

from django.db import migrations

TIERS = [
    {
        "code": "starter",
        "name": "Starter",
        "monthly_price": Decimal("29.00"),
        "annual_price": Decimal("290.00"),
        "max_orders_per_month": 100,
        "max_products": 500,
        "max_team_members": 2,
    },
    {
        "code": "business",
        "name": "Business",
        "monthly_price": Decimal("79.00"),
        "annual_price": Decimal("790.00"),
        "max_orders_per_month": 1000,
        "max_products": 10000,
        "max_team_members": 10,
    },
    {
        "code": "enterprise",
        "name": "Enterprise",
        "monthly_price": Decimal("199.00"),
        "annual_price": Decimal("1990.00"),
        "max_orders_per_month": None,
        "max_products": None,
        "max_team_members": None,
    },
]


def seed(apps, schema_editor):
    Tier = apps.get_model("billing", "Tier")
    for tier in TIERS:
        Tier.objects.get_or_create(code=tier["code"], defaults=tier)


def unseed(apps, schema_editor):
    Tier = apps.get_model("billing", "Tier")
    Tier.objects.filter(code__in=[tier["code"] for tier in TIERS]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_tiers_and_subscriptions")]

    operations = [migrations.RunPython(seed, unseed)]
