"""Letzshop units declined before order lines counted cancelled units: count them now, so
shipping the rest of such an order completes it (marketplace 0004 added the field)."""

from django.db import migrations
from django.db.models import Count, OuterRef, Subquery

DECLINED = "confirmed_unavailable"


def count_declined_units(apps, schema_editor):
    InventoryUnit = apps.get_model("letzshop", "InventoryUnit")
    OrderLine = apps.get_model("marketplace", "OrderLine")
    declined = InventoryUnit.objects.filter(state=DECLINED)
    per_line = (
        declined.filter(order_line=OuterRef("pk"))
        .order_by()
        .values("order_line")
        .annotate(units=Count("pk"))
        .values("units")
    )
    OrderLine.objects.filter(
        pk__in=declined.values("order_line"), quantity_cancelled=0
    ).update(quantity_cancelled=Subquery(per_line))


class Migration(migrations.Migration):

    dependencies = [
        ("letzshop", "0001_letzshop_accounts_sync_and_fulfilment"),
        ("marketplace", "0004_order_line_quantity_cancelled"),
    ]

    operations = [
        # Backwards: nothing to undo; reversing marketplace 0004 drops the column.
        migrations.RunPython(count_declined_units, migrations.RunPython.noop),
    ]
