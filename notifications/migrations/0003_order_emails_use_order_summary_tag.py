"""Let the platform's order emails print their summary with {% order_summary %}.

order_confirmation, order_shipped, order_cancelled and store_new_order each carried a copy
of the order heading, lines, totals, VAT and addresses in every language. The files now say
`{% order_summary "html" %}` / `{% order_summary "text" %}` instead; the rendered emails
are the same to the byte. This brings the platform rows (store NULL) seeded by 0002 along.

A body is rewritten only while it is, to the byte, what 0002 seeded (its digest below):
a body staff have edited is left as it is, and so is every store override. The markup the
tag replaces is kept here, frozen, so that the reverse puts it back: it restores a body
only when the result is again exactly what 0002 seeded, so a body staff edited after the
forward step keeps their edit (and the tag: revert such a body by hand).
"""

import hashlib
from string import Template

from django.db import migrations

# (code, language, field): the body as 0002 seeded it from templates/emails/, by _digest.
SEEDED = {
    ("order_confirmation", "en", "body_text"): "fa9f3e145b3c7d956a8c59cd421755b3",
    ("order_confirmation", "en", "body_html"): "bbaaf9784c05a2c74e474c7c2c770e82",
    ("order_confirmation", "fr", "body_text"): "6defbd9879e811fadacbdf124e66d94e",
    ("order_confirmation", "fr", "body_html"): "0ecbb22f7b57a272632d1b76bef649bb",
    ("order_confirmation", "de", "body_text"): "69ed3c40c23a3cc9f4061031af1c8f42",
    ("order_confirmation", "de", "body_html"): "6dc7bfa5dcec78357a681ded1f3daabd",
    ("store_new_order", "en", "body_text"): "48cb5d0f41103796141ae11712daab88",
    ("store_new_order", "en", "body_html"): "6f17ef8d7df1a28b14fe1257ab23c06b",
    ("store_new_order", "fr", "body_text"): "4e32d17a5bc839798339cacdcd48ffd0",
    ("store_new_order", "fr", "body_html"): "ecf2c9ebfa500f1c999a56e1e571ec3f",
    ("store_new_order", "de", "body_text"): "29b43275ca4595c79a44943597a74d22",
    ("store_new_order", "de", "body_html"): "2be6fe674a9827225dfc16f40273e78a",
    ("order_shipped", "en", "body_text"): "7468eb52de9bb771ff8f3cc83f0cc11a",
    ("order_shipped", "en", "body_html"): "ce463f68882a5e7beae6d3110a00a2aa",
    ("order_shipped", "fr", "body_text"): "a3d224f87ff4b916bc308ff33c1fec03",
    ("order_shipped", "fr", "body_html"): "9ad51cf83a87a8189427cbdf5d42f871",
    ("order_shipped", "de", "body_text"): "9e2bef0dcf78602643c9f3a6a19d7b7a",
    ("order_shipped", "de", "body_html"): "12865ff169e5a3d442303b3148012975",
    ("order_cancelled", "en", "body_text"): "896b2a7d8895151af8e1d02a612f799d",
    ("order_cancelled", "en", "body_html"): "b597113c3c6fb800304935e55328c654",
    ("order_cancelled", "fr", "body_text"): "40a67621fcdf950bafe06a60db32e12e",
    ("order_cancelled", "fr", "body_html"): "ffb0ac80d42e73427c837af1d193f034",
    ("order_cancelled", "de", "body_text"): "6a7bbeadd0b0184c2be13490ca9e72cf",
    ("order_cancelled", "de", "body_html"): "70e626b21583cc644557fe17d14cce0d",
}
TAGS = {"body_html": '{% order_summary "html" %}', "body_text": '{% order_summary "text" %}'}
LANGUAGES = ("en", "fr", "de")
# label: its wording in each of LANGUAGES, as the seeded files had it.
LABELS = {
    "order": ("Order", "Commande", "Bestellung"),
    "of": ("of", "du", "vom"),
    "product": ("Product", "Article", "Artikel"),
    "quantity": ("Qty", "Qté", "Menge"),
    "price": ("Price", "Prix", "Preis"),
    "each": ("each", "l’unité", "pro Stück"),
    "vat": ("VAT", "TVA", "MwSt."),
    "amount": ("Amount", "Montant", "Betrag"),
    "subtotal": ("Subtotal", "Sous-total", "Zwischensumme"),
    "shipping": ("Shipping", "Livraison", "Versand"),
    "total": ("Total", "Total", "Gesamt"),
    "incl_vat": ("incl. VAT", "dont TVA", "inkl. MwSt."),
    "reverse_charge": (
        "Reverse charge: VAT to be accounted for by the recipient "
        "(Art. 196 of Directive 2006/112/EC).",
        "Autoliquidation : TVA due par le preneur (art. 196 de la directive 2006/112/CE).",
        "Steuerschuldnerschaft des Leistungsempfängers "
        "(Reverse Charge, Art. 196 der Richtlinie 2006/112/EG).",
    ),
    "delivery_address": ("Delivery address", "Adresse de livraison", "Lieferadresse"),
    "billing_address": ("Billing address", "Adresse de facturation", "Rechnungsadresse"),
    "colon": (":", "\u00a0:", ":"),
}
# The markup the tag replaces, with the labels as ${label}.
SEEDED_BLOCKS = {
    "body_html": Template(
        """\
<h2 style="font-size:16px;margin:24px 0 8px">${order} {{ order_number }} ${of} {{ order_date }}</h2>
<table role="presentation" width="100%" cellpadding="6" cellspacing="0" style="border-collapse:collapse;font-size:14px">
  <thead><tr style="background:#f3f4f6;text-align:left">
    <th>${product}</th><th style="text-align:right">${quantity}</th><th style="text-align:right">${price}</th><th style="text-align:right">${vat}</th><th style="text-align:right">${amount}</th>
  </tr></thead>
  <tbody>{% for line in lines %}
    <tr style="border-bottom:1px solid #e5e7eb"><td>{{ line.title }}{% if line.sku %}<br><small style="color:#6b7280">{{ line.sku }}</small>{% endif %}</td><td style="text-align:right">{{ line.quantity }}</td><td style="text-align:right">{{ line.unit_price }}</td><td style="text-align:right">{{ line.vat_rate }}</td><td style="text-align:right">{{ line.line_total }}</td></tr>{% endfor %}
  </tbody>
  <tfoot>
    <tr><td colspan="4" style="text-align:right">${subtotal}</td><td style="text-align:right">{{ subtotal }}</td></tr>
    <tr><td colspan="4" style="text-align:right">${shipping}</td><td style="text-align:right">{{ shipping_total }}</td></tr>
    <tr><td colspan="4" style="text-align:right"><strong>${total}</strong></td><td style="text-align:right"><strong>{{ total }}</strong></td></tr>{% for vat in vat_lines %}
    <tr><td colspan="4" style="text-align:right;color:#6b7280">${incl_vat} {{ vat.rate }}</td><td style="text-align:right;color:#6b7280">{{ vat.amount }}</td></tr>{% endfor %}
  </tfoot>
</table>
{% if reverse_charge %}<p style="font-size:13px">${reverse_charge}</p>{% endif %}
<table role="presentation" width="100%" cellpadding="6" style="font-size:14px;margin-top:16px"><tr>
  {% if shipping_address %}<td valign="top"><strong>${delivery_address}</strong><br>{% for part in shipping_address %}{{ part }}<br>{% endfor %}</td>{% endif %}
  {% if billing_address %}<td valign="top"><strong>${billing_address}</strong><br>{% for part in billing_address %}{{ part }}<br>{% endfor %}</td>{% endif %}
</tr></table>"""
    ),
    "body_text": Template(
        """\
${order} {{ order_number }} ${of} {{ order_date }}

{% for line in lines %}- {{ line.quantity }} × {{ line.title }}{% if line.sku %} ({{ line.sku }}){% endif %}: {{ line.line_total }} ({{ line.unit_price }} ${each}, ${vat} {{ line.vat_rate }})
{% endfor %}
${subtotal}${colon} {{ subtotal }}
${shipping}${colon} {{ shipping_total }}
${total}${colon} {{ total }}
{% for vat in vat_lines %}${incl_vat} {{ vat.rate }}: {{ vat.amount }}
{% endfor %}{% if reverse_charge %}${reverse_charge}
{% endif %}
{% if shipping_address %}${delivery_address}${colon}
{% for part in shipping_address %}{{ part }}
{% endfor %}
{% endif %}{% if billing_address %}${billing_address}${colon}
{% for part in billing_address %}{{ part }}
{% endfor %}{% endif %}"""
    ),
}


def _digest(value):
    """The first 128 bits of the SHA-256 of `value`, in hex."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def _seeded_block(field, language):
    index = LANGUAGES.index(language)
    return SEEDED_BLOCKS[field].substitute({k: v[index] for k, v in LABELS.items()})


def _rewritten(row, field, *, to_tag):
    """`field` of `row` after the step; itself when the step must leave it alone."""
    value = getattr(row, field)
    block, tag = _seeded_block(field, row.language), TAGS[field]
    seeded = SEEDED[(row.code, row.language, field)]
    if to_tag:
        return value.replace(block, tag) if _digest(value) == seeded else value
    restored = value.replace(tag, block)
    return restored if _digest(restored) == seeded else value


def _rewrite(apps, *, to_tag):
    EmailTemplate = apps.get_model("notifications", "EmailTemplate")
    codes = {code for code, _, _ in SEEDED}
    rows = EmailTemplate.objects.filter(store__isnull=True, code__in=codes, language__in=LANGUAGES)
    for row in rows:
        for field in TAGS:
            value, new = getattr(row, field), _rewritten(row, field, to_tag=to_tag)
            if new != value:
                # Conditional: a staff save since the row was read wins.
                EmailTemplate.objects.filter(pk=row.pk, **{field: value}).update(**{field: new})


def use_order_summary_tag(apps, schema_editor):
    _rewrite(apps, to_tag=True)


def restore_seeded_markup(apps, schema_editor):
    _rewrite(apps, to_tag=False)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_default_templates")]

    operations = [migrations.RunPython(use_order_summary_tag, restore_seeded_markup)]
