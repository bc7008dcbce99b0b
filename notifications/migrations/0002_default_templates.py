"""Seed the platform default email templates (store NULL) from templates/emails/.

Reversible: the reverse removes the platform rows of these codes. Rows that already exist
are left as they are (staff may have edited them).
"""

from pathlib import Path

from django.conf import settings
from django.db import migrations

CODES = [
    "order_confirmation",
    "store_new_order",
    "order_shipped",
    "order_cancelled",
    "password_reset",
    "team_invitation",
    "import_finished",
    "import_failed",
]
LANGUAGES = ["en", "fr", "de"]


def _read(folder: Path, name: str) -> str:
    path = folder / name
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def seed(apps, schema_editor):
    EmailTemplate = apps.get_model("notifications", "EmailTemplate")
    root = Path(settings.BASE_DIR) / "templates" / "emails"
    for code in CODES:
        for language in LANGUAGES:
            folder = root / code / language
            if not (folder / "subject.txt").is_file():
                continue
            EmailTemplate.objects.get_or_create(
                code=code,
                language=language,
                store=None,
                defaults={
                    "subject": _read(folder, "subject.txt").strip(),
                    "body_text": _read(folder, "body.txt"),
                    "body_html": _read(folder, "body.html"),
                },
            )


def unseed(apps, schema_editor):
    EmailTemplate = apps.get_model("notifications", "EmailTemplate")
    EmailTemplate.objects.filter(store__isnull=True, code__in=CODES).delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_outbox")]

    operations = [migrations.RunPython(seed, unseed)]
