"""The platform admin's billing pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing import services


@pytest.fixture
def admin_client_(client, platform_admin):
    client.force_login(platform_admin)
    return client


def test_tier_subscription_and_breach_lists_show_their_rows(
    admin_client_, tiers, subscribe, limited_tier, store, place_order
):
    subscribe(store, limited_tier(0))
    order = place_order(store, datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    services.flag_order_over_limit(order)

    tiers_page = admin_client_.get("/admin/billing/tier/")
    subscriptions_page = admin_client_.get("/admin/billing/subscription/?status=active")
    breaches_page = admin_client_.get("/admin/billing/orderlimitbreach/?notified__exact=0")

    assert [p.status_code for p in (tiers_page, subscriptions_page, breaches_page)] == [200] * 3
    assert "unlimited" in tiers_page.text and "Enterprise" in tiers_page.text
    assert "Lux Shop" in subscriptions_page.text
    assert order.number in breaches_page.text


def test_breaches_cannot_be_added_or_edited_in_the_admin(admin_client_, tiers):
    assert admin_client_.get("/admin/billing/orderlimitbreach/add/").status_code == 403
