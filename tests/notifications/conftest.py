"""Fixtures of the email tests: a real SMTP server, a recording broker, a worker, orders."""

from __future__ import annotations

import importlib
import socket
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from django.apps import apps as django_apps

from marketplace.models import Order, OrderLine
from notifications import tasks
from tests.conftest import Broker


@pytest.fixture(autouse=True)
def _platform_email_templates(request):
    """The platform templates seeded by migration 0002, for every database test here.

    A transactional test anywhere in the session flushes the tables, seeded rows
    included, so they are put back (get_or_create: idempotent) rather than assumed.
    """
    if "db" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        return
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (
        marker is not None and marker.kwargs.get("transaction")
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    migration = importlib.import_module("notifications.migrations.0002_default_templates")
    migration.seed(django_apps, None)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # Django 5.2 folds an encoded subject onto a continuation line ("Subject: \n
        # =?utf-8?q?...?="), which decodes with one leading space.
        return str(self.message["Subject"]).strip()

    def part(self, content_type: str) -> str:
        body = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert body is not None and body.get_content_type() == content_type
        return body.get_content()


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 Message accepted for delivery"


@dataclass
class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that keeps what it receives; stop() and start()
    simulate an outage (connection refused) on the same port."""

    port: int
    handler: _Handler = field(default_factory=_Handler)
    controller: Controller | None = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def refuse(self, address: str, reply: str = "550 5.1.1 <{}>: mailbox unavailable") -> None:
        self.handler.refuse[address] = reply.format(address)

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    """A running SMTP server, with Django's SMTP backend pointed at it."""
    server = SmtpServer(port=_free_port())
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


@pytest.fixture
def broker(monkeypatch) -> Broker:
    recorder = Broker()
    monkeypatch.setattr(tasks.send_email, "apply_async", recorder.apply_async)
    return recorder


@pytest.fixture
def worker(broker):
    """Run the send task in this process for every message the broker holds (countdowns
    ignored: the test decides when time has passed). Returns the task results."""

    def run() -> list[str]:
        return [tasks.send_email(*message["args"]) for message in broker.take()]

    return run


@pytest.fixture
def make_order(db):
    def make(store, *, email="anna@example.lu", locale="en", number=None, **fields) -> Order:
        number = number or f"{store.order_prefix}-2026-{Order.objects.count() + 1:06d}"
        address = {
            "first_name": "Anna",
            "last_name": "Muller",
            "street": "12 rue de la Gare",
            "postal_code": "L-1611",
            "city": "Luxembourg",
            "country": "LU",
        }
        order = Order.objects.create(
            store=store,
            number=number,
            email=email,
            locale=locale,
            billing_address=address,
            shipping_address=address,
            subtotal=Decimal("61.00"),
            shipping_total=Decimal("4.90"),
            vat_total=Decimal("6.08"),
            total=Decimal("65.90"),
            **fields,
        )
        OrderLine.objects.create(
            order=order,
            sku="RIES-22",
            title="Riesling Grand Premier Cru 2022",
            quantity=2,
            unit_price=Decimal("18.50"),
            vat_rate=Decimal("17.00"),
            line_total=Decimal("37.00"),
            vat_amount=Decimal("5.38"),
        )
        OrderLine.objects.create(
            order=order,
            title="Luxembourg cookbook",
            quantity=1,
            unit_price=Decimal("24.00"),
            vat_rate=Decimal("3.00"),
            line_total=Decimal("24.00"),
            vat_amount=Decimal("0.70"),
        )
        return order

    return make
