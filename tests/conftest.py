"""Shared fixtures: factories for stores and products, and the named personas."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from marketplace.models import Membership, Store
from marketplace.services import upsert_product

REPO_DIR = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_DIR.parent / "shared"
FEEDS_DIR = SHARED_DIR / "data" / "feeds"

_counter = itertools.count(1)


@dataclass
class Broker:
    """Stands in for Redis in tests that run tasks themselves: records what a task's
    `apply_async` would have published (monkeypatched on the task)."""

    published: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def apply_async(self, args=None, kwargs=None, **options):
        with self.lock:
            self.published.append({"args": list(args or []), **options})

    def take(self) -> list[dict]:
        with self.lock:
            taken, self.published[:] = list(self.published), []
        return taken


@pytest.fixture(autouse=True)
def private_files(monkeypatch, tmp_path):
    """Uploaded import files go to a temporary private folder, not the project's var/."""
    from django.core.files.storage import FileSystemStorage

    from imports.models import ImportJob

    storage = FileSystemStorage(location=tmp_path / "private", base_url="/not-served/")
    monkeypatch.setattr(ImportJob._meta.get_field("file"), "storage", storage)
    return storage


@pytest.fixture
def make_store(db):
    def make(code: str | None = None, **fields) -> Store:
        n = next(_counter)
        code = code or f"store-{n}"
        fields.setdefault("name", code.replace("-", " ").title())
        fields.setdefault("order_prefix", f"S{n:03d}"[:8].upper())
        return Store.objects.create(code=code, **fields)

    return make


@pytest.fixture
def make_product(db):
    def make(
        store: Store,
        sku: str | None = None,
        *,
        title: str = "Test product",
        price: str = "10.00",
        on_hand: int = 10,
        **fields,
    ):
        sku = sku or f"SKU-{next(_counter)}"
        translations = fields.pop("translations", {"en": {"title": title, "description": ""}})
        return upsert_product(
            store, sku, translations=translations, on_hand=on_hand, price=Decimal(price), **fields
        ).product

    return make


@pytest.fixture
def store(make_store) -> Store:
    return make_store("lux-shop", name="Lux Shop", order_prefix="LUX")


@pytest.fixture
def other_store(make_store) -> Store:
    return make_store("other-shop", name="Other Shop", order_prefix="OTH")


def _user(username: str, **extra):
    return get_user_model().objects.create_user(
        username=username, email=f"{username}@example.lu", password="correct-horse-battery", **extra
    )


@pytest.fixture
def platform_admin(db):
    return get_user_model().objects.create_superuser(
        username="admin", email="admin@wizamart.lu", password="correct-horse-battery"
    )


@pytest.fixture
def owner(store):
    user = _user("owner")
    Membership.objects.create(user=user, store=store, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def staff_of_other_store(other_store):
    user = _user("otherstaff")
    Membership.objects.create(user=user, store=other_store, role=Membership.Role.STAFF)
    return user


@pytest.fixture
def shopper(db):
    return _user("shopper", first_name="Anna", last_name="Muller")
