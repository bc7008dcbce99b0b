"""Imports: writes that bring outside data into the catalogue, and the feeds we give out.

The import is the batched writer of catalogue rows. `write_product_batch` and
`write_stock_batch` apply up to a batch (BATCH_SIZE rows) in one short transaction with
the rules of `marketplace.services.upsert_product` / `set_stock_on_hand`: write only what
differs (unchanged rows are not touched: no UPDATE, no `updated_at` bump, no stock
movement), keep `search_document` correct with
`marketplace.services.build_search_document`, record every stock change as an `import`
StockMovement, and never set stock on hand below the units reserved by open orders
(such a row is rejected with the reason). Stock rows are locked (primary-key order, like
checkout) only for the products whose stock changes. The product writer stages its rows
with COPY and compares and writes them set-based in SQL (see `write_product_batch`).

`run_import_job` is the worker side of an ImportJob: one job per store at a time (a
PostgreSQL advisory lock), progress written after every batch, safe to run again after a
killed worker (the upsert on (store, sku) duplicates nothing).
"""

from __future__ import annotations

import contextlib
import csv
import hmac
import http.client
import io
import itertools
import json
import logging
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, NamedTuple, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from imports.downloads import (
    ONLY_HTTP,
    TooLarge,
    check_feed_url,
    download_deadline,
    is_timeout,
    public_opener,
    read_limited,
)
from imports.feeds import (
    LETZSHOP,
    SHOPIFY,
    STOCK,
    FeedError,
    FeedInfo,
    FeedRow,
    RejectedRow,
    RowError,
    StockRow,
    _normalise,
    read_feed,
    stock_columns,
    write_csv_row,
)
from imports.models import FeedExportToken, ImportJob, ImportRowError
from marketplace.models import (
    LANGUAGE_CODES,
    Product,
    ProductTranslation,
    Stock,
    StockMovement,
    Store,
)
from marketplace.services import PRODUCT_FIELDS, build_search_document, differs
from wizamart.locks import try_advisory_lock

logger = logging.getLogger(__name__)

__all__ = [
    "FeedError",
    "ImportBusy",
    "ImportReport",
    "RowError",
    "check_feed_url",
    "create_import_job",
    "export_product_feed",
    "fail_queued_job",
    "import_product_feed",
    "run_import_job",
]

BATCH_SIZE = 5000


class ImportBusy(Exception):
    """Another import of the same store is running; try again later."""


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


@dataclass
class BatchResult:
    """Outcome of one batch: counts, and the errors of the rows it rejected."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        self.errors.extend(other.errors)


Source = str | Path | bytes | BinaryIO | IO[bytes]


@contextlib.contextmanager
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


class _CountingReader:
    """A binary stream that counts the bytes read from it (for progress)."""

    def __init__(self, raw):
        self.raw = raw
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.bytes_read += len(data)
        return data


# --- the batched writer ---------------------------------------------------------------


def _stock_refusal(sku: str, on_hand: int, reserved: int) -> str:
    return f"{sku}: cannot set stock to {on_hand}, {reserved} units are reserved by open orders."


def _lock_stocks(product_ids: Iterable[int]) -> dict[int, Stock]:
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    return {
        s.product_id: s
        for s in Stock.objects.select_for_update().filter(product_id__in=ids).order_by("pk")
    }


def _movement(product_id: int, stock: Stock, delta: int, actor, note: str) -> StockMovement:
    return StockMovement(
        product_id=product_id,
        kind=StockMovement.Kind.IMPORT,
        on_hand_delta=delta,
        reserved_delta=0,
        on_hand_after=stock.on_hand,
        reserved_after=stock.reserved,
        actor=actor,
        note=note,
    )


def _split_and_retry(writer, store: Store, rows: list, exc: Exception, **kwargs) -> BatchResult:
    """A batch the database refused (a concurrent writer, a constraint): write each half
    in its own transaction, recursively, so one bad row never loses the others and is
    found in log2(batch) retries. A single row that fails is rejected with the reason."""
    if len(rows) == 1:
        row = rows[0]
        logger.warning(
            "import into %s: line %s (%s) failed: %s", store.code, row.line, row.sku, exc
        )
        return BatchResult(
            rejected=1, errors=[RowError(row.line, "", row.sku, f"not saved: {exc}")]
        )
    result = BatchResult()
    middle = len(rows) // 2
    for half in (rows[:middle], rows[middle:]):
        result.add(writer(store, half, **kwargs))
    return result


def write_product_batch(
    store: Store,
    rows: list[FeedRow],
    *,
    language: str,
    actor=None,
    note: str = "",
    quantity_column: str = "quantity",
) -> BatchResult:
    """Create or update the products of `rows` (unique SKUs) in `store`, their texts in
    `language` and, when a row has a quantity, their stock, in one transaction.

    The rows are copied (COPY) into a temporary staging table and compared with the
    catalogue in SQL, so the cost of a batch does not grow with what is unchanged:

    * a new SKU creates its product (with the store's currency and VAT rate unless the
      row gives them), its text, its stock (the quantity, else 0) and an `import`
      StockMovement when that is not 0;
    * an existing product is written only where it differs: its fields and
      `updated_at` when a field or its text in `language` differs, the text when it
      differs, the stock (locked in primary-key order) and an `import` movement when the
      quantity differs. `search_document` is rebuilt with `build_search_document` from
      all its languages whenever the product is written;
    * a row whose quantity is below the units reserved by open orders is rejected with
      the reason and nothing of it is written;
    * an unchanged row writes nothing at all (not even `updated_at`).

    Statements: staging table, COPY, one comparison; a stock lock and a staging update
    only when existing products differ; one statement for all writes, skipped when there
    is nothing to write. If the database refuses the batch, each half is retried on its
    own (see `_split_and_retry`). Raises ValueError on an unknown product field.
    Idempotent.
    """
    try:
        with transaction.atomic(), connection.wrap_database_errors:
            result = BatchResult()
            # Rows of one feed share their fields; a caller's mixed batch is split.
            by_fields: dict[tuple[str, ...], list[FeedRow]] = {}
            for row in rows:
                by_fields.setdefault(tuple(sorted(row.fields)), []).append(row)
            for names, group in by_fields.items():
                unknown = set(names) - PRODUCT_FIELDS
                if unknown:
                    raise ValueError(f"unknown product fields: {', '.join(sorted(unknown))}")
                writer = _ProductWriter(store, names, language, actor, note, quantity_column)
                result.add(writer.write(group))
            return result
    except DatabaseError as exc:
        return _split_and_retry(
            write_product_batch, store, rows, exc,
            language=language, actor=actor, note=note, quantity_column=quantity_column,
        )  # fmt: skip


_STAGE = "import_product_stage"
_PRODUCT = Product._meta.db_table
_TEXT = ProductTranslation._meta.db_table
_STOCK = Stock._meta.db_table
_MOVEMENT = StockMovement._meta.db_table
_JSON_FIELDS = {
    f.name for f in Product._meta.concrete_fields if f.get_internal_type() == "JSONField"
}


class _SearchKeys(NamedTuple):
    """What `build_search_document` reads of a product."""

    sku: str
    gtin: str
    brand: str
    mpn: str


class _Text(NamedTuple):
    """What `build_search_document` reads of a translation."""

    language: str
    title: str
    description: str


def _search_document(row: FeedRow, texts: list[_Text]) -> str:
    fields = row.fields
    keys = _SearchKeys(
        row.sku, fields.get("gtin", ""), fields.get("brand", ""), fields.get("mpn", "")
    )
    return build_search_document(cast(Product, keys), cast(list[ProductTranslation], texts))


class _Difference(NamedTuple):
    """How a staged row differs from the catalogue (`product_id` None: a new SKU)."""

    line: int
    product_id: int | None
    product_differs: bool | None
    text_differs: bool | None
    stock_differs: bool | None
    other_texts: list[list[str]] | None  # [language, title, description] of the others


class _ProductWriter:
    """One batch of `write_product_batch` whose rows give the product fields `names`.

    The staging table holds a row's values under the product's own column names and
    types, then what the comparison decided for an existing product that differs: its
    id, the write_* flags, its locked stock (old_on_hand, reserved) and its rebuilt
    search document. Every join to the catalogue goes through a unique index (by
    (store, sku) per staged row, or by primary key): planner statistics of a store
    that is being filled by this very import are always stale."""

    def __init__(self, store, names, language, actor, note, quantity_column):
        self.store, self.names, self.language = store, list(names), language
        self.actor, self.note, self.quantity_column = actor, note, quantity_column
        self.columns = [Product._meta.get_field(n).column for n in self.names]
        self.params = {"store": store.pk, "language": language, "now": timezone.now()}

    def write(self, rows: list[FeedRow]) -> BatchResult:
        result = BatchResult()
        by_line = {r.line: r for r in rows}
        with connection.cursor() as cursor:
            self._stage(cursor, rows)
            differences = self._compare(cursor)
            new = [d.line for d in differences if d.product_id is None]
            changed = [d for d in differences if d.product_id is not None]
            stocks = self._lock_stock(cursor, changed)
            for d in changed:
                row = by_line[d.line]
                reserved = stocks.get(d.line, (0, 0))[1]
                if d.stock_differs and row.on_hand < reserved:
                    result.rejected += 1
                    result.errors.append(
                        RowError(
                            d.line,
                            self.quantity_column,
                            str(row.on_hand),
                            _stock_refusal(row.sku, row.on_hand, reserved),
                        )
                    )
            if result.rejected:
                refused = {e.line for e in result.errors}
                changed = [d for d in changed if d.line not in refused]
            if changed:
                self._mark_changes(cursor, changed, by_line, stocks)
            if new or changed:
                result.created = self._write(cursor, new)
        result.updated = len(changed)
        result.unchanged = len(rows) - result.created - result.updated - result.rejected
        return result

    def _stage(self, cursor, rows: list[FeedRow]) -> None:
        types = [Product._meta.get_field(n).db_type(connection) for n in self.names]
        columns = "".join(f"{c} {t}, " for c, t in zip(self.columns, types, strict=True))
        cursor.execute(
            # JIT compiling costs more than these short, index-driven statements run.
            "SET LOCAL jit = off; "
            f"DROP TABLE IF EXISTS pg_temp.{_STAGE}; "
            f"CREATE TEMP TABLE {_STAGE} (line integer PRIMARY KEY, sku text NOT NULL, "
            "title text NOT NULL, description text NOT NULL, on_hand integer, "
            f"search_document text NOT NULL, {columns}product_id bigint, "
            "write_product boolean NOT NULL DEFAULT false, "
            "write_text boolean NOT NULL DEFAULT false, "
            "write_stock boolean NOT NULL DEFAULT false, "
            "old_on_hand integer NOT NULL DEFAULT 0, reserved integer NOT NULL DEFAULT 0"
            ") ON COMMIT DROP"
        )
        staged = ", ".join(
            ["line", "sku", "title", "description", "on_hand", "search_document", *self.columns]
        )
        json_at = [i for i, n in enumerate(self.names) if n in _JSON_FIELDS]
        language = self.language
        with cursor.cursor.copy(f"COPY {_STAGE} ({staged}) FROM STDIN") as copy:
            for r in rows:
                title, description = r.title.strip(), r.description or ""
                values = [r.fields[n] for n in self.names]
                for i in json_at:
                    values[i] = json.dumps(values[i])
                document = _search_document(r, [_Text(language, title, description)])
                copy.write_row((r.line, r.sku, title, description, r.on_hand, document, *values))

    def _compare(self, cursor) -> list[_Difference]:
        """Every staged row that is new or differs from its product, in line order.
        (The rows compared end in a constant so that no product fields is valid SQL.)"""
        current = "".join(f"p.{c}, " for c in self.columns)
        staged = "".join(f"s.{c}, " for c in self.columns)
        cursor.execute(
            f"""
            SELECT s.line, d.product_id, d.product_differs, d.text_differs, d.stock_differs,
                CASE WHEN d.product_id IS NOT NULL THEN ARRAY(
                    SELECT ARRAY[o.language, o.title, o.description] FROM {_TEXT} o
                    WHERE o.product_id = d.product_id AND o.language <> %(language)s
                ) END
            FROM {_STAGE} s
            LEFT JOIN LATERAL (
                SELECT p.id AS product_id,
                    ({current}0) IS DISTINCT FROM ({staged}0) AS product_differs,
                    t.id IS NULL OR (t.title, t.description)
                        IS DISTINCT FROM (s.title, s.description) AS text_differs,
                    s.on_hand IS NOT NULL
                        AND st.on_hand IS DISTINCT FROM s.on_hand AS stock_differs
                FROM {_PRODUCT} p
                LEFT JOIN {_TEXT} t ON t.product_id = p.id AND t.language = %(language)s
                LEFT JOIN {_STOCK} st ON st.product_id = p.id
                WHERE p.store_id = %(store)s AND p.sku = s.sku
            ) d ON true
            WHERE d.product_id IS NULL OR d.product_differs OR d.text_differs OR d.stock_differs
            ORDER BY s.line
            """,  # noqa: S608
            self.params,
        )
        return [_Difference(*values) for values in cursor.fetchall()]

    def _lock_stock(self, cursor, changed: list[_Difference]) -> dict[int, tuple[int, int]]:
        """Lock the stock rows the batch changes, in primary-key order like checkout:
        {line: (on hand, reserved)} of those that exist."""
        wanted = [d for d in changed if d.stock_differs]
        if not wanted:
            return {}
        cursor.execute(
            f"SELECT c.line, st.on_hand, st.reserved FROM {_STOCK} st "  # noqa: S608
            "JOIN unnest(%s::bigint[], %s::integer[]) AS c(product_id, line) "
            "ON st.product_id = c.product_id ORDER BY st.product_id FOR UPDATE OF st",
            [[d.product_id for d in wanted], [d.line for d in wanted]],
        )
        return {line: (on_hand, reserved) for line, on_hand, reserved in cursor.fetchall()}

    def _mark_changes(self, cursor, changed: list[_Difference], by_line, stocks) -> None:
        """Record on the staging rows of existing products what to write, with their
        locked stock and their search document rebuilt from all their languages."""
        marks: list[list] = [[] for _ in range(8)]
        for d in changed:
            row = by_line[d.line]
            texts = [_Text(*t) for t in d.other_texts or ()]
            texts.append(_Text(self.language, row.title.strip(), row.description or ""))
            old_on_hand, reserved = stocks.get(d.line, (0, 0))
            values = (
                d.line,
                d.product_id,
                _search_document(row, texts),
                bool(d.product_differs or d.text_differs),
                bool(d.text_differs),
                bool(d.stock_differs),
                old_on_hand,
                reserved,
            )
            for column, value in zip(marks, values, strict=True):
                column.append(value)
        cursor.execute(
            f"UPDATE {_STAGE} s SET product_id = c.product_id, "  # noqa: S608
            "search_document = c.search_document, write_product = c.write_product, "
            "write_text = c.write_text, write_stock = c.write_stock, "
            "old_on_hand = c.old_on_hand, reserved = c.reserved "
            "FROM unnest(%s::integer[], %s::bigint[], %s::text[], %s::boolean[], "
            "%s::boolean[], %s::boolean[], %s::integer[], %s::integer[]) "
            "AS c(line, product_id, search_document, write_product, write_text, write_stock, "
            "old_on_hand, reserved) WHERE s.line = c.line",
            marks,
        )

    def _write(self, cursor, new: list[int]) -> int:
        """Every write of the batch in one statement: the products of the `new` lines
        with their text, stock and movement, and what `_mark_changes` recorded for
        existing ones. Returns the number of products created."""
        params = {
            **self.params,
            "new": new,
            "kind": StockMovement.Kind.IMPORT,
            "actor": self.actor.pk if self.actor is not None else None,
            "note": self.note,
        }
        columns, values = (
            ["public_id", "store_id", "sku"],
            ["gen_random_uuid()", "%(store)s", "s.sku"],
        )
        constants = {"currency": self.store.currency, "vat_rate": self.store.default_vat_rate}
        for f in Product._meta.concrete_fields:
            if f.primary_key or f.generated or f.column in columns:
                continue
            columns.append(f.column)
            if f.name in self.names or f.name == "search_document":
                values.append(f"s.{f.column}")
            elif f.name in ("created_at", "updated_at"):
                values.append("%(now)s")
            else:
                value = constants[f.name] if f.name in constants else f.get_default()
                params[f.column] = f.get_db_prep_save(value, connection)
                values.append(f"%({f.column})s::{f.db_type(connection)}")
        updated = "".join(f"{c}, " for c in self.columns)
        staged = "".join(f"s.{c}, " for c in self.columns)
        cursor.execute(
            f"""
            WITH created AS (
                INSERT INTO {_PRODUCT} ({", ".join(columns)})
                SELECT {", ".join(values)} FROM {_STAGE} s
                WHERE s.line = ANY(%(new)s) ORDER BY s.line
                RETURNING id, sku
            ), updated AS (
                UPDATE {_PRODUCT} p SET ({updated}search_document, updated_at)
                    = ({staged}s.search_document, %(now)s)
                FROM {_STAGE} s WHERE s.write_product AND p.id = s.product_id
            ), written AS (
                SELECT c.id AS product_id, true AS write_text, true AS write_stock,
                    s.title, s.description, coalesce(s.on_hand, 0) AS on_hand,
                    0 AS old_on_hand, 0 AS reserved
                FROM created c JOIN {_STAGE} s ON s.sku = c.sku
                UNION ALL
                SELECT product_id, write_text, write_stock, title, description, on_hand,
                    old_on_hand, reserved
                FROM {_STAGE} WHERE product_id IS NOT NULL
            ), texts AS (
                INSERT INTO {_TEXT} (product_id, language, title, description)
                SELECT product_id, %(language)s, title, description FROM written
                WHERE write_text
                ON CONFLICT (product_id, language) DO UPDATE
                SET title = EXCLUDED.title, description = EXCLUDED.description
            ), stocks AS (
                INSERT INTO {_STOCK} (product_id, on_hand, reserved, updated_at)
                SELECT product_id, on_hand, reserved, %(now)s FROM written WHERE write_stock
                ON CONFLICT (product_id) DO UPDATE
                SET on_hand = EXCLUDED.on_hand, updated_at = EXCLUDED.updated_at
            ), movements AS (
                INSERT INTO {_MOVEMENT} (product_id, kind, on_hand_delta, reserved_delta,
                    on_hand_after, reserved_after, actor_id, note, created_at)
                SELECT product_id, %(kind)s, on_hand - old_on_hand, 0, on_hand, reserved,
                    %(actor)s, %(note)s, %(now)s
                FROM written WHERE write_stock AND on_hand <> old_on_hand
            )
            SELECT count(*) FROM created
            """,  # noqa: S608
            params,
        )
        return cursor.fetchone()[0]


def write_stock_batch(
    store: Store, rows: list[StockRow], *, actor=None, note: str = "", sku_column: str = "sku",
    quantity_column: str = "quantity",
) -> BatchResult:  # fmt: skip
    """Set stock on hand and/or price of existing products of `store` from a stock file,
    in one transaction. An unknown SKU, or a quantity below the reserved units, rejects
    its row. Unchanged rows are not written. Idempotent."""
    try:
        with transaction.atomic():
            return _write_stock_batch(store, rows, actor, note, sku_column, quantity_column)
    except DatabaseError as exc:
        return _split_and_retry(
            write_stock_batch, store, rows, exc,
            actor=actor, note=note, sku_column=sku_column, quantity_column=quantity_column,
        )  # fmt: skip


def _write_stock_batch(store, rows, actor, note, sku_column, quantity_column) -> BatchResult:
    result = BatchResult()
    products = {
        p.sku: p
        for p in Product.objects.filter(store=store, sku__in=[r.sku for r in rows]).only(
            "pk", "sku", "price"
        )
    }
    known = [r for r in rows if r.sku in products]
    for r in rows:
        if r.sku not in products:
            result.rejected += 1
            result.errors.append(
                RowError(r.line, sku_column, r.sku, "unknown SKU: this store has no such product")
            )
    ids = [products[r.sku].pk for r in known if r.on_hand is not None]
    stocks = {s.product_id: s for s in Stock.objects.filter(product_id__in=ids)}
    wanted = {
        products[r.sku].pk
        for r in known
        if r.on_hand is not None
        and (products[r.sku].pk not in stocks or stocks[products[r.sku].pk].on_hand != r.on_hand)
    }
    if wanted:
        stocks.update(_lock_stocks(wanted))
    now = timezone.now()
    changed_products, new_stocks, changed_stocks, movements = [], [], [], []
    for r in known:
        product = products[r.sku]
        changed = False
        if product.pk in wanted:
            stock = stocks.get(product.pk)
            if stock is not None and r.on_hand < stock.reserved:
                result.rejected += 1
                result.errors.append(
                    RowError(
                        r.line,
                        quantity_column,
                        str(r.on_hand),
                        _stock_refusal(r.sku, r.on_hand, stock.reserved),
                    )
                )
                continue
            if stock is None:
                stock = Stock(product_id=product.pk, on_hand=r.on_hand)
                new_stocks.append(stock)
                delta = r.on_hand
            else:
                delta = r.on_hand - stock.on_hand
                stock.on_hand, stock.updated_at = r.on_hand, now
                changed_stocks.append(stock)
            if delta:
                movements.append(_movement(product.pk, stock, delta, actor, note))
            changed = True
        if r.price is not None and differs(product.price, r.price):
            product.price, product.updated_at = r.price, now
            changed_products.append(product)
            changed = True
        if changed:
            result.updated += 1
        else:
            result.unchanged += 1
    if changed_products:
        Product.objects.bulk_update(changed_products, ["price", "updated_at"])
    if new_stocks:
        Stock.objects.bulk_create(new_stocks)
    if changed_stocks:
        Stock.objects.bulk_update(changed_stocks, ["on_hand", "updated_at"])
    if movements:
        StockMovement.objects.bulk_create(movements)
    return result


# --- reading a feed in batches ---------------------------------------------------------


def _import_stream(
    store: Store,
    stream,
    *,
    language: str,
    actor,
    report: ImportReport,
    info: FeedInfo,
    kind: str = "",
    note: str = "",
    batch_size: int = BATCH_SIZE,
    after_batch: Callable[[BatchResult], None] | None = None,
    after_commit: Callable[[], None] | None = None,
) -> None:
    """Read `stream`, write its valid rows in batches and count everything in `report`.

    `after_batch(result)` runs inside each batch's transaction, after its writes, with
    what the batch did (parser rejections included): progress and errors are committed
    together with the rows they describe. `after_commit()` runs after each batch's
    transaction. Raises FeedError when the file cannot be read or is not of the
    expected `kind`.
    """
    rows = read_feed(stream, currency=store.currency, info=info)
    first = next(rows, None)  # reads the header: format detected or FeedError
    report.format, report.delimiter = info.format, info.delimiter
    detected = ImportJob.Kind.STOCK_AND_PRICE if info.format == STOCK else ImportJob.Kind.PRODUCTS
    if kind and kind != detected:
        raise FeedError(
            f"This is a {ImportJob.Kind(detected).label.lower()} file, "
            f"not a {ImportJob.Kind(kind).label.lower()} file."
        )
    # The column a row error about the quantity or the SKU names.
    sku_column = "sku"
    if info.format == SHOPIFY:
        quantity_column = "Variant Inventory Qty"
    elif info.format == LETZSHOP:
        quantity_column = next((c for c in info.columns if _normalise(c) == "quantity"), "quantity")
    else:
        columns = stock_columns(info.columns)
        sku_column, quantity_column = columns.sku, columns.quantity or "quantity"

    pending: list = []
    parsed = BatchResult()

    def flush() -> None:
        with transaction.atomic():
            if not pending:
                result = BatchResult()
            elif info.format == STOCK:
                result = write_stock_batch(
                    store, pending, actor=actor, note=note, sku_column=sku_column,
                    quantity_column=quantity_column,
                )  # fmt: skip
            else:
                result = write_product_batch(
                    store, pending, language=language, actor=actor, note=note,
                    quantity_column=quantity_column,
                )  # fmt: skip
            result.add(parsed)
            result.errors.sort(key=lambda e: e.line)
            report.created += result.created
            report.updated += result.updated
            report.unchanged += result.unchanged
            report.rejected += result.rejected
            report.errors.extend(result.errors)
            if after_batch is not None:
                after_batch(result)
        pending.clear()
        parsed.__init__()
        if after_commit is not None:
            after_commit()

    count = 0
    for row in itertools.chain([first], rows) if first is not None else ():
        report.read += 1
        count += 1
        if isinstance(row, RejectedRow):
            parsed.rejected += 1
            parsed.errors.extend(row.errors)
        else:
            pending.append(row)
        if count >= batch_size:
            flush()
            count = 0
    if count or report.read == 0:
        flush()
    report.encoding = info.encoding


def import_product_feed(
    store: Store, source: Source, *, language: str = "en", actor=None, batch_size: int = BATCH_SIZE
) -> ImportReport:
    """Import a Letzshop/Google feed, a Shopify export or a stock and price file into
    `store`'s catalogue, the texts in `language`, in the calling process.

    `source` is a path, bytes or a binary file object; it is streamed, not loaded whole,
    and written in batches (`write_product_batch`), each in its own transaction. Stock
    changes are `import` movements by `actor`. Idempotent: importing the same file again
    reports every row unchanged and writes nothing. Big files go through an ImportJob.

    Raises ValueError for an unknown language, ImportBusy while another import of the
    store runs (the same advisory lock as jobs), and FeedError when the file as a whole
    cannot be read (missing, empty, binary, unknown header); nothing is written then.
    Bad rows do not raise: they are counted and listed in the report.
    """
    if language not in LANGUAGE_CODES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGE_CODES}")
    info = FeedInfo()
    report = ImportReport(language=language)
    with try_advisory_lock(_LOCK_NAMESPACE, store.pk) as acquired, _open(source) as stream:
        if not acquired:
            raise ImportBusy(_busy(store))
        _import_stream(
            store, stream, language=language, actor=actor, report=report, info=info,
            batch_size=batch_size,
        )  # fmt: skip
    return report


def _busy(store: Store) -> str:
    return f"Another import of store {store.code} is running; try again when it has finished."


# --- import jobs ----------------------------------------------------------------------

# Namespace of the advisory locks taken by imports: (namespace, store id).
_LOCK_NAMESPACE = 0x494D50  # "IMP"


def create_import_job(
    store: Store,
    *,
    file=None,
    source_url: str = "",
    language: str = "en",
    kind: str = "",
    created_by=None,
) -> ImportJob:
    """Record an ImportJob for `file` (an uploaded/Django File, stored on the default
    storage now) or `source_url` (downloaded by the worker), and queue `run_import` on
    the `imports` queue after commit.

    `kind` "" means detect it from the header. Raises ValueError for an unknown language
    or kind, or when neither or both of file and source_url are given.
    """
    if language not in LANGUAGE_CODES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGE_CODES}")
    if kind and kind not in ImportJob.Kind.values:
        raise ValueError(f"unknown kind {kind!r}")
    if (file is None) == (not source_url):
        raise ValueError("give either a file or a source URL")
    job = ImportJob(
        store=store,
        kind=kind,
        language=language,
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
        task_id=str(uuid.uuid4()),
    )
    if file is not None:
        name = Path(getattr(file, "name", "") or "feed.csv").name
        job.source, job.original_name = ImportJob.Source.UPLOAD, name[:255]
        # Storage is written before the transaction (never inside it).
        job.file.save(f"{store.code}-{name}", file, save=False)
        job.bytes_total = job.file.size
    else:
        job.source, job.source_url = ImportJob.Source.URL, source_url
        job.original_name = Path(urlsplit(source_url).path).name[:255]
    with transaction.atomic():
        job.save()
        _queue(job)
    return job


def _queue(job: ImportJob) -> None:
    def send() -> None:
        from imports.tasks import run_import

        try:
            run_import.apply_async(args=[job.pk], task_id=job.task_id)
        except Exception:
            logger.exception("could not queue import job %s", job.public_id)
            fail_queued_job(job.pk, QUEUE_UNREACHABLE)

    transaction.on_commit(send)


QUEUE_UNREACHABLE = (
    "The task queue could not be reached, so the import did not start: run it again."
)


def fail_queued_job(job_id: int, message: str) -> bool:
    """Mark job `job_id` failed with `message` if it is still queued (its task could not
    be sent, or gave up waiting for another import of the store), so that nobody waits
    for it and "Run again" applies. Returns whether it was."""
    return bool(
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
            status=ImportJob.Status.FAILED, error_message=message, finished_at=timezone.now()
        )
    )


def run_job_again(job: ImportJob) -> bool:
    """Queue `job` once more (after commit): a finished one, one left running by a dead
    worker, or a queued one whose task was lost (a broker restarted); a second task for
    the same job is a no-op. A job shown running while its store's import lock is held
    is really running: it is left alone and False returned."""
    with transaction.atomic():
        current = ImportJob.objects.select_for_update().get(pk=job.pk)
        if current.status == ImportJob.Status.RUNNING:
            with try_advisory_lock(_LOCK_NAMESPACE, current.store_id) as free:
                if not free:
                    return False
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.QUEUED, task_id=str(uuid.uuid4())
        )
        job.refresh_from_db()
        _queue(job)
    return True


# --- downloading a feed (the safe downloader is imports.downloads) ----------------------


def _download(url: str, target: IO[bytes]) -> int:
    """Stream `url` into `target` within WIZAMART_FEED_TIMEOUT_SECONDS and
    WIZAMART_FEED_MAX_BYTES, following up to MAX_REDIRECTS redirects, connecting only to
    public addresses (see above). Returns the size. Raises FeedError saying what went
    wrong; every connection failure gives the same message, so that the result does not
    tell which hosts or ports exist."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FeedError(ONLY_HTTP)
    limit = settings.WIZAMART_FEED_MAX_BYTES
    timeout = settings.WIZAMART_FEED_TIMEOUT_SECONDS
    too_big = f"The feed at {url} is larger than the limit of {limit} bytes."
    timed_out = f"The feed at {url} did not download within {timeout} seconds."
    failed = f"Could not download the feed: connection failed: {url}"
    request = urllib.request.Request(url, headers={"User-Agent": "Wizamart feed importer"})
    total = 0
    try:
        with (
            download_deadline(timeout) as deadline,
            public_opener().open(request, timeout=timeout) as response,
        ):
            for chunk in read_limited(response, limit, deadline.at):
                total += len(chunk)
                target.write(chunk)
    except TooLarge:
        raise FeedError(too_big) from None
    except urllib.error.HTTPError as exc:
        raise FeedError(f"The feed URL answered HTTP {exc.code} {exc.reason}: {url}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if is_timeout(exc, deadline):
            raise FeedError(timed_out) from None
        # Refused, reset, not HTTP at all, a TLS failure, a bad port: told apart, these
        # would map a network; the details go to the log only.
        logger.info("feed download from %s failed", url, exc_info=True)
        raise FeedError(failed) from None
    return total


def _fetch_source(job: ImportJob) -> None:
    """Download a URL job's feed onto the default storage (outside any transaction)."""
    with tempfile.TemporaryFile() as spool:
        _download(job.source_url, spool)
        spool.seek(0)
        name = job.original_name or "feed"
        job.file.save(f"{job.store.code}-{name}", File(spool, name=name), save=False)
    job.bytes_total = job.file.size
    ImportJob.objects.filter(pk=job.pk).update(file=job.file.name, bytes_total=job.bytes_total)


def run_import_job(
    job_id: int,
    *,
    batch_size: int = BATCH_SIZE,
    after_batch: Callable[[ImportJob], None] | None = None,
) -> ImportJob:
    """Run an ImportJob: read its file (downloading a URL first), write its rows in
    batches, write progress and rejected lines after every batch, then the final
    status, and queue the store's import report email (after commit).

    Runs a job that is queued, or running but abandoned by a dead worker (counts and
    rejected lines are reset; the upsert on (store, sku) makes the re-run end correct
    with no duplicates). A finished job is a quiet no-op (returned as is). Raises
    ImportBusy, writing nothing, while another import of the store holds its advisory
    lock. A file that cannot be read fails the job with the reason; any other
    exception marks it failed and is re-raised. `after_batch(job)` is a test hook.
    """
    job = ImportJob.objects.select_related("store").get(pk=job_id)
    if job.is_finished:
        return job
    with try_advisory_lock(_LOCK_NAMESPACE, job.store_id) as acquired:
        if not acquired:
            raise ImportBusy(_busy(job.store))
        claimed = (
            ImportJob.objects.filter(pk=job.pk, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING])
            .update(
                status=ImportJob.Status.RUNNING, started_at=timezone.now(), finished_at=None,
                rows_read=0, rows_created=0, rows_updated=0, rows_unchanged=0, rows_rejected=0,
                bytes_read=0, error_message="", runs=F("runs") + 1,
            )
        )  # fmt: skip
        job.refresh_from_db()
        if not claimed:
            return job
        ImportRowError.objects.filter(job=job).delete()
        try:
            _run(job, batch_size, after_batch)
        except FeedError as exc:
            _finish(job, ImportJob.Status.FAILED, str(exc))
        except Exception as exc:
            logger.exception("import job %s failed", job.public_id)
            _finish(job, ImportJob.Status.FAILED, f"Internal error: {exc}")
            raise
    return job


def _run(job: ImportJob, batch_size: int, after_batch) -> None:
    if job.source == ImportJob.Source.URL and not job.file:
        _fetch_source(job)
    report = ImportReport(language=job.language)
    info = FeedInfo()

    try:
        raw = job.file.open("rb")
    except (OSError, ValueError) as exc:
        raise FeedError(f"The job's file cannot be read from storage: {exc}") from None
    with raw:
        stream = _CountingReader(raw)

        def progress(result: BatchResult) -> None:
            ImportRowError.objects.bulk_create(
                ImportRowError(
                    job=job, line=e.line, column=e.column[:255], value=e.value, reason=e.reason
                )
                for e in result.errors
            )
            report.errors.clear()  # they are on the job now; memory stays flat
            job.rows_read, job.rows_created = report.read, report.created
            job.rows_updated, job.rows_unchanged = report.updated, report.unchanged
            job.rows_rejected, job.bytes_read = report.rejected, stream.bytes_read
            job.format, job.encoding, job.delimiter = info.format, info.encoding, info.delimiter
            job.save(update_fields=[
                "rows_read", "rows_created", "rows_updated", "rows_unchanged", "rows_rejected",
                "bytes_read", "format", "encoding", "delimiter",
            ])  # fmt: skip

        _import_stream(
            job.store, stream, language=job.language, actor=job.created_by, report=report,
            info=info, kind=job.kind, note=f"import {job.public_id}", batch_size=batch_size,
            after_batch=progress,
            after_commit=(lambda: after_batch(job)) if after_batch is not None else None,
        )  # fmt: skip
    if not job.kind:
        job.kind = (
            ImportJob.Kind.STOCK_AND_PRICE if info.format == STOCK else ImportJob.Kind.PRODUCTS
        )
    job.bytes_read = job.bytes_total
    if report.read and report.rejected == report.read:
        _finish(job, ImportJob.Status.FAILED, "Every line was rejected: see the rejected lines.")
    elif report.rejected:
        _finish(job, ImportJob.Status.PARTIALLY_SUCCEEDED, "")
    else:
        _finish(job, ImportJob.Status.SUCCEEDED, "")


def _finish(job: ImportJob, status: str, message: str) -> None:
    with transaction.atomic():
        job.status, job.error_message, job.finished_at = status, message, timezone.now()
        job.save(update_fields=["status", "error_message", "finished_at", "kind", "bytes_read"])
        _queue_report_email(job)
        from imports.images import queue_image_copy  # imports.images imports this module

        queue_image_copy(job)


def _queue_report_email(job: ImportJob) -> None:
    try:
        from notifications.services import queue_import_report_email
    except ImportError:  # notifications not deployed with this version
        return
    errors = [
        f"line {e.line}, column {e.column}: {e.value!r} {e.reason}"
        for e in job.row_errors.all()[:20]
    ]
    if job.error_message:
        errors.insert(0, job.error_message)
    try:
        queue_import_report_email(
            job.store,
            succeeded=job.status != ImportJob.Status.FAILED,
            source=job.original_name or job.source_url,
            created=job.rows_created,
            updated=job.rows_updated,
            unchanged=job.rows_unchanged,
            failed=job.rows_rejected,
            errors=errors,
            report_url=settings.SITE_URL.rstrip("/")
            + reverse("admin:imports_importjob_change", args=[job.pk]),
            dedupe_key=f"import-job:{job.public_id}:{job.runs}",
        )
    except Exception:
        # The report email is a courtesy; the job's own record is the truth.
        logger.exception("import job %s: report email not queued", job.public_id)


# --- rejected lines and exports ---------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def rejected_lines_csv(job: ImportJob) -> Iterator[str]:
    """The job's rejected lines as CSV text (line, column, value, reason), formulas
    escaped."""
    writer = csv.writer(_Echo())
    yield writer.writerow(["line", "column", "value", "reason"])
    for error in job.row_errors.order_by("line", "id").iterator(chunk_size=2000):
        yield write_csv_row(writer, [error.line, error.column, error.value, error.reason])


EXPORT_COLUMNS = [
    "id", "title", "description", "link", "image_link", "additional_image_link",
    "availability", "price", "sale_price", "brand", "gtin", "mpn", "condition",
    "google_product_category", "product_type", "item_group_id", "quantity", "vat_rate",
]  # fmt: skip
_AVAILABILITY_TEXT = {
    "in_stock": "in stock",
    "out_of_stock": "out of stock",
    "preorder": "preorder",
    "backorder": "backorder",
}


def _attribute_columns(store: Store) -> list[tuple[str, list[str]]]:
    """The attribute columns of the store's feed: (header, the attribute keys it holds).
    Keys the importer would read as the same column (`_normalise`: case, spaces, "g:")
    share one column, headed by the first in sorted order; keys that would read as one of
    EXPORT_COLUMNS are left out."""
    table = Product._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT jsonb_object_keys(attributes) FROM {table} "  # noqa: S608
            "WHERE store_id = %s AND is_active AND jsonb_typeof(attributes) = 'object'",
            [store.pk],
        )
        keys = sorted(k for (k,) in cursor.fetchall() if k.strip())
    reserved = set(EXPORT_COLUMNS)
    columns: dict[str, list[str]] = {}
    for key in keys:
        if (name := _normalise(key)) not in reserved:
            columns.setdefault(name, []).append(key)
    return [(spellings[0], spellings) for spellings in columns.values()]


def export_feed_lines(store: Store, language: str) -> Iterator[str]:
    """The store's active products as a Letzshop / Google Shopping feed in `language`,
    tab-separated, one text line at a time (header first). Columns: EXPORT_COLUMNS, then
    one per `attributes` key (keys differing only in case share one; non-text values as
    JSON). A product without a text in
    `language` uses the store's language, then English, then any. Every cell goes
    through `escape_formula`; importing the result gives back the same catalogue."""
    if language not in LANGUAGE_CODES:
        raise ValueError(f"unknown language {language!r}")
    writer = csv.writer(_Echo(), delimiter="\t", lineterminator="\n")
    extra = _attribute_columns(store)
    yield write_csv_row(writer, EXPORT_COLUMNS + [header for header, _keys in extra])
    products = (
        Product.objects.filter(store=store, is_active=True)
        .select_related("stock")
        .prefetch_related("translations")
        .order_by("sku")
    )
    fallbacks = (language, store.default_language, "en")
    for p in products.iterator(chunk_size=2000):
        texts = {t.language: t for t in p.translations.all()}
        text = next((texts[c] for c in fallbacks if c in texts), None) or next(
            iter(texts.values()), None
        )
        stock = getattr(p, "stock", None)
        attributes = p.attributes if isinstance(p.attributes, dict) else {}
        values = [
            p.sku,
            text.title if text else "",
            text.description if text else "",
            p.link,
            p.image_url,
            ",".join(p.additional_image_urls or []),
            _AVAILABILITY_TEXT.get(p.availability, p.availability),
            f"{p.price:.2f} {p.currency}",
            f"{p.sale_price:.2f} {p.currency}" if p.sale_price is not None else "",
            p.brand,
            p.gtin,
            p.mpn,
            p.condition,
            p.google_product_category,
            p.product_type,
            p.group_id,
            str(stock.on_hand) if stock is not None else "",
            f"{p.vat_rate:.2f}",
        ]
        for _header, keys in extra:
            value = next((attributes[k] for k in keys if k in attributes), "")
            values.append(
                value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            )
        yield write_csv_row(writer, values)


def export_product_feed(store: Store, language: str, stream: IO[str]) -> int:
    """Write the store's feed in `language` (see `export_feed_lines`) to the text
    `stream`. Returns the number of products written. Writes nothing to the database."""
    count = -1
    for line in export_feed_lines(store, language):
        stream.write(line)
        count += 1
    return count


def feed_export_token(store: Store) -> FeedExportToken:
    """The store's feed export token, created on first use."""
    token, _created = FeedExportToken.objects.get_or_create(store=store)
    return token


def rotate_feed_export_token(store: Store) -> FeedExportToken:
    """Give the store a new feed export token; the old URL stops working."""
    token = feed_export_token(store)
    token.token = FeedExportToken._meta.get_field("token").default()
    token.rotated_at = timezone.now()
    token.save(update_fields=["token", "rotated_at"])
    return token


def feed_token_matches(store: Store, given: str) -> bool:
    """Whether `given` is the store's feed export token (constant-time comparison)."""
    expected = FeedExportToken.objects.filter(store=store).values_list("token", flat=True).first()
    return bool(expected and given) and hmac.compare_digest(expected.encode(), given.encode())
