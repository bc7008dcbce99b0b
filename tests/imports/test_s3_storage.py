"""Import files on S3: a real S3-compatible HTTP server (moto's) started by the test,
django-storages talking to it over HTTP as it would to AWS or MinIO."""

from __future__ import annotations

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer

from imports.models import ImportJob
from imports.services import create_import_job, run_import_job
from marketplace.models import Product
from tests.imports.conftest import letzshop_feed
from wizamart.settings import s3_storage

BUCKET = "wizamart-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, settings, monkeypatch):
    for name, value in {
        "AWS_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_S3_REGION_NAME": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    # Changing STORAGES resets Django's storage handler: the next access builds S3 ones.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(BUCKET),
        "private": s3_storage(BUCKET, location="private", default_acl="private"),
    }
    # A FileField resolves its storage callable once, when models load (as in production,
    # where settings never change): give it the S3 one for this test.
    monkeypatch.setattr(ImportJob._meta.get_field("file"), "storage", storages["private"])
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def test_uploaded_feed_is_kept_privately_on_s3_and_imported_from_there(
    s3, store, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        job = create_import_job(store, file=ContentFile(letzshop_feed(3), name="feed.tsv"))

    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("private/imports/")
    assert s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read() == letzshop_feed(3)
    grants = s3.get_object_acl(Bucket=BUCKET, Key=keys[0])["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # owner only, no public read

    run_import_job(job.pk)

    job.refresh_from_db()
    assert (job.status, job.rows_created) == (ImportJob.Status.SUCCEEDED, 3)
    assert sorted(Product.objects.filter(store=store).values_list("sku", flat=True)) == [
        "P-0001",
        "P-0002",
        "P-0003",
    ]


def test_uploaded_feed_on_disk_is_outside_the_served_media_folder(
    store, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        job = create_import_job(store, file=ContentFile(b"id;title;price\n", name="f.csv"))

    path = job.file.path
    assert "/private/imports/" in path
    assert not path.startswith(str(settings.MEDIA_ROOT))
