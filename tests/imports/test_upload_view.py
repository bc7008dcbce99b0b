from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imports import tasks
from imports.models import ImportJob
from imports.services import _LOCK_NAMESPACE
from marketplace.models import Product
from tests.conftest import FEEDS_DIR
from tests.imports.conftest import QUIRKY_FEED

URL = "/admin/imports/upload/"


def _upload(client, store, data: bytes, name="feed.csv", language="en"):
    return client.post(
        URL,
        {"store": store.code, "language": language, "file": SimpleUploadedFile(name, data)},
    )


def _run_queued(callbacks, monkeypatch) -> list[int]:
    """Run the captured on-commit callbacks with the broker replaced by a direct call of
    the task function."""
    monkeypatch.setattr(
        tasks.run_import, "apply_async", lambda args, task_id: tasks.run_import(*args)
    )
    for callback in callbacks:
        callback()
    return [job.pk for job in ImportJob.objects.all()]


def test_admin_upload_creates_a_job_and_shows_its_progress(
    client, platform_admin, store, monkeypatch, django_capture_on_commit_callbacks
):
    client.force_login(platform_admin)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _upload(client, store, QUIRKY_FEED, language="fr")

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/imports/importjob/{job.pk}/change/"
    assert (job.status, job.language, job.original_name, job.created_by) == (
        "queued",
        "fr",
        "feed.csv",
        platform_admin,
    )
    assert Product.objects.count() == 0  # nothing imported in the request
    page = client.get(response["Location"]).content.decode()
    assert f'data-progress-url="/admin/imports/jobs/{job.public_id}/progress.json"' in page
    assert 'data-finished="false"' in page
    assert "/static/imports/progress.js" in page

    _run_queued(callbacks, monkeypatch)

    html = client.get(response["Location"]).content.decode()
    assert '<td id="count-read" data-field="read">6</td>' in html
    assert '<td id="count-created" data-field="created">2</td>' in html
    assert '<td id="count-rejected" data-field="rejected">4</td>' in html
    assert "<td>7</td><td>price</td><td>9.99 USD</td>" in html
    assert f'href="/admin/imports/jobs/{job.public_id}/rejected-lines.csv"' in html
    assert 'data-finished="true"' in html
    assert "admin/css/base.css" in html
    assert Product.objects.filter(store=store).count() == 2
    assert Product.objects.get(sku="CAFE-1").translations.get().language == "fr"
    assert Product.objects.get(sku="CAFE-1").stock_movements.get().actor == platform_admin


def test_admin_uploads_a_real_shopify_export(
    client, platform_admin, store, monkeypatch, django_capture_on_commit_callbacks
):
    client.force_login(platform_admin)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _upload(client, store, (FEEDS_DIR / "shopify-jewelery.csv").read_bytes())
    _run_queued(callbacks, monkeypatch)
    job = ImportJob.objects.get()
    assert (job.status, job.rows_created, job.format) == ("succeeded", 23, "shopify")
    assert Product.objects.filter(store=store).count() == 23


def test_bad_uploads_show_a_clear_error(client, platform_admin, store):
    client.force_login(platform_admin)
    cases = [
        (b"", "The submitted file is empty."),
        (None, "Give either a file or a feed URL."),
    ]
    for data, message in cases:
        if data is None:
            response = client.post(URL, {"store": store.code, "language": "en"})
        else:
            response = _upload(client, store, data)
        assert response.status_code == 400
        assert message in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_upload_page_is_refused_to_anonymous_and_shoppers(client, shopper, store):
    response = _upload(client, store, QUIRKY_FEED)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")

    client.force_login(shopper)
    assert client.get(URL).status_code == 302
    assert _upload(client, store, QUIRKY_FEED).status_code == 302
    assert ImportJob.objects.count() == 0


def test_admin_index_links_to_the_import_pages(client, platform_admin):
    client.force_login(platform_admin)
    response = client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    for url in (URL, "/admin/imports/importjob/", "/admin/imports/export/"):
        assert f'href="{url}"' in html
    assert client.get(URL).status_code == 200


def test_progress_json_is_for_staff_only(client, platform_admin, shopper, store):
    job = ImportJob.objects.create(store=store, bytes_total=400, bytes_read=100, rows_read=7)
    url = f"/admin/imports/jobs/{job.public_id}/progress.json"

    assert client.get(url).status_code == 302
    client.force_login(shopper)
    assert client.get(url).status_code == 302

    client.force_login(platform_admin)
    response = client.get(url)
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in ("status", "finished", "percent", "read", "rejected")} == {
        "status": "queued",
        "finished": False,
        "percent": 25,
        "read": 7,
        "rejected": 0,
    }
    assert "no-cache" in response["Cache-Control"]


def test_rejected_lines_download_as_csv_with_formulas_escaped(client, platform_admin, store):
    job = ImportJob.objects.create(store=store)
    job.row_errors.create(line=3, column="title", value='=HYPERLINK("x")', reason="too long")
    job.row_errors.create(line=2, column="price", value="-1", reason="price is negative")
    url = f"/admin/imports/jobs/{job.public_id}/rejected-lines.csv"
    assert client.get(url).status_code == 302

    client.force_login(platform_admin)
    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    body = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(body))) == [
        ["line", "column", "value", "reason"],
        ["2", "price", "'-1", "price is negative"],
        ["3", "title", '\'=HYPERLINK("x")', "too long"],
    ]


def test_run_again_action_requeues_a_stuck_job(
    client, platform_admin, store, django_capture_on_commit_callbacks
):
    job = ImportJob.objects.create(store=store, status=ImportJob.Status.RUNNING)
    client.force_login(platform_admin)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/imports/importjob/",
            {"action": "run_again", "_selected_action": [job.pk]},
        )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://127.0.0.1:6379/", "127.0.0.1"),
        ("http://[::1]/feed.csv", "::1"),
    ],
)
def test_feed_url_of_a_local_address_is_refused_by_the_form(
    client, platform_admin, store, settings, url, host
):
    settings.WIZAMART_FEED_ALLOW_PRIVATE_HOSTS = False
    client.force_login(platform_admin)

    response = client.post(URL, {"store": store.code, "language": "en", "source_url": url})

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "source_url": [
            f"The feed host {host} resolves to a private or local address; only public "
            "addresses can be fetched."
        ]
    }
    assert ImportJob.objects.count() == 0


def test_run_again_action_says_which_jobs_it_left_alone(
    client, platform_admin, store, other_connection, django_capture_on_commit_callbacks
):
    running = ImportJob.objects.create(store=store, status=ImportJob.Status.RUNNING)
    other_connection.execute("SELECT pg_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, store.pk])
    client.force_login(platform_admin)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/imports/importjob/",
            {"action": "run_again", "_selected_action": [running.pk]},
            follow=True,
        )

    assert [(m.level_tag, m.message) for m in response.context["messages"]] == [
        (
            "warning",
            "1 job not queued again: an import of its store is running now; run it again "
            "once that one has finished.",
        )
    ]
    running.refresh_from_db()
    assert (running.status, callbacks) == (ImportJob.Status.RUNNING, [])
