"""Notification reads: which template renders an email, sample data, outbox queries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from marketplace.models import LANGUAGE_CODES, Store
from notifications.models import CUSTOMER_FACING_CODES, EmailTemplate, OutboundEmail

EMAILS_DIR = Path(settings.BASE_DIR) / "templates" / "emails"
LAYOUT_FILE = EMAILS_DIR / "_layout.html"


class UnknownEmailTemplate(LookupError):
    """No template, in the database or on disk, for this code in any fallback language."""


@dataclass(frozen=True)
class TemplateSource:
    """The three template strings of one email, and where they came from."""

    subject: str
    body_text: str
    body_html: str
    language: str
    origin: str


def fallback_languages(language: str | None, store: Store | None) -> list[str]:
    """`language`, then the store's language, then English; each once, known codes only."""
    ordered = [language, store.default_language if store else None, "en"]
    result: list[str] = []
    for code in ordered:
        if code in LANGUAGE_CODES and code not in result:
            result.append(code)
    return result


def _file_template(code: str, language: str) -> TemplateSource | None:
    folder = EMAILS_DIR / code / language
    subject, body_text = folder / "subject.txt", folder / "body.txt"
    if not (subject.is_file() and body_text.is_file()):
        return None
    body_html = folder / "body.html"
    return TemplateSource(
        subject=subject.read_text(encoding="utf-8"),
        body_text=body_text.read_text(encoding="utf-8"),
        body_html=body_html.read_text(encoding="utf-8") if body_html.is_file() else "",
        language=language,
        origin=f"file emails/{code}/{language}",
    )


def read_template_files(code: str, language: str) -> dict[str, str] | None:
    """The files of one email in one language as EmailTemplate field values, or None."""
    source = _file_template(code, language)
    if source is None:
        return None
    return {
        "subject": source.subject.strip(),
        "body_text": source.body_text,
        "body_html": source.body_html,
    }


def email_template_exists(code: str) -> bool:
    return (EMAILS_DIR / code).is_dir() or EmailTemplate.objects.filter(code=code).exists()


def find_email_template(code: str, language: str | None, store: Store | None) -> TemplateSource:
    """The template to render `code` with, language first: for each language of
    `fallback_languages`, the store's override (customer-facing codes only), then the
    platform row, then the files under templates/emails/. One query.

    Raises UnknownEmailTemplate.
    """
    languages = fallback_languages(language, store)
    owners = Q(store__isnull=True)
    if store is not None and code in CUSTOMER_FACING_CODES:
        owners |= Q(store=store)
    rows = {
        (row.language, row.store_id): row
        for row in EmailTemplate.objects.filter(owners, code=code, language__in=languages)
    }
    for lang in languages:
        for store_id in ([store.pk] if store is not None else []) + [None]:
            row = rows.get((lang, store_id))
            if row is not None:
                return TemplateSource(
                    subject=row.subject,
                    body_text=row.body_text,
                    body_html=row.body_html,
                    language=lang,
                    origin=f"template #{row.pk}",
                )
        source = _file_template(code, lang)
        if source is not None:
            return source
    raise UnknownEmailTemplate(f"No email template {code!r} in {', '.join(languages)}.")


def email_layout() -> str:
    return LAYOUT_FILE.read_text(encoding="utf-8") if LAYOUT_FILE.is_file() else "{{ content }}"


def email_partial(name: str) -> str:
    """A shared piece of email markup, templates/emails/<name>, without the file's final
    newline (the tag that prints it stands on a line of its own)."""
    return (EMAILS_DIR / name).read_text(encoding="utf-8").removesuffix("\n")


def sample_context(code: str) -> dict[str, Any]:
    """Example data for previews and test sends: templates/emails/<code>/sample.json."""
    path = EMAILS_DIR / code / "sample.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def emails_needing_attention() -> QuerySet[OutboundEmail]:
    """Rows staff must look at: uncertain or failed."""
    return OutboundEmail.objects.filter(
        status__in=[OutboundEmail.Status.UNCERTAIN, OutboundEmail.Status.FAILED]
    )
