"""Imports and feed exports in the store back office: owners and managers of a store run
them for their own stores only; staff and other stores get 403/404 and change nothing."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imports import tasks
from imports.models import FeedExportToken, ImportJob
from imports.services import feed_export_token
from marketplace.models import Membership, Product
from tests.imports.conftest import QUIRKY_FEED
from tests.marketplace.test_backoffice import broker, manager, member, staff

__all__ = ["broker", "manager", "staff"]  # the back office's fixtures, shared

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def other_owner(other_store):
    return member(other_store, "otherowner", Membership.Role.OWNER)


def job_url(name, job=None):
    return reverse(f"backoffice:imports_importjob_{name}", args=[job.pk] if job else [])


def finished_job(store) -> ImportJob:
    job = ImportJob.objects.create(
        store=store, original_name="feed.csv", status=ImportJob.Status.PARTIALLY_SUCCEEDED,
        rows_read=3, rows_created=1, rows_rejected=2, bytes_read=90, bytes_total=90,
    )  # fmt: skip
    job.row_errors.create(line=3, column="title", value='=HYPERLINK("x")', reason="too long")
    job.row_errors.create(line=2, column="price", value="twelve EUR", reason="not a price")
    return job


def jobs_state() -> tuple:
    return (
        list(ImportJob.objects.order_by("pk").values_list("pk", "status")),
        Product.objects.count(),
        list(FeedExportToken.objects.order_by("pk").values_list("store_id", "token")),
    )


# --- imports --------------------------------------------------------------------------------


def test_manager_starts_an_import_and_watches_its_progress(
    client, manager, store, monkeypatch, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    assert client.get(job_url("add")).status_code == 200

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            job_url("add"),
            {
                "store": store.code,
                "language": "fr",
                "kind": "products",
                "file": SimpleUploadedFile("feed.csv", QUIRKY_FEED),
            },
        )

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/store/imports/importjob/{job.pk}/change/"
    assert (job.store, job.status, job.kind, job.language, job.created_by) == (
        store,
        "queued",
        "products",
        "fr",
        manager,
    )
    page = client.get(response["Location"]).content.decode()
    assert f'data-progress-url="/store/imports/importjob/{job.pk}/progress.json"' in page
    assert 'data-finished="false"' in page

    monkeypatch.setattr(
        tasks.run_import, "apply_async", lambda args, task_id: tasks.run_import(*args)
    )
    for callback in callbacks:
        callback()

    page = client.get(response["Location"]).content.decode()
    assert '<td id="count-created" data-field="created">2</td>' in page
    assert '<td id="count-rejected" data-field="rejected">4</td>' in page
    assert "<td>7</td><td>price</td><td>9.99 USD</td>" in page
    assert f'href="/store/imports/importjob/{job.pk}/rejected-lines.csv"' in page
    assert Product.objects.filter(store=store).count() == 2


def test_job_list_shows_only_own_stores_jobs(client, manager, store, other_store):
    own = finished_job(store)
    theirs = ImportJob.objects.create(store=other_store, original_name="theirs.csv")
    client.force_login(manager)

    response = client.get(job_url("changelist"))

    assert response.status_code == 200
    assert [job.pk for job in response.context["cl"].result_list] == [own.pk]
    assert "theirs.csv" not in response.content.decode()
    assert theirs.pk


def test_progress_json_of_own_job(client, manager, store):
    job = ImportJob.objects.create(store=store, bytes_total=400, bytes_read=100, rows_read=7)
    client.force_login(manager)

    response = client.get(job_url("progress", job))

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    data = response.json()
    assert {k: data[k] for k in ("id", "status", "finished", "percent", "read", "rejected")} == {
        "id": str(job.public_id),
        "status": "queued",
        "finished": False,
        "percent": 25,
        "read": 7,
        "rejected": 0,
    }


def test_rejected_lines_download_as_csv(client, manager, store):
    job = finished_job(store)
    client.force_login(manager)

    response = client.get(job_url("rejected_lines", job))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    body = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(body))) == [
        ["line", "column", "value", "reason"],
        ["2", "price", "twelve EUR", "not a price"],
        ["3", "title", '\'=HYPERLINK("x")', "too long"],
    ]


def test_another_stores_jobs_are_404_and_uploads_into_it_are_refused(client, store, other_owner):
    job = finished_job(store)
    client.force_login(other_owner)
    before = jobs_state()

    for name in ("change", "history", "progress", "rejected_lines"):
        assert client.get(job_url(name, job)).status_code == 404, name
    assert client.get("/store/imports/importjob/999999/progress.json").status_code == 404
    assert client.get("/store/imports/importjob/x/rejected-lines.csv").status_code == 404
    response = client.post(
        job_url("add"),
        {
            "store": store.code,
            "language": "en",
            "file": SimpleUploadedFile("feed.csv", QUIRKY_FEED),
        },
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()

    assert jobs_state() == before


def test_staff_cannot_open_imports(client, staff, store):
    job = finished_job(store)
    client.force_login(staff)
    before = jobs_state()

    assert client.get(job_url("changelist")).status_code == 403
    assert client.get(job_url("add")).status_code == 403
    assert client.get(job_url("change", job)).status_code == 404
    assert client.get(job_url("progress", job)).status_code == 404
    response = client.post(
        job_url("add"),
        {"store": store.code, "language": "en", "file": SimpleUploadedFile("f.csv", QUIRKY_FEED)},
    )
    assert response.status_code == 403

    assert jobs_state() == before


# --- feed exports ---------------------------------------------------------------------------


def test_manager_downloads_the_feed_of_each_language(client, manager, store, make_product):
    make_product(store, "MUG-1", title="Red mug", price="12.50", on_hand=4)
    client.force_login(manager)

    page = client.get("/store/feeds/")
    assert page.status_code == 200
    html = page.content.decode()
    for language in ("en", "fr", "de"):
        assert f'href="/store/feeds/{store.code}/{language}.tsv"' in html
    token = FeedExportToken.objects.get(store=store).token
    assert f"http://testserver/feeds/{store.code}/en.tsv?token={token}" in html
    assert "New token" not in html  # managers do not rotate

    response = client.get(f"/store/feeds/{store.code}/en.tsv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{store.code}-en.tsv"'
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("id\ttitle\tdescription\tlink\t")
    assert lines[1].startswith("MUG-1\tRed mug\t\t\t\t\tin stock\t12.50 EUR\t")
    assert len(lines) == 2


def test_the_feed_url_shown_serves_the_feed(client, owner, store, make_product):
    make_product(store, "MUG-1", title="Red mug")
    client.force_login(owner)
    client.get("/store/feeds/")
    token = FeedExportToken.objects.get(store=store).token
    client.logout()

    response = client.get(f"/feeds/{store.code}/fr.tsv", {"token": token})

    assert response.status_code == 200
    assert b"MUG-1\tRed mug" in b"".join(response.streaming_content)


def test_owner_rotates_the_feed_token(client, owner, store):
    old = feed_export_token(store).token
    client.force_login(owner)

    response = client.post(f"/store/feeds/{store.code}/rotate-token/", follow=True)

    new = FeedExportToken.objects.get(store=store).token
    assert new != old
    assert "have a new token" in response.content.decode()
    assert f"?token={new}" in response.content.decode()
    assert client.get(f"/store/feeds/{store.code}/rotate-token/").status_code == 405


def test_managers_and_other_stores_cannot_rotate_or_download(
    client, manager, staff, other_owner, store, other_store, make_product
):
    make_product(store, "MUG-1", title="Red mug")
    feed_export_token(store)
    feed_export_token(other_store)  # their feeds page shows their own store's
    before = jobs_state()

    client.force_login(manager)
    assert client.post(f"/store/feeds/{store.code}/rotate-token/").status_code == 403
    client.force_login(staff)
    assert client.get("/store/feeds/").status_code == 403
    assert client.get(f"/store/feeds/{store.code}/en.tsv").status_code == 403
    client.force_login(other_owner)
    assert client.get(f"/store/feeds/{store.code}/en.tsv").status_code == 404
    assert client.post(f"/store/feeds/{store.code}/rotate-token/").status_code == 404
    assert store.code not in client.get("/store/feeds/").content.decode()
    assert client.get("/store/feeds/other-shop/xx.tsv").status_code == 404

    assert jobs_state() == before
