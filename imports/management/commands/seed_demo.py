"""`manage.py seed_demo`: three demo stores with a few hundred products, and logins.

The catalogue is generated in code (word lists in English, French and German), written
as one Letzshop TSV feed per store and language under VAR_DIR/demo/, and imported through
`import_product_feed`, the path real merchants take, into a store that has no products
yet: a later run keeps the catalogue as it is (stock, prices and orders stay
consistent), and creates only what is missing. Demo passwords are random on the first run and kept in
VAR_DIR/demo/passwords.json (outside git) so later runs print the same ones.
"""

from __future__ import annotations

import csv
import json
import random
import secrets
from dataclasses import dataclass
from decimal import Decimal
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from imports.feeds import gtin_check_digit
from imports.letzshop.models import LetzshopAccount
from imports.letzshop.services import connect_account
from imports.services import import_product_feed
from marketplace.models import LANGUAGE_CODES, Membership, Store

FEED_COLUMNS = [
    "id",
    "title",
    "description",
    "link",
    "image_link",
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
    "origin",
]


@dataclass(frozen=True)
class DemoStore:
    code: str
    name: str
    legal_name: str
    vat_number: str
    street: str
    postal_code: str
    city: str
    order_prefix: str
    email: str
    phone: str
    category: str  # Google product category
    brands: tuple[str, ...]
    # (en, fr, de) nouns with a base price
    items: tuple[tuple[str, str, str, str], ...]
    # (en, fr, de) qualifiers and a price factor. German: "Bio-" is a prefix (Bio-Honig),
    # a lower-case word an adjective declined by the noun's gender (GERMAN_GENDERS).
    qualifiers: tuple[tuple[str, str, str, str], ...]
    sizes: tuple[str, ...]
    origins: tuple[str, ...]
    # Luxembourg VAT: the store's default rate, and the items (English name) at another.
    vat_rate: str = "17.00"
    item_vat_rates: tuple[tuple[str, str], ...] = ()


STORES = [
    DemoStore(
        code="epicerie-moselle",
        name="Épicerie de la Moselle",
        legal_name="Épicerie de la Moselle S.à r.l.",
        vat_number="LU26375245",
        street="12, Route du Vin",
        postal_code="5401",
        city="Ahn",
        order_prefix="EPI",
        email="contact@epicerie-moselle.lu",
        phone="+352 76 00 12",
        category="Food, Beverages & Tobacco",
        brands=("Domaine Mathis", "Moselle Gourmet", "Ferme Kremer", "Maison Schmit"),
        items=(
            ("Honey", "Miel", "Honig", "8.50"),
            ("Mustard", "Moutarde", "Senf", "3.90"),
            ("Crémant", "Crémant", "Crémant", "14.90"),
            ("Riesling", "Riesling", "Riesling", "11.50"),
            ("Jam", "Confiture", "Marmelade", "5.20"),
            ("Pâté", "Pâté", "Pastete", "6.40"),
            ("Smoked Ham", "Jambon fumé", "Räucherschinken", "9.80"),
            ("Goat Cheese", "Fromage de chèvre", "Ziegenkäse", "7.30"),
            ("Bread", "Pain", "Brot", "3.60"),
            ("Coffee", "Café", "Kaffee", "8.90"),
            ("Chocolate", "Chocolat", "Schokolade", "4.50"),
            ("Apple Juice", "Jus de pomme", "Apfelsaft", "3.20"),
            ("Olive Oil", "Huile d'olive", "Olivenöl", "12.90"),
            ("Tea", "Thé", "Tee", "5.90"),
        ),
        qualifiers=(
            ("Organic", "bio", "Bio-", "1.25"),
            ("Traditional", "traditionnel", "traditionell", "1.00"),
            ("Luxembourg", "luxembourgeois", "Luxemburger", "1.10"),
            ("Artisan", "artisanal", "handwerklich", "1.40"),
        ),
        sizes=("250 g", "500 g"),
        origins=("LU", "FR", "DE", "BE"),
        vat_rate="3.00",  # foodstuffs
        item_vat_rates=(("Crémant", "17.00"), ("Riesling", "14.00")),  # sparkling; still wine
    ),
    DemoStore(
        code="maison-jardin",
        name="Maison & Jardin Mersch",
        legal_name="Maison et Jardin Mersch S.A.",
        vat_number="LU19283746",
        street="5, Rue de la Gare",
        postal_code="7535",
        city="Mersch",
        order_prefix="MAI",
        email="info@maison-jardin.lu",
        phone="+352 32 88 45",
        category="Home & Garden",
        brands=("Gardena", "Jardin Nord", "Haus Linden", "Atelier Alzette"),
        items=(
            ("Plant Pot", "Pot de fleurs", "Blumentopf", "14.90"),
            ("Watering Can", "Arrosoir", "Gießkanne", "19.90"),
            ("Garden Chair", "Chaise de jardin", "Gartenstuhl", "59.00"),
            ("Cushion", "Coussin", "Kissen", "24.90"),
            ("Candle", "Bougie", "Kerze", "9.90"),
            ("Table Lamp", "Lampe de table", "Tischlampe", "49.00"),
            ("Blanket", "Plaid", "Decke", "39.90"),
            ("Hand Trowel", "Transplantoir", "Handschaufel", "12.50"),
            ("Bird House", "Nichoir", "Vogelhaus", "29.90"),
            ("Vase", "Vase", "Vase", "22.00"),
            ("Doormat", "Paillasson", "Fußmatte", "18.90"),
            ("Rain Barrel", "Récupérateur d'eau", "Regentonne", "89.00"),
            ("Hammock", "Hamac", "Hängematte", "69.00"),
            ("Lantern", "Lanterne", "Laterne", "27.50"),
        ),
        qualifiers=(
            ("Ceramic", "en céramique", "Keramik-", "1.20"),
            ("Wooden", "en bois", "Holz-", "1.10"),
            ("Recycled", "recyclé", "Recycling-", "0.95"),
            ("Premium", "premium", "Premium-", "1.50"),
        ),
        sizes=("small", "large"),
        origins=("LU", "DE", "NL", "PT"),
    ),
    DemoStore(
        code="livres-jouets",
        name="Livres & Jouets Kirchberg",
        legal_name="Livres et Jouets Kirchberg S.à r.l.",
        vat_number="LU30491827",
        street="44, Avenue John F. Kennedy",
        postal_code="1855",
        city="Luxembourg",
        order_prefix="LIV",
        email="bonjour@livres-jouets.lu",
        phone="+352 22 50 77",
        category="Toys & Games",
        brands=("Ravensburger", "Haba", "Éditions Saint-Paul", "Kosmos"),
        items=(
            ("Puzzle", "Puzzle", "Puzzle", "14.99"),
            ("Board Game", "Jeu de société", "Brettspiel", "29.99"),
            ("Picture Book", "Livre d'images", "Bilderbuch", "12.90"),
            ("Cookbook", "Livre de cuisine", "Kochbuch", "24.90"),
            ("Wooden Train", "Train en bois", "Holzeisenbahn", "39.90"),
            ("Teddy Bear", "Ours en peluche", "Teddybär", "19.90"),
            ("Colouring Book", "Livre de coloriage", "Malbuch", "6.90"),
            ("Card Game", "Jeu de cartes", "Kartenspiel", "9.99"),
            ("Atlas", "Atlas", "Atlas", "34.00"),
            ("Building Blocks", "Blocs de construction", "Bausteine", "27.50"),
            ("Novel", "Roman", "Roman", "18.50"),
            ("Kite", "Cerf-volant", "Drachen", "16.90"),
            ("Marble Run", "Circuit à billes", "Kugelbahn", "44.90"),
            ("Travel Guide", "Guide de voyage", "Reiseführer", "21.00"),
        ),
        qualifiers=(
            ("Classic", "classique", "klassisch", "1.00"),
            ("Deluxe", "de luxe", "Deluxe-", "1.60"),
            ("Family", "familial", "Familien-", "1.20"),
            ("Mini", "mini", "Mini-", "0.70"),
        ),
        sizes=("edition 1", "edition 2"),
        origins=("LU", "DE", "FR", "BE"),
        item_vat_rates=tuple(  # books at 3 %, toys and games at the standard rate
            (book, "3.00")
            for book in (
                "Picture Book",
                "Cookbook",
                "Colouring Book",
                "Atlas",
                "Novel",
                "Travel Guide",
            )
        ),  # fmt: skip
    ),
]

SIZE_WORDS = {
    "small": ("small", "petit", "klein"),
    "large": ("large", "grand", "groß"),
    "edition 1": ("vol. 1", "tome 1", "Band 1"),
    "edition 2": ("vol. 2", "tome 2", "Band 2"),
}
DESCRIPTIONS = {
    "en": "{title} by {brand}. Carefully selected by {store} in {city}, Luxembourg.",
    "fr": "{title} de {brand}. Soigneusement sélectionné par {store} à {city}, Luxembourg.",
    "de": "{title} von {brand}. Sorgfältig ausgewählt von {store} in {city}, Luxemburg.",
}


# The gender of the German nouns that take a declined adjective (strong declension,
# no article): traditioneller Honig, traditionelle Marmelade, traditionelles Brot.
GERMAN_GENDERS = {
    "m": ("Honig", "Senf", "Crémant", "Riesling", "Räucherschinken", "Ziegenkäse", "Kaffee",
          "Apfelsaft", "Tee", "Teddybär", "Atlas", "Roman", "Drachen", "Reiseführer"),
    "f": ("Marmelade", "Pastete", "Schokolade", "Holzeisenbahn", "Kugelbahn"),
    "n": ("Brot", "Olivenöl", "Puzzle", "Brettspiel", "Bilderbuch", "Kochbuch", "Malbuch",
          "Kartenspiel"),
    "pl": ("Bausteine",),
}  # fmt: skip
_GERMAN_ENDINGS = {"m": "er", "f": "e", "n": "es", "pl": "e"}


def _german(qualifier: str, item: str) -> str:
    if qualifier.endswith("-"):
        return f"{qualifier}{item}"
    if qualifier[:1].islower():
        gender = next(g for g, nouns in GERMAN_GENDERS.items() if item in nouns)
        return f"{qualifier.capitalize()}{_GERMAN_ENDINGS[gender]} {item}"
    return f"{qualifier} {item}"


def _titles(demo: DemoStore, item, qualifier, size: str) -> dict[str, str]:
    en, fr, de = SIZE_WORDS.get(size, (size, size, size))
    return {
        "en": f"{qualifier[0]} {item[0]} {en}",
        "fr": f"{item[1]} {qualifier[1]} {fr}",
        "de": f"{_german(qualifier[2], item[2])} {de}",
    }


def demo_rows(demo: DemoStore, store_index: int) -> list[dict[str, dict[str, str] | str]]:
    """The store's catalogue, the same on every run: per product the language-neutral
    feed columns plus titles and descriptions per language."""
    rng = random.Random(f"wizamart-demo-{demo.code}")
    rows = []
    number = 0
    for item_index, item in enumerate(demo.items):
        for qualifier in demo.qualifiers:
            for size_index, size in enumerate(demo.sizes):
                number += 1
                sku = f"{demo.order_prefix}-{number:04d}"
                # GS1 Belgium & Luxembourg prefix 54x, then a company and item number.
                body = f"54{store_index}{4810 + store_index:04d}{number:05d}"
                gtin = body + gtin_check_digit(body)
                factor = Decimal(qualifier[3]) * (Decimal("1.8") if size_index else 1)
                price = (Decimal(item[3]) * factor).quantize(Decimal("0.1")) - Decimal("0.01")
                price = max(price, Decimal("0.99"))
                on_sale = rng.random() < 0.15
                sale_price = (price * Decimal("0.8")).quantize(Decimal("0.01")) if on_sale else None
                quantity = 0 if rng.random() < 0.1 else rng.randint(1, 60)
                brand = demo.brands[(item_index + size_index) % len(demo.brands)]
                titles = _titles(demo, item, qualifier, size)
                rows.append(
                    {
                        "id": sku,
                        "titles": titles,
                        "descriptions": {
                            language: DESCRIPTIONS[language].format(
                                title=titles[language],
                                brand=brand,
                                store=demo.name,
                                city=demo.city,
                            )
                            for language in LANGUAGE_CODES
                        },
                        "link": f"https://{demo.code}.example.lu/p/{sku.lower()}",
                        "image_link": f"https://{demo.code}.example.lu/img/{sku.lower()}.jpg",
                        "availability": "in stock" if quantity else "out of stock",
                        "price": f"{price} EUR",
                        "sale_price": f"{sale_price} EUR" if sale_price else "",
                        "brand": brand,
                        "gtin": gtin,
                        "mpn": f"{demo.order_prefix}{item_index:02d}{number:03d}",
                        "condition": "new",
                        "google_product_category": demo.category,
                        "product_type": item[0],
                        "item_group_id": f"{demo.order_prefix}-G{item_index:02d}",
                        "quantity": str(quantity),
                        "vat_rate": dict(demo.item_vat_rates).get(item[0], demo.vat_rate),
                        "origin": demo.origins[number % len(demo.origins)],
                    }
                )
    return rows


# The products that the Letzshop development server's demo shipments order (its
# catalogue in letzshop_dev/shipments.json), sold by the first demo store so a sync
# matches them; the shipments' desk lamp stays unknown and shows an order exception.
LETZSHOP_DEMO_PRODUCTS = [
    ("MUG-RED", "5400000000010", "12.50", "17.00", "Maison Lux",
     ("Red mug", "Tasse rouge", "Rote Tasse")),
    ("TEA-GREEN", "5400000000027", "7.90", "3.00", "Moselle Tea",
     ("Green tea", "Thé vert", "Grüner Tee")),
    ("BOOK-FOLIO-1", "9782070360024", "24.00", "3.00", "Folio",
     ("Luxembourg cookbook", "Livre de cuisine luxembourgeoise", "Luxemburger Kochbuch")),
]  # fmt: skip
LETZSHOP_DEMO_KEY = "letzshop-dev-key"  # what `python -m letzshop_dev` accepts
LETZSHOP_DEMO_VENDOR = "VEN-1"


def letzshop_rows(demo: DemoStore) -> list[dict]:
    rows = []
    for sku, gtin, price, vat_rate, brand, titles in LETZSHOP_DEMO_PRODUCTS:
        by_language = dict(zip(LANGUAGE_CODES, titles, strict=True))
        rows.append(
            {
                "id": sku,
                "titles": by_language,
                "descriptions": {
                    language: DESCRIPTIONS[language].format(
                        title=title, brand=brand, store=demo.name, city=demo.city
                    )
                    for language, title in by_language.items()
                },
                "link": f"https://{demo.code}.example.lu/p/{sku.lower()}",
                "image_link": "",
                "availability": "in stock",
                "price": f"{price} EUR",
                "sale_price": "",
                "brand": brand,
                "gtin": gtin,
                "mpn": "",
                "condition": "new",
                "google_product_category": demo.category,
                "product_type": "Letzshop",
                "item_group_id": "",
                "quantity": "25",
                "vat_rate": vat_rate,
                "origin": demo.origins[0],
            }
        )
    return rows


def write_feed(path: Path, rows, language: str) -> None:
    """Write one Letzshop TSV feed in `language`; rewrites only when the text differs."""
    buffer = StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(FEED_COLUMNS)
    for row in rows:
        values = dict(row, title=row["titles"][language], description=row["descriptions"][language])
        writer.writerow([values[c] for c in FEED_COLUMNS])
    text = buffer.getvalue()
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


class Command(BaseCommand):
    help = (
        "Create demo stores, products (en/fr/de, through the feed importer), an admin, a "
        "store owner and a shopper. Idempotent."
    )

    def handle(self, *args, **options):
        demo_dir = Path(settings.VAR_DIR) / "demo"
        demo_dir.mkdir(parents=True, exist_ok=True)
        passwords = self._passwords(demo_dir / "passwords.json")

        stores = []
        for index, demo in enumerate(STORES):
            # No store service exists yet; this command is the onboarding for demo data.
            store, _ = Store.objects.update_or_create(
                code=demo.code,
                defaults={
                    "name": demo.name,
                    "legal_name": demo.legal_name,
                    "vat_number": demo.vat_number,
                    "email": demo.email,
                    "phone": demo.phone,
                    "street": demo.street,
                    "postal_code": demo.postal_code,
                    "city": demo.city,
                    "country": "LU",
                    "order_prefix": demo.order_prefix,
                    "languages": list(LANGUAGE_CODES),
                    "default_language": "fr" if index == 0 else "en",
                    "default_vat_rate": Decimal(demo.vat_rate),
                },
            )
            stores.append(store)
            if kept := store.products.count():
                # A later run keeps what was done with the demo since (stock, prices).
                self.stdout.write(f"{store.code}: catalogue kept as it is ({kept} products)")
                continue
            rows = demo_rows(demo, index)
            if index == 0:
                rows += letzshop_rows(demo)
            for language in LANGUAGE_CODES:
                path = demo_dir / f"{demo.code}-{language}.tsv"
                write_feed(path, rows, language)
                report = import_product_feed(store, path, language=language)
                self.stdout.write(f"{store.code} [{language}] {report.summary}")
                for error in report.errors:
                    self.stderr.write(f"  {path.name} line {error.line}: {error.reason}")

        admin = self._user("admin", passwords["admin"], is_staff=True, is_superuser=True)
        staff = self._user("staff", passwords["staff"], first_name="Claire", last_name="Weber")
        shopper = self._user("shopper", passwords["shopper"], first_name="Anna", last_name="Muller")
        Membership.objects.get_or_create(
            user=staff, store=stores[0], defaults={"role": Membership.Role.OWNER}
        )
        if not LetzshopAccount.objects.filter(store=stores[0]).exists():
            # Syncs from the development server that `dev.py run` starts.
            connect_account(
                stores[0],
                api_key=LETZSHOP_DEMO_KEY,
                vendor_id=LETZSHOP_DEMO_VENDOR,
                auto_sync=True,
                interval_minutes=1,
            )

        self.stdout.write("")
        self.stdout.write(
            f"admin login (/admin/): {admin.username} / password {passwords['admin']}"
        )
        self.stdout.write(
            f"store staff login (owner of {stores[0].name}): {staff.username} / password "
            f"{passwords['staff']}"
        )
        self.stdout.write(f"shopper login: {shopper.username} / password {passwords['shopper']}")

    def _passwords(self, path: Path) -> dict[str, str]:
        stored = json.loads(path.read_text()) if path.exists() else {}
        passwords = {
            name: stored.get(name) or secrets.token_urlsafe(12)
            for name in ("admin", "staff", "shopper")
        }
        if passwords != stored:
            path.write_text(json.dumps(passwords, indent=2))
            path.chmod(0o600)
        return passwords

    def _user(self, username: str, password: str, **flags):
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@demo.wizamart.lu", **flags}
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"] if not created else None)
        return user
