"""What the back office shows: headers, dashboard, order page, import pages and links,
pluralised counts, and the new-order email's link back to the order."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imports.models import ImportJob
from marketplace.backoffice import order_chart
from marketplace.models import Membership, Order
from marketplace.selectors import DayFigures
from marketplace.services import accept_order, ship_order_lines
from notifications.models import OutboundEmail
from notifications.services import render_outbound_email
from tests.imports.conftest import QUIRKY_FEED
from tests.marketplace.test_backoffice import broker, member, place, url
from tests.marketplace.test_backoffice_imports import finished_job, job_url

__all__ = ["broker"]  # the back office's fixtures, shared

pytestmark = pytest.mark.django_db


# --- headers --------------------------------------------------------------------------------


def test_back_office_header_names_the_single_store(client, owner):
    client.force_login(owner)

    page = client.get("/store/").content.decode()

    assert '<a href="/store/">Lux Shop back office</a>' in page
    assert "<title>Dashboard | Lux Shop back office</title>" in page
    assert "Django administration" not in page


def test_back_office_header_of_a_member_of_two_stores_is_generic(client, owner, other_store):
    Membership.objects.create(user=owner, store=other_store, role=Membership.Role.STAFF)
    client.force_login(owner)

    page = client.get("/store/").content.decode()

    assert '<a href="/store/">Wizamart store back office</a>' in page


def test_platform_admin_header_is_wizamarts(client, platform_admin):
    client.force_login(platform_admin)

    page = client.get("/admin/").content.decode()

    assert '<a href="/admin/">Wizamart administration</a>' in page
    assert "<h1>Platform administration</h1>" in page
    assert "Django administration" not in page


# --- dashboard ------------------------------------------------------------------------------


def test_dashboard_low_stock_names_the_products(client, owner, store, make_product):
    make_product(store, "LOW-1", title="Organic honey", on_hand=1)
    client.force_login(owner)

    page = client.get("/store/").content.decode()

    product = store.products.get()
    assert (
        f'<a href="/store/marketplace/product/{product.pk}/change/">Organic honey</a> '
        '<span class="bo-sku">LOW-1</span>'
    ) in page
    assert "1 available" in page


def test_dashboard_queries_do_not_grow_with_low_stock_products(client, owner, store, make_product):
    make_product(store, "LOW-0", on_hand=0)
    client.force_login(owner)
    with CaptureQueriesContext(connection) as one:
        client.get("/store/")
    for n in range(1, 12):
        make_product(store, f"LOW-{n}", title=f"Low {n}", on_hand=n % 3)

    with CaptureQueriesContext(connection) as many:
        page = client.get("/store/").content.decode()

    assert len(many) == len(one)
    assert "Low 11" in page


def _days(count: int) -> list[DayFigures]:
    first = date(2026, 11, 4)
    return [DayFigures(first + timedelta(days=n), n % 3, Decimal("0")) for n in range(count)]


def test_chart_labels_every_fifth_day_back_from_today_inside_the_view_box():
    chart = order_chart(_days(30))

    labelled = [(bar["day"].day, bar["label_anchor"]) for bar in chart["bars"] if bar["label"]]
    assert labelled == [(8, "middle"), (13, "middle"), (18, "middle"), (23, "middle"),
                        (28, "middle"), (3, "end")]  # fmt: skip
    for bar in chart["bars"]:
        assert 0 <= bar["label_x"] <= chart["width"]
        assert bar["x"] + bar["width"] <= chart["width"]


def test_chart_label_at_the_left_edge_is_anchored_inside():
    # 101 narrow days: the first day is labelled, its centre too near the edge.
    first = order_chart(_days(101))["bars"][0]

    assert (first["label"], first["label_anchor"], first["label_x"]) == (True, "start", 0)


def test_dashboard_counts_are_pluralised(client, owner, store, make_product):
    order = place(make_product(store, "MUG", on_hand=5))
    Order.objects.filter(pk=order.pk).update(placed_at=order.placed_at - timedelta(days=2))
    client.force_login(owner)

    page = client.get("/store/").content.decode()

    assert "<caption>1 order pending for more than 24 hours</caption>" in page
    assert ": 1 order, 10.00 €</title>" in page
    assert "1 orders" not in page


@pytest.mark.parametrize("page_url", ["/store/", "/store/imports/"])
def test_import_and_export_links_stay_in_the_back_office(client, owner, page_url):
    client.force_login(owner)

    page = client.get(page_url).content.decode()

    assert '<a href="/store/imports/importjob/add/">Import products</a>' in page
    assert '<a href="/store/feeds/">Export products</a>' in page
    assert 'href="/admin/' not in page


def test_app_pages_never_link_to_the_platform_admin(client, owner):
    client.force_login(owner)

    for app in ("marketplace", "letzshop"):
        assert 'href="/admin/' not in client.get(f"/store/{app}/").content.decode()


# --- order page -----------------------------------------------------------------------------


def test_order_page_shows_addresses_as_text_and_events_as_changes(
    client, owner, store, make_product
):
    order = place(make_product(store, "MUG", on_hand=5))
    owner.first_name, owner.last_name = "Claire", "Weber"
    owner.save()
    accept_order(order, actor=owner)
    client.force_login(owner)

    page = client.get(url("order_change", order.pk)).content.decode()

    assert '<address class="bo-address">Anna Muller<br>Luxembourg<br>LU</address>' in page
    assert '"first_name"' not in page
    assert '<td class="field-change">Created → Pending</td><td class="field-by">System</td>' in (
        page
    )
    assert (
        '<td class="field-change">Pending → Processing</td><td class="field-by">Claire Weber</td>'
    ) in page
    assert "-&gt; pending" not in page and "-> pending" not in page


def test_order_page_shows_each_shipment_once(client, owner, store, make_product):
    order = place(make_product(store, "MUG", on_hand=5), 2)
    ship_order_lines(
        order,
        {line.pk: line.quantity for line in order.lines.all()},
        carrier="post_lu",
        tracking_number="LU123",
        actor=owner,
    )
    client.force_login(owner)

    page = client.get(url("order_change", order.pk)).content.decode()

    shipments = page[page.index('id="shipments-heading"') : page.index('id="events-heading"')]
    assert shipments.count("POST Luxembourg") == 1
    assert shipments.count("LU123") == 1
    assert "2 x MUG" in shipments


def test_order_actions_share_one_bar_with_their_forms_outside_the_order_form(
    client, owner, store, make_product
):
    order = place(make_product(store, "MUG", on_hand=5))
    client.force_login(owner)

    page = client.get(url("order_change", order.pk)).content.decode()

    bar = page[
        page.index('<div class="bo-actions"') : page.index("</div>", page.index("bo-actions"))
    ]
    assert '<button type="submit" form="order-accept" class="button">Accept</button>' in bar
    assert 'form="order-cancel"' in bar and 'name="note"' in bar
    transition = reverse("backoffice:marketplace_order_transition", args=[order.pk, "cancelled"])
    assert f'<form id="order-cancel" method="post" action="{transition}">' in page
    assert page.index('<form id="order-cancel"') > page.index("</form>")  # not nested


def test_letzshop_order_page_offers_no_wholesale_accept_or_cancel(
    client, owner, store, make_product
):
    order = place(make_product(store, "MUG", on_hand=5))
    Order.objects.filter(pk=order.pk).update(channel=Order.Channel.LETZSHOP)
    client.force_login(owner)

    page = client.get(url("order_change", order.pk)).content.decode()

    assert 'form="order-accept"' not in page and 'form="order-cancel"' not in page


def test_orders_changed_message_is_pluralised(client, owner, store, make_product):
    product = make_product(store, "MUG", on_hand=5)
    orders = [place(product), place(product)]
    client.force_login(owner)

    response = client.post(
        url("order_changelist"),
        {"action": "accept_selected", "_selected_action": [o.pk for o in orders]},
        follow=True,
    )

    assert "2 orders changed." in response.content.decode()


# --- import pages ---------------------------------------------------------------------------


def test_import_job_page_title_has_job_number_file_and_status_label(client, owner, store):
    job = finished_job(store)
    client.force_login(owner)

    page = client.get(job_url("change", job)).content.decode()

    title = f"Import #{job.pk} · feed.csv · Partially succeeded"
    assert f'<h2 id="job-title">{title}</h2>' in page
    assert f"<title>{title} | Lux Shop back office</title>" in page
    assert "(partially_succeeded)" not in page


def test_import_job_page_hides_the_empty_error_box_and_shows_the_csv_link(client, owner, store):
    job = finished_job(store)
    client.force_login(owner)

    page = client.get(job_url("change", job)).content.decode()

    assert '<p class="errornote" data-field="error_message" hidden></p>' in page
    assert '<link rel="stylesheet" href="/static/imports/import_job.css">' in page
    assert f'<a href="/store/imports/importjob/{job.pk}/rejected-lines.csv" id="errors-csv">' in (
        page
    )


def test_single_store_owner_imports_without_choosing_the_store(
    client, owner, store, django_capture_on_commit_callbacks
):
    client.force_login(owner)

    form_page = client.get(job_url("add")).content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            job_url("add"),
            {"language": "en", "file": SimpleUploadedFile("feed.csv", QUIRKY_FEED)},
        )

    assert '<input type="hidden" name="store" value="lux-shop" id="id_store">' in form_page
    assert "The products go into the catalogue of <strong>Lux Shop</strong>." in form_page
    assert 'for="id_store"' not in form_page
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert (job.store, job.created_by) == (store, owner)


def test_owner_of_two_stores_still_chooses_the_store(client, owner, store, other_store):
    member(other_store, "helper", Membership.Role.OWNER)
    Membership.objects.create(user=owner, store=other_store, role=Membership.Role.OWNER)
    client.force_login(owner)

    response = client.post(
        job_url("add"), {"language": "en", "file": SimpleUploadedFile("feed.csv", QUIRKY_FEED)}
    )

    assert response.status_code == 400
    assert response.context["form"].errors["store"] == ["This field is required."]
    assert ImportJob.objects.count() == 0


# --- the store's new-order email ------------------------------------------------------------


def test_new_order_email_links_to_the_order_in_the_back_office(store, make_product):
    store.email = "orders@lux-shop.lu"
    store.save()
    order = place(make_product(store, "MUG", on_hand=5))

    email = render_outbound_email(OutboundEmail.objects.get(template_code="store_new_order"))

    link = f"{settings.SITE_URL.rstrip('/')}/store/marketplace/order/{order.pk}/change/"
    assert f"Open this order in your back office: {link}\n" in email.text
    assert f'<a href="{link}">{link}</a>' in email.html
