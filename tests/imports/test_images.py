"""Copying product images to storage, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import struct
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.urls import reverse

from imports import images, tasks
from imports.images import ImageCopyReport, copy_product_images, image_extension
from imports.services import create_import_job, run_import_job
from marketplace.models import Product
from marketplace.services import upsert_product
from tests.conftest import Broker
from tests.imports.conftest import letzshop_feed


def _png(red: int, green: int, blue: int) -> bytes:
    """A valid 1x1 PNG of that colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(bytes([0, red, green, blue]))  # filter 0, one pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


BLUE_PNG = _png(51, 102, 204)
RED_PNG = _png(204, 0, 0)
# A 1x1 grey JPEG (JFIF, progressive) and GIF, a 1x1 lossless WebP.
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////"
    "////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/a"
    "AAgBAQABPxA="
) + (b"\xff\xd9")
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
HTML = b"<!doctype html><html><body>Not an image</body></html>"


@dataclass
class Route:
    body: bytes
    status: int = 200
    content_type: str = "image/png"
    content_length: bool = True
    delay: float = 0  # seconds before the status line
    drip: float = 0  # after the first 12 bytes, seconds between the next bytes


class ImageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self.stopping = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def handle_error(self, request, client_address):
        pass  # the client hung up on purpose (too big, too slow)


class _Handler(BaseHTTPRequestHandler):
    server: ImageServer

    def do_GET(self):
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path) or Route(HTML, 404, "text/html")
        if self.server.stopping.wait(route.delay):
            return
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        if route.content_length:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        if not route.drip:
            self.wfile.write(route.body)
            return
        self.wfile.write(route.body[:12])
        for byte in route.body[12:]:
            if self.server.stopping.wait(route.drip):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(settings):
    settings.WIZAMART_FEED_ALLOW_PRIVATE_HOSTS = True
    httpd = ImageServer()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()


def _copy_name(url: str, extension: str, store_code: str = "lux-shop") -> str:
    return f"products/{store_code}/{hashlib.sha256(url.encode()).hexdigest()[:20]}{extension}"


def _stored(product: Product) -> bytes:
    product.refresh_from_db()
    with product.image.open("rb") as handle:
        return handle.read()


def _change_image_url(product: Product, url: str) -> None:
    upsert_product(product.store, product.sku, translations={}, image_url=url)


def test_images_are_copied_with_the_extension_of_their_bytes(store, make_product, server):
    served = {  # path: (what is served, the extension it is stored with)
        "/a.png": (Route(BLUE_PNG, content_type="application/octet-stream"), ".png"),
        "/b": (Route(JPEG, content_type="image/jpeg"), ".jpg"),
        "/c.jpg": (Route(GIF, content_type="text/plain"), ".gif"),
        "/d.webp": (Route(WEBP, content_type="image/webp", content_length=False), ".webp"),
    }
    server.routes.update({path: route for path, (route, _) in served.items()})
    products = {path: make_product(store, image_url=server.url(path)) for path in served}

    report = copy_product_images(store.pk)

    assert report == ImageCopyReport(copied=4)
    for path, (route, extension) in served.items():
        assert _stored(products[path]) == route.body
        assert products[path].image.name == _copy_name(server.url(path), extension)
    assert sorted(server.requests) == sorted(served)


def test_second_run_fetches_nothing(store, make_product, server):
    server.routes["/a.png"] = Route(BLUE_PNG)
    server.routes["/b.jpg"] = Route(JPEG)
    first = make_product(store, image_url=server.url("/a.png"))
    make_product(store, image_url=server.url("/b.jpg"))
    copy_product_images(store.pk)
    first.refresh_from_db()
    updated_at = first.updated_at
    server.requests.clear()

    report = copy_product_images(store.pk)

    assert report == ImageCopyReport(current=2)
    assert server.requests == []
    first.refresh_from_db()
    assert first.updated_at == updated_at


def test_a_changed_image_url_gets_a_new_copy_and_the_old_file_stays(store, make_product, server):
    server.routes["/blue.png"] = Route(BLUE_PNG)
    server.routes["/red.png"] = Route(RED_PNG)
    product = make_product(store, image_url=server.url("/blue.png"))
    copy_product_images(store.pk)
    product.refresh_from_db()
    old_name = product.image.name

    _change_image_url(product, server.url("/red.png"))
    report = copy_product_images(store.pk)

    assert report == ImageCopyReport(copied=1)
    assert _stored(product) == RED_PNG
    assert product.image.name == _copy_name(server.url("/red.png"), ".png")
    assert default_storage.exists(old_name)


@pytest.mark.parametrize("chunk_size", [1, 500])
def test_products_with_the_same_image_url_share_one_copy(
    store, make_product, server, monkeypatch, chunk_size
):
    monkeypatch.setattr(images, "PRODUCTS_PER_CHUNK", chunk_size)
    server.routes["/mug.png"] = Route(BLUE_PNG)
    products = [make_product(store, image_url=server.url("/mug.png")) for _ in range(3)]

    report = copy_product_images(store.pk)

    assert report == ImageCopyReport(copied=3)
    assert server.requests == ["/mug.png"]
    names = {Product.objects.get(pk=product.pk).image.name for product in products}
    assert names == {_copy_name(server.url("/mug.png"), ".png")}


def test_an_emptied_image_url_clears_the_copy_but_keeps_the_shared_file(
    store, make_product, server
):
    server.routes["/mug.png"] = Route(BLUE_PNG)
    emptied = make_product(store, image_url=server.url("/mug.png"))
    kept = make_product(store, image_url=server.url("/mug.png"))
    copy_product_images(store.pk)

    _change_image_url(emptied, "")
    report = copy_product_images(store.pk)

    assert report == ImageCopyReport(current=1, cleared=1)
    emptied.refresh_from_db()
    assert (emptied.image_url, emptied.image.name) == ("", "")
    assert _stored(kept) == BLUE_PNG


@pytest.mark.parametrize(
    "route, reason",
    [
        (Route(HTML, 404, "text/html"), "HTTP 404"),
        (Route(HTML, content_type="image/png"), "not a JPEG, PNG, GIF or WebP image"),
        (Route(RED_PNG + bytes(2000)), "larger than 1000 bytes"),
        (Route(RED_PNG + bytes(2000), content_length=False), "larger than 1000 bytes"),
        (Route(RED_PNG, delay=5), "timed out after 1 s"),
        (Route(RED_PNG, content_length=False, drip=0.3), "timed out after 1 s"),
    ],
    ids=["404", "html", "too-big", "too-big-streamed", "slow", "slow-drip"],
)
def test_a_failed_fetch_leaves_the_product_as_it_was(
    store, make_product, server, settings, caplog, route, reason
):
    settings.WIZAMART_IMAGE_MAX_BYTES = 1000
    settings.WIZAMART_IMAGE_TIMEOUT_SECONDS = 1
    server.routes["/blue.png"] = Route(BLUE_PNG)
    server.routes["/bad"] = route
    product = make_product(store, image_url=server.url("/blue.png"))
    copy_product_images(store.pk)
    _change_image_url(product, server.url("/bad"))
    before = Product.objects.values("image_url", "image", "updated_at").get(pk=product.pk)

    with caplog.at_level(logging.INFO, logger="imports.images"):
        report = copy_product_images(store.pk)

    assert report == ImageCopyReport(failed=1)
    assert Product.objects.values("image_url", "image", "updated_at").get(pk=product.pk) == before
    assert before["image"] == _copy_name(server.url("/blue.png"), ".png")
    assert caplog.messages == [
        f"store lux-shop product {product.pk}: image {server.url('/bad')} not copied: {reason}"
    ]


def test_a_private_address_is_refused_without_connecting(
    store, make_product, server, settings, caplog
):
    settings.WIZAMART_FEED_ALLOW_PRIVATE_HOSTS = False
    server.routes["/mug.png"] = Route(BLUE_PNG)
    product = make_product(store, image_url=server.url("/mug.png"))

    with caplog.at_level(logging.INFO, logger="imports.images"):
        report = copy_product_images(store.pk)

    assert report == ImageCopyReport(failed=1)
    assert server.requests == []
    product.refresh_from_db()
    assert product.image.name == ""
    assert caplog.messages == [
        f"store lux-shop product {product.pk}: image {server.url('/mug.png')} not copied: "
        "refused: The feed host 127.0.0.1 resolves to a private or local address; only "
        "public addresses can be fetched."
    ]


def test_only_http_urls_are_fetched(store, make_product, server):
    make_product(store, image_url="ftp://127.0.0.1/mug.png")

    assert copy_product_images(store.pk) == ImageCopyReport(failed=1)


def test_urls_with_credentials_are_not_fetched(store, make_product, server):
    server.routes["/mug.png"] = Route(BLUE_PNG)
    product = make_product(store, image_url=server.url("/mug.png").replace("//", "//u:p@", 1))

    assert copy_product_images(store.pk) == ImageCopyReport(failed=1)
    assert server.requests == []
    product.refresh_from_db()
    assert not product.image


def test_a_copy_storage_refuses_fails_its_product_and_the_run_goes_on(
    store, make_product, server, monkeypatch
):
    server.routes["/a.png"] = Route(BLUE_PNG)
    server.routes["/b.png"] = Route(BLUE_PNG + b"b")
    first = make_product(store, "A", image_url=server.url("/a.png"))
    second = make_product(store, "B", image_url=server.url("/b.png"))
    save, calls = FileSystemStorage.save, []

    def full_once(self, name, content, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return save(self, name, content, **kwargs)

    monkeypatch.setattr(FileSystemStorage, "save", full_once)

    assert copy_product_images(store.pk) == ImageCopyReport(copied=1, failed=1)
    first.refresh_from_db()
    assert not first.image
    assert _stored(second) == BLUE_PNG + b"b"


def test_a_host_that_keeps_failing_is_skipped_for_the_rest_of_the_run(
    store, make_product, settings, caplog
):
    settings.WIZAMART_FEED_ALLOW_PRIVATE_HOSTS = True
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for n in range(5):
        make_product(store, image_url=f"http://127.0.0.1:{port}/{n}.png")

    with caplog.at_level(logging.INFO, logger="imports.images"):
        report = copy_product_images(store.pk)

    assert report == ImageCopyReport(failed=5)
    assert [message.rpartition("not copied: ")[2] for message in caplog.messages] == [
        "connection failed",
        "connection failed",
        "connection failed",
        "skipped: 127.0.0.1 failed 3 times",
        "skipped: 127.0.0.1 failed 3 times",
    ]


def test_limit_bounds_the_images_fetched_in_one_run(store, make_product, server):
    for n in range(3):
        server.routes[f"/{n}.png"] = Route(_png(n, n, n))
        make_product(store, image_url=server.url(f"/{n}.png"))

    assert copy_product_images(store.pk, limit=2) == ImageCopyReport(copied=2)
    assert len(server.requests) == 2
    assert copy_product_images(store.pk) == ImageCopyReport(copied=1, current=2)
    assert len(server.requests) == 3


def test_a_url_changed_during_the_fetch_is_not_given_the_stale_copy(
    store, make_product, server, monkeypatch
):
    server.routes["/blue.png"] = Route(BLUE_PNG)
    server.routes["/red.png"] = Route(RED_PNG)
    product = make_product(store, image_url=server.url("/blue.png"))
    fetch = images.fetch_image

    def fetch_while_the_store_changes_the_url(url, target):
        extension = fetch(url, target)
        _change_image_url(product, server.url("/red.png"))
        return extension

    monkeypatch.setattr(images, "fetch_image", fetch_while_the_store_changes_the_url)
    report = copy_product_images(store.pk)

    assert report == ImageCopyReport()
    product.refresh_from_db()
    assert (product.image_url, product.image.name) == (server.url("/red.png"), "")


@pytest.mark.parametrize(
    "head, extension",
    [
        (BLUE_PNG, ".png"),
        (JPEG, ".jpg"),
        (GIF, ".gif"),
        (b"GIF87a\x01\x00\x01\x00", ".gif"),
        (WEBP, ".webp"),
        (b"RIFF\x1a\x00\x00\x00WAVEfmt ", None),
        (HTML, None),
        (b"", None),
    ],
)
def test_image_type_is_told_by_the_first_bytes(head, extension):
    assert image_extension(head[:12]) == extension


def test_the_storefront_shows_the_stored_copy(client, store, make_product, server):
    server.routes["/mug.png"] = Route(BLUE_PNG)
    product = make_product(store, "MUG", title="Blue mug", image_url=server.url("/mug.png"))
    copy_product_images(store.pk)
    src = "/media/" + _copy_name(server.url("/mug.png"), ".png")

    detail = client.get(reverse("marketplace:product_detail", args=[product.public_id]))
    listing = client.get(reverse("marketplace:product_list"))

    assert (
        f'<img class="media-img" src="{src}" alt="Blue mug" onerror="this.hidden=true">'
        in detail.content.decode()
    )
    assert (
        f'<img class="media-img" src="{src}" alt="" loading="lazy" onerror="this.hidden=true">'
        in listing.content.decode()
    )
    assert server.url("/mug.png") not in listing.content.decode()

    # The feed changes the image to one that cannot be fetched: the old copy is not shown.
    Product.objects.filter(pk=product.pk).update(image_url=server.url("/gone.png"))
    assert copy_product_images(store.pk) == ImageCopyReport(failed=1)
    detail = client.get(reverse("marketplace:product_detail", args=[product.public_id]))
    assert f'src="{server.url("/gone.png")}"' in detail.content.decode()
    assert src not in detail.content.decode()


# --- queued after an import -------------------------------------------------------------


@pytest.fixture
def broker(monkeypatch) -> Broker:
    recorder = Broker()
    monkeypatch.setattr(tasks.copy_product_images, "apply_async", recorder.apply_async)
    return recorder


def _run_job(store, data: bytes, django_capture_on_commit_callbacks) -> list:
    job = create_import_job(store, file=ContentFile(data, name="feed.csv"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_import_job(job.pk)
    return callbacks


def test_a_finished_products_import_queues_the_image_copy_after_commit(
    store, settings, broker, django_capture_on_commit_callbacks
):
    settings.WIZAMART_COPY_PRODUCT_IMAGES = True

    callbacks = _run_job(store, letzshop_feed(2), django_capture_on_commit_callbacks)

    assert broker.take() == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert broker.take() == [{"args": [store.pk]}]


@pytest.mark.parametrize(
    "enabled, data",
    [
        (False, letzshop_feed(2)),
        (True, b"sku;quantity\nP-0001;4\n"),  # stock and price: images unchanged
        (True, b"id,title,price\nA,Apple,abc\n"),  # every line rejected: failed
    ],
    ids=["setting-off", "stock-import", "failed-import"],
)
def test_no_image_copy_is_queued_when_off_or_not_a_finished_products_import(
    store, make_product, settings, broker, django_capture_on_commit_callbacks, enabled, data
):
    settings.WIZAMART_COPY_PRODUCT_IMAGES = enabled
    make_product(store, "P-0001")

    callbacks = _run_job(store, data, django_capture_on_commit_callbacks)

    for callback in callbacks:
        callback()
    assert broker.take() == []


def test_the_task_copies_the_stores_images(store, make_product, server):
    server.routes["/mug.png"] = Route(BLUE_PNG)
    make_product(store, image_url=server.url("/mug.png"))

    summary = tasks.copy_product_images(store.pk)

    assert summary == "1 copied, 0 already current, 0 failed, 0 cleared"


def test_the_task_goes_to_the_imports_queue():
    from wizamart.celery import app

    route = app.amqp.router.route({}, tasks.copy_product_images.name)
    assert route["queue"].name == "imports"
