"""Product feed parsing: bytes in, validated rows or row errors out. No database access.

Two formats are recognised from the header line:

* **Letzshop / Google Shopping feed** (`id, title, description, link, image_link,
  additional_image_link, availability, price, sale_price, brand, gtin, mpn, condition,
  google_product_category, product_type, item_group_id, quantity, vat_rate`, plus any
  extra columns). Header names are matched case-insensitively and a `g:` prefix is
  ignored. `id` is the SKU. `quantity` is optional; without it stock is left as it is.
  `vat_rate` (percent: `17`, `17,00`, `17 %`) is optional; an empty cell, or no such
  column, leaves an existing product's rate as it is and gives a new one the store's
  default.
* **Shopify product export CSV** (`Handle, Title, ..., Variant Price, ...`). Rows of one
  handle are consecutive; the first carries the product data, the following ones carry
  more variants or more images. Every variant row becomes its own product:

  - SKU: `Variant SKU` when given; otherwise the handle for a product with a single
    "Default Title" variant, else the handle plus the slugified option values joined by
    dashes (`chain-bracelet` + Color "Black" -> `chain-bracelet-black`).
  - `group_id` is the handle; the title of a non-default variant gets its option values
    appended (`7 Shakra Bracelet - Black`); option names/values go to
    `attributes["options"]`.
  - `Variant Price` is what the shopper pays. A `Variant Compare At Price` above it means
    the product is on sale: `price` = compare-at price, `sale_price` = variant price.
  - `Variant Inventory Qty` is stock on hand (negative Shopify stock counts as 0);
    availability is in stock when above 0, else backorder when the inventory policy is
    `continue`, else out of stock.
  - `Variant Barcode` is the GTIN; `Vendor` the brand; `Type` the product type;
    `Body (HTML)` the description, kept raw; `Published` (or `Status`) sets is_active;
    `Google Shopping / MPN`, `/ Condition`, `/ Google Product Category` map to their
    fields. `Image Src` rows (ordered by `Image Position`) are the handle's images:
    the variant's `Variant Image` or else the first image is `image_url`, the others
    are `additional_image_urls`.
  - Every other non-empty column goes into `attributes` under its header name;
    product-level columns are taken from the handle's first row.

* **Stock and price file** (`sku;quantity`, `id, price`, `sku;quantity;price`; no
  `title` column): sets stock on hand and/or price of products that already exist.

Encoding: UTF-8 with or without BOM; a line that is not valid UTF-8 and holds no valid
multi-byte UTF-8 character is decoded as Windows-1252 (a line mixing both is rejected:
read either way it would come out garbled); UTF-16 with a BOM, or without one when every
other byte is NUL. Delimiter: the one of `, ; TAB |` found most in the header line.
Lines end with LF, CRLF or a lone CR. Line numbers are physical lines (header = line 1; a
quoted field spanning lines counts each line). A cell (header cells included) starting
with `'` followed by = + - @ TAB or CR loses the `'` (see `escape_formula`); then CRLF
and a lone CR inside a cell become LF.

What fails the whole file (FeedError) and what only rejects a row:

* NUL bytes: a file is binary (FeedError) when its header line holds one, or when at
  least 1% of its first 4 KB (and at least two bytes) are NUL; a stray NUL anywhere else
  rejects only its row ("contains a NUL byte", with the column).
* A header naming a column twice (case-insensitive, `g:` ignored) is refused: which
  cell would be meant is a guess. So is a header of more than MAX_COLUMNS columns.
* A row with more cells than the header (non-empty ones) is rejected; a line of more
  than MAX_LINE_CELLS cells is rejected without being split into cells.
* A byte that is neither UTF-8 nor Windows-1252 (see above) rejects its row, naming
  the column and the byte; in the header line it refuses the file.
* A cell that starts with a quote and goes on after the closing quote (`"Best" screen`)
  rejects its row: the CSV reader would drop the quote marks.
* A quoted field may span lines, but a quote that is never closed would silently eat the
  rest of the file. So the row is rejected, naming the line the quote opened on and the
  lines it swallowed (which are not imported), when the file ends inside the quoted
  field, or when the field spans more than MAX_QUOTED_LINES physical lines.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import itertools
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO, NamedTuple

from django.utils.text import slugify

LETZSHOP = "letzshop"
SHOPIFY = "shopify"
STOCK = "stock"  # sku (or id) with quantity and/or price: an ERP's stock and price sync
PRODUCT_FORMATS = (LETZSHOP, SHOPIFY)
STOCK_SKU_COLUMNS = ("sku", "id")
STOCK_QUANTITY_COLUMNS = ("quantity", "qty", "stock", "on_hand")
DELIMITERS = [",", ";", "\t", "|"]

SKU_MAX = 100
TITLE_MAX = 300
FIELD_MAX = {
    "brand": 120,
    "mpn": 70,
    "group_id": 100,
    "product_type": 250,
    "google_product_category": 250,
    "link": 500,
    "image_url": 1000,
}
PRICE_MAX = Decimal("99999999.99")
QUANTITY_MAX = 2_147_483_647  # stock is a PostgreSQL integer
# A quoted field longer than this is taken for a quote that is never closed: real
# multi-line descriptions (even Shopify's Body (HTML)) stay far below it.
MAX_QUOTED_LINES = 100
# A header with more columns is a spreadsheet's formatting run wild, not a feed.
MAX_COLUMNS = 1000
# A line with more cells is rejected unsplit: the reader would build them all in memory.
MAX_LINE_CELLS = 100 * MAX_COLUMNS
BINARY_HEAD = 4096


class FeedError(Exception):
    """The file as a whole cannot be read (empty, binary, unknown header). The message is
    meant for the person who uploaded it."""


@dataclass(frozen=True)
class RowError:
    """One reason a row was rejected. `line` is the physical line where the row starts."""

    line: int
    column: str
    value: str
    reason: str


@dataclass
class FeedRow:
    """A valid row, ready for `marketplace.services.upsert_product`."""

    line: int
    sku: str
    title: str
    description: str
    fields: dict[str, Any]
    on_hand: int | None = None


@dataclass
class StockRow:
    """A valid line of a stock and price file: what to set on the product `sku`."""

    line: int
    sku: str
    on_hand: int | None
    price: Decimal | None


@dataclass
class RejectedRow:
    line: int
    errors: list[RowError]


@dataclass
class FeedInfo:
    """What was detected about the file; filled in while reading."""

    format: str = ""
    delimiter: str = ""
    encoding: str = "utf-8"
    columns: list[str] = field(default_factory=list)


# --- reading the file -----------------------------------------------------------------


CHUNK = 64 * 1024


def _chunks(stream) -> Iterator[bytes]:
    if isinstance(stream, (bytes, bytearray)):
        yield bytes(stream)
        return
    read = getattr(stream, "read", None)
    if read is None:
        yield from stream  # an iterable of bytes
        return
    while True:
        chunk = read(CHUNK)
        if not chunk:
            return
        yield chunk


def _utf16_variant(head: bytes) -> str | None:
    """ "utf-16" (with BOM), "utf-16-le"/"utf-16-be" (NUL bytes on one side only), or
    None when the head does not look like UTF-16 text."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" not in head:
        return None
    sample = head[: len(head) - len(head) % 2]
    even, odd = sample[0::2], sample[1::2]
    half = len(sample) // 2
    if even.count(0) == 0 and odd.count(0) >= half * 0.5:
        return "utf-16-le"
    if odd.count(0) == 0 and even.count(0) >= half * 0.5:
        return "utf-16-be"
    return None


# A character of a line decoded as UTF-8 that came from a multi-byte sequence, and a
# byte that could not be decoded (kept by the "surrogateescape" error handler).
_UTF8_CHARACTER = re.compile("[^\x00-\x7f\udc80-\udcff]")
_UNDECODED = re.compile("[\udc80-\udcff]")

NOT_TEXT = "This is not a text feed (binary data, or an unknown encoding)."


def _looks_binary(head: bytes) -> bool:
    """Binary data has NUL bytes all over; a text feed at most a stray one (that row
    is rejected, see `_records`)."""
    nuls = head.count(0)
    return nuls >= 2 and nuls * 100 >= len(head)


_LINE_BYTES = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)")
_LINE_TEXT = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")


def _split_lines(chunks: Iterable, *, text: bool = False) -> Iterator:
    """Lines (ending kept) from chunks of bytes (or of str when `text`). CRLF, LF and a
    lone CR (old Mac and Excel "CSV (Macintosh)" files) each end a line; the CSV reader
    joins the lines of a quoted field again. A line's pieces are joined once, however
    many chunks it spans."""
    line, cr, lf = (_LINE_TEXT, "\r", "\n") if text else (_LINE_BYTES, b"\r", b"\n")
    empty = cr[:0]
    pieces: list = []
    for chunk in chunks:
        if not chunk:
            continue
        if cr not in chunk and lf not in chunk:
            pieces.append(chunk)
            continue
        data = empty.join([*pieces, chunk]) if pieces else chunk
        pieces = []
        end = 0
        for match in line.finditer(data):
            if match.end() == len(data) and data[-1:] == cr:
                break  # the next chunk may start with the LF of this CRLF
            yield match.group()
            end = match.end()
        if end < len(data):
            pieces.append(data[end:])
    if pieces:
        yield empty.join(pieces)


def _decoded_lines(stream, info: FeedInfo) -> Iterator[str]:
    """Yield text lines (line endings kept) from a binary stream.

    UTF-16 (detected by its BOM, or by NUL bytes on every other position) is decoded as a
    whole. Anything else is decoded line by line as UTF-8 (a BOM is dropped) or, for a
    line that is not valid UTF-8 and has no valid multi-byte UTF-8 character either,
    Windows-1252: a CR or LF byte never occurs inside a multi-byte UTF-8 sequence, so
    per-line decoding is exact. A byte that cannot be decoded (in a line that mixes
    UTF-8 with other bytes, or one of the five bytes Windows-1252 leaves undefined) is
    kept as a lone surrogate (U+DC80-U+DCFF), which rejects its row (see `_bad_cell`)."""
    chunks = _chunks(stream)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= BINARY_HEAD:
            break
    variant = _utf16_variant(head[:BINARY_HEAD])
    if variant is not None:
        info.encoding = variant
        decoder = codecs.getincrementaldecoder(variant)(errors="replace")

        def texts() -> Iterator[str]:
            for chunk in itertools.chain([head], chunks):
                yield decoder.decode(chunk)
            yield decoder.decode(b"", final=True)

        yield from _split_lines(texts(), text=True)
        return
    if _looks_binary(head[:BINARY_HEAD]):
        raise FeedError(NOT_TEXT)
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    for raw in _split_lines(itertools.chain([head], chunks)):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="surrogateescape")
            # A line with valid UTF-8 characters beside the bad bytes is UTF-8 with an
            # error: read as Windows-1252 its characters would come out garbled.
            if _UTF8_CHARACTER.search(line) is None:
                info.encoding = "windows-1252"
                line = raw.decode("cp1252", errors="surrogateescape")
            yield line


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    if counts[best] == 0:
        raise FeedError(
            "The header line has a single column: expected columns separated by comma, "
            "semicolon, tab or pipe."
        )
    return best


def _normalise(name: str) -> str:
    name = name.strip().lower()
    return name[2:] if name.startswith("g:") else name


def detect_format(columns: list[str]) -> str:
    """LETZSHOP or SHOPIFY from the header cells; raises FeedError for anything else."""
    names = {_normalise(c) for c in columns}
    if {"handle", "title", "variant price"} <= names:
        return SHOPIFY
    if {"id", "title", "price"} <= names:
        return LETZSHOP
    if (
        "title" not in names
        and names & set(STOCK_SKU_COLUMNS)
        and (names & set(STOCK_QUANTITY_COLUMNS) or "price" in names)
    ):
        return STOCK
    shown = ", ".join(c.strip() for c in columns[:8])
    raise FeedError(
        "Unrecognised header. A Letzshop/Google feed needs the columns id, title and price; "
        "a Shopify export needs Handle, Title and Variant Price; a stock file needs sku (or "
        f"id) with quantity and/or price. Found: {shown}"
    )


def read_feed(
    stream: BinaryIO | Iterable[bytes], *, currency: str = "EUR", info: FeedInfo | None = None
) -> Iterator[FeedRow | RejectedRow]:
    """Parse a feed lazily, yielding a FeedRow per valid product and a RejectedRow per bad
    one, in file order. `currency` is the store's: prices in another currency are rejected.

    Raises FeedError (before yielding anything) when the file is empty, binary or has an
    unknown header. A SKU seen twice in the file is rejected the second time.
    """
    info = info if info is not None else FeedInfo()
    lines = _decoded_lines(stream, info)  # type: ignore[arg-type]
    header_line = ""
    for candidate in lines:
        if candidate.strip():
            header_line = candidate
            break
        raise FeedError("The file's first line is empty: expected a header line.")
    if not header_line:
        raise FeedError("The file is empty.")
    if "\x00" in header_line:
        raise FeedError(NOT_TEXT)
    undecoded = _UNDECODED.search(header_line)
    if undecoded is not None:
        raise FeedError(
            f"The header line is not valid UTF-8: {_byte_at(undecoded)}. Save the file as UTF-8."
        )
    info.delimiter = _sniff_delimiter(header_line)
    # Counted before the CSV reader splits the line: a header of a few million
    # delimiters would otherwise become as many cells.
    width = header_line.count(info.delimiter) + 1
    if width > MAX_COLUMNS:
        raise FeedError(
            f"The header line has {width:,} columns; a feed may have at most {MAX_COLUMNS:,}. "
            "Delete the empty columns at its end (or save only the used range) and upload "
            "it again."
        )

    source = _Lines(itertools.chain([header_line], lines), info.delimiter)
    reader = csv.reader(source, delimiter=info.delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise FeedError(f"The header line cannot be read: {_csv_error(exc)}.") from exc
    # Header cells are escaped like any other cell when we write a feed.
    info.columns = [unescape_formula(c).strip() for c in header]
    _refuse_repeated_columns(info.columns)
    info.format = detect_format(info.columns)

    records = _records(reader, source, info.columns)
    if info.format == SHOPIFY:
        rows = _shopify_rows(records, info.columns, currency)
        sku_column = "Variant SKU"
    elif info.format == STOCK:
        stock = stock_columns(info.columns)
        rows = _stock_rows(records, info.columns, stock, currency)
        sku_column = stock.sku
    else:
        rows = _letzshop_rows(records, info.columns, currency)
        sku_column = "id"
    # Every SKU of the file is remembered, on disk, so a repeated one is reported
    # wherever it appears.
    with _SeenKeys() as seen:
        for row in rows:
            if isinstance(row, (FeedRow, StockRow)):
                first = seen.first_line(row.sku, row.line)
                if first is not None:
                    reason = f"duplicate SKU: already in this file (line {first})"
                    yield RejectedRow(row.line, [RowError(row.line, sku_column, row.sku, reason)])
                    continue
            yield row


class _SeenKeys:
    """The keys met in a file (SKUs, Shopify handles) with the line of the first of each,
    in a private temporary SQLite database on disk whose page cache is bounded: a set of
    them would grow with the file (about 100 bytes a line), this stays flat. About 3 µs a
    key. Use it as a context manager (the database is deleted when it closes)."""

    def __init__(self) -> None:
        # "" is SQLite's private temporary database on disk, deleted on close.
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA cache_size = -2048")  # KiB
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction: nothing is ever committed
        self._cursor = self._db.cursor()

    def __enter__(self) -> _SeenKeys:
        return self

    def __exit__(self, *exc_info) -> None:
        self._db.close()

    def first_line(self, key: str, line: int) -> int | None:
        """None when `key` is new (remembered at `line`), else the line it was first met."""
        if self._cursor.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (key, line)).rowcount:
            return None
        return self._cursor.execute("SELECT line FROM seen WHERE key = ?", (key,)).fetchone()[0]


class _Lines:
    """The text lines handed to `csv.reader`. `ended` turns true when the reader asks
    for a line after the last one: within a record it only does so while a quoted field
    is open, so a record read after that ends inside a quote that never closed.

    Since `start_record`: `raw` holds the lines read (for `_text_after_quote`) and
    `too_many` the most cells a line had beyond MAX_LINE_CELLS (such a line is handed
    over as an empty line, so the reader never builds millions of cells)."""

    def __init__(self, lines: Iterator[str], delimiter: str):
        self.lines = lines
        self.delimiter = delimiter
        self.ended = False
        self.raw: list[str] = []
        self.too_many = 0

    def start_record(self) -> None:
        self.raw = []
        self.too_many = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self.lines, None)
        if line is None:
            self.ended = True
            raise StopIteration
        cells = line.count(self.delimiter) + 1
        if cells > MAX_LINE_CELLS:
            self.too_many = max(self.too_many, cells)
            line = "\n"
        self.raw.append(line)
        return line


def _and(items: Iterable[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    *rest, last = items
    return f"{', '.join(rest)} and {last}" if rest else last


def _refuse_repeated_columns(columns: list[str]) -> None:
    """FeedError naming the first column the header has more than once."""
    positions: dict[str, list[int]] = {}
    for number, column in enumerate(columns, start=1):
        if column:
            positions.setdefault(_normalise(column), []).append(number)
    for numbers in positions.values():
        if len(numbers) > 1:
            times = "twice" if len(numbers) == 2 else f"{len(numbers)} times"
            where = _and(map(str, numbers))
            first = columns[numbers[0] - 1]
            raise FeedError(
                f"The header line is ambiguous: column '{first}' appears {times} (columns {where})."
            )


def _shown(value: str) -> str:
    """A cell as a row error shows it: at most 50 characters, NUL bytes (which the
    database cannot store) written as \\x00 and bytes that could not be decoded as
    \\xff."""
    value = value[:50].replace("\x00", "\\x00")
    return _UNDECODED.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", value)


def _byte_at(undecoded: re.Match) -> str:
    return f"byte 0x{ord(undecoded.group()) - 0xDC00:02X} at character {undecoded.start() + 1}"


def _bad_cell(start: int, cells: list[str], columns: list[str]) -> RowError | None:
    """The RowError of the first cell with a NUL byte or a byte that could not be
    decoded, or None."""
    for index, cell in enumerate(cells):
        undecoded = _UNDECODED.search(cell)
        if "\x00" in cell:
            reason = "contains a NUL byte"
        elif undecoded is not None:
            reason = (
                f"not valid UTF-8: {_byte_at(undecoded)} of the cell (and the line "
                "cannot be read as Windows-1252 either); save the file as UTF-8"
            )
        else:
            continue
        column = columns[index] if index < len(columns) else ""
        return RowError(start, column, _shown(cell), reason)
    return None


_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"')


def _text_after_quote(raw: str, delimiter: str) -> tuple[int, str] | None:
    """(index, text as written) of the first cell of the record `raw` that starts with
    a quote and goes on after its closing quote (`"Best" screen`), or None. The CSV
    reader would silently drop those quote marks."""
    index = position = 0
    while position < len(raw):
        if raw[position] == '"':
            quoted = _QUOTED.match(raw, position)
            if quoted is None:
                return None  # never closed: see `_unclosed_quote`
            position = quoted.end()
            if raw[position : position + 1] not in (delimiter, "\r", "\n", ""):
                end = raw.find(delimiter, position)
                text = raw[quoted.start() : None if end < 0 else end]
                return index, text.rstrip("\r\n")
        position = raw.find(delimiter, position)
        if position < 0:
            return None
        position += 1
        index += 1
    return None


def _csv_error(exc: csv.Error) -> str:
    """What a CSV reader error means, in words for the person who uploaded the file."""
    if "field larger than field limit" in str(exc):
        return f"a cell is longer than the limit of {csv.field_size_limit():,} characters"
    return "its quote marks cannot be read as CSV"


def _one_newline(value: str) -> str:
    """CRLF and a lone CR as LF: a lone CR in a text breaks the lines of a CSV file that
    ends its lines with LF (a CSV writer leaves such a cell unquoted)."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def _too_many_cells(start: int, cells: int, width: int) -> RowError:
    return RowError(start, "", "", f"row has {cells:,} cells, the header has {width:,}")


def _unclosed_quote(start: int, end: int, cells: list[str], columns: list[str], at_eof: bool):
    """The RowError of a record whose quoted field never closes, or None. The field is
    the last one when the file ended inside it, else the one with the most lines."""
    index = len(cells) - 1 if at_eof else max(range(len(cells)), key=lambda i: cells[i].count("\n"))
    # Line breaks outside quotes end a record: those in earlier cells are within quotes.
    opened = start + sum(c.count("\n") for c in cells[:index])
    if not at_eof and end - opened + 1 <= MAX_QUOTED_LINES:
        return None
    if at_eof:
        reason = f"a quoted field is never closed (opened on line {opened})"
    else:
        reason = (
            f"a quoted field spans more than {MAX_QUOTED_LINES} lines (opened on line "
            f"{opened}): is its closing quote missing?"
        )
    if end > opened:
        lines = f"line {end}" if end == opened + 1 else f"lines {opened + 1} to {end}"
        reason += f"; {lines} went into it and were not imported"
    column = columns[index] if index < len(columns) else ""
    return RowError(start, column, _shown(cells[index]), reason)


def _records(
    reader, source: _Lines, columns: list[str]
) -> Iterator[tuple[int, list[str] | RowError]]:
    """(start line, cells) for each non-blank record; malformed records as RowError.
    Cells lose their formula guard (`unescape_formula`) and have their line breaks
    made LF (`_one_newline`)."""
    width = len(columns)
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        source.start_record()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            previous_end = reader.line_num
            yield start, RowError(start, "", "", f"unreadable row: {_csv_error(exc)}")
            continue
        previous_end = reader.line_num
        if source.too_many:
            yield start, _too_many_cells(start, source.too_many, width)
            continue
        joined = "".join(cells)
        if not joined or joined.isspace():
            continue
        if "'" in joined:
            cells = [unescape_formula(c) if c[:1] == "'" else c for c in cells]
        if "\r" in joined:
            cells = [_one_newline(c) for c in cells]
        if source.ended or previous_end - start >= MAX_QUOTED_LINES:
            error = _unclosed_quote(start, previous_end, cells, columns, source.ended)
            if error is not None:
                yield start, error
                continue
        if "\x00" in joined or _UNDECODED.search(joined):
            error = _bad_cell(start, cells, columns)
            if error is not None:
                yield start, error
                continue
        raw = "".join(source.raw)
        after_quote = _text_after_quote(raw, source.delimiter) if '"' in raw else None
        if after_quote is not None:
            index, text = after_quote
            column = columns[index] if index < width else ""
            reason = (
                "a quoted cell must end at its closing quote; write quote marks inside a "
                "cell as two quote marks, or don't start the cell with one"
            )
            yield start, RowError(start, column, _shown(text), reason)
            continue
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            yield start, _too_many_cells(start, len(cells), width)
            continue
        yield start, cells[:width] + [""] * (width - len(cells))


# --- spreadsheet formulas -------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str) -> str:
    """`value` made safe for a spreadsheet: text starting with = + - @ TAB or CR gets a
    leading `'` so it cannot run as a formula. Every CSV/TSV writer goes through this."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def unescape_formula(value: str) -> str:
    """The reverse of `escape_formula`, applied to every cell read: a `'` before
    = + - @ TAB or CR is dropped, so an exported feed imports back unchanged."""
    return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_STARTS else value


def write_csv_row(writer, values):
    """Write one row through a `csv.writer`: in every text cell CRLF and a lone CR
    become LF (a writer ending lines with LF leaves a lone CR unquoted, and the line
    would break), then formulas are escaped. Returns what `writer.writerow` returns."""
    return writer.writerow(
        [escape_formula(_one_newline(v)) if isinstance(v, str) else v for v in values]
    )


# --- values ---------------------------------------------------------------------------

_PRICE = re.compile(
    r"^(?:([A-Za-z]{3}|€)\s*)?([-+]?[0-9][0-9.,' \u00a0\u202f]*?)\s*(?:([A-Za-z]{3}|€))?$"
)
# A space, no-break space (French Excel), narrow no-break space or ' (Swiss) is read
# only between groups of three digits, the same one throughout: `1 234,56`.
_THOUSANDS = re.compile(r"[-+]?[0-9]{1,3}([ \u00a0\u202f'])[0-9]{3}(?:\1[0-9]{3})*(?:[.,][0-9]+)?")
_THOUSANDS_SEPARATOR = re.compile("[ \u00a0\u202f']")
_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d{1,2}")
_CENT = Decimal("0.01")


def parse_price(text: str, currency: str) -> Decimal:
    """ "12.50 EUR", "12,50", "EUR 1.234,50", "1 234,50" -> Decimal with 2 places. Only
    the ASCII digits 0-9 are digits. Raises ValueError with the reason."""
    match = _PRICE.match(text.strip())
    if not match:
        raise ValueError(_digits_hint("not a price", text))
    before, number, after = match.groups()
    if before and after:
        raise ValueError("not a price")
    code = (before or after or "").upper().replace("€", "EUR")
    if code and code != currency:
        raise ValueError(f"currency {code} is not the store's currency {currency}")
    if _THOUSANDS_SEPARATOR.search(number):
        if not _THOUSANDS.fullmatch(number):
            raise ValueError(
                "not a price: a space or ' may only separate thousands, as in 1 234,56"
            )
        number = _THOUSANDS_SEPARATOR.sub("", number)
    if "," in number and "." in number:
        if number.rfind(",") > number.rfind("."):
            number = number.replace(".", "").replace(",", ".")
        else:
            number = number.replace(",", "")
    elif "," in number:
        if not _DECIMAL_COMMA.fullmatch(number):
            raise ValueError("not a price")
        number = number.replace(",", ".")
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError("not a price") from None
    cents = amount.quantize(_CENT)
    if amount != cents:
        raise ValueError("more than 2 decimal places")
    if amount < 0:
        raise ValueError("price is negative")
    if amount > PRICE_MAX:
        raise ValueError("price is too large")
    return cents


def _digits_hint(reason: str, text: str) -> str:
    """`reason` (why `text` is not a number), naming digits of another script when it
    has some (Python's int() and Decimal() would read them)."""
    if any(c.isdigit() and not c.isascii() for c in text):
        return f"{reason}: {ASCII_DIGITS}"
    return reason


VAT_RATE_EXPECTED = (
    "VAT rate must be a percentage from 0 to 100 with at most 2 decimals, such as 17, 17.00 or 17 %"
)
_VAT_RATE = re.compile(r"([0-9]{1,3})(?:[.,]([0-9]{1,2}))?\s*%?", re.ASCII)


def parse_vat_rate(text: str) -> Decimal:
    """ "17", "17.00", "17,00", "17 %", "17%" -> Decimal("17.00"): a percentage from 0 to
    100 with at most 2 decimals. Raises ValueError with the reason."""
    match = _VAT_RATE.fullmatch(text.strip())
    rate = None
    if match is not None:
        whole, decimals = match.groups()
        rate = Decimal(f"{whole}.{decimals or '0'}").quantize(_CENT)
    if rate is None or rate > 100:
        raise ValueError(_digits_hint(VAT_RATE_EXPECTED, text))
    return rate


def gtin_type(gtin: str) -> str:
    """The Product.GtinType value of a GTIN, or ValueError with the reason it is invalid."""
    if not gtin.isdigit():
        raise ValueError("GTIN must contain digits only")
    if not gtin.isascii():
        raise ValueError(f"GTIN must contain digits only: {ASCII_DIGITS}")
    if len(gtin) not in (8, 12, 13, 14):
        raise ValueError(f"GTIN must have 8, 12, 13 or 14 digits, not {len(gtin)}")
    if int(gtin_check_digit(gtin[:-1])) != int(gtin[-1]):
        raise ValueError("GTIN check digit is wrong")
    if len(gtin) == 8:
        return "ean8"
    if len(gtin) == 12:
        return "upc"
    if len(gtin) == 14:
        return "gtin14"
    return "isbn" if gtin.startswith(("978", "979")) else "ean13"


def gtin_check_digit(body: str) -> str:
    """The check digit that completes `body` (a GTIN without its last digit)."""
    # From the right: the body's last digit weighs 3, the one before it 1, and so on.
    total = 3 * sum(map(int, body[::-2])) + sum(map(int, body[-2::-2]))
    return str((10 - total % 10) % 10)


ASCII_DIGITS = "only the digits 0-9 are read as digits"
# What Decimal() reads, less what it reads beyond a merchant's numbers: digits of other
# scripts, "_" between digits, infinities and NaNs.
_QUANTITY = re.compile(r"[-+]?[0-9]+(?:[.,][0-9]*)?(?:[eE][-+]?[0-9]+)?", re.ASCII)


def _quantity(text: str) -> int:
    """A stock quantity: a whole number ("12", "12.0", "1e3") up to QUANTITY_MAX, in the
    digits 0-9. Raises ValueError with the reason. A negative number is returned (at
    least -QUANTITY_MAX): the Letzshop and stock formats reject it, Shopify's counts it
    as 0."""
    text = text.strip()
    value: int | Decimal
    if text.isascii() and text.isdigit():
        value = int(text)
    elif not _QUANTITY.fullmatch(text):
        raise ValueError(_digits_hint("not a whole number", text))
    else:
        value = Decimal(text.replace(",", "."))
        if value != value.to_integral_value():
            raise ValueError("not a whole number")
    if value > QUANTITY_MAX:
        raise ValueError(f"quantity must be a whole number from 0 to {QUANTITY_MAX}")
    # Every caller treats a negative quantity alike, whatever its size.
    return int(max(value, -QUANTITY_MAX))


AVAILABILITY = {
    "in stock": "in_stock",
    "in_stock": "in_stock",
    "out of stock": "out_of_stock",
    "out_of_stock": "out_of_stock",
    "preorder": "preorder",
    "pre-order": "preorder",
    "backorder": "backorder",
}
CONDITIONS = {"new", "refurbished", "used"}


class _Row:
    """Collects the validated values and errors of one row."""

    def __init__(self, line: int):
        self.line = line
        self.errors: list[RowError] = []

    def error(self, column: str, value: str, reason: str) -> None:
        self.errors.append(RowError(self.line, column, value, reason))

    def text(self, column: str, value: str, limit: int | None = None) -> str:
        value = value.strip()
        if limit is not None and len(value) > limit:
            self.error(column, value[:50], f"longer than {limit} characters")
        return value

    def price(self, column: str, value: str, currency: str) -> Decimal | None:
        try:
            return parse_price(value, currency)
        except ValueError as exc:
            self.error(column, value, str(exc))
            return None

    def gtin(self, column: str, value: str) -> tuple[str, str]:
        value = value.strip().replace(" ", "").replace("-", "")
        if not value:
            return "", ""
        try:
            return value, gtin_type(value)
        except ValueError as exc:
            self.error(column, value, str(exc))
            return "", ""


# --- Letzshop / Google feed -----------------------------------------------------------

LETZSHOP_COLUMNS = {
    "id",
    "title",
    "description",
    "link",
    "image_link",
    "additional_image_link",
    "availability",
    "price",
    "sale_price",
    "brand",
    "gtin",
    "mpn",
    "condition",
    "google_product_category",
    "product_type",
    "item_group_id",
    "quantity",
    "vat_rate",
}


def _letzshop_rows(records, columns: list[str], currency: str) -> Iterator[FeedRow | RejectedRow]:
    names = [_normalise(c) for c in columns]
    width = len(columns)
    # Where each known column is read: its first occurrence, or the empty cell appended
    # to every row for a column the file lacks. Errors name it as its header spells it.
    at = dict.fromkeys(LETZSHOP_COLUMNS, width)
    label = {name: name for name in LETZSHOP_COLUMNS}
    for index, (name, original) in enumerate(zip(names, columns, strict=True)):
        if name in LETZSHOP_COLUMNS:
            at[name] = min(at[name], index)
            label[name] = original
    extra = [
        (index, original)
        for index, (name, original) in enumerate(zip(names, columns, strict=True))
        if name not in LETZSHOP_COLUMNS and original
    ]
    for line, cells in records:
        if isinstance(cells, RowError):
            yield RejectedRow(line, [cells])
            continue
        attributes = {
            original: _attribute(value)
            for index, original in extra
            if (value := cells[index].strip())
        }
        cells.append("")
        yield _letzshop_row(
            line, {name: cells[index] for name, index in at.items()}, attributes, currency, label
        )


def _attribute(text: str) -> Any:
    """An attribute cell's value, in every format: the text, or the object or list it
    holds when it is JSON of one (how our export writes attributes that are not text,
    like a Shopify product's `options`), so an exported feed imports back the same
    attributes."""
    if text[:1] in "{[" and text[-1:] in "}]":
        # Anything PostgreSQL's jsonb would refuse, or too deep to read, stays text: NaN
        # and Infinity, NUL characters, lone surrogates.
        with contextlib.suppress(ValueError, RecursionError):
            value = json.loads(text, parse_constant=_no_constant)
            if isinstance(value, (dict, list)):
                dumped = json.dumps(value, allow_nan=False, ensure_ascii=False)
                dumped.encode("utf-8")  # UnicodeEncodeError on a lone surrogate
                if "\\u0000" not in dumped:
                    return value
    return text


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _letzshop_row(line, values, attributes, currency, label):
    row = _Row(line)
    get = values.__getitem__
    col = label.__getitem__

    sku = row.text(col("id"), get("id"), SKU_MAX)
    if not sku:
        row.error(col("id"), "", "id (SKU) is required")
    title = row.text(col("title"), get("title"), TITLE_MAX)
    if not title:
        row.error(col("title"), "", "title is required")
    price = None
    if not get("price").strip():
        row.error(col("price"), "", "price is required")
    else:
        price = row.price(col("price"), get("price"), currency)
    sale_price = None
    if get("sale_price").strip():
        sale_price = row.price(col("sale_price"), get("sale_price"), currency)
    gtin, kind = row.gtin(col("gtin"), get("gtin"))

    on_hand = None
    if get("quantity").strip():
        try:
            on_hand = _quantity(get("quantity"))
            if on_hand < 0:
                row.error(col("quantity"), get("quantity"), "quantity is negative")
        except ValueError as exc:
            row.error(col("quantity"), get("quantity"), str(exc))

    raw_availability = get("availability").strip()
    if raw_availability:
        availability = AVAILABILITY.get(raw_availability.lower().replace("_", " "))
        availability = availability or AVAILABILITY.get(raw_availability.lower())
        if availability is None:
            row.error(
                col("availability"),
                raw_availability,
                "availability must be in stock, out of stock, preorder or backorder",
            )
    elif on_hand is not None and on_hand <= 0:
        availability = "out_of_stock"
    else:
        availability = "in_stock"

    condition = get("condition").strip().lower() or "new"
    if condition not in CONDITIONS:
        row.error(col("condition"), get("condition"), "condition must be new, refurbished or used")

    vat_rate = None
    if get("vat_rate").strip():
        try:
            vat_rate = parse_vat_rate(get("vat_rate"))
        except ValueError as exc:
            row.error(col("vat_rate"), get("vat_rate").strip(), str(exc))

    fields: dict[str, Any] = {
        "gtin": gtin,
        "gtin_type": kind,
        "brand": row.text(col("brand"), get("brand"), FIELD_MAX["brand"]),
        "mpn": row.text(col("mpn"), get("mpn"), FIELD_MAX["mpn"]),
        "price": price,
        "sale_price": sale_price,
        "currency": currency,
        "condition": condition,
        "availability": availability,
        "group_id": row.text(col("item_group_id"), get("item_group_id"), FIELD_MAX["group_id"]),
        "product_type": row.text(
            col("product_type"), get("product_type"), FIELD_MAX["product_type"]
        ),
        "google_product_category": row.text(
            col("google_product_category"),
            get("google_product_category"),
            FIELD_MAX["google_product_category"],
        ),
        "link": row.text(col("link"), get("link"), FIELD_MAX["link"]),
        "image_url": row.text(col("image_link"), get("image_link"), FIELD_MAX["image_url"]),
        "additional_image_urls": [
            u.strip() for u in get("additional_image_link").split(",") if u.strip()
        ],
        "attributes": attributes,
    }
    if vat_rate is not None:
        # Only when given: an absent field keeps an existing product's rate and gives a
        # new one the store's default (see `write_product_batch`).
        fields["vat_rate"] = vat_rate
    if row.errors:
        return RejectedRow(line, row.errors)
    return FeedRow(line, sku, title, get("description").strip(), fields, on_hand)


# --- Shopify export -------------------------------------------------------------------

SHOPIFY_MAPPED = {
    "Handle",
    "Title",
    "Body (HTML)",
    "Vendor",
    "Type",
    "Published",
    "Status",
    "Option1 Name",
    "Option1 Value",
    "Option2 Name",
    "Option2 Value",
    "Option3 Name",
    "Option3 Value",
    "Variant SKU",
    "Variant Inventory Qty",
    "Variant Inventory Policy",
    "Variant Price",
    "Variant Compare At Price",
    "Variant Barcode",
    "Variant Image",
    "Image Src",
    "Image Position",
    "Image Alt Text",
    "Google Shopping / Google Product Category",
    "Google Shopping / MPN",
    "Google Shopping / Condition",
}
_VARIANT_MARKERS = (
    "Option1 Value",
    "Option2 Value",
    "Option3 Value",
    "Variant SKU",
    "Variant Price",
    "Variant Inventory Qty",
    "Variant Barcode",
)


def _is_variant_level(column: str) -> bool:
    return column.startswith(("Variant ", "Option", "Image "))


def _shopify_rows(records, columns: list[str], currency: str) -> Iterator[FeedRow | RejectedRow]:
    """Group consecutive rows by handle, then emit one FeedRow per variant row. A row of
    a handle whose rows ended before (other handles came between) is rejected: it would
    be read as a new product without the handle's first row."""
    with _SeenKeys() as handles:  # every handle of the file (like SKUs in read_feed)
        yield from _shopify_groups(records, columns, currency, handles)


def _shopify_groups(records, columns, currency, handles: _SeenKeys):
    group: list[tuple[int, dict[str, str]]] = []
    for line, cells in records:
        if isinstance(cells, RowError):
            yield RejectedRow(line, [cells])
            continue
        record = {c: v for c, v in zip(columns, cells, strict=True) if c}
        handle = record.get("Handle", "").strip()
        if not handle:
            yield RejectedRow(line, [RowError(line, "Handle", "", "Handle is required")])
            continue
        if group and group[0][1]["Handle"].strip() != handle:
            yield from _shopify_group(group, currency)
            group = []
        first = handles.first_line(handle, line) if not group else None
        if first is not None:
            reason = (
                f"the rows of handle {handle} must be consecutive: line {line} continues "
                f"handle {handle} after other handles (first seen at line {first})"
            )
            yield RejectedRow(line, [RowError(line, "Handle", handle, reason)])
            continue
        group.append((line, record))
    if group:
        yield from _shopify_group(group, currency)


def _shopify_group(group, currency: str) -> Iterator[FeedRow | RejectedRow]:
    first_line, first = group[0]
    handle = first["Handle"].strip()
    title = first.get("Title", "").strip()
    variants = [
        (line, r) for line, r in group if any(r.get(c, "").strip() for c in _VARIANT_MARKERS)
    ]
    if not title:
        for line, _ in variants or group[:1]:
            yield RejectedRow(
                line,
                [RowError(line, "Title", "", f"the first row of handle {handle} has no Title")],
            )
        return
    images: list[tuple[int, str]] = []
    for index, (_, r) in enumerate(group):
        src = r.get("Image Src", "").strip()
        if src and src not in [s for _, s in images]:
            try:
                position = int(r.get("Image Position", "").strip())
            except ValueError:
                position = 10_000 + index
            images.append((position, src))
    image_urls = [src for _, src in sorted(images, key=lambda i: i[0])]
    option_names = [first.get(f"Option{n} Name", "").strip() for n in (1, 2, 3)]

    published = (first.get("Status", "").strip().lower() or "active") == "active"
    if first.get("Published", "").strip():
        published = published and first["Published"].strip().lower() == "true"

    product_attributes = {
        c: _attribute(v.strip())
        for c, v in first.items()
        if c not in SHOPIFY_MAPPED and not _is_variant_level(c) and v.strip()
    }
    for line, r in variants:
        yield _shopify_variant(
            line, r, first, handle, title, option_names, image_urls, published,
            product_attributes, currency,
        )  # fmt: skip


def _shopify_variant(
    line, r, first, handle, title, option_names, image_urls, published, product_attributes, currency
):
    row = _Row(line)
    options: dict[str, str] = {}
    for n, name in zip((1, 2, 3), option_names, strict=True):
        value = r.get(f"Option{n} Value", "").strip()
        if value:
            options[name or f"Option{n}"] = value
    is_default = list(options.values()) in ([], ["Default Title"])

    sku = r.get("Variant SKU", "").strip()
    if not sku:
        sku = handle if is_default else "-".join([handle, *(slugify(v) for v in options.values())])
    if len(sku) > SKU_MAX:
        row.error("Variant SKU", sku[:50], f"SKU longer than {SKU_MAX} characters")
    full_title = title if is_default else f"{title} - {' / '.join(options.values())}"
    if len(full_title) > TITLE_MAX:
        row.error("Title", full_title[:50], f"longer than {TITLE_MAX} characters")

    price = None
    raw_price = r.get("Variant Price", "").strip()
    if not raw_price:
        row.error("Variant Price", "", "Variant Price is required")
    else:
        price = row.price("Variant Price", raw_price, currency)
    compare_at = None
    raw_compare = r.get("Variant Compare At Price", "").strip()
    if raw_compare:
        compare_at = row.price("Variant Compare At Price", raw_compare, currency)
    sale_price = None
    if price is not None and compare_at is not None and compare_at > price:
        price, sale_price = compare_at, price

    gtin, kind = row.gtin("Variant Barcode", r.get("Variant Barcode", ""))

    on_hand = None
    raw_qty = r.get("Variant Inventory Qty", "").strip()
    if raw_qty:
        try:
            on_hand = max(_quantity(raw_qty), 0)
        except ValueError as exc:
            row.error("Variant Inventory Qty", raw_qty, str(exc))
    policy = r.get("Variant Inventory Policy", "").strip().lower()
    if on_hand is None or on_hand > 0:
        availability = "in_stock"
    elif policy == "continue":
        availability = "backorder"
    else:
        availability = "out_of_stock"

    condition = first.get("Google Shopping / Condition", "").strip().lower() or "new"
    if condition not in CONDITIONS:
        condition = "new"

    variant_image = r.get("Variant Image", "").strip()
    image_url = variant_image or (image_urls[0] if image_urls else "")
    attributes = dict(product_attributes)
    attributes.update(
        {
            c: _attribute(v.strip())
            for c, v in r.items()
            if c not in SHOPIFY_MAPPED and _is_variant_level(c) and v.strip()
        }
    )
    if not is_default:
        attributes["options"] = options

    fields: dict[str, Any] = {
        "gtin": gtin,
        "gtin_type": kind,
        "brand": row.text("Vendor", first.get("Vendor", ""), FIELD_MAX["brand"]),
        "mpn": row.text(
            "Google Shopping / MPN", first.get("Google Shopping / MPN", ""), FIELD_MAX["mpn"]
        ),
        "price": price,
        "sale_price": sale_price,
        "currency": currency,
        "condition": condition,
        "availability": availability,
        "is_active": published,
        "group_id": row.text("Handle", handle, FIELD_MAX["group_id"]),
        "product_type": row.text("Type", first.get("Type", ""), FIELD_MAX["product_type"]),
        "google_product_category": row.text(
            "Google Shopping / Google Product Category",
            first.get("Google Shopping / Google Product Category", ""),
            FIELD_MAX["google_product_category"],
        ),
        "image_url": row.text("Image Src", image_url, FIELD_MAX["image_url"]),
        "additional_image_urls": [u for u in image_urls if u != image_url],
        "attributes": attributes,
    }
    if row.errors:
        return RejectedRow(line, row.errors)
    return FeedRow(line, sku, full_title, first.get("Body (HTML)", "").strip(), fields, on_hand)


# --- stock and price ------------------------------------------------------------------


class StockColumns(NamedTuple):
    """The header cells, as the file spells them, a stock and price file is read from."""

    sku: str
    quantity: str | None
    price: str | None


def stock_columns(columns: list[str]) -> StockColumns:
    """Which of the header cells `columns` hold the SKU, the quantity and the price of a
    stock and price file. Raises FeedError when more than one cell could be the same
    one (`sku;qty;stock`): which is meant is a guess. Other columns are ignored."""

    def the_one(names: tuple[str, ...], what: str) -> str | None:
        found = [c for c in columns if _normalise(c) in names]
        if len(found) > 1:
            raise FeedError(
                f"The header line is ambiguous: columns {_and(repr(c) for c in found)} "
                f"could each be the {what}. Keep one of them, or rename the others."
            )
        return found[0] if found else None

    sku = the_one(STOCK_SKU_COLUMNS, "SKU")
    if sku is None:
        raise FeedError("A stock and price file needs a sku (or id) column.")
    return StockColumns(
        sku, the_one(STOCK_QUANTITY_COLUMNS, "quantity"), the_one(("price",), "price")
    )


def _stock_rows(
    records, columns: list[str], stock: StockColumns, currency: str
) -> Iterator[StockRow | RejectedRow]:
    sku_index = columns.index(stock.sku)
    qty_index = columns.index(stock.quantity) if stock.quantity is not None else None
    price_index = columns.index(stock.price) if stock.price is not None else None
    for line, cells in records:
        if isinstance(cells, RowError):
            yield RejectedRow(line, [cells])
            continue
        row = _Row(line)
        sku = row.text(columns[sku_index], cells[sku_index], SKU_MAX)
        if not sku:
            row.error(columns[sku_index], "", "SKU is required")
        on_hand = None
        if qty_index is not None and cells[qty_index].strip():
            raw = cells[qty_index]
            try:
                on_hand = _quantity(raw)
                if on_hand < 0:
                    row.error(columns[qty_index], raw.strip(), "quantity is negative")
            except ValueError as exc:
                row.error(columns[qty_index], raw.strip(), str(exc))
        price = None
        if price_index is not None and cells[price_index].strip():
            price = row.price(columns[price_index], cells[price_index], currency)
        if not row.errors and on_hand is None and price is None:
            row.error("", "", "neither a quantity nor a price is given")
        if row.errors:
            yield RejectedRow(line, row.errors)
        else:
            yield StockRow(line, sku, on_hand, price)
