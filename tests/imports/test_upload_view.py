from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from marketplace.models import Product
from tests.conftest import FEEDS_DIR
from tests.imports.conftest import QUIRKY_FEED

URL = "/admin/imports/upload/"


def _upload(client, store, data: bytes, name="feed.csv", language="en"):
    return client.post(
        URL,
        {"store": store.code, "language": language, "file": SimpleUploadedFile(name, data)},
    )


def test_admin_uploads_a_feed_and_sees_the_report(client, platform_admin, store):
    client.force_login(platform_admin)

    response = _upload(client, store, QUIRKY_FEED)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<td id="count-read">6</td>' in html
    assert '<td id="count-created">2</td>' in html
    assert '<td id="count-rejected">4</td>' in html
    assert "<td>7</td><td>price</td><td>9.99 USD</td>" in html
    assert "admin/css/base.css" in html  # the admin's look
    assert Product.objects.filter(store=store).count() == 2
    assert Product.objects.get(sku="CAFE-1").stock_movements.get().actor == platform_admin


def test_admin_uploads_a_real_shopify_export(client, platform_admin, store):
    client.force_login(platform_admin)
    response = _upload(client, store, (FEEDS_DIR / "shopify-jewelery.csv").read_bytes())
    assert response.status_code == 200
    assert '<td id="count-created">23</td>' in response.content.decode()
    assert Product.objects.filter(store=store).count() == 23


def test_bad_uploads_show_a_clear_error(client, platform_admin, store):
    client.force_login(platform_admin)
    cases = [
        (b"", "The submitted file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is not a text feed"),
        (b"name,cost\nMug,3\n", "Unrecognised header."),
    ]
    for data, message in cases:
        response = _upload(client, store, data)
        assert response.status_code == 400
        assert message in response.content.decode()
    assert Product.objects.count() == 0


def test_upload_page_is_refused_to_anonymous_and_shoppers(client, shopper, store):
    response = _upload(client, store, QUIRKY_FEED)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")

    client.force_login(shopper)
    assert client.get(URL).status_code == 302
    assert _upload(client, store, QUIRKY_FEED).status_code == 302
    assert Product.objects.count() == 0


def test_admin_index_links_to_the_upload_page(client, platform_admin):
    client.force_login(platform_admin)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert f'href="{URL}"' in response.content.decode()
    assert client.get(URL).status_code == 200
