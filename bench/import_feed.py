"""Product feed import speed, next to a plain PostgreSQL COPY of the same file.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wz_bench python bench/import_feed.py [--rows 100000]

Generates a Letzshop feed (TSV, streamed to a temporary file), then on the database of
DATABASE_URL (migrated first): a first import into a new store through an ImportJob
(`run_import_job`, the worker's code path, batches of `services.BATCH_SIZE`), a re-import
of the same file (every row unchanged), a `COPY` of the same file into a bare table of text
columns, and the writes of a first import done by SQL alone from that table (`SQL_ONLY`,
rolled back): the floor the catalogue's tables and indexes set for any importer; then the
same on tables stripped of everything but their primary keys (also rolled back). Prints rows per second and the worker's peak memory (ru_maxrss) after each
step; run it with two --rows values to see memory stay flat in the file size.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

if not os.environ.get("DATABASE_URL"):
    sys.exit("Set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/wz_bench).")
MEDIA = tempfile.mkdtemp(prefix="wz-bench-media-")
os.environ["MEDIA_ROOT"] = MEDIA

import _django  # noqa: E402, F401 - sets up Django
from django.core.files import File  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from imports import services  # noqa: E402
from imports.feeds import gtin_check_digit  # noqa: E402
from imports.models import ImportJob  # noqa: E402
from marketplace.models import Store  # noqa: E402

COLUMNS = [
    "id", "title", "description", "link", "image_link", "availability", "price",
    "sale_price", "brand", "gtin", "condition", "product_type", "quantity", "color",
]  # fmt: skip


def write_feed(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("\t".join(COLUMNS) + "\n")
        for n in range(1, rows + 1):
            body = f"400{n:09d}"
            out.write(
                "\t".join(
                    [
                        f"BENCH-{n:07d}",
                        f"Produit de test numéro {n}",
                        f"Une description du produit {n}, fabriqué au Luxembourg.",
                        f"https://shop.example.lu/p/{n}",
                        f"https://cdn.example.lu/img/{n}.jpg",
                        "in stock" if n % 7 else "out of stock",
                        f"{n % 500 + 1}.{n % 100:02d} EUR",
                        f"{n % 500}.50 EUR" if n % 5 == 0 else "",
                        f"Brand {n % 40}",
                        body + gtin_check_digit(body),
                        "new",
                        "Home > Kitchen",
                        str(n % 30 + (0 if n % 7 else -(n % 30))),
                        ("red", "green", "blue")[n % 3],
                    ]
                )
                + "\n"
            )


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_job(store: Store, path: Path) -> tuple[ImportJob, float]:
    with path.open("rb") as handle:
        job = services.create_import_job(store, file=File(handle, name=path.name))
    started = time.perf_counter()
    services.run_import_job(job.pk)
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    return job, elapsed


def copy_rows(path: Path) -> tuple[int, float]:
    names = ", ".join(f'"{c}" text' for c in COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_feed_copy")
        cursor.execute(f"CREATE TABLE bench_feed_copy ({names})")
        connection.commit() if not connection.get_autocommit() else None
        started = time.perf_counter()
        raw = cursor.cursor  # psycopg 3 cursor
        with (
            path.open("rb") as handle,
            raw.copy(
                "COPY bench_feed_copy FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t', HEADER true)"
            ) as copy,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        cursor.execute("SELECT count(*) FROM bench_feed_copy")
        count = cursor.fetchone()[0]
    return count, elapsed


# The writes of a first import, done by SQL alone from the COPY table: every product with
# its search document, its English text, its stock and its stock movement, the deferred
# foreign keys checked, then rolled back. No parsing, no checks of the values, no Python
# per row: what the catalogue's tables and indexes cost by themselves.
SQL_ONLY = """
WITH products AS (
    INSERT INTO marketplace_product (public_id, store_id, sku, gtin, gtin_type, brand, mpn,
        price, sale_price, currency, vat_rate, condition, availability, is_active, group_id,
        product_type, google_product_category, link, image_url, additional_image_urls, image,
        attributes, search_document, created_at, updated_at)
    SELECT gen_random_uuid(), %(store)s, id, gtin, 'ean13', brand, '',
        split_part(price, ' ', 1)::numeric, nullif(split_part(sale_price, ' ', 1), '')::numeric,
        'EUR', 17, condition, replace(availability, ' ', '_'), true, '', product_type, '',
        link, image_link, '[]', '', jsonb_build_object('color', color),
        concat_ws(' ', id, gtin, brand, title, description), now(), now()
    FROM bench_feed_copy
    RETURNING id, sku
), texts AS (
    INSERT INTO marketplace_producttranslation (product_id, language, title, description)
    SELECT p.id, 'en', c.title, c.description FROM products p JOIN bench_feed_copy c ON c.id = p.sku
), stocks AS (
    INSERT INTO marketplace_stock (product_id, on_hand, reserved, updated_at)
    SELECT p.id, c.quantity::integer, 0, now() FROM products p JOIN bench_feed_copy c ON c.id = p.sku
)
INSERT INTO marketplace_stockmovement (product_id, kind, on_hand_delta, reserved_delta,
    on_hand_after, reserved_after, note, created_at)
SELECT p.id, 'import', c.quantity::integer, 0, c.quantity::integer, 0, '', now()
FROM products p JOIN bench_feed_copy c ON c.id = p.sku WHERE c.quantity::integer <> 0
"""


CATALOGUE_TABLES = [
    "marketplace_product", "marketplace_producttranslation", "marketplace_stock",
    "marketplace_stockmovement",
]  # fmt: skip


def sql_only(store: Store, *, bare: bool = False) -> float:
    """Seconds for SQL_ONLY into `store` (rolled back), after `copy_rows`. `bare` first
    drops, inside the same rolled-back transaction, every index but the primary keys,
    every unique, check and foreign key constraint of the four tables and the search
    vector: the floor of a catalogue with none of them. (The DDL locks those tables until
    the rollback: run the bench on a database of its own.)"""
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        if bare:
            _strip_catalogue(cursor)
        started = time.perf_counter()
        cursor.execute(SQL_ONLY, {"store": store.pk})
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        elapsed = time.perf_counter() - started
        cursor.execute("ROLLBACK")
    return elapsed


def _strip_catalogue(cursor) -> None:
    for table in CATALOGUE_TABLES:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype IN ('f', 'u', 'c')",
            [table],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE contype = 'p')",
            [table],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
    cursor.execute("ALTER TABLE marketplace_product DROP COLUMN search_vector")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    # The worker is measured, not the broker: queuing is a no-op here.
    services._queue = lambda job: None
    rss_start = maxrss_mb()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-feed.tsv"
        write_feed(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        suffix = uuid.uuid4().hex[:8]
        store = Store.objects.create(
            code=f"bench-{suffix}", name="Bench", order_prefix=f"B{suffix[:6].upper()}"
        )
        print(
            f"feed: {args.rows} rows, {size_mb:.1f} MB; peak RSS before import {rss_start:.0f} MB"
        )

        first, first_s = run_job(store, path)
        print(
            f"first import : {first.rows_created:>7} created in {first_s:6.1f} s "
            f"= {args.rows / first_s:8.0f} rows/s  (peak RSS {maxrss_mb():.0f} MB)"
        )
        again, again_s = run_job(store, path)
        print(
            f"re-import    : {again.rows_unchanged:>7} unchanged in {again_s:4.1f} s "
            f"= {args.rows / again_s:8.0f} rows/s  (peak RSS {maxrss_mb():.0f} MB)"
        )
        copied, copy_s = copy_rows(path)
        print(
            f"COPY         : {copied:>7} rows in {copy_s:10.1f} s = {copied / copy_s:8.0f} rows/s"
        )
        other = Store.objects.create(
            code=f"bench-sql-{suffix}", name="Bench SQL", order_prefix=f"S{suffix[:6].upper()}"
        )
        sql_s = sql_only(other)
        print(
            f"SQL alone    : {copied:>7} rows in {sql_s:10.1f} s = {copied / sql_s:8.0f} rows/s"
            f"  (the same writes from the COPY table, no Python: {copy_s / sql_s:.2f} of COPY)"
        )
        bare_s = sql_only(other, bare=True)
        print(
            f"SQL, bare    : {copied:>7} rows in {bare_s:10.1f} s = {copied / bare_s:8.0f} rows/s"
            f"  (the same, without secondary indexes, constraints or search vector: "
            f"{copy_s / bare_s:.2f} of COPY)"
        )
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_feed_copy")
        print(
            f"first import / COPY = {copy_s / first_s:.2f}; re-import / first = "
            f"{first_s / again_s:.2f}x faster; peak RSS growth during imports "
            f"{maxrss_mb() - rss_start:.0f} MB"
        )
        assert first.status == again.status == ImportJob.Status.SUCCEEDED, first.error_message


if __name__ == "__main__":
    main()
