"""The Letzshop GraphQL client: the only module that writes GraphQL. HTTP via requests.

Database-free: every HTTP attempt is reported to the `recorder` callable given by the
caller (services write it to SyncLog). Errors are `LetzshopError` with `transient` set for
network failures and 5xx (worth retrying) and cleared for everything else (4xx, GraphQL
errors: retrying the same request will not help).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

SHIPMENT_FIELDS = """
  id number state
  order {
    id number email total completedAt locale
    shipAddress { ...Address }
    billAddress { ...Address }
  }
  inventoryUnits {
    id state
    variant {
      id sku mpn price
      tradeId { number parser }
      product { name { en fr de } _brand { __typename ... on Brand { name } } }
    }
  }
  tracking { code provider }
"""

ADDRESS_FRAGMENT = """
fragment Address on Address {
  firstName lastName company streetName streetNumber city zipCode phone
  country { name iso }
}
"""

SHIPMENTS_QUERY = (
    """
query Shipments($state: ShipmentState, $vendorId: ID, $first: Int, $after: String) {
  shipments(state: $state, vendorId: $vendorId, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {"""
    + SHIPMENT_FIELDS
    + """}
  }
}
"""
    + ADDRESS_FRAGMENT
)

VIEWER_QUERY = """
query Viewer { viewer { vendors { id name slug } } }
"""

CONFIRM_UNITS_MUTATION = """
mutation ConfirmInventoryUnits($input: ConfirmInventoryUnitsInput!) {
  confirmInventoryUnits(input: $input) {
    inventoryUnits { id state }
    errors { id code message }
  }
}
"""

SET_TRACKING_MUTATION = """
mutation SetShipmentTracking($input: SetShipmentTrackingInput!) {
  setShipmentTracking(input: $input) {
    shipment { id state tracking { code provider } }
    errors { id code message }
  }
}
"""


class LetzshopError(Exception):
    """A call to Letzshop failed. `transient`: a retry may succeed (network, 5xx)."""

    def __init__(self, message: str, *, http_status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.http_status = http_status
        self.transient = transient

    @property
    def unauthorized(self) -> bool:
        return self.http_status in (401, 403)


@dataclass(frozen=True)
class CallRecord:
    operation: str
    summary: str
    duration_ms: int
    http_status: int | None
    error: str  # "" when the attempt succeeded


@dataclass(frozen=True)
class ShipmentPage:
    nodes: list[dict]
    has_next_page: bool
    end_cursor: str | None
    total_count: int


Recorder = Callable[[CallRecord], None]


class LetzshopClient:
    """Talks to one endpoint with one API key.

    `attempts`: tries per call for transient errors (1 = no retry here, the caller's queue
    retries); `retry_seconds`: base of the exponential pause between tries.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        *,
        recorder: Recorder | None = None,
        timeout: float = 30,
        attempts: int = 1,
        retry_seconds: float = 0,
        session: requests.Session | None = None,
    ) -> None:
        if not endpoint:
            raise LetzshopError("No Letzshop endpoint is configured.")
        self.endpoint = endpoint
        self.api_key = api_key
        self.recorder = recorder
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.retry_seconds = retry_seconds
        self.session = session or requests.Session()

    # --- operations ---------------------------------------------------------------------

    def viewer_vendors(self) -> list[dict]:
        data = self._call("viewer", VIEWER_QUERY, {}, summary="viewer { vendors }")
        return data["viewer"]["vendors"]

    def shipments_page(
        self, *, state: str, vendor_id: str | None, first: int, after: str | None
    ) -> ShipmentPage:
        variables = {"state": state, "vendorId": vendor_id or None, "first": first, "after": after}
        data = self._call(
            "shipments",
            SHIPMENTS_QUERY,
            variables,
            summary=f"state={state} vendorId={vendor_id or '-'} first={first} after={after or '-'}",
        )
        connection = data["shipments"]
        return ShipmentPage(
            nodes=connection["nodes"],
            has_next_page=connection["pageInfo"]["hasNextPage"],
            end_cursor=connection["pageInfo"]["endCursor"],
            total_count=connection["totalCount"],
        )

    def iter_shipment_pages(
        self, *, state: str, vendor_id: str | None, first: int = 50, after: str | None = None
    ) -> Iterator[ShipmentPage]:
        while True:
            page = self.shipments_page(state=state, vendor_id=vendor_id, first=first, after=after)
            yield page
            if not page.has_next_page or not page.end_cursor:
                return
            after = page.end_cursor

    def confirm_inventory_units(self, decisions: list[dict]) -> list[dict]:
        """`decisions`: [{"inventoryUnitId": ..., "isAvailable": bool}]. Returns the units;
        raises a permanent LetzshopError on user errors."""
        ids = ",".join(d["inventoryUnitId"] for d in decisions)
        data = self._call(
            "confirmInventoryUnits",
            CONFIRM_UNITS_MUTATION,
            {"input": {"inventoryUnits": decisions}},
            summary=f"units={ids} available={[d['isAvailable'] for d in decisions]}",
        )
        payload = data["confirmInventoryUnits"]
        _raise_user_errors(payload["errors"])
        return payload["inventoryUnits"]

    def set_shipment_tracking(self, shipment_id: str, code: str, provider: str) -> dict:
        data = self._call(
            "setShipmentTracking",
            SET_TRACKING_MUTATION,
            {"input": {"shipmentId": shipment_id, "code": code, "provider": provider}},
            summary=f"shipment={shipment_id} code={code} provider={provider}",
        )
        payload = data["setShipmentTracking"]
        _raise_user_errors(payload["errors"])
        return payload["shipment"]

    # --- transport ----------------------------------------------------------------------

    def _call(self, operation: str, query: str, variables: dict, *, summary: str) -> dict:
        for attempt in range(1, self.attempts + 1):
            try:
                return self._post_once(operation, query, variables, summary)
            except LetzshopError as exc:
                if not exc.transient or attempt == self.attempts:
                    raise
                if self.retry_seconds:
                    time.sleep(self.retry_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _post_once(self, operation: str, query: str, variables: dict, summary: str) -> dict:
        started = time.monotonic()
        status: int | None = None
        try:
            try:
                response = self.session.post(
                    self.endpoint,
                    json={"query": query, "variables": variables, "operationName": None},
                    headers={
                        "Authorization": f"Bearer {self.api_key}",
                        "Accept": "application/json",
                    },
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise LetzshopError(f"Network error: {exc}", transient=True) from exc
            status = response.status_code
            body = _json_or_none(response)
            if status in (401, 403):
                raise LetzshopError(
                    f"Letzshop refused the API key (HTTP {status}): {_first_error(body)}",
                    http_status=status,
                )
            if status >= 500 or status == 429:
                raise LetzshopError(
                    f"Letzshop is unavailable (HTTP {status}): {_first_error(body)}",
                    http_status=status,
                    transient=True,
                )
            if status >= 400 or body is None:
                raise LetzshopError(
                    f"Letzshop rejected the request (HTTP {status}): {_first_error(body)}",
                    http_status=status,
                )
            if body.get("errors"):
                raise LetzshopError(
                    f"Letzshop answered with an error: {_first_error(body)}", http_status=status
                )
            self._record(operation, summary, started, status, "")
            return body["data"]
        except LetzshopError as exc:
            self._record(operation, summary, started, status, str(exc))
            raise

    def _record(self, operation, summary, started, status, error) -> None:
        if self.recorder is not None:
            elapsed = int((time.monotonic() - started) * 1000)
            self.recorder(CallRecord(operation, summary[:500], elapsed, status, error))


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _first_error(body: Any) -> str:
    if isinstance(body, dict) and body.get("errors"):
        return "; ".join(str(e.get("message", e)) for e in body["errors"][:3])
    return "no error message"


def _raise_user_errors(errors: list[dict]) -> None:
    if errors:
        detail = "; ".join(f"{e.get('id') or ''} {e['code']}: {e['message']}" for e in errors)
        raise LetzshopError(f"Letzshop refused: {detail.strip()}", http_status=200)
