"""Emails per second through the real outbox worker code to a local SMTP server.

Queues N emails (default 2,000 order confirmations with their sample data) with
`queue_email`, then drains them with W threads each calling the `send_email` task
function, exactly what a Celery worker process runs, against an aiosmtpd server on
127.0.0.1. Prints the throughput and checks every message arrived exactly once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wz_mail python bench/outbox.py
    python bench/outbox.py --emails 2000 --workers 1 4 8     # embedded database when unset

The rows it creates (recipients @bench.invalid) are deleted at the end.
"""

from __future__ import annotations

import argparse
import logging
import queue
import socket
import threading
import time

import _django  # noqa: E402, F401 - sets up Django
from aiosmtpd.controller import Controller  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import override_settings  # noqa: E402

from notifications import selectors, services, tasks  # noqa: E402
from notifications.models import OutboundEmail  # noqa: E402


class Counter:
    def __init__(self) -> None:
        self.recipients: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def queue_emails(count: int, published: queue.Queue) -> list[int]:
    context = selectors.sample_context("order_confirmation")
    ids: list[int] = []
    for start in range(0, count, 500):
        with transaction.atomic():
            for n in range(start, min(start + 500, count)):
                email = services.queue_email(
                    "order_confirmation",
                    to=f"shopper{n}@bench.invalid",
                    context=context,
                    language=("en", "fr", "de")[n % 3],
                )
                ids.append(email.pk)
    assert published.qsize() == count, "every row is handed to the queue after commit"
    return ids


def drain(published: queue.Queue, workers: int) -> float:
    def work():
        try:
            while True:
                try:
                    email_id = published.get_nowait()
                except queue.Empty:
                    return
                tasks.send_email(email_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    # aiosmtpd logs every connection at INFO; measure the worker, not the server's logging.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    counter, port = Counter(), free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    published: queue.Queue = queue.Queue()
    # The broker: what queue_email hands to Celery after commit lands in this queue.
    tasks.send_email.apply_async = lambda args, **options: published.put(args[0])
    smtp = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 10,
    }
    try:
        with override_settings(**smtp):
            for workers in args.workers:
                counter.recipients.clear()
                ids = queue_emails(args.emails, published)
                seconds = drain(published, workers)
                sent = OutboundEmail.objects.filter(pk__in=ids, status="sent").count()
                duplicates = len(counter.recipients) - len(set(counter.recipients))
                print(
                    f"{args.emails} emails, {workers} worker thread(s): {seconds:.2f} s, "
                    f"{args.emails / seconds:.0f} emails/s "
                    f"(rows sent {sent}, received {len(counter.recipients)}, "
                    f"duplicates {duplicates})"
                )
                assert sent == len(counter.recipients) == args.emails and duplicates == 0
    finally:
        controller.stop()
        OutboundEmail.objects.filter(to__endswith="@bench.invalid").delete()


if __name__ == "__main__":
    main()
