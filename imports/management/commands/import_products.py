"""`manage.py import_products --store CODE PATH [--language en]`"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from imports.feeds import FeedError
from imports.services import ImportBusy, import_product_feed
from marketplace.models import LANGUAGE_CODES, Store


class Command(BaseCommand):
    help = (
        "Import a product feed (Letzshop/Google Shopping TSV/CSV or Shopify export CSV) into "
        "a store. Prints the counts and every rejected line; re-running changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--store", required=True, help="the store's code")
        parser.add_argument("--language", default="en", choices=LANGUAGE_CODES)
        parser.add_argument("path", help="the feed file")

    def handle(self, *args, **options):
        try:
            store = Store.objects.get(code=options["store"])
        except Store.DoesNotExist:
            raise CommandError(f"Unknown store code {options['store']!r}.") from None
        try:
            report = import_product_feed(store, options["path"], language=options["language"])
        except (FeedError, ImportBusy) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{store.code}: {report.format} feed ({report.encoding}, "
            f"delimiter {report.delimiter!r}), language {report.language}"
        )
        for error in report.errors:
            column = f" [{error.column}]" if error.column else ""
            value = f" {error.value!r}" if error.value else ""
            self.stdout.write(f"  line {error.line}{column}{value}: {error.reason}")
        style = self.style.WARNING if report.rejected else self.style.SUCCESS
        self.stdout.write(style(report.summary))
