"""Copies of product images on our storage.

A product keeps the `image_url` its feed gave it. `copy_product_images` fetches that URL
into the default storage as `Product.image`, so the storefront can serve the picture
itself (image hosts block hot-linking, move and vanish). It is optional: after a products
import it is queued when WIZAMART_COPY_PRODUCT_IMAGES is on (`queue_image_copy`).

A copy is named from its URL, `products/<store code>/<sha256(url)[:20]><ext>`, so a
product whose `image.name` has that stem holds a copy of its current URL and is skipped
(storage may add `_<random>` before the extension when the name is taken; the stem still
matches). The extension comes from the file's first bytes, never from its Content-Type.

Fetching follows the feed downloader's rules (`imports.downloads`): http(s) only,
every hop resolved and refused unless public (WIZAMART_FEED_ALLOW_PRIVATE_HOSTS lifts
that for development), connections pinned to the checked addresses; plus
WIZAMART_IMAGE_TIMEOUT_SECONDS for the whole download and WIZAMART_IMAGE_MAX_BYTES.
"""

from __future__ import annotations

import http.client
import logging
import posixpath
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction

from imports.downloads import (
    TooLarge,
    download_deadline,
    is_timeout,
    public_opener,
    read_limited,
)
from imports.feeds import FeedError
from imports.models import ImportJob
from marketplace.models import Product, Store, image_copy_key

logger = logging.getLogger(__name__)

PRODUCTS_PER_CHUNK = 500
# A host that timed out or refused this many times in a row is not asked again in the
# same run: a dead image host must not cost the timeout once per product.
HOST_FAILURES_BEFORE_SKIP = 3
_SIGNATURES = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
)
_HEAD = 12  # bytes needed to recognise every type above and WebP


class ImageFetchError(Exception):
    """The image could not be fetched; the message is the short reason. `host_down` for
    a timeout or a failed connection (counts towards skipping the host)."""

    def __init__(self, reason: str, *, host_down: bool = False):
        super().__init__(reason)
        self.host_down = host_down


@dataclass
class ImageCopyReport:
    """What one run did, in products. `copied`: now holds a copy of its image_url
    (fetched, or the copy another product of the store made of the same URL);
    `current`: its copy was already of its image_url; `failed`: not fetched, product
    unchanged; `cleared`: image_url emptied, so `image` was emptied too."""

    copied: int = 0
    current: int = 0
    failed: int = 0
    cleared: int = 0

    @property
    def summary(self) -> str:
        return (
            f"{self.copied} copied, {self.current} already current, {self.failed} failed, "
            f"{self.cleared} cleared"
        )


def image_extension(head: bytes) -> str | None:
    """The extension of the image whose file starts with `head` (JPEG, PNG, GIF or
    WebP), or None when it is none of them."""
    for signature, extension in _SIGNATURES:
        if head.startswith(signature):
            return extension
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return None


def fetch_image(url: str, target: IO[bytes]) -> str:
    """Stream the image at `url` into `target` and return its extension. Raises
    ImageFetchError (HTTP error, timeout, larger than WIZAMART_IMAGE_MAX_BYTES, not a
    JPEG/PNG/GIF/WebP by its first bytes, refused address, connection failure); what
    `target` holds then is to be thrown away."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ImageFetchError("not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ImageFetchError("a URL with a user name or password is not fetched")
    limit, timeout = settings.WIZAMART_IMAGE_MAX_BYTES, settings.WIZAMART_IMAGE_TIMEOUT_SECONDS
    too_big = f"larger than {limit} bytes"
    timed_out = ImageFetchError(f"timed out after {timeout} s", host_down=True)
    request = urllib.request.Request(url, headers={"User-Agent": "Wizamart image copier"})
    head, extension = b"", None
    try:
        with (
            download_deadline(timeout) as deadline,
            public_opener().open(request, timeout=timeout) as response,
        ):
            for chunk in read_limited(response, limit, deadline.at):
                if extension is None:
                    head += chunk[: _HEAD - len(head)]
                    if len(head) == _HEAD and not (extension := image_extension(head)):
                        break
                target.write(chunk)
    except TooLarge:
        raise ImageFetchError(too_big) from None
    except urllib.error.HTTPError as exc:
        raise ImageFetchError(f"HTTP {exc.code}") from None
    except FeedError as exc:
        raise ImageFetchError(f"refused: {exc}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if is_timeout(exc, deadline):
            raise timed_out from None
        # Refused, reset, not HTTP, a TLS failure: one reason, details in the log only.
        logger.debug("image download from %s failed", url, exc_info=True)
        raise ImageFetchError("connection failed", host_down=True) from None
    extension = extension or image_extension(head)
    if extension is None:
        raise ImageFetchError("not a JPEG, PNG, GIF or WebP image")
    return extension


def _stem(store: Store, url: str) -> str:
    return f"products/{store.code}/{image_copy_key(url)}"


def _is_copy_of(name: str, stem: str) -> bool:
    # The stem holds neither "." nor "_": cut the extension and the storage's suffix.
    return posixpath.splitext(name)[0].partition("_")[0] == stem


class _Copier:
    """Fetches and stores the images of one store for one run."""

    def __init__(self, store: Store, storage: Storage):
        self.store, self.storage = store, storage
        self.host_failures: Counter[str] = Counter()

    def copy(self, url: str) -> str:
        """Fetch `url` onto storage and return the stored name; ImageFetchError."""
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            raise ImageFetchError("not a valid URL") from None
        if self.host_failures[host] >= HOST_FAILURES_BEFORE_SKIP:
            raise ImageFetchError(f"skipped: {host} failed {HOST_FAILURES_BEFORE_SKIP} times")
        with tempfile.TemporaryFile() as spool:
            try:
                extension = fetch_image(url, spool)
            except ImageFetchError as exc:
                if exc.host_down:
                    self.host_failures[host] += 1
                raise
            self.host_failures.pop(host, None)
            spool.seek(0)
            try:
                return self.storage.save(_stem(self.store, url) + extension, File(spool))
            except OSError as exc:  # a full disk, a storage service that refuses
                raise ImageFetchError(f"could not be stored: {exc}") from None

    def existing_copies(self, urls: set[str]) -> dict[str, str]:
        """{url: stored name} of the copies products of the store already hold."""
        found: dict[str, str] = {}
        if urls:
            held = (
                Product.objects.filter(store=self.store, image_url__in=urls)
                .exclude(image="")
                .values_list("image_url", "image")
            )
            for url, name in held:
                if _is_copy_of(name, _stem(self.store, url)):
                    found[url] = name
        return found


def copy_product_images(store_id: int, *, limit: int | None = None) -> ImageCopyReport:
    """Copy each product's `image_url` of store `store_id` to the default storage
    (`Product.image`), in chunks of PRODUCTS_PER_CHUNK products by primary key.

    Idempotent: a product whose copy is of its current URL is counted `current` and
    nothing is fetched; a changed URL gets a new copy; an emptied URL empties `image`.
    Files are never deleted (products of the store with the same URL share one). Fetches
    at most `limit` images (failures included) when given.

    A failed fetch never fails or alters the product: it keeps its `image_url` and its
    previous `image`; the failure is counted and logged with its reason. Storage is
    written outside any transaction, and a product is only pointed to the copy while its
    `image_url` is still the URL fetched (a URL changed meanwhile waits for the next
    run). Writes `Product.image` only (no `updated_at` bump). Raises Store.DoesNotExist.
    """
    store = Store.objects.get(pk=store_id)
    copier = _Copier(store, Product._meta.get_field("image").storage)
    report = ImageCopyReport()
    fetched, last_pk = 0, 0
    products = (
        Product.objects.filter(store=store)
        .exclude(image_url="", image="")
        .order_by("pk")
        .values_list("pk", "image_url", "image")
    )
    while chunk := list(products.filter(pk__gt=last_pk)[:PRODUCTS_PER_CHUNK]):
        last_pk = chunk[-1][0]
        to_copy = []
        for pk, url, name in chunk:
            if not url:
                report.cleared += Product.objects.filter(pk=pk, image_url="").update(image="")
            elif _is_copy_of(name, _stem(store, url)):
                report.current += 1
            else:
                to_copy.append((pk, url))
        copies = copier.existing_copies({url for _, url in to_copy})
        for pk, url in to_copy:
            if url not in copies:
                if limit is not None and fetched >= limit:
                    return report
                fetched += 1
                try:
                    copies[url] = copier.copy(url)
                except ImageFetchError as exc:
                    report.failed += 1
                    logger.info(
                        "store %s product %s: image %s not copied: %s", store.code, pk, url, exc
                    )
                    continue
            report.copied += Product.objects.filter(pk=pk, image_url=url).update(image=copies[url])
    return report


def queue_image_copy(job: ImportJob) -> None:
    """After commit, queue `imports.tasks.copy_product_images` for the job's store when
    WIZAMART_COPY_PRODUCT_IMAGES is on and `job` is a products import that succeeded
    (fully or partly). A broker that cannot be reached is logged, never raised: the
    job's own result stands."""
    if not settings.WIZAMART_COPY_PRODUCT_IMAGES or job.kind != ImportJob.Kind.PRODUCTS:
        return
    if job.status not in (ImportJob.Status.SUCCEEDED, ImportJob.Status.PARTIALLY_SUCCEEDED):
        return
    from imports.tasks import copy_product_images as task  # imports.tasks imports this module

    store_id = job.store_id
    transaction.on_commit(lambda: task.delay(store_id), robust=True)
