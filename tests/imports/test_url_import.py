"""Feeds given by URL, served by a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imports.models import ImportJob
from imports.services import create_import_job, run_import_job
from marketplace.models import Product
from tests.imports.conftest import letzshop_feed

FEED = letzshop_feed(4)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/feed.tsv":
            self._send(200, FEED)
        elif self.path == "/big.tsv":
            self._send(200, FEED + b"x" * 5000)
        elif self.path == "/big-unannounced.tsv":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the size is counted while reading
            self.wfile.write(FEED + b"x" * 5000)
        elif self.path == "/slow.tsv":
            self.send_response(200)
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            time.sleep(3)
            self.wfile.write(FEED)
        else:
            self._send(404, b"not here")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def feed_server(settings):
    settings.WIZAMART_FEED_MAX_BYTES = 1000
    settings.WIZAMART_FEED_TIMEOUT_SECONDS = 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _run(store, url: str) -> ImportJob:
    job = create_import_job(store, source_url=url)
    run_import_job(job.pk)
    job.refresh_from_db()
    return job


def test_feed_url_is_downloaded_and_imported(store, feed_server):
    job = _run(store, f"{feed_server}/feed.tsv")
    assert (job.status, job.rows_created, job.original_name) == ("succeeded", 4, "feed.tsv")
    assert job.bytes_total == len(FEED)
    assert job.file.read() == FEED
    assert Product.objects.filter(store=store).count() == 4


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing.tsv", "The feed URL answered HTTP 404 Not Found: {url}"),
        ("/big.tsv", "The feed at {url} is larger than the limit of 1000 bytes."),
        ("/big-unannounced.tsv", "The feed at {url} is larger than the limit of 1000 bytes."),
        ("/slow.tsv", "The feed at {url} did not download within 1 seconds."),
    ],
)
def test_broken_feed_url_fails_the_job_with_a_clear_message(store, feed_server, path, message):
    url = feed_server + path
    job = _run(store, url)
    assert job.status == ImportJob.Status.FAILED
    assert job.error_message == message.format(url=url)
    assert not job.file
    assert Product.objects.count() == 0


def test_unreachable_host_fails_the_job(store, settings):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed.tsv"
    job = _run(store, url)
    assert job.status == ImportJob.Status.FAILED
    assert job.error_message.startswith("The feed URL cannot be reached (")
    assert job.error_message.endswith(f"): {url}")


def test_only_http_urls(store):
    job = _run(store, "ftp://127.0.0.1/feed.tsv")
    assert (job.status, job.error_message) == (
        "failed",
        "Only http:// and https:// feed URLs can be imported.",
    )
