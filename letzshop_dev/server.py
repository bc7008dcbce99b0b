"""The Letzshop development server: GraphQL (ariadne) over a plain WSGI app, state in memory.

Contract, as the real service as far as we know it (see `schema.graphql`):
- `POST /graphql` with `Authorization: Bearer <key>`; a key manages some vendors and sees
  only their shipments. A missing or wrong key answers HTTP 401 with a GraphQL error body.
- `shipments(state, vendorId, first, after)`: Relay connection, cursors stable while
  shipments change state (a cursor is the position of the shipment in insertion order).
- `confirmInventoryUnits`: per unit, `isAvailable`; a shipment becomes `confirmed` when
  every unit is decided and one is available, `declined` when all are unavailable.
- `setShipmentTracking`: on a confirmed shipment.

Dev-only endpoints (JSON, no auth): `POST /_dev/shipments` {"shipments": [...]} adds
shipments, `POST /_dev/reset` {"seed": true} empties (and reseeds) the state,
`POST /_dev/fail-next` {"count": N, "status": 500} makes the next N GraphQL requests
fail with that status, `POST /_dev/keys` {"key": "...", "vendorIds": [...]} adds a key,
`GET /_dev/shipments/<id>` returns one shipment as stored.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ariadne import MutationType, QueryType, UnionType, graphql_sync, make_executable_schema

PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_PATH = PACKAGE_DIR / "schema.graphql"
FIXTURE_PATH = PACKAGE_DIR / "shipments.json"
DEFAULT_API_KEY = "letzshop-dev-key"
MAX_PAGE_SIZE = 100
UNDECIDED = "unconfirmed"


def load_fixture() -> list[dict[str, Any]]:
    """The three example shipments (7 units) shipped with the package."""
    return json.loads(FIXTURE_PATH.read_text(encoding="utf-8"))["shipments"]


def generate_shipments(count: int, *, start: int = 1, vendor_id: str = "VEN-1") -> list[dict]:
    """`count` new unconfirmed shipments cloned from the fixture, ids `GS-<n>`, units
    `GU-<n>-<i>`: for demos and benchmarks."""
    templates = load_fixture()
    shipments = []
    for n in range(start, start + count):
        shipment = copy.deepcopy(templates[n % len(templates)])
        shipment["id"] = f"GS-{n}"
        shipment["number"] = f"H{n:09d}"
        shipment["order"]["id"] = f"GO-{n}"
        shipment["order"]["number"] = f"R{n:09d}"
        shipment["vendor"]["id"] = vendor_id
        for i, unit in enumerate(shipment["inventoryUnits"], start=1):
            unit["id"] = f"GU-{n}-{i}"
        shipments.append(shipment)
    return shipments


def _derive_state(shipment: dict) -> str:
    states = [unit["state"] for unit in shipment["inventoryUnits"]]
    if any(state == UNDECIDED for state in states):
        return "unconfirmed"
    if any(state == "confirmed_available" for state in states):
        return "confirmed"
    return "declined"


class LetzshopState:
    """Shipments, vendors and keys in memory. Every method takes the lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset(seed=False)

    def reset(self, *, seed: bool = False, api_key: str = DEFAULT_API_KEY) -> None:
        with self.lock:
            self.shipments: dict[str, dict] = {}
            self.order: list[str] = []  # insertion order: the cursor is a position in it
            self.unit_index: dict[str, str] = {}
            self.vendors: dict[str, dict] = {}
            self.keys: dict[str, set[str]] = {}
            self.failures: list[int] = []
            self.requests = 0
            self.mutations: list[dict] = []
            if seed:
                self.add_shipments(load_fixture())
                self.add_key(api_key, ["VEN-1"])

    def add_key(self, key: str, vendor_ids: list[str]) -> None:
        with self.lock:
            self.keys.setdefault(key, set()).update(vendor_ids)

    def add_shipments(self, shipments: list[dict]) -> int:
        """Add (or replace, by id) shipments; returns how many are stored now."""
        with self.lock:
            for raw in shipments:
                shipment = copy.deepcopy(raw)
                vendor = shipment.setdefault(
                    "vendor", {"id": "VEN-1", "name": "Demo Store", "slug": "demo-store"}
                )
                self.vendors.setdefault(vendor["id"], dict(vendor))
                shipment["state"] = _derive_state(shipment)
                shipment.setdefault("tracking", None)
                if shipment["id"] not in self.shipments:
                    self.order.append(shipment["id"])
                self.shipments[shipment["id"]] = shipment
                for unit in shipment["inventoryUnits"]:
                    self.unit_index[unit["id"]] = shipment["id"]
            return len(self.shipments)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.lock:
            self.failures.extend([status] * count)

    def take_failure(self) -> int | None:
        with self.lock:
            self.requests += 1
            return self.failures.pop(0) if self.failures else None

    def vendors_for(self, key: str | None) -> set[str] | None:
        with self.lock:
            return set(self.keys[key]) if key in self.keys else None

    def count(self) -> int:
        with self.lock:
            return len(self.shipments)

    def shipment(self, shipment_id: str) -> dict | None:
        with self.lock:
            found = self.shipments.get(shipment_id)
            return copy.deepcopy(found) if found else None

    def unit_state(self, unit_id: str) -> str:
        with self.lock:
            shipment = self.shipments[self.unit_index[unit_id]]
            return next(u["state"] for u in shipment["inventoryUnits"] if u["id"] == unit_id)

    # --- GraphQL operations ----------------------------------------------------------

    def page(
        self, vendor_ids: set[str], state: str | None, vendor_id: str | None, first: int, after
    ) -> dict:
        first = max(0, min(first if first is not None else 50, MAX_PAGE_SIZE))
        start = _decode_cursor(after) + 1 if after else 0
        with self.lock:
            matching = []
            for position, shipment_id in enumerate(self.order):
                shipment = self.shipments[shipment_id]
                if shipment["vendor"]["id"] not in vendor_ids:
                    continue
                if vendor_id is not None and shipment["vendor"]["id"] != vendor_id:
                    continue
                if state is not None and shipment["state"] != state:
                    continue
                matching.append((position, shipment))
            remaining = [(p, s) for p, s in matching if p >= start]
            chosen = remaining[:first]
            nodes = [copy.deepcopy(s) for _p, s in chosen]
            end_cursor = _encode_cursor(chosen[-1][0]) if chosen else after
            return {
                "nodes": nodes,
                "pageInfo": {"hasNextPage": len(remaining) > first, "endCursor": end_cursor},
                "totalCount": len(matching),
            }

    def decide_units(self, vendor_ids: set[str], decisions: list[dict]) -> dict:
        units, errors = [], []
        with self.lock:
            self.mutations.append({"confirmInventoryUnits": copy.deepcopy(decisions)})
            for decision in decisions:
                unit_id = decision["inventoryUnitId"]
                shipment = self.shipments.get(self.unit_index.get(unit_id, ""))
                if shipment is None or shipment["vendor"]["id"] not in vendor_ids:
                    errors.append(_error(unit_id, "not_found", f"Unknown inventory unit {unit_id}"))
                    continue
                unit = next(u for u in shipment["inventoryUnits"] if u["id"] == unit_id)
                wanted = (
                    "confirmed_available" if decision["isAvailable"] else "confirmed_unavailable"
                )
                if unit["state"] not in (UNDECIDED, wanted):
                    errors.append(
                        _error(unit_id, "invalid_state", f"Unit {unit_id} is {unit['state']}")
                    )
                    continue
                unit["state"] = wanted
                shipment["state"] = _derive_state(shipment)
                units.append(copy.deepcopy(unit))
        return {"inventoryUnits": units, "errors": errors}

    def set_tracking(self, vendor_ids: set[str], shipment_id: str, code: str, provider: str):
        with self.lock:
            self.mutations.append(
                {"setShipmentTracking": {"shipmentId": shipment_id, "code": code}}
            )
            shipment = self.shipments.get(shipment_id)
            if shipment is None or shipment["vendor"]["id"] not in vendor_ids:
                return {
                    "shipment": None,
                    "errors": [_error(shipment_id, "not_found", "Unknown shipment")],
                }
            if shipment["state"] != "confirmed":
                return {
                    "shipment": None,
                    "errors": [_error(shipment_id, "invalid_state", "Shipment is not confirmed")],
                }
            shipment["tracking"] = {"code": code, "provider": provider}
            return {"shipment": copy.deepcopy(shipment), "errors": []}


def _error(item_id: str, code: str, message: str) -> dict:
    return {"id": item_id, "code": code, "message": message}


def _encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"pos:{position}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("pos:"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"Invalid cursor {cursor!r}") from exc


# --- schema and resolvers -------------------------------------------------------------

query = QueryType()
mutation = MutationType()
brand_result = UnionType("BrandResult")


@query.field("shipments")
def resolve_shipments(_obj, info, state=None, vendorId=None, first=50, after=None):  # noqa: N803
    ctx = info.context
    return ctx["state"].page(ctx["vendor_ids"], state, vendorId, first, after)


@query.field("viewer")
def resolve_viewer(_obj, info):
    ctx = info.context
    with ctx["state"].lock:
        vendors = [
            dict(ctx["state"].vendors.get(v, {"id": v, "name": v, "slug": v}))
            for v in sorted(ctx["vendor_ids"])
        ]
    return {"vendors": vendors}


@mutation.field("confirmInventoryUnits")
def resolve_confirm_inventory_units(_obj, info, input):  # noqa: A002
    ctx = info.context
    return ctx["state"].decide_units(ctx["vendor_ids"], input["inventoryUnits"])


@mutation.field("setShipmentTracking")
def resolve_set_shipment_tracking(_obj, info, input):  # noqa: A002
    ctx = info.context
    return ctx["state"].set_tracking(
        ctx["vendor_ids"], input["shipmentId"], input["code"], input["provider"]
    )


@brand_result.type_resolver
def resolve_brand_type(obj, *_):
    return obj.get("__typename") or ("Brand" if obj.get("name") else "BrandUnknown")


schema = make_executable_schema(
    SCHEMA_PATH.read_text(encoding="utf-8"), query, mutation, brand_result
)


# --- WSGI -----------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
}


def _json(start_response, status: int, body: Any):
    payload = json.dumps(body).encode()
    reason = _REASONS.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _read_json(environ) -> Any:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    return json.loads(raw or b"{}")


def make_app(state: LetzshopState):
    """The WSGI application serving `state`."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/graphql":
                if method != "POST":
                    return _json(start_response, 405, {"errors": [{"message": "POST only"}]})
                return _graphql(state, environ, start_response)
            if path.startswith("/_dev/"):
                return _dev(state, path, method, environ, start_response)
        except ValueError as exc:
            return _json(start_response, 400, {"errors": [{"message": str(exc)}]})
        return _json(start_response, 404, {"errors": [{"message": f"No route {path}"}]})

    return app


def _graphql(state: LetzshopState, environ, start_response):
    failure = state.take_failure()
    if failure is not None:
        return _json(
            start_response, failure, {"errors": [{"message": f"Injected failure {failure}"}]}
        )
    auth = environ.get("HTTP_AUTHORIZATION", "")
    key = auth[7:].strip() if auth.startswith("Bearer ") else None
    vendor_ids = state.vendors_for(key)
    if vendor_ids is None:
        return _json(
            start_response,
            401,
            {"errors": [{"message": "Invalid API key", "extensions": {"code": "UNAUTHENTICATED"}}]},
        )
    data = _read_json(environ)
    success, result = graphql_sync(
        schema, data, context_value={"state": state, "vendor_ids": vendor_ids}
    )
    return _json(start_response, 200 if success else 400, result)


def _dev(state: LetzshopState, path: str, method: str, environ, start_response):
    if method == "GET" and path.startswith("/_dev/shipments/"):
        shipment = state.shipment(path.removeprefix("/_dev/shipments/"))
        if shipment is None:
            return _json(start_response, 404, {"error": "not found"})
        return _json(start_response, 200, shipment)
    if method != "POST":
        return _json(start_response, 405, {"error": "POST only"})
    body = _read_json(environ)
    if path == "/_dev/shipments":
        return _json(start_response, 200, {"count": state.add_shipments(body["shipments"])})
    if path == "/_dev/reset":
        state.reset(seed=bool(body.get("seed")), api_key=body.get("key") or DEFAULT_API_KEY)
        return _json(start_response, 200, {"count": state.count()})
    if path == "/_dev/fail-next":
        state.fail_next(int(body.get("count", 1)), int(body.get("status", 500)))
        return _json(start_response, 200, {"pending": len(state.failures)})
    if path == "/_dev/keys":
        state.add_key(body["key"], list(body["vendorIds"]))
        return _json(start_response, 200, {"ok": True})
    return _json(start_response, 404, {"error": f"No route {path}"})


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


@dataclass
class DevServer:
    """A running server: `url` is the GraphQL endpoint, `state` the in-memory data."""

    state: LetzshopState
    httpd: ThreadingWSGIServer
    thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/graphql"

    def start_in_thread(self) -> DevServer:
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="letzshop-dev", daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)


def serve(
    host: str = "127.0.0.1", port: int = 8765, *, seed: bool = False, api_key: str = DEFAULT_API_KEY
) -> DevServer:
    """Bind a threaded WSGI server (port 0 picks a free one); call `start_in_thread()` or
    `httpd.serve_forever()` on the result."""
    state = LetzshopState()
    state.reset(seed=seed, api_key=api_key)
    if not seed:
        state.add_key(api_key, ["VEN-1"])
    httpd = make_server(
        host, port, make_app(state), server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    return DevServer(state=state, httpd=httpd)
