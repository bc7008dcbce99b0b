"""Downloads from URLs a store team gives us: feeds (`imports.services`) and product
images (`imports.images`).

A store manager chooses the URL, and the worker runs inside our network: without care
it could read internal services (the cloud metadata address, Redis, the admin of a
neighbouring host) or probe which ports are open. So every connection, the first and
each redirect alike, resolves its host once, refuses it unless every address is on the
public internet, and then connects to exactly those addresses (no second lookup a DNS
rebinding could answer differently; TLS still checks the certificate against the host
name). Proxies from the environment are not used: a proxy would resolve the host
itself. WIZAMART_FEED_ALLOW_PRIVATE_HOSTS lifts the address check for development.
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import ipaddress
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

from django.conf import settings

from imports.feeds import CHUNK, FeedError

ONLY_HTTP = "Only http:// and https:// feed URLs can be imported."
MAX_REDIRECTS = 5
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated; also :: and ::1


def _is_public_address(address: str) -> bool:
    """Whether `address` (an IP address as text) is a globally reachable unicast address:
    not loopback, private, shared, link-local (169.254.169.254), reserved, multicast or
    unspecified. An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64)
    is judged by that IPv4 address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _IPV4_COMPATIBLE:
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _is_public_address(str(embedded))
    return ip.is_global and not ip.is_multicast


def _public_addresses(host: str, port: int) -> list[tuple]:
    """The TCP addresses of `host` (socket.getaddrinfo). Raises FeedError when one of them
    is not public (unless WIZAMART_FEED_ALLOW_PRIVATE_HOSTS), OSError when the name does
    not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not settings.WIZAMART_FEED_ALLOW_PRIVATE_HOSTS and not all(
        _is_public_address(info[4][0]) for info in infos
    ):
        raise FeedError(
            f"The feed host {host} resolves to a private or local address; only public "
            "addresses can be fetched."
        )
    return infos


class _Deadline:
    """The end of one download, redirects included. A socket timeout bounds each read,
    not the whole: a server sending its headers a byte at a time would outlast it. So
    every connection opened under the deadline (`_connect_public`) is shut down when it
    passes, by a timer holding a duplicate of the socket's descriptor (TLS wraps the
    socket object, not the connection)."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self._watches: list[tuple[threading.Timer, int]] = []

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def watch(self, sock: socket.socket) -> None:
        descriptor = os.dup(sock.fileno())

        def cut() -> None:
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(descriptor)) as s:
                s.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(max(0.0, self.at - time.monotonic()), cut)
        timer.daemon = True
        self._watches.append((timer, descriptor))
        timer.start()

    def close(self) -> None:
        for timer, descriptor in self._watches:
            timer.cancel()
            timer.join()  # a cut under way ends before its descriptor is closed
            os.close(descriptor)


_DEADLINE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "wizamart_download_deadline", default=None
)


@contextlib.contextmanager
def download_deadline(seconds: float) -> Iterator[_Deadline]:
    """Connections opened by `public_opener()` inside this block are cut once `seconds`
    have passed (see _Deadline); `.at` is the end for `read_limited`."""
    deadline = _Deadline(seconds)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)
        deadline.close()


def _connect_public(address: tuple[str, int], timeout, source_address=None) -> socket.socket:
    """`socket.create_connection` for the feed downloader: the host's addresses are
    checked by `_public_addresses` and the socket connects to one of those, cut at the
    `download_deadline` when there is one."""
    host, port = address
    deadline = _DEADLINE.get()
    if deadline is not None:
        timeout = max(0.001, min(timeout, deadline.at - time.monotonic()))
    error: OSError = OSError(f"{host} has no address")
    for family, kind, proto, _name, sockaddr in _public_addresses(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
        else:
            if deadline is not None:
                deadline.watch(sock)
            return sock
    raise error


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_public


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_public


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows at most MAX_REDIRECTS redirects, to http(s) URLs only. The host of each is
    checked when it is connected to (`_connect_public`), like the first one."""

    max_repeats = max_redirections = MAX_REDIRECTS + 1  # our own count below decides

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri") or ""
        refusal = ""
        if urlsplit(urljoin(req.full_url, location)).scheme not in ("http", "https"):
            refusal = ONLY_HTTP
        elif sum(getattr(req, "redirect_dict", {}).values()) >= MAX_REDIRECTS:
            refusal = f"The feed URL redirects more than {MAX_REDIRECTS} times."
        if refusal:
            fp.close()
            raise FeedError(refusal)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def public_opener() -> urllib.request.OpenerDirector:
    """http(s) only (no ftp:, file: or data:), no proxy, every connection checked, at
    most MAX_REDIRECTS redirects. Raises FeedError on a refused address or redirect,
    urllib errors otherwise."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),
        _PublicHTTPHandler(),
        _PublicHTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        _RedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def check_feed_url(url: str) -> None:
    """Raise FeedError when `url` cannot be imported from: not http(s), or a host that
    resolves to an address that is not public. A host that does not resolve now passes
    (the download reports it). Reads nothing but DNS; the download checks again."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FeedError(ONLY_HTTP)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # the download refuses the URL with the generic message
    if parts.hostname:
        with contextlib.suppress(OSError, UnicodeError):
            _public_addresses(parts.hostname, port)


class TooLarge(Exception):
    """A download is larger than its limit."""


def read_limited(response, limit: int, deadline: float) -> Iterator[bytes]:
    """The body of an open HTTP `response` in chunks, raising TooLarge as soon as it is
    known to exceed `limit` bytes (by its Content-Length or by what arrived) and
    TimeoutError once `time.monotonic()` passes `deadline`. Reads what has arrived
    (`read1`), so a server sending a byte at a time meets the deadline too."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise TooLarge
    size = 0
    while chunk := response.read1(CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge
        if time.monotonic() > deadline:
            raise TimeoutError
        yield chunk
    # read1 returns b"" when the connection ends, early or not: an end before the
    # Content-Length, or one forced by the deadline (`download_deadline`), is no end.
    if time.monotonic() > deadline:
        raise TimeoutError
    if getattr(response, "length", None):
        raise http.client.IncompleteRead(b"", response.length)


def is_timeout(exc: BaseException, deadline: _Deadline) -> bool:
    """Whether a download failed for its time limit (a socket timeout, or a connection
    cut at the deadline), not for another reason."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, TimeoutError) or deadline.passed
