"""Feeds given by URL, served by a real HTTP server on 127.0.0.1 (never the internet).

Fetching from a local address is refused unless WIZAMART_FEED_ALLOW_PRIVATE_HOSTS: the
`feed_server` fixture allows it, `local_server` leaves it off (the production default)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imports import downloads
from imports.models import ImportJob
from imports.services import create_import_job, run_import_job
from marketplace.models import Product
from tests.imports.conftest import letzshop_feed

FEED = letzshop_feed(4)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        if self.path.startswith("/hop/"):  # /hop/3 -> /hop/2 -> /hop/1 -> /hop/0 -> feed
            left = int(self.path.removeprefix("/hop/"))
            self._redirect(f"/hop/{left - 1}" if left else "/feed.tsv")
        elif self.path == "/elsewhere":
            self._redirect(self.server.elsewhere)
        elif self.path == "/feed.tsv":
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
        elif self.path == "/drip.tsv":  # a byte every 0.3 s: each read is quick, the whole is not
            self.send_response(200)
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            with contextlib.suppress(ConnectionError):  # the client gives up
                for byte in FEED[:12]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.3)
        elif self.path == "/slow-headers.tsv":  # a header line every 0.4 s, for 8 s
            with contextlib.suppress(ConnectionError):
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for n in range(20):
                    self.wfile.write(f"X-Slow-{n}: 1\r\n".encode())
                    self.wfile.flush()
                    time.sleep(0.4)
        elif self.path == "/truncated.tsv":  # the connection ends before the Content-Length
            self.send_response(200)
            self.send_header("Content-Length", str(len(FEED) + 100))
            self.end_headers()
            self.wfile.write(FEED)
            self.close_connection = True
        else:
            self._send(404, b"not here")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    """`Handler` on a loopback address, keeping the path of every request it got."""

    daemon_threads = True

    def __init__(self, host: str):
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, 0), Handler)
        self.hits: list[str] = []
        self.elsewhere = ""  # where /elsewhere redirects to
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.server_address[1]}"


@pytest.fixture
def serve(settings):
    """Start `Server`s on the given loopback addresses; all stopped after the test."""
    settings.WIZAMART_FEED_MAX_BYTES = 1000
    settings.WIZAMART_FEED_TIMEOUT_SECONDS = 1
    settings.WIZAMART_FEED_ALLOW_PRIVATE_HOSTS = False
    servers = []

    def start(host: str = "127.0.0.1") -> Server:
        server = Server(host)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local_server(serve) -> Server:
    return serve()


@pytest.fixture
def feed_server(local_server, settings) -> str:
    settings.WIZAMART_FEED_ALLOW_PRIVATE_HOSTS = True
    return local_server.url


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
        ("/drip.tsv", "The feed at {url} did not download within 1 seconds."),
        ("/slow-headers.tsv", "The feed at {url} did not download within 1 seconds."),
        ("/truncated.tsv", "Could not download the feed: connection failed: {url}"),
    ],
)
def test_broken_feed_url_fails_the_job_with_a_clear_message(store, feed_server, path, message):
    url = feed_server + path
    job = _run(store, url)
    assert job.status == ImportJob.Status.FAILED
    assert job.error_message == message.format(url=url)
    assert not job.file
    assert Product.objects.count() == 0


def test_slow_headers_are_cut_at_the_time_limit(store, feed_server):
    # Each header line comes well within the socket timeout; the whole never would.
    started = time.monotonic()
    job = _run(store, feed_server + "/slow-headers.tsv")
    assert job.status == ImportJob.Status.FAILED
    assert time.monotonic() - started < 4  # the limit is 1 s; the headers would take 8 s


def _closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_fails_the_job(store, feed_server):
    url = f"http://127.0.0.1:{_closed_port()}/feed.tsv"
    job = _run(store, url)
    assert (job.status, job.error_message) == (
        "failed",
        f"Could not download the feed: connection failed: {url}",
    )


@pytest.fixture
def not_http_service():
    """A TCP service that is not HTTP (like Redis): it answers one line and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                with connection:
                    connection.recv(1024)
                    connection.sendall(b"-ERR unknown command 'GET', secret=hunter2\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.tsv"
    listener.close()


def test_closed_port_and_other_service_fail_alike(store, feed_server, not_http_service):
    closed = f"http://127.0.0.1:{_closed_port()}/feed.tsv"
    messages = [_run(store, url).error_message for url in (closed, not_http_service)]
    assert messages == [
        f"Could not download the feed: connection failed: {closed}",
        f"Could not download the feed: connection failed: {not_http_service}",
    ]


def test_only_http_urls(store):
    job = _run(store, "ftp://127.0.0.1/feed.tsv")
    assert (job.status, job.error_message) == (
        "failed",
        "Only http:// and https:// feed URLs can be imported.",
    )


def test_five_redirects_are_followed_a_sixth_is_refused(store, feed_server, local_server):
    job = _run(store, f"{feed_server}/hop/4")  # 5 redirects: hop/4 ... hop/0 -> feed.tsv
    assert (job.status, job.rows_created) == ("succeeded", 4)

    local_server.hits.clear()
    job = _run(store, f"{feed_server}/hop/5")
    assert (job.status, job.error_message) == (
        "failed",
        "The feed URL redirects more than 5 times.",
    )
    assert local_server.hits == ["/hop/5", "/hop/4", "/hop/3", "/hop/2", "/hop/1", "/hop/0"]


def test_redirect_to_another_scheme_is_refused(store, feed_server, local_server):
    local_server.elsewhere = "file:///etc/passwd"
    job = _run(store, f"{feed_server}/elsewhere")
    assert (job.status, job.error_message) == (
        "failed",
        "Only http:// and https:// feed URLs can be imported.",
    )
    assert not job.file


# --- local addresses (WIZAMART_FEED_ALLOW_PRIVATE_HOSTS off) --------------------------


def _refused(host: str) -> str:
    return (
        f"The feed host {host} resolves to a private or local address; only public "
        "addresses can be fetched."
    )


def _assert_refused(job: ImportJob, host: str) -> None:
    assert (job.status, job.error_message) == ("failed", _refused(host))
    assert (job.rows_read, job.bytes_total) == (0, 0)
    assert not job.file
    assert Product.objects.count() == 0


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_loopback_feed_is_refused_without_a_request(store, serve, address):
    server = serve(address)
    job = _run(store, f"{server.url}/feed.tsv")
    _assert_refused(job, address)
    assert server.hits == []


def test_localhost_by_name_is_refused_without_a_request(store, local_server):
    job = _run(store, f"http://localhost:{local_server.server_address[1]}/feed.tsv")
    _assert_refused(job, "localhost")
    assert local_server.hits == []


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::1]/feed.tsv", "::1"),
        ("http://10.0.0.5:6379/", "10.0.0.5"),
        ("http://[::ffff:127.0.0.1]/feed.tsv", "::ffff:127.0.0.1"),
        ("http://0.0.0.0/feed.tsv", "0.0.0.0"),
    ],
)
def test_internal_addresses_are_refused(store, serve, url, host):
    job = _run(store, url)
    _assert_refused(job, host)


def test_redirect_from_a_public_host_to_a_local_one_is_refused(store, serve, monkeypatch):
    # 127.0.0.2 stands for a public host: the first hop is allowed, the redirect is not.
    public = serve("127.0.0.2")
    internal = serve("127.0.0.1")
    is_public = downloads._is_public_address
    monkeypatch.setattr(downloads, "_is_public_address", lambda a: a == "127.0.0.2" or is_public(a))
    public.elsewhere = f"{internal.url}/feed.tsv"

    job = _run(store, f"{public.url}/elsewhere")

    _assert_refused(job, "127.0.0.1")
    assert (public.hits, internal.hits) == (["/elsewhere"], [])


def test_a_host_with_one_private_address_among_public_ones_is_refused(store, serve, monkeypatch):
    def getaddrinfo(host, port, *args, **kwargs):
        assert host == "feeds.example.com"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    job = _run(store, "https://feeds.example.com/feed.tsv")
    _assert_refused(job, "feeds.example.com")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("::ffff:93.184.216.34", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::", False),
        ("::1", False),
        ("::127.0.0.1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),
        ("64:ff9b::a9fe:a9fe", False),
    ],
)
def test_public_address_rule(address, public):
    assert downloads._is_public_address(address) is public
