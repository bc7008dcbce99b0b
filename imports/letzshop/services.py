"""Letzshop writes: accounts, order sync, exceptions and the fulfilment queue.

Network calls never happen inside a transaction: pages are fetched first, then each
shipment is written in its own short transaction; fulfilment decisions are written
locally and queued as FulfilmentTasks sent after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DataError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.services import flag_order_over_limit
from imports.letzshop import selectors
from imports.letzshop.client import CallRecord, LetzshopClient, LetzshopError
from imports.letzshop.models import (
    FulfilmentTask,
    HistoricalImport,
    InventoryUnit,
    LetzshopAccount,
    OrderException,
    RejectedShipment,
    SyncLog,
    decrypt_secret,
    encrypt_secret,
)
from marketplace.models import (
    EU_COUNTRY_CODES,
    LANGUAGE_CODES,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    Shipment,
    Store,
)
from marketplace.money import round_money, vat_included
from marketplace.services import (
    DomainError,
    cancel_order_line_units,
    change_shipment_tracking,
    customer_for_order,
    next_order_number,
    reserve_for_order,
    ship_order_lines,
    transition_order,
)
from wizamart.locks import try_advisory_lock

logger = logging.getLogger(__name__)

ADVISORY_LOCK_NAMESPACE = 0x4C5A  # "LZ": pg_try_advisory_lock(namespace, account id)
Unit = InventoryUnit.State


class OpenExceptions(DomainError):
    """The order has unmatched products; staff must map or ignore them before confirming."""


class ShipmentRejected(DomainError):
    """A shipment's data cannot be imported: `field` names it, the message says what was
    expected and what came."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Rejection:
    """A shipment the sync skipped, and why."""

    shipment_id: str
    number: str
    field: str
    reason: str

    def __str__(self) -> str:
        name = f"{self.number} (id {self.shipment_id})" if self.number else self.shipment_id
        return f"{name}: {self.field + ': ' if self.field else ''}{self.reason}"


# --- accounts -------------------------------------------------------------------------


def connect_account(
    store: Store,
    *,
    api_key: str,
    vendor_id: str = "",
    endpoint: str = "",
    auto_sync: bool = True,
    interval_minutes: int = 15,
) -> LetzshopAccount:
    """Create or update the store's Letzshop account; the key is stored encrypted."""
    account, _created = LetzshopAccount.objects.update_or_create(
        store=store,
        defaults={
            "api_key_encrypted": encrypt_secret(api_key),
            "vendor_id": vendor_id,
            "endpoint": endpoint,
            "auto_sync": auto_sync,
            "interval_minutes": interval_minutes,
        },
    )
    return account


def set_api_key(account: LetzshopAccount, api_key: str) -> None:
    """Replace the key (encrypted with the first configured key) and clear a refusal."""
    account.api_key = api_key
    updates = {"api_key_encrypted": account.api_key_encrypted, "updated_at": timezone.now()}
    if account.status == LetzshopAccount.Status.AUTH_FAILED:
        updates.update(status=LetzshopAccount.Status.NEW, last_error="")
    LetzshopAccount.objects.filter(pk=account.pk).update(**updates)
    for name, value in updates.items():
        setattr(account, name, value)


def reencrypt_api_keys() -> int:
    """After a new key was put first in WIZAMART_ENCRYPTION_KEYS: rewrite every stored
    key with it, so the old key can be removed. Idempotent; returns the rows rewritten."""
    count = 0
    for account in LetzshopAccount.objects.only("pk", "api_key_encrypted"):
        LetzshopAccount.objects.filter(
            pk=account.pk, api_key_encrypted=account.api_key_encrypted
        ).update(api_key_encrypted=encrypt_secret(decrypt_secret(account.api_key_encrypted)))
        count += 1
    return count


def client_for(account: LetzshopAccount, *, attempts: int | None = None) -> LetzshopClient:
    """A client for the account whose every HTTP attempt is written to SyncLog."""

    def record(call: CallRecord) -> None:
        SyncLog.objects.create(
            account=account,
            operation=call.operation,
            request_summary=call.summary,
            duration_ms=call.duration_ms,
            outcome=SyncLog.Outcome.ERROR if call.error else SyncLog.Outcome.OK,
            http_status=call.http_status,
            error_message=call.error,
        )

    try:
        api_key = account.api_key
    except ValueError as exc:
        raise LetzshopError(str(exc)) from exc
    return LetzshopClient(
        account.endpoint_url,
        api_key,
        recorder=record,
        timeout=settings.LETZSHOP_HTTP_TIMEOUT,
        attempts=attempts if attempts is not None else settings.LETZSHOP_HTTP_ATTEMPTS,
        retry_seconds=settings.LETZSHOP_HTTP_RETRY_SECONDS,
    )


def _record_account_outcome(
    account: LetzshopAccount, error: Exception | None, *, synced: bool, warning: str = ""
) -> None:
    """`warning`: a problem that left the account usable (skipped shipments), kept in
    last_error with status OK."""
    now = timezone.now()
    if error is None:
        updates = {"status": LetzshopAccount.Status.OK, "last_error": warning[:2000]}
        if synced:
            updates["last_synced_at"] = now
    else:
        unauthorized = isinstance(error, LetzshopError) and error.unauthorized
        updates = {
            "status": LetzshopAccount.Status.AUTH_FAILED
            if unauthorized
            else LetzshopAccount.Status.ERROR,
            "last_error": str(error)[:2000],
        }
    updates["updated_at"] = now
    LetzshopAccount.objects.filter(pk=account.pk).update(**updates)
    for name, value in updates.items():
        setattr(account, name, value)


def test_connection(account: LetzshopAccount) -> list[dict]:
    """Ask Letzshop which vendors the key manages; records OK or the error on the account.

    Returns the vendors; raises LetzshopError (already recorded). Fills an empty vendor_id
    when the key manages exactly one vendor."""
    try:
        vendors = client_for(account, attempts=1).viewer_vendors()
    except LetzshopError as exc:
        _record_account_outcome(account, exc, synced=False)
        raise
    if account.vendor_id and account.vendor_id not in {v["id"] for v in vendors}:
        error = LetzshopError(f"The API key does not manage vendor {account.vendor_id}.")
        _record_account_outcome(account, error, synced=False)
        raise error
    if not account.vendor_id and len(vendors) == 1:
        LetzshopAccount.objects.filter(pk=account.pk).update(vendor_id=vendors[0]["id"])
        account.vendor_id = vendors[0]["id"]
    _record_account_outcome(account, None, synced=False)
    return vendors


# --- sync -----------------------------------------------------------------------------


@dataclass
class SyncResult:
    seen: int = 0
    created: int = 0
    pages: int = 0
    skipped: bool = False  # another sync of this account was running
    error: str = ""
    order_ids: list[int] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def rejected_message(self) -> str:
        if not self.rejected:
            return ""
        count = len(self.rejected)
        head = f"Skipped {count} shipment{'s' if count > 1 else ''} that cannot be imported"
        return f"{head}: " + "; ".join(str(r) for r in self.rejected) + "."


def sync_account(
    account: LetzshopAccount,
    *,
    states: Iterable[str] = ("unconfirmed",),
    historical: HistoricalImport | None = None,
) -> SyncResult:
    """Import every shipment of `states`, page by page, as orders of the account's store.

    Idempotent: a shipment already imported is skipped, whatever ran before or alongside
    (advisory lock per account, then an existence check and the unique constraint inside
    each shipment's transaction). A transient error on a page is retried by the client
    (LETZSHOP_HTTP_ATTEMPTS); a lasting one stops the sync and is recorded on the account
    (status, last_error) and on `historical`; it is returned, never raised. Afterwards open
    exceptions whose GTIN now exists in the catalogue are resolved.

    A shipment whose data cannot be imported is skipped, never stopping the others: it is
    upserted as a RejectedShipment (field, reason, times seen), listed in
    `result.rejected` and in the account's last_error (status stays OK), and met again by
    the next sync. Any other unexpected error is logged, recorded on the account (status
    error) and returned in `result.error`: this function raises nothing.
    """
    result = SyncResult()
    LetzshopAccount.objects.filter(pk=account.pk).update(last_attempt_at=timezone.now())
    with try_advisory_lock(ADVISORY_LOCK_NAMESPACE, account.pk) as acquired:
        if not acquired:
            result.skipped = True
            return result
        error: Exception | None = None
        try:
            client = client_for(account)
            page_size = settings.LETZSHOP_PAGE_SIZE
            if historical is not None:
                total = sum(
                    client.shipments_page(
                        state=state, vendor_id=account.vendor_id, first=0, after=None
                    ).total_count
                    for state in states
                )
                HistoricalImport.objects.filter(pk=historical.pk).update(shipments_total=total)
            for state in states:
                for page in client.iter_shipment_pages(
                    state=state, vendor_id=account.vendor_id, first=page_size
                ):
                    imported = import_shipments(account.store, page.nodes)
                    created = imported.created
                    _record_rejections(account, imported.rejected)
                    result.rejected.extend(imported.rejected)
                    result.pages += 1
                    result.seen += len(page.nodes)
                    result.created += len(created)
                    result.order_ids.extend(order.pk for order in created)
                    if historical is not None:
                        HistoricalImport.objects.filter(pk=historical.pk).update(
                            pages_done=F("pages_done") + 1,
                            shipments_seen=F("shipments_seen") + len(page.nodes),
                            shipments_created=F("shipments_created") + len(created),
                        )
            resolve_exceptions_for_store(account.store)
        except LetzshopError as exc:
            error = exc
            result.error = str(exc)
        except Exception as exc:
            # Staff and the periodic sync must see a recorded error, never a crash.
            logger.exception("letzshop account %s: the sync stopped", account.pk)
            result.error = f"The sync stopped on an unexpected error: {exc!r}"
            error = Exception(result.error)
        _record_account_outcome(
            account, error, synced=error is None, warning=result.rejected_message
        )
    return result


def _record_rejections(account: LetzshopAccount, rejected: list[Rejection]) -> None:
    now = timezone.now()
    for rejection in rejected:
        row, created = RejectedShipment.objects.get_or_create(
            account=account,
            external_id=rejection.shipment_id[:100],
            defaults={
                "number": rejection.number[:100],
                "field": rejection.field[:100],
                "reason": rejection.reason[:500],
                "last_seen_at": now,
            },
        )
        if not created:
            RejectedShipment.objects.filter(pk=row.pk).update(
                number=rejection.number[:100],
                field=rejection.field[:100],
                reason=rejection.reason[:500],
                times_seen=F("times_seen") + 1,
                last_seen_at=now,
            )


def sync_due_accounts(now: datetime | None = None) -> list[int]:
    """Queue a sync for every account whose interval has elapsed; returns their ids."""
    from imports.letzshop import tasks

    account_ids = [account.pk for account in selectors.due_accounts(now or timezone.now())]
    for account_id in account_ids:
        tasks.sync_account_task.apply_async(args=[account_id])
    return account_ids


def start_historical_import(account: LetzshopAccount) -> HistoricalImport:
    """Create a queued HistoricalImport and queue its task after commit."""
    from imports.letzshop import tasks

    historical = HistoricalImport.objects.create(account=account)
    transaction.on_commit(lambda: tasks.run_historical_import.apply_async(args=[historical.pk]))
    return historical


def run_historical_import(historical_import_id: int) -> HistoricalImport:
    """Run a queued import: confirmed then unconfirmed shipments. At most once (claim)."""
    now = timezone.now()
    claimed = HistoricalImport.objects.filter(
        pk=historical_import_id, status=HistoricalImport.Status.QUEUED
    ).update(status=HistoricalImport.Status.RUNNING, started_at=now)
    historical = HistoricalImport.objects.select_related("account__store").get(
        pk=historical_import_id
    )
    if not claimed:
        return historical
    result = sync_account(
        historical.account, states=("confirmed", "unconfirmed"), historical=historical
    )
    if result.skipped:
        result.error = "Another sync of this account was running; start the import again."
    HistoricalImport.objects.filter(pk=historical.pk).update(
        status=HistoricalImport.Status.FAILED
        if result.error
        else HistoricalImport.Status.SUCCEEDED,
        error=result.error,
        finished_at=timezone.now(),
    )
    historical.refresh_from_db()
    return historical


def _gtin_key(value: str | None) -> str:
    return (value or "").strip().lstrip("0")


class _Catalogue:
    """The store's products matching a page's GTINs and SKUs, fetched in two queries."""

    def __init__(self, store: Store, nodes: list[dict]) -> None:
        gtins, skus = set(), set()
        for node in nodes:
            for unit in node["inventoryUnits"]:
                variant = unit["variant"]
                number = (variant.get("tradeId") or {}).get("number")
                if number:
                    key = _gtin_key(number)
                    gtins.update(
                        {number, key, key.zfill(8), key.zfill(12), key.zfill(13), key.zfill(14)}
                    )
                if variant.get("sku"):
                    skus.add(variant["sku"])
        self.by_gtin: dict[str, list[Product]] = {}
        self.by_sku: dict[str, Product] = {}
        products = Product.objects.filter(store=store).filter(
            Q(gtin__in=gtins - {""}) | Q(sku__in=skus)
        )
        # Active products first, then oldest: the same pick every time.
        for product in sorted(products, key=lambda p: (not p.is_active, p.pk)):
            if product.gtin:
                self.by_gtin.setdefault(_gtin_key(product.gtin), []).append(product)
            self.by_sku.setdefault(product.sku, product)

    def match(self, variant: dict) -> Product | None:
        """The product of the variant's GTIN (when several of the store's products share
        it, the one with the variant's SKU, else the first active, oldest), else of its
        SKU, else None."""
        number = (variant.get("tradeId") or {}).get("number")
        sku = variant.get("sku") or ""
        if number and (candidates := self.by_gtin.get(_gtin_key(number))):
            return next((p for p in candidates if p.sku == sku), candidates[0])
        return self.by_sku.get(sku) if sku else None


@dataclass
class ImportedPage:
    created: list[Order] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


# Data errors of one shipment: it is skipped (and reported), the others go on.
_SHIPMENT_ERRORS = (
    DomainError,
    DataError,
    IntegrityError,
    ValidationError,
    ValueError,
    ArithmeticError,
    LookupError,
    TypeError,
    AttributeError,
)


def import_shipments(store: Store, nodes: list[dict]) -> ImportedPage:
    """Import a page of shipments, each in its own transaction; returns the orders created
    (already imported: skipped) and the shipments rejected for their data (nothing of
    them written; their RejectedShipment rows are the caller's). A shipment that imports
    deletes its earlier RejectedShipment row."""
    page = ImportedPage()
    valid: list[tuple[dict, list[str]]] = []
    for raw in nodes:
        try:
            valid.append(clean_shipment(raw))
        except ShipmentRejected as exc:
            page.rejected.append(_rejection(raw, exc.field, str(exc)))
    if not valid:
        return page
    ids = [node["id"] for node, _notes in valid]
    existing = set(
        Order.objects.filter(
            store=store, channel=Order.Channel.LETZSHOP, external_id__in=ids
        ).values_list("external_id", flat=True)
    )
    fresh = [(node, notes) for node, notes in valid if node["id"] not in existing]
    if fresh:
        catalogue = _Catalogue(store, [node for node, _notes in fresh])
        for node, notes in fresh:
            try:
                order = _import_clean_shipment(store, node, notes, catalogue)
            except _SHIPMENT_ERRORS as exc:
                if not isinstance(exc, ShipmentRejected):
                    logger.warning("letzshop shipment %s not imported: %r", node["id"], exc)
                page.rejected.append(_rejection(node, getattr(exc, "field", ""), _error_text(exc)))
                continue
            if order is not None:
                page.created.append(order)
    rejected_ids = {r.shipment_id for r in page.rejected}
    RejectedShipment.objects.filter(
        account__store=store, external_id__in=[i for i in ids if i not in rejected_ids]
    ).delete()
    return page


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ShipmentRejected):
        return str(exc)
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"cannot be stored ({type(exc).__name__}: {first_line})"


def _rejection(node, field_name: str, reason: str) -> Rejection:
    node = node if isinstance(node, dict) else {}
    shipment_id = node.get("id") if isinstance(node.get("id"), str) else ""
    number = node.get("number") if isinstance(node.get("number"), str) else ""
    return Rejection(
        _without_nul(shipment_id) or "(no id)", _without_nul(number), field_name, reason
    )


def _without_nul(value):
    """`value` with NUL characters removed from every string (PostgreSQL text refuses them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _text(container: dict, key: str, where: str, *, max_length: int, required=False) -> str:
    value = container.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ShipmentRejected(where, f"expected text, got {value!r:.80}")
    if required and not value.strip():
        raise ShipmentRejected(where, "expected a value, got nothing")
    if len(value) > max_length:
        raise ShipmentRejected(where, f"expected at most {max_length} characters, got {len(value)}")
    return value


def _money(value, where: str, *, max_digits: int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ShipmentRejected(where, f"expected an amount such as 12.50, got {value!r:.80}")
    try:
        amount = round_money(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        raise ShipmentRejected(
            where, f"expected an amount such as 12.50, got {value!r:.80}"
        ) from None
    if not amount.is_finite() or amount < 0 or abs(amount) >= Decimal(10) ** (max_digits - 2):
        raise ShipmentRejected(
            where, f"expected an amount from 0 to {10 ** (max_digits - 2) - 1}, got {value!r:.80}"
        )
    return amount


def _completed_at(value) -> tuple[datetime | None, str]:
    """Letzshop's completedAt as an aware datetime, or None and why (never raises)."""
    if value in (None, ""):
        return None, ""
    problem = f"completedAt {value!r:.80} is not a valid date and time; placed at import time."
    if not isinstance(value, str):
        return None, problem
    try:
        moment = parse_datetime(value.strip())
    except ValueError:  # well formed but impossible, such as 30 February
        return None, problem
    if moment is None:
        return None, problem
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment, ""


def clean_shipment(raw) -> tuple[dict, list[str]]:
    """Validate and normalise one shipment from Letzshop before anything is written.

    Returns a copy without NUL characters, with `order.completedAt` an aware datetime or
    None (an invalid date is not a reason to refuse a paid order: it is placed at import
    time and the returned note says so), `order.total` and every `variant.price` Decimals;
    and the notes. Raises ShipmentRejected naming the field and what was expected."""
    if not isinstance(raw, dict):
        raise ShipmentRejected("shipment", f"expected an object, got {raw!r:.80}")
    node = _without_nul(raw)
    _text(node, "id", "id", max_length=100, required=True)
    _text(node, "number", "number", max_length=100)
    remote = node.get("order")
    if not isinstance(remote, dict):
        raise ShipmentRejected("order", f"expected an object, got {remote!r:.80}")
    email = _text(remote, "email", "order.email", max_length=254).strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ShipmentRejected(
                "order.email", f"expected an email address, got {email!r:.80}"
            ) from None
    remote["total"] = _money(
        remote.get("total") if remote.get("total") is not None else 0,
        "order.total",
        max_digits=12,
    )
    remote["completedAt"], problem = _completed_at(remote.get("completedAt"))
    notes = [problem] if problem else []
    for key in ("shipAddress", "billAddress"):
        if remote.get(key) is not None and not isinstance(remote[key], dict):
            raise ShipmentRejected(f"order.{key}", f"expected an object, got {remote[key]!r:.80}")
    units = node.get("inventoryUnits")
    if not isinstance(units, list) or not units:
        raise ShipmentRejected("inventoryUnits", "expected at least one inventory unit")
    seen_ids: set[str] = set()
    for index, unit in enumerate(units):
        where = f"inventoryUnits[{index}]"
        if not isinstance(unit, dict) or not isinstance(unit.get("variant"), dict):
            raise ShipmentRejected(where, "expected a unit with a variant")
        unit_id = _text(unit, "id", f"{where}.id", max_length=100, required=True)
        if unit_id in seen_ids:
            raise ShipmentRejected(f"{where}.id", f"expected unique unit ids, {unit_id} twice")
        seen_ids.add(unit_id)
        _text(unit, "state", f"{where}.state", max_length=24)
        variant = unit["variant"]
        _text(variant, "id", f"{where}.variant.id", max_length=100, required=True)
        variant["price"] = _money(variant.get("price"), f"{where}.variant.price", max_digits=10)
        _text(variant, "sku", f"{where}.variant.sku", max_length=100)
        trade_id = variant.get("tradeId")
        if trade_id is not None:
            if not isinstance(trade_id, dict):
                raise ShipmentRejected(
                    f"{where}.variant.tradeId", f"expected an object, got {trade_id!r:.80}"
                )
            _text(trade_id, "number", f"{where}.variant.tradeId.number", max_length=50)
    return node, notes


def import_shipment(
    store: Store, node: dict, *, catalogue: _Catalogue | None = None
) -> Order | None:
    """Create the Order of one Letzshop shipment, in one transaction with its lines, units,
    exceptions, customer, event and stock reservations. Returns None when the shipment is
    already imported (checked inside the transaction; a concurrent insert loses on the
    unique constraint order_external_id_unique and is treated the same way). Raises
    ShipmentRejected (see `clean_shipment`) before writing anything.
    """
    node, notes = clean_shipment(node)
    return _import_clean_shipment(store, node, notes, catalogue or _Catalogue(store, [node]))


def _decimal(value) -> Decimal:
    return round_money(Decimal(str(value)))


def _address(raw: dict | None) -> dict:
    raw = raw or {}
    country = raw.get("country") or {}
    first, last = raw.get("firstName") or "", raw.get("lastName") or ""
    street = " ".join(p for p in (raw.get("streetNumber"), raw.get("streetName")) if p)
    return {
        "name": f"{first} {last}".strip(),
        "first_name": first,
        "last_name": last,
        "company": raw.get("company") or "",
        "street": street,
        "street_name": raw.get("streetName") or "",
        "street_number": raw.get("streetNumber") or "",
        "postal_code": raw.get("zipCode") or "",
        "city": raw.get("city") or "",
        "country": (country.get("iso") or "").upper(),
        "country_name": country.get("name") or "",
        "phone": raw.get("phone") or "",
    }


def _vat_regime(country: str) -> str:
    if country == "LU" or not country:
        return Order.VatRegime.DOMESTIC
    if country in EU_COUNTRY_CODES:
        return Order.VatRegime.OSS
    return Order.VatRegime.EXPORT


def _title(variant: dict, locale: str) -> str:
    names = (variant.get("product") or {}).get("name") or {}
    for code in (locale, "en", "fr", "de"):
        if names.get(code):
            return names[code]
    return variant.get("sku") or (variant.get("tradeId") or {}).get("number") or variant["id"]


def _status_from_units(states: list[str], tracked: bool) -> str:
    if states and all(s == Unit.CONFIRMED_UNAVAILABLE for s in states):
        return Order.Status.CANCELLED
    if any(s == Unit.CONFIRMED_AVAILABLE for s in states):
        return Order.Status.SHIPPED if tracked else Order.Status.PROCESSING
    return Order.Status.PENDING


def _import_clean_shipment(
    store: Store, node: dict, notes: list[str], catalogue: _Catalogue
) -> Order | None:
    lookup = {"store": store, "channel": Order.Channel.LETZSHOP, "external_id": node["id"]}
    try:
        with transaction.atomic():
            if Order.objects.filter(**lookup).exists():
                return None
            return _create_order(store, node, catalogue, notes)
    except IntegrityError:
        if Order.objects.filter(**lookup).exists():
            return None
        raise


def _create_order(store: Store, node: dict, catalogue: _Catalogue, notes: list[str]) -> Order:
    remote = node["order"]
    locale = remote.get("locale") if remote.get("locale") in LANGUAGE_CODES else "en"
    email = (remote.get("email") or "").strip().lower()
    shipping = _address(remote.get("shipAddress"))
    billing = _address(remote.get("billAddress"))
    tracked = bool((node.get("tracking") or {}).get("code"))
    unit_states = [u["state"] for u in node["inventoryUnits"]]
    status = _status_from_units(unit_states, tracked)
    completed_at = remote.get("completedAt")  # cleaned: a datetime or None

    order = Order.objects.create(
        store=store,
        number=next_order_number(store, timezone.localdate().year),
        channel=Order.Channel.LETZSHOP,
        external_id=node["id"],
        external_number=node.get("number") or "",
        customer=customer_for_order(store, email, shipping, locale, None) if email else None,
        status=status,
        email=email,
        locale=locale,
        billing_address=billing,
        shipping_address=shipping,
        currency=store.currency,
        vat_regime=_vat_regime(shipping["country"]),
    )

    by_variant: dict[str, list[dict]] = {}
    for unit in node["inventoryUnits"]:
        by_variant.setdefault(unit["variant"]["id"], []).append(unit)
    declined = {u["id"] for u in node["inventoryUnits"] if u["state"] == Unit.CONFIRMED_UNAVAILABLE}
    lines: list[OrderLine] = []
    for units in by_variant.values():
        variant = units[0]["variant"]
        product = catalogue.match(variant)
        unit_price = _decimal(variant["price"])
        line_total = round_money(unit_price * len(units))
        vat_rate = product.vat_rate if product is not None else store.default_vat_rate
        lines.append(
            OrderLine(
                order=order,
                product=product,
                sku=(variant.get("sku") or (product.sku if product else ""))[:100],
                gtin=((variant.get("tradeId") or {}).get("number") or "")[:14],
                title=_title(variant, locale)[:300],
                quantity=len(units),
                # Declined before the import: never reserved, never shipped.
                quantity_cancelled=sum(1 for u in units if u["id"] in declined),
                unit_price=unit_price,
                vat_rate=vat_rate,
                line_total=line_total,
                vat_amount=vat_included(line_total, vat_rate),
                external_unit_ids=[u["id"] for u in units],
            )
        )
    OrderLine.objects.bulk_create(lines)

    line_by_unit = {uid: line for line in lines for uid in line.external_unit_ids}
    InventoryUnit.objects.bulk_create(
        InventoryUnit(
            order=order,
            order_line=line_by_unit[u["id"]],
            external_id=u["id"],
            state=u["state"] if u["state"] in Unit.values else Unit.UNCONFIRMED,
        )
        for u in node["inventoryUnits"]
    )
    OrderException.objects.bulk_create(
        OrderException(
            order=order,
            order_line=line,
            kind=OrderException.Kind.UNMATCHED_PRODUCT,
            gtin=line.gtin,
            sku=line.sku,
            title=line.title,
        )
        for line in lines
        if line.product is None
    )

    if status in (Order.Status.PENDING, Order.Status.PROCESSING):
        # The order exists at Letzshop whatever our stock says: a product short of stock
        # reserves nothing and the store decides (declines) its units.
        to_reserve: dict[int, int] = {}
        for line in lines:
            if line.product_id is not None:
                left = line.quantity - line.quantity_cancelled
                to_reserve[line.product_id] = to_reserve.get(line.product_id, 0) + left
        reserve_for_order(order, to_reserve, allow_short=True)

    order.subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
    order.vat_total = sum((line.vat_amount for line in lines), Decimal("0.00"))
    remote_total = _decimal(remote.get("total") or 0)
    order.total = remote_total if remote_total > 0 else order.subtotal
    order.shipping_total = max(order.total - order.subtotal, Decimal("0.00"))
    updates = {
        "subtotal": order.subtotal,
        "vat_total": order.vat_total,
        "total": order.total,
        "shipping_total": order.shipping_total,
    }
    if completed_at is not None:
        # The shopper ordered (and paid Letzshop) at completedAt, not when we synced.
        updates["placed_at"] = completed_at
        updates["paid_at"] = completed_at
    Order.objects.filter(pk=order.pk).update(**updates)
    for name, value in updates.items():
        setattr(order, name, value)
    OrderEvent.objects.create(
        order=order,
        from_status="",
        to_status=status,
        note=" ".join(
            [f"Imported from Letzshop shipment {node.get('number') or node['id']}", *notes]
        ),
    )
    # Beyond the tier's monthly limit the order is still imported (the shopper paid):
    # flagged, and the store told once a month. Counted on the final placed_at.
    flag_order_over_limit(order)
    return order


# --- exceptions -----------------------------------------------------------------------


@transaction.atomic
def resolve_exception(exception: OrderException, product: Product, *, actor=None) -> bool:
    """Map an unmatched line to `product` of the order's store: sets the line's product,
    reserves its undecided units, closes the exception. Returns False (no-op) when it is
    already resolved to that product; raises DomainError otherwise when not open."""
    exception = (
        OrderException.objects.select_for_update().select_related("order").get(pk=exception.pk)
    )
    if exception.status != OrderException.Status.OPEN:
        if exception.resolved_product_id == product.pk:
            return False
        raise DomainError(f"This exception is already {exception.get_status_display().lower()}.")
    order = exception.order
    if product.store_id != order.store_id:
        raise DomainError("The product belongs to another store.")
    line = OrderLine.objects.select_for_update().get(pk=exception.order_line_id)
    OrderLine.objects.filter(pk=line.pk).update(product=product)
    line.product = product
    if order.status in (Order.Status.PENDING, Order.Status.PROCESSING):
        undeclined = (
            InventoryUnit.objects.filter(order_line=line)
            .exclude(state=Unit.CONFIRMED_UNAVAILABLE)
            .count()
        )
        reserve_for_order(order, {product.pk: undeclined}, actor=actor, allow_short=True)
    OrderException.objects.filter(pk=exception.pk).update(
        status=OrderException.Status.RESOLVED,
        resolved_product=product,
        resolved_by=actor,
        resolved_at=timezone.now(),
    )
    return True


@transaction.atomic
def ignore_exception(exception: OrderException, *, actor=None) -> bool:
    """Let the order be confirmed without a product for the line. Idempotent."""
    updated = OrderException.objects.filter(
        pk=exception.pk, status=OrderException.Status.OPEN
    ).update(status=OrderException.Status.IGNORED, resolved_by=actor, resolved_at=timezone.now())
    return bool(updated)


def resolve_exceptions_for_store(store: Store) -> int:
    """Resolve the store's open unmatched-product exceptions whose GTIN (or SKU) now exists
    in its catalogue. Call after a product import; the sync calls it too. Returns how many
    were resolved; idempotent."""
    exceptions = list(
        OrderException.objects.filter(
            order__store=store,
            status=OrderException.Status.OPEN,
            kind=OrderException.Kind.UNMATCHED_PRODUCT,
        )
    )
    if not exceptions:
        return 0
    nodes = [
        {
            "inventoryUnits": [
                {
                    "variant": {
                        "id": "",
                        "sku": e.sku,
                        "tradeId": {"number": e.gtin} if e.gtin else None,
                    }
                }
            ]
        }
        for e in exceptions
    ]
    catalogue = _Catalogue(store, nodes)
    resolved = 0
    for exception in exceptions:
        product = catalogue.match(
            {
                "sku": exception.sku,
                "tradeId": {"number": exception.gtin} if exception.gtin else None,
            }
        )
        if product is not None and resolve_exception(exception, product):
            resolved += 1
    return resolved


# --- fulfilment -----------------------------------------------------------------------


def _queue(order: Order, kind: str, payload: dict, actor) -> FulfilmentTask:
    task = FulfilmentTask.objects.create(
        order=order, kind=kind, payload=payload, next_attempt_at=timezone.now(), created_by=actor
    )
    transaction.on_commit(lambda: dispatch_fulfilment_task(task.pk))
    return task


def decide_units(order: Order, decisions: dict[str, bool], *, actor=None) -> list[FulfilmentTask]:
    """Confirm (True) or decline (False) Letzshop inventory units of `order`.

    In one transaction: locks the order and its units, refuses unknown units, a confirmation
    while an unmatched-product exception is open on a line with a unit not declined
    (OpenExceptions) and changing a decided unit; writes the unit states; closes as
    ignored (with an OrderEvent note) the open exceptions of lines whose every unit is
    declined; cancels the declined units on their order lines
    (marketplace `cancel_order_line_units`: reservations released, all declined ->
    cancelled); any confirmed -> processing; creates one FulfilmentTask per kind, sent
    after commit. Deciding a unit the way it already is, is a no-op; returns the tasks
    created (none when nothing changed).
    """
    if not decisions:
        raise DomainError("Choose at least one unit.")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.channel != Order.Channel.LETZSHOP:
            raise DomainError("Only Letzshop orders have inventory units.")
        units = {
            u.external_id: u
            for u in InventoryUnit.objects.select_for_update()
            .filter(order=order)
            .select_related("order_line")
        }
        unknown = sorted(set(decisions) - set(units))
        if unknown:
            raise DomainError(f"Unknown units for order {order.number}: {', '.join(unknown)}.")
        final = {
            external_id: (
                (Unit.CONFIRMED_AVAILABLE if decisions[external_id] else Unit.CONFIRMED_UNAVAILABLE)
                if external_id in decisions
                else unit.state
            )
            for external_id, unit in units.items()
        }
        declined_lines = _fully_declined_lines(units, final)
        blocking = selectors.open_exceptions(order).exclude(order_line_id__in=declined_lines)
        if any(decisions.values()) and blocking.exists():
            raise OpenExceptions(
                f"Order {order.number} has unmatched products: map them to a product or "
                "ignore them before confirming."
            )
        changed: dict[bool, list[InventoryUnit]] = {True: [], False: []}
        now = timezone.now()
        for external_id, available in decisions.items():
            unit = units[external_id]
            wanted = Unit.CONFIRMED_AVAILABLE if available else Unit.CONFIRMED_UNAVAILABLE
            if unit.state == wanted:
                continue
            if unit.state != Unit.UNCONFIRMED:
                raise DomainError(
                    f"Unit {external_id} is already {unit.get_state_display().lower()}."
                )
            if order.status not in (Order.Status.PENDING, Order.Status.PROCESSING):
                raise DomainError(f"Order {order.number} is {order.get_status_display().lower()}.")
            unit.state, unit.decided_at, unit.decided_by = wanted, now, actor
            unit.save(update_fields=["state", "decided_at", "decided_by"])
            changed[bool(available)].append(unit)
        if not (changed[True] or changed[False]):
            return []

        declined_per_line: dict[int, int] = {}
        for unit in changed[False]:
            declined_per_line[unit.order_line_id] = declined_per_line.get(unit.order_line_id, 0) + 1
        cancel_order_line_units(order, declined_per_line, actor=actor, note="Declined at Letzshop.")

        states = [u.state for u in units.values()]
        new_status = _status_from_units(states, tracked=False)
        if new_status != Order.Status.PENDING:
            # All declined: already cancelled above, so this is a quiet no-op.
            transition_order(order, new_status, actor=actor, note="Letzshop units decided")
        _ignore_exceptions_of_declined_lines(order, declined_lines, actor=actor)

        tasks = []
        for available, kind in (
            (True, FulfilmentTask.Kind.CONFIRM_UNITS),
            (False, FulfilmentTask.Kind.DECLINE_UNITS),
        ):
            if changed[available]:
                ids = [u.external_id for u in changed[available]]
                tasks.append(
                    _queue(order, kind, {"unit_ids": ids, "is_available": available}, actor)
                )
        return tasks


def _fully_declined_lines(units: dict[str, InventoryUnit], final: dict[str, str]) -> set[int]:
    """The order lines all of whose units are (or are being) declined."""
    lines: dict[int, bool] = {}
    for external_id, unit in units.items():
        declined = final[external_id] == Unit.CONFIRMED_UNAVAILABLE
        lines[unit.order_line_id] = lines.get(unit.order_line_id, True) and declined
    return {line_id for line_id, declined in lines.items() if declined}


def _ignore_exceptions_of_declined_lines(order: Order, line_ids: set[int], *, actor) -> None:
    """Close as ignored the open exceptions of lines with every unit declined: nothing of
    them will ship, so there is no product to map. One OrderEvent note per exception."""
    exceptions = list(selectors.open_exceptions(order).filter(order_line_id__in=line_ids))
    if not exceptions:
        return
    OrderException.objects.filter(
        pk__in=[e.pk for e in exceptions], status=OrderException.Status.OPEN
    ).update(status=OrderException.Status.IGNORED, resolved_by=actor, resolved_at=timezone.now())
    status = Order.objects.values_list("status", flat=True).get(pk=order.pk)
    OrderEvent.objects.bulk_create(
        OrderEvent(
            order=order,
            actor=actor,
            from_status=status,
            to_status=status,
            note=f"Unmatched product {e.gtin or e.sku or e.title} ignored: every unit declined.",
        )
        for e in exceptions
    )


_CARRIER_ALIASES = {"post": "post_lu", "postlu": "post_lu", "post_luxembourg": "post_lu"}


def _carrier(provider: str) -> str:
    """The Shipment carrier for a Letzshop tracking provider ("other" when unknown)."""
    key = "_".join(provider.lower().replace("-", " ").split())
    key = _CARRIER_ALIASES.get(key, key)
    return key if key in Shipment.Carrier.values else Shipment.Carrier.OTHER


def set_tracking(order: Order, *, code: str, provider: str, actor=None) -> FulfilmentTask | None:
    """Record the tracking of a Letzshop order (the local copy is the truth, kept on the
    task payload) and queue the call to Letzshop, sent after commit.

    A processing order ships its confirmed units through marketplace `ship_order_lines`
    (one Shipment, carrier from `provider`, "other" when unknown; stock fulfilled; order
    shipped; the shopper's shipped email). On a shipped order the existing Shipment is
    relabelled with the new carrier and code (marketplace `change_shipment_tracking`: no
    new parcel, stock untouched, an OrderEvent) and the new tracking is sent. Requires a confirmed unit and no undecided one (DomainError); NotEnoughStock when
    fewer units are on hand than ship. The same tracking again is a no-op (returns None)."""
    code, provider = code.strip(), provider.strip()
    if not code or not provider:
        raise DomainError("Tracking needs a code and a provider.")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.channel != Order.Channel.LETZSHOP:
            raise DomainError("Only Letzshop orders send tracking to Letzshop.")
        previous = (
            FulfilmentTask.objects.filter(order=order, kind=FulfilmentTask.Kind.SET_TRACKING)
            .order_by("-id")
            .first()
        )
        if (
            previous
            and previous.payload.get("code") == code
            and previous.payload.get("provider") == provider
        ):
            return None
        states = [u.state for u in selectors.order_units(order)]
        if Unit.CONFIRMED_AVAILABLE not in states:
            raise DomainError("Confirm at least one unit before sending tracking.")
        if Unit.UNCONFIRMED in states:
            raise DomainError(
                f"Confirm or decline every unit of order {order.number} before sending tracking."
            )
        if order.status not in (Order.Status.PROCESSING, Order.Status.SHIPPED):
            raise DomainError(f"Order {order.number} is {order.get_status_display().lower()}.")
        if order.status == Order.Status.PROCESSING:
            # Every unit is decided and declined ones are cancelled on their lines, so
            # what is left on the lines is exactly the confirmed units.
            ship_order_lines(
                order,
                {line.pk: line.quantity_left for line in order.lines.all() if line.quantity_left},
                carrier=_carrier(provider),
                tracking_number=code,
                actor=actor,
                note=f"Tracking {provider} {code}",
                from_letzshop=True,
            )
        else:
            # Shipped: the local copy is the truth, so the parcel (one per Letzshop
            # shipment) is relabelled before Letzshop hears of the new code.
            shipment = order.shipments.order_by("-id").first()
            if shipment is not None:
                change_shipment_tracking(
                    shipment,
                    carrier=_carrier(provider),
                    tracking_number=code,
                    actor=actor,
                    note=f"Tracking changed to {provider} {code}",
                )
        return _queue(
            order,
            FulfilmentTask.Kind.SET_TRACKING,
            {"shipment_id": order.external_id, "code": code, "provider": provider},
            actor,
        )


def dispatch_fulfilment_task(task_id: int, countdown: float | None = None) -> None:
    from imports.letzshop import tasks

    tasks.run_fulfilment_task.apply_async(args=[task_id], countdown=countdown)


@dataclass(frozen=True)
class TaskOutcome:
    status: str
    retry_in: float | None = None


def _backoff(attempts: int) -> float:
    return float(
        min(
            settings.LETZSHOP_TASK_RETRY_MAX_SECONDS,
            settings.LETZSHOP_TASK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
        )
    )


def execute_fulfilment_task(task_id: int) -> TaskOutcome:
    """Send one due FulfilmentTask to Letzshop, at most one worker at a time (claimed by a
    conditional UPDATE pending -> running). Network errors and 5xx put it back to pending
    with exponential backoff (failed after LETZSHOP_TASK_MAX_ATTEMPTS); 4xx and Letzshop
    user errors fail it with the error on the row. A tracking task waits (without using
    an attempt) while an earlier confirmation of the order is unsent."""
    now = timezone.now()
    claimed = FulfilmentTask.objects.filter(
        pk=task_id, status=FulfilmentTask.Status.PENDING, next_attempt_at__lte=now
    ).update(status=FulfilmentTask.Status.RUNNING, attempts=F("attempts") + 1, updated_at=now)
    task = FulfilmentTask.objects.select_related("order__store").get(pk=task_id)
    if not claimed:
        return TaskOutcome(task.status)

    if task.kind == FulfilmentTask.Kind.SET_TRACKING:
        waiting = FulfilmentTask.objects.filter(
            order=task.order,
            id__lt=task.pk,
            status__in=[FulfilmentTask.Status.PENDING, FulfilmentTask.Status.RUNNING],
        ).exclude(kind=FulfilmentTask.Kind.SET_TRACKING)
        if waiting.exists():
            delay = 15.0
            FulfilmentTask.objects.filter(pk=task.pk).update(
                status=FulfilmentTask.Status.PENDING,
                attempts=F("attempts") - 1,
                next_attempt_at=now + timedelta(seconds=delay),
            )
            return TaskOutcome(FulfilmentTask.Status.PENDING, delay)

    account = None
    try:
        account = LetzshopAccount.objects.get(store=task.order.store_id)
        client = client_for(account, attempts=1)
        if task.kind == FulfilmentTask.Kind.SET_TRACKING:
            client.set_shipment_tracking(
                task.payload["shipment_id"], task.payload["code"], task.payload["provider"]
            )
        else:
            client.confirm_inventory_units(
                [
                    {"inventoryUnitId": uid, "isAvailable": bool(task.payload["is_available"])}
                    for uid in task.payload["unit_ids"]
                ]
            )
    except (LetzshopError, LetzshopAccount.DoesNotExist) as exc:
        status_code = getattr(exc, "http_status", None)
        transient = getattr(exc, "transient", False)
        if account is not None and isinstance(exc, LetzshopError) and exc.unauthorized:
            _record_account_outcome(account, exc, synced=False)
        if transient and task.attempts < settings.LETZSHOP_TASK_MAX_ATTEMPTS:
            delay = _backoff(task.attempts)
            FulfilmentTask.objects.filter(pk=task.pk).update(
                status=FulfilmentTask.Status.PENDING,
                next_attempt_at=timezone.now() + timedelta(seconds=delay),
                last_error=str(exc)[:2000],
                http_status=status_code,
                updated_at=timezone.now(),
            )
            return TaskOutcome(FulfilmentTask.Status.PENDING, delay)
        message = (
            str(exc)
            if not isinstance(exc, LetzshopAccount.DoesNotExist)
            else ("The store has no Letzshop account.")
        )
        FulfilmentTask.objects.filter(pk=task.pk).update(
            status=FulfilmentTask.Status.FAILED,
            last_error=message[:2000],
            http_status=status_code,
            updated_at=timezone.now(),
        )
        return TaskOutcome(FulfilmentTask.Status.FAILED)
    FulfilmentTask.objects.filter(pk=task.pk).update(
        status=FulfilmentTask.Status.SUCCEEDED,
        last_error="",
        http_status=200,
        updated_at=timezone.now(),
    )
    return TaskOutcome(FulfilmentTask.Status.SUCCEEDED)


def requeue_due_fulfilment_tasks(stuck_after: timedelta = timedelta(minutes=10)) -> list[int]:
    """Periodic sweep: hand out pending tasks that are due (a lost Celery message is
    harmless) and put back tasks stuck in running (a worker died mid-call; confirmations
    and tracking are idempotent at Letzshop, so sending again is safe)."""
    now = timezone.now()
    FulfilmentTask.objects.filter(
        status=FulfilmentTask.Status.RUNNING, updated_at__lt=now - stuck_after
    ).update(status=FulfilmentTask.Status.PENDING, next_attempt_at=now, updated_at=now)
    due = list(
        FulfilmentTask.objects.filter(
            status=FulfilmentTask.Status.PENDING, next_attempt_at__lte=now
        ).values_list("pk", flat=True)
    )
    for task_id in due:
        dispatch_fulfilment_task(task_id)
    return due
