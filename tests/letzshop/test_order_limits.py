"""The tier's monthly order limit on the Letzshop order sync (dev server over HTTP).

The three fixture shipments were placed (completedAt, Luxembourg time) on 30 November,
1 December and 2 December 2026: the first counts for November, the other two for
December. An order beyond the limit is imported all the same, flagged, and the store
told once a month.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from billing.models import OrderLimitBreach, Subscription, Tier
from imports.letzshop import services
from marketplace.models import Order
from notifications.models import OutboundEmail
from notifications.services import render_email
from tests.billing.factories import make_tier, pin_billing_clock, seed_tiers

STORE_EMAIL = "orders@kaffi-haus.lu"


@pytest.fixture(autouse=True)
def _december_2026(monkeypatch):
    """December 2026 is the current month: S-2 and S-3 are this month's, S-1 last month's."""
    pin_billing_clock(monkeypatch, datetime(2026, 12, 3, 12, 0, tzinfo=UTC))


@pytest.fixture
def tiers(db) -> dict[str, Tier]:
    return seed_tiers()


@pytest.fixture
def store(catalogue_store):
    catalogue_store.email = STORE_EMAIL
    catalogue_store.save(update_fields=["email"])
    return catalogue_store


def _subscribe(store, tier, status=Subscription.Status.ACTIVE) -> Subscription:
    return Subscription.objects.create(store=store, tier=tier, status=status)


def _web_order(store, placed_at: datetime, number: str) -> Order:
    order = Order.objects.create(store=store, number=number, email="anna@example.lu")
    Order.objects.filter(pk=order.pk).update(placed_at=placed_at)
    return order


def _limit_emails():
    return OutboundEmail.objects.filter(template_code="order_limit_exceeded")


def test_third_order_of_december_beyond_a_two_order_plan_is_imported_flagged_and_told_once(
    account, store, tiers
):
    _subscribe(store, make_tier(2))
    _web_order(store, datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "KH-WEB-1")

    result = services.sync_account(account)

    assert (result.created, result.error) == (3, "")
    s3 = Order.objects.get(store=store, external_id="S-3")
    breach = OrderLimitBreach.objects.get()
    assert (breach.order, breach.store, breach.period, breach.limit, breach.order_count) == (
        s3,
        store,
        date(2026, 12, 1),
        2,
        3,
    )
    assert breach.notified is True
    email = _limit_emails().get()
    assert (email.to, email.language, email.store, email.status) == (
        STORE_EMAIL,
        "en",
        store,
        OutboundEmail.Status.QUEUED,
    )
    assert email.dedupe_key == f"order_limit_exceeded:{store.pk}:2026-12:{STORE_EMAIL}"
    assert {k: email.context[k] for k in ("order_number", "external_number", "count", "limit")} == {
        "order_number": s3.number,
        "external_number": "H100003",
        "count": 3,
        "limit": 2,
    }
    assert (email.context["month"], email.context["plan_name"]) == ("December 2026", "Max 2")
    assert [p["name"] for p in email.context["larger_plans"]] == [
        "Starter",
        "Business",
        "Enterprise",
    ]

    again = services.sync_account(account)

    assert (again.seen, again.created) == (3, 0)
    assert OrderLimitBreach.objects.count() == 1
    assert _limit_emails().count() == 1


def test_a_one_order_plan_flags_the_third_fixture_order_only(account, store, tiers):
    _subscribe(store, make_tier(1))

    services.sync_account(account)

    assert Order.objects.filter(store=store).count() == 3
    breach = OrderLimitBreach.objects.get()
    assert (breach.order.external_id, breach.order_count, breach.limit) == ("S-3", 2, 1)
    assert _limit_emails().count() == 1


def test_every_breach_of_a_month_is_recorded_but_the_store_told_once(account, store, tiers):
    _subscribe(store, make_tier(0))

    services.sync_account(account)

    breaches = {b.order.external_id: b for b in OrderLimitBreach.objects.select_related("order")}
    # S-1 was placed in November, a past month: never checked.
    assert {k: (b.period, b.order_count, b.notified) for k, b in breaches.items()} == {
        "S-2": (date(2026, 12, 1), 1, True),
        "S-3": (date(2026, 12, 1), 2, False),
    }
    assert [e.context["month"] for e in _limit_emails()] == ["December 2026"]


def test_a_historical_import_of_past_months_flags_nothing_and_tells_nobody(
    account, store, tiers, letzshop, monkeypatch
):
    pin_billing_clock(monkeypatch, datetime(2027, 1, 10, 12, 0, tzinfo=UTC))
    _subscribe(store, make_tier(0))
    seed = letzshop.shipment("S-1")
    letzshop.add_shipments(
        [
            {
                **seed,
                "id": f"S-OLD-{month}",
                "number": f"H-OLD-{month}",
                "order": {**seed["order"], "completedAt": f"2026-{month:02d}-15T10:00:00+02:00"},
                "inventoryUnits": [
                    {**unit, "id": f"U-OLD-{month}-{index}"}
                    for index, unit in enumerate(seed["inventoryUnits"])
                ],
            }
            for month in (9, 10)
        ]
    )
    historical = services.HistoricalImport.objects.create(account=account)

    historical = services.run_historical_import(historical.pk)

    assert (historical.status, historical.shipments_created) == ("succeeded", 5)
    assert sorted(
        o.placed_at.month for o in Order.objects.filter(store=store, channel="letzshop")
    ) == [9, 10, 11, 12, 12]
    assert OrderLimitBreach.objects.count() == 0
    assert _limit_emails().count() == 0


def test_an_enterprise_store_is_never_flagged(account, store, tiers):
    _subscribe(store, tiers["enterprise"])
    _web_order(store, datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "KH-WEB-1")

    services.sync_account(account)

    assert Order.objects.filter(store=store).count() == 4
    assert OrderLimitBreach.objects.count() == 0
    assert _limit_emails().count() == 0


@pytest.mark.parametrize("cancelled", [False, True], ids=["no subscription", "cancelled"])
def test_a_store_without_a_live_subscription_is_held_to_the_starter_limit(
    account, store, tiers, cancelled
):
    if cancelled:
        _subscribe(store, tiers["enterprise"], Subscription.Status.CANCELLED)
    Tier.objects.filter(code="starter").update(max_orders_per_month=1)

    services.sync_account(account)

    breach = OrderLimitBreach.objects.get()
    assert (breach.order.external_id, breach.limit) == ("S-3", 1)
    assert _limit_emails().get().context["plan_name"] == "Starter"


def test_a_store_without_subscription_within_the_starter_limit_is_not_flagged(
    account, store, tiers
):
    services.sync_account(account)

    assert Order.objects.filter(store=store).count() == 3
    assert OrderLimitBreach.objects.count() == 0


def test_the_email_renders_in_the_store_language(account, store, tiers):
    store.default_language = "de"
    store.save(update_fields=["default_language"])
    _subscribe(store, make_tier(1))

    services.sync_account(account)

    email = _limit_emails().get()
    s3 = Order.objects.get(store=store, external_id="S-3")
    rendered = render_email(
        email.template_code, language=email.language, store=email.store, context=email.context
    )
    assert email.language == "de"
    assert rendered.subject == (
        f"Bestellung {s3.number} überschreitet die 1 Bestellungen Ihres Tarifs für Dezember 2026"
    )
    assert "ist die 2. Bestellung im Dezember 2026 für Kaffi Haus" in rendered.text
    assert "Wir haben sie trotzdem importiert, weil die Kundin oder der Kunde bereits bezahlt" in (
        rendered.text
    )
    assert "- Business: 1.000 Bestellungen im Monat, 79,00\u00a0€ im Monat" in rendered.text
    assert "- Enterprise: unbegrenzte Bestellungen, 199,00\u00a0€ im Monat" in rendered.text
    assert f"/store/marketplace/order/{s3.pk}/change/" in rendered.html


@pytest.mark.parametrize("language", ["en", "fr", "de"])
def test_the_sample_data_renders_in_every_language(db, language):
    from notifications.selectors import sample_context

    rendered = render_email(
        "order_limit_exceeded",
        language=language,
        store=None,
        context=sample_context("order_limit_exceeded"),
    )

    assert rendered.language == language
    assert "LUX-2026-000101" in rendered.subject and "{" not in rendered.text
    assert "101" in rendered.text and "100" in rendered.text
