"""`{% order_summary %}`: the order lines, totals and addresses of every order email."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps

from notifications import selectors, services
from notifications.models import EmailTemplate

ORDER_CODES = ["order_confirmation", "order_shipped", "order_cancelled", "store_new_order"]
ADDRESS = ["Anna Muller", "12 rue de la Gare", "L-1611 Luxembourg", "LU"]
# language: (heading, "each, VAT", subtotal, shipping, total, incl. VAT, delivery, billing,
# colon before a value) as the sample order shows them.
WORDS = {
    "en": ("Order", "of", "each, VAT", "Subtotal", "Shipping", "Total", "incl. VAT",
           "Delivery address", "Billing address", ":"),
    "fr": ("Commande", "du", "l’unité, TVA", "Sous-total", "Livraison", "Total", "dont TVA",
           "Adresse de livraison", "Adresse de facturation", "\u00a0:"),
    "de": ("Bestellung", "vom", "pro Stück, MwSt.", "Zwischensumme", "Versand", "Gesamt",
           "inkl. MwSt.", "Lieferadresse", "Rechnungsadresse", ":"),
}  # fmt: skip


def _expected_text(language: str) -> str:
    order, of, each, subtotal, shipping, total, incl, delivery, billing, colon = WORDS[language]
    address = "".join(f"{part}\n" for part in ADDRESS)
    return (
        f"{order} LUX-2026-000123 {of} 3 December 2026\n\n"
        f"- 2 × Riesling Grand Premier Cru 2022 (RIES-22): €37.00 (€18.50 {each} 17 %)\n"
        f"- 1 × Luxembourg cookbook: €24.00 (€24.00 {each} 3 %)\n\n"
        f"{subtotal}{colon} €61.00\n{shipping}{colon} €4.90\n{total}{colon} €65.90\n"
        f"{incl} 3 %: €0.70\n{incl} 17 %: €5.38\n\n"
        f"{delivery}{colon}\n{address}\n{billing}{colon}\n{address}"
    )


def _expected_html(language: str) -> list[str]:
    order, of, _, subtotal, shipping, total, incl, delivery, billing, _ = WORDS[language]
    right = '<td style="text-align:right">'
    address = "".join(f"{part}<br>" for part in ADDRESS)
    return [
        f'<h2 style="font-size:16px;margin:24px 0 8px">{order} LUX-2026-000123 {of} '
        "3 December 2026</h2>",
        '<td>Riesling Grand Premier Cru 2022<br><small style="color:#6b7280">RIES-22</small>'
        f"</td>{right}2</td>{right}€18.50</td>{right}17 %</td>{right}€37.00</td>",
        f"<td>Luxembourg cookbook</td>{right}1</td>{right}€24.00</td>{right}3 %</td>"
        f"{right}€24.00</td>",
        f'<td colspan="4" style="text-align:right">{subtotal}</td>{right}€61.00</td>',
        f'<td colspan="4" style="text-align:right">{shipping}</td>{right}€4.90</td>',
        f'<td colspan="4" style="text-align:right"><strong>{total}</strong></td>'
        f"{right}<strong>€65.90</strong></td>",
        f'<td colspan="4" style="text-align:right;color:#6b7280">{incl} 17 %</td>'
        '<td style="text-align:right;color:#6b7280">€5.38</td>',
        f'<td valign="top"><strong>{delivery}</strong><br>{address}</td>',
        f'<td valign="top"><strong>{billing}</strong><br>{address}</td>',
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "fr", "de"])
@pytest.mark.parametrize("code", ORDER_CODES)
def test_order_emails_show_lines_totals_and_addresses_in_their_language(code, language):
    rendered = services.render_email(
        code, language=language, store=None, context=selectors.sample_context(code)
    )

    assert rendered.origin.startswith("template #")  # the seeded platform row
    assert _expected_text(language) in rendered.text
    for fragment in _expected_html(language):
        assert fragment in rendered.html
    assert "order_summary" not in rendered.text + rendered.html


def _render(body_text: str, body_html: str, context: dict, language: str = "en"):
    source = selectors.TemplateSource(
        subject="s", body_text=body_text, body_html=body_html, language=language, origin="t"
    )
    return services.render_source(source, store=None, context=context)


def test_summary_is_escaped_in_html_and_plain_in_text():
    context = {
        "order_number": "<i>A&1</i>",
        "lines": [{"title": "<b>Tom & Jerry</b>", "quantity": 1, "line_total": "€1.00"}],
        "shipping_address": ["<script>x</script>"],
    }
    rendered = _render("{% order_summary %}", "{% order_summary %}", context)

    assert "Order <i>A&1</i> of" in rendered.text
    assert "- 1 × <b>Tom & Jerry</b>: €1.00" in rendered.text
    assert "Delivery address:\n<script>x</script>\n" in rendered.text
    assert "Order &lt;i&gt;A&amp;1&lt;/i&gt; of" in rendered.html
    assert "<td>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</td>" in rendered.html
    assert "<br>&lt;script&gt;x&lt;/script&gt;<br></td>" in rendered.html
    assert "<script>" not in rendered.html
    # the HTML form asked for in a text body still escapes
    assert "&lt;b&gt;Tom" in _render('{% order_summary "html" %}', "", context).text


def test_summary_labels_follow_the_email_language_and_missing_data_stays_blank():
    rendered = _render('{% order_summary "text" %}', "", {}, language="de")
    assert rendered.text == "Bestellung  vom \n\n\nZwischensumme: \nVersand: \nGesamt:\n"


@pytest.mark.parametrize(
    "source", ['{% order_summary "pdf" %}', "{% order_summary html %}", "{% order_summary 1 2 %}"]
)
def test_order_summary_takes_html_or_text_only(source):
    with pytest.raises(services.EmailRenderError):
        services.check_template_syntax(source)


@pytest.mark.django_db
def test_a_store_override_may_use_the_summary_or_write_its_own(store, other_store):
    context = selectors.sample_context("order_shipped")
    EmailTemplate.objects.create(
        code="order_shipped",
        language="fr",
        store=store,
        subject="Lux Shop",
        body_text='Merci !\n\n{% order_summary "text" %}',
        body_html="<p>Merci !</p>{% order_summary %}",
    )
    EmailTemplate.objects.create(
        code="order_shipped",
        language="fr",
        store=other_store,
        subject="Other Shop",
        body_text="{% for line in lines %}{{ line.title }};{% endfor %}",
    )

    own = services.render_email("order_shipped", language="fr", store=store, context=context)
    assert own.text == "Merci !\n\n" + _expected_text("fr")
    assert all(fragment in own.html for fragment in _expected_html("fr"))
    other = services.render_email(
        "order_shipped", language="fr", store=other_store, context=context
    )
    assert other.text == "Riesling Grand Premier Cru 2022;Luxembourg cookbook;\n"


# --- migration 0003: the seeded platform rows follow the files -------------------------

migration = importlib.import_module(
    "notifications.migrations.0003_order_emails_use_order_summary_tag"
)
FIELDS = ["body_text", "body_html"]


def _files(code: str, language: str) -> EmailTemplate:
    return EmailTemplate(
        code=code, language=language, **selectors.read_template_files(code, language)
    )


@pytest.mark.parametrize("language", ["en", "fr", "de"])
@pytest.mark.parametrize("code", ORDER_CODES)
def test_the_files_are_what_0002_seeded_with_the_tag_in_place_of_the_markup(code, language):
    files = _files(code, language)
    for field in FIELDS:
        seeded = migration._rewritten(files, field, to_tag=False)
        assert migration._digest(seeded) == migration.SEEDED[(code, language, field)]
        setattr(files, field, seeded)
        assert migration._rewritten(files, field, to_tag=True) == getattr(
            _files(code, language), field
        )


def _platform(code: str, language: str) -> EmailTemplate:
    return EmailTemplate.objects.get(code=code, language=language, store=None)


@pytest.mark.django_db
def test_migration_rewrites_the_bodies_still_as_seeded_and_keeps_staff_edits(store):
    for code in ORDER_CODES:
        for language in ["en", "fr", "de"]:
            row = _platform(code, language)
            for field in FIELDS:
                setattr(row, field, migration._rewritten(row, field, to_tag=False))
            row.save()
    edited = _platform("order_shipped", "fr")
    edited.body_html += "<p>Édité</p>"
    edited.save()
    seeded_text = _platform("order_confirmation", "de").body_text
    override = EmailTemplate.objects.create(
        code="order_confirmation", language="de", store=store, subject="s", body_text=seeded_text
    )
    before = {row.pk: (row.body_text, row.body_html) for row in EmailTemplate.objects.all()}

    migration.use_order_summary_tag(django_apps, None)

    for code in ORDER_CODES:
        for language in ["en", "fr", "de"]:
            row, files = _platform(code, language), _files(code, language)
            if row.pk == edited.pk:
                assert row.body_text == files.body_text
                assert row.body_html == before[row.pk][1]
            else:
                assert (row.body_text, row.body_html) == (files.body_text, files.body_html)
    override.refresh_from_db()
    assert override.body_text == seeded_text

    migration.restore_seeded_markup(django_apps, None)

    after = {row.pk: (row.body_text, row.body_html) for row in EmailTemplate.objects.all()}
    assert after == before
