"""Imports: writes that bring outside data into the catalogue."""

from __future__ import annotations

import io
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from django.db import DatabaseError

from imports.feeds import FeedError, FeedInfo, FeedRow, RowError, read_feed
from marketplace.models import LANGUAGE_CODES, Store
from marketplace.services import DomainError, upsert_product

logger = logging.getLogger(__name__)

__all__ = ["FeedError", "ImportReport", "RowError", "import_product_feed"]


@dataclass
class ImportReport:
    """What one import did. `read` counts data rows (valid or not); every row ends up in
    exactly one of created / updated / unchanged / rejected. `errors` may hold several
    entries for one rejected row (one per bad column)."""

    format: str = ""
    encoding: str = ""
    delimiter: str = ""
    language: str = "en"
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return (
            f"{self.read} rows read: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        )


Source = str | Path | bytes | BinaryIO | IO[bytes]


@contextmanager
def _open(source: Source):
    if isinstance(source, (str, Path)):
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise FeedError(f"Cannot read {source}: {exc.strerror or exc}") from exc
        with handle:
            yield handle
    elif isinstance(source, bytes):
        yield io.BytesIO(source)
    else:
        if hasattr(source, "seek"):
            source.seek(0)
        yield source


def import_product_feed(
    store: Store, source: Source, *, language: str = "en", actor=None
) -> ImportReport:
    """Import a Letzshop/Google feed or a Shopify export into `store`'s catalogue, the
    texts in `language`.

    `source` is a path, bytes or a binary file object; it is streamed, not loaded whole.
    Each valid row is upserted by (store, sku) through `upsert_product` in its own
    transaction, so a failing row never undoes the others; stock changes are recorded as
    `import` movements by `actor`. Idempotent: importing the same file again reports every
    row unchanged and writes nothing.

    Raises ValueError for an unknown language and FeedError when the file as a whole
    cannot be read (missing, empty, binary, unknown header); nothing is written then.
    Bad rows do not raise: they are counted and listed in the report.
    """
    if language not in LANGUAGE_CODES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGE_CODES}")
    info = FeedInfo()
    report = ImportReport(language=language)
    with _open(source) as stream:
        for row in read_feed(stream, currency=store.currency, info=info):
            if not report.format:
                report.format, report.delimiter = info.format, info.delimiter
            report.read += 1
            if not isinstance(row, FeedRow):
                report.rejected += 1
                report.errors.extend(row.errors)
                continue
            try:
                result = upsert_product(
                    store,
                    row.sku,
                    translations={language: {"title": row.title, "description": row.description}},
                    on_hand=row.on_hand,
                    actor=actor,
                    **row.fields,
                )
            except (DomainError, DatabaseError, ValueError) as exc:
                logger.warning(
                    "import into %s: line %s (%s) failed: %s", store.code, row.line, row.sku, exc
                )
                report.rejected += 1
                report.errors.append(RowError(row.line, "", row.sku, f"not saved: {exc}"))
                continue
            setattr(report, result.outcome, getattr(report, result.outcome) + 1)
    report.format = report.format or info.format
    report.delimiter = report.delimiter or info.delimiter
    report.encoding = info.encoding
    return report
