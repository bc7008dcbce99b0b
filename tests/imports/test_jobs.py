from __future__ import annotations

import pytest
from celery.exceptions import Retry
from django.core.files.base import ContentFile

from imports import tasks
from imports.feeds import RowError
from imports.models import ImportJob, ImportRowError
from imports.services import (
    _LOCK_NAMESPACE,
    QUEUE_UNREACHABLE,
    ImportBusy,
    create_import_job,
    run_import_job,
    run_job_again,
)
from marketplace.models import Product, Stock, StockMovement
from notifications.models import OutboundEmail
from tests.conftest import FEEDS_DIR
from tests.imports.conftest import QUIRKY_FEED, letzshop_feed


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the job may catch it."""


def _job(store, data: bytes, name="feed.csv", **kwargs) -> ImportJob:
    return create_import_job(store, file=ContentFile(data, name=name), **kwargs)


def _counts(job: ImportJob) -> tuple[int, int, int, int, int]:
    job.refresh_from_db()
    return (
        job.rows_read,
        job.rows_created,
        job.rows_updated,
        job.rows_unchanged,
        job.rows_rejected,
    )


def test_job_is_queued_after_commit_and_the_task_runs_it(
    store, platform_admin, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        tasks.run_import, "apply_async", lambda args, task_id: queued.append((args, task_id))
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = _job(store, QUIRKY_FEED, created_by=platform_admin)
    assert job.status == ImportJob.Status.QUEUED
    assert queued == []  # nothing before commit
    assert len(callbacks) == 1

    callbacks[0]()
    assert queued == [([job.pk], job.task_id)]

    assert tasks.run_import(job.pk) == ImportJob.Status.PARTIALLY_SUCCEEDED
    assert _counts(job) == (6, 2, 0, 0, 4)
    assert (job.format, job.encoding, job.delimiter, job.kind) == (
        "letzshop",
        "windows-1252",
        ";",
        "products",
    )
    assert job.bytes_read == job.bytes_total == len(QUIRKY_FEED)
    assert job.file.name.startswith("imports/")
    assert job.started_at is not None and job.finished_at >= job.started_at
    assert job.runs == 1
    assert [RowError(e.line, e.column, e.value, e.reason) for e in job.row_errors.all()] == [
        RowError(4, "price", "twelve EUR", "not a price"),
        RowError(5, "gtin", "4006381333932", "GTIN check digit is wrong"),
        RowError(6, "id", "CAFE-1", "duplicate SKU: already in this file (line 2)"),
        RowError(7, "price", "9.99 USD", "currency USD is not the store's currency EUR"),
    ]
    assert Product.objects.get(sku="CAFE-1").stock_movements.get().actor == platform_admin


def test_same_file_twice_second_job_changes_nothing(store):
    data = (FEEDS_DIR / "shopify-jewelery.csv").read_bytes()
    first = _job(store, data)
    run_import_job(first.pk)
    movements = StockMovement.objects.count()
    stamps = dict(Product.objects.values_list("sku", "updated_at"))

    second = _job(store, data)
    run_import_job(second.pk)

    assert _counts(first) == (23, 23, 0, 0, 0)
    assert _counts(second) == (23, 0, 0, 23, 0)
    assert second.status == ImportJob.Status.SUCCEEDED
    assert StockMovement.objects.count() == movements
    assert dict(Product.objects.values_list("sku", "updated_at")) == stamps


def test_job_killed_after_two_batches_runs_again_to_a_correct_end(store):
    job = _job(store, letzshop_feed(25))
    seen = []

    def kill_after_second_batch(progress: ImportJob) -> None:
        seen.append(progress.rows_read)
        if len(seen) == 2:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        run_import_job(job.pk, batch_size=10, after_batch=kill_after_second_batch)

    assert seen == [10, 20]
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING
    assert _counts(job) == (20, 20, 0, 0, 0)
    assert Product.objects.filter(store=store).count() == 20

    rerun = []
    run_import_job(job.pk, batch_size=10, after_batch=lambda j: rerun.append(j.rows_read))

    assert rerun == [10, 20, 25]
    job.refresh_from_db()
    assert (job.status, job.runs) == (ImportJob.Status.SUCCEEDED, 2)
    assert _counts(job) == (25, 5, 0, 20, 0)
    assert Product.objects.filter(store=store).count() == 25
    assert Stock.objects.filter(product__store=store, on_hand=3).count() == 25
    assert StockMovement.objects.filter(product__store=store).count() == 25


def test_a_finished_job_is_not_run_twice_until_asked_again(
    store, django_capture_on_commit_callbacks
):
    job = _job(store, letzshop_feed(3))
    run_import_job(job.pk)
    run_import_job(job.pk)  # a duplicate delivery of the task
    job.refresh_from_db()
    assert (job.runs, job.status) == (1, ImportJob.Status.SUCCEEDED)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_job_again(job)
        run_job_again(job)  # asked twice: two tasks, one run
    assert len(callbacks) == 2
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED
    run_import_job(job.pk)
    run_import_job(job.pk)
    assert _counts(job) == (3, 0, 0, 3, 0)
    assert job.runs == 2


def test_a_job_whose_task_cannot_be_sent_fails_with_the_reason_and_runs_again(
    store, monkeypatch, django_capture_on_commit_callbacks
):
    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("redis is down")

    with monkeypatch.context() as patched, django_capture_on_commit_callbacks(execute=True):
        patched.setattr(tasks.run_import, "apply_async", unreachable)
        job = _job(store, letzshop_feed(3))
    job.refresh_from_db()
    assert (job.status, job.error_message) == (ImportJob.Status.FAILED, QUEUE_UNREACHABLE)
    assert job.finished_at is not None

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_job_again(job)
    assert len(callbacks) == 1
    run_import_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_message) == (ImportJob.Status.SUCCEEDED, "")
    assert Product.objects.filter(store=store).count() == 3


def test_second_import_of_a_store_waits_for_the_first(
    store, other_store, other_connection, monkeypatch
):
    other_connection.execute("SELECT pg_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, store.pk])
    job = _job(store, letzshop_feed(3))

    with pytest.raises(ImportBusy):
        run_import_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.runs, job.rows_read) == (ImportJob.Status.QUEUED, 0, 0)
    assert Product.objects.count() == 0

    retries = []

    def retry(exc, countdown):
        retries.append((type(exc), countdown))
        return Retry("later", exc, countdown)

    monkeypatch.setattr(tasks.run_import, "retry", retry)
    with pytest.raises(Retry):
        tasks.run_import(job.pk)
    assert retries == [(ImportBusy, 30)]

    # another store is not blocked
    elsewhere = _job(other_store, letzshop_feed(2))
    assert tasks.run_import(elsewhere.pk) == ImportJob.Status.SUCCEEDED

    other_connection.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, store.pk])
    assert tasks.run_import(job.pk) == ImportJob.Status.SUCCEEDED
    assert Product.objects.filter(store=store).count() == 3


def test_a_job_that_waits_past_its_retries_fails_with_the_reason(store, other_connection, settings):
    settings.WIZAMART_IMPORT_RETRY_SECONDS = 30
    other_connection.execute("SELECT pg_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, store.pk])
    job = _job(store, letzshop_feed(3))

    result = tasks.run_import.apply(args=[job.pk], retries=tasks.run_import.max_retries)

    assert result.get() == ImportJob.Status.FAILED
    job.refresh_from_db()
    assert (job.status, job.runs) == (ImportJob.Status.FAILED, 0)
    assert job.error_message == (
        f"Another import of store {store.code} is running; try again when it has finished. "
        "Gave up waiting after 60 minutes: run it again."
    )
    assert Product.objects.count() == 0


def test_unreadable_file_fails_the_job_with_the_reason(store):
    job = _job(store, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", name="logo.png")
    run_import_job(job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.error_message == "This is not a text feed (binary data, or an unknown encoding)."
    assert Product.objects.count() == 0


def test_every_line_rejected_fails_the_job(store):
    job = _job(store, b"id,title,price\nA,Apple,abc\nB,Pear,\n")
    run_import_job(job.pk)
    job.refresh_from_db()
    assert (job.status, _counts(job)) == (ImportJob.Status.FAILED, (2, 0, 0, 0, 2))
    assert job.error_message == "Every line was rejected: see the rejected lines."


def test_a_product_file_given_as_stock_file_fails(store):
    job = _job(store, letzshop_feed(2), kind=ImportJob.Kind.STOCK_AND_PRICE)
    run_import_job(job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.error_message == "This is a products file, not a stock and price file."
    assert Product.objects.count() == 0


def test_stock_and_price_file_updates_known_skus_and_rejects_the_rest(store, make_product):
    make_product(store, "A-1", price="1.00", on_hand=5)
    make_product(store, "B-1", price="2.00", on_hand=5)
    make_product(store, "C-1", price="3.00", on_hand=5)
    Stock.objects.filter(product__sku="C-1").update(reserved=4)
    data = b"sku;quantity;price\nA-1;7;1,50\nB-1;5;2.00 EUR\nZZ-9;1;1\nC-1;2;3\nA-1;8;\n"
    job = _job(store, data)

    run_import_job(job.pk)

    job.refresh_from_db()
    assert (job.kind, job.format, job.status) == (
        ImportJob.Kind.STOCK_AND_PRICE,
        "stock",
        ImportJob.Status.PARTIALLY_SUCCEEDED,
    )
    assert _counts(job) == (5, 0, 1, 1, 3)
    assert [(e.line, e.column, e.value, e.reason) for e in job.row_errors.all()] == [
        (4, "sku", "ZZ-9", "unknown SKU: this store has no such product"),
        (5, "quantity", "2", "C-1: cannot set stock to 2, 4 units are reserved by open orders."),
        (6, "sku", "A-1", "duplicate SKU: already in this file (line 2)"),
    ]
    prices = dict(Product.objects.values_list("sku", "price"))
    assert {k: str(v) for k, v in prices.items()} == {"A-1": "1.50", "B-1": "2.00", "C-1": "3.00"}
    stock = dict(Stock.objects.values_list("product__sku", "on_hand"))
    assert stock == {"A-1": 7, "B-1": 5, "C-1": 5}
    movement = StockMovement.objects.filter(product__sku="A-1").first()
    assert (movement.kind, movement.on_hand_delta, movement.note) == (
        "import",
        2,
        f"import {job.public_id}",
    )


def test_finished_job_queues_the_report_email(make_store):
    store = make_store(email="shop@example.lu")
    job = _job(store, QUIRKY_FEED)
    run_import_job(job.pk)
    email = OutboundEmail.objects.get(store=store)
    assert (email.to, email.template_code) == ("shop@example.lu", "import_finished")
    assert (email.context["created"], email.context["failed"], email.context["total"]) == (2, 4, 6)
    assert email.context["errors"][0] == "line 4, column price: 'twelve EUR' not a price"
    assert email.context["report_url"].endswith(f"/admin/imports/importjob/{job.pk}/change/")


def test_job_needs_a_file_or_a_url(store):
    with pytest.raises(ValueError, match="either a file or a source URL"):
        create_import_job(store)
    with pytest.raises(ValueError, match="unknown language"):
        create_import_job(store, source_url="http://127.0.0.1/x.csv", language="lb")
    assert ImportJob.objects.count() == 0
    assert ImportRowError.objects.count() == 0


def test_run_again_leaves_a_job_that_is_really_running_alone(
    store, other_connection, django_capture_on_commit_callbacks
):
    job = ImportJob.objects.create(store=store, status=ImportJob.Status.RUNNING)
    # A worker runs it: it holds the store's import lock.
    other_connection.execute("SELECT pg_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, store.pk])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert run_job_again(job) is False
    job.refresh_from_db()
    assert (job.status, callbacks) == (ImportJob.Status.RUNNING, [])

    # Its worker died (the lock went with its session): now it is queued again.
    other_connection.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, store.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert run_job_again(job) is True
    job.refresh_from_db()
    assert (job.status, len(callbacks)) == (ImportJob.Status.QUEUED, 1)
