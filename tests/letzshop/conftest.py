"""Fixtures of the Letzshop tests: the development server on a free port, in this process,
spoken to over HTTP; a store with the fixture's catalogue; a recording broker."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal

import pytest
import requests

from imports.letzshop import services, tasks
from letzshop_dev import DEFAULT_API_KEY, DevServer, serve
from tests.conftest import Broker


@dataclass
class LetzshopHandle:
    """The running dev server: `url` is its GraphQL endpoint. Tests drive it over HTTP
    (`add_shipments`, `fail_next`, `reset`) and read its state to assert what it got."""

    server: DevServer

    @property
    def url(self) -> str:
        return self.server.url

    def _post(self, path: str, body: dict) -> dict:
        response = requests.post(self.server.base_url + path, json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def add_shipments(self, shipments: list[dict]) -> int:
        return self._post("/_dev/shipments", {"shipments": shipments})["count"]

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        self._post("/_dev/fail-next", {"count": count, "status": status})

    def reset(self, *, seed: bool = True) -> None:
        self._post("/_dev/reset", {"seed": seed})

    def shipment(self, shipment_id: str) -> dict:
        response = requests.get(f"{self.server.base_url}/_dev/shipments/{shipment_id}", timeout=10)
        response.raise_for_status()
        return response.json()

    def unit_state(self, unit_id: str) -> str:
        return self.server.state.unit_state(unit_id)

    @property
    def mutations(self) -> list[dict]:
        return list(self.server.state.mutations)


@pytest.fixture(scope="session")
def _letzshop_server():
    server = serve("127.0.0.1", 0, seed=True).start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def letzshop(_letzshop_server) -> LetzshopHandle:
    """The dev server, reseeded with the three fixture shipments for each test."""
    handle = LetzshopHandle(_letzshop_server)
    handle.reset(seed=True)
    return handle


@pytest.fixture
def catalogue_store(make_store, make_product):
    """A store selling the fixture's mug, tea and book (not the lamp), 10 of each."""
    store = make_store("kaffi-haus", name="Kaffi Haus", order_prefix="KH")
    make_product(store, "MUG-RED", title="Red mug", price="12.50", gtin="5400000000010")
    make_product(store, "TEA-GREEN", title="Green tea", price="7.90", gtin="5400000000027")
    make_product(
        store,
        "BOOK-FOLIO-1",
        title="Novel",
        price="24.00",
        gtin="9782070360024",
        vat_rate=Decimal("3.00"),
    )
    return store


def fetch_shipment(account, shipment_id: str) -> dict:
    """A deep copy of one unconfirmed shipment as the client reads it from the server."""
    (node,) = [
        n
        for n in services.client_for(account)
        .shipments_page(state="unconfirmed", vendor_id="VEN-1", first=10, after=None)
        .nodes
        if n["id"] == shipment_id
    ]
    return copy.deepcopy(node)


@pytest.fixture
def account(catalogue_store, letzshop):
    return services.connect_account(
        catalogue_store, api_key=DEFAULT_API_KEY, vendor_id="VEN-1", endpoint=letzshop.url
    )


@pytest.fixture
def broker(monkeypatch) -> Broker:
    recorder = Broker()
    monkeypatch.setattr(tasks.run_fulfilment_task, "apply_async", recorder.apply_async)
    return recorder


@pytest.fixture
def worker(broker):
    """Run the fulfilment task in this process for every message the broker holds. The
    test decides when time has passed: due times of pending tasks are moved to now."""
    from django.utils import timezone

    from imports.letzshop.models import FulfilmentTask

    def run() -> list[str]:
        messages = broker.take()
        FulfilmentTask.objects.filter(
            pk__in=[m["args"][0] for m in messages], status=FulfilmentTask.Status.PENDING
        ).update(next_attempt_at=timezone.now())
        return [tasks.run_fulfilment_task(*m["args"]) for m in messages]

    return run
