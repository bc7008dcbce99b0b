"""Which template renders an email, and what a template may do."""

from __future__ import annotations

import pytest

from notifications import services
from notifications.models import EmailTemplate, OutboundEmail


def _template(code, language, *, store=None, subject=None):
    return EmailTemplate.objects.create(
        code=code,
        language=language,
        store=store,
        subject=subject or f"{code} {language} {store.code if store else 'platform'}",
        body_text="Hello {{ name }}",
        body_html="<p>Hello {{ name }}</p>",
    )


def _subject(code, language, store):
    return services.render_email(code, language=language, store=store, context={}).subject


@pytest.mark.django_db
def test_language_falls_back_to_the_store_language_then_english(make_store):
    german_store = make_store(default_language="de")
    french_store = make_store(default_language="fr")
    _template("billing_trial_ending", "en")
    _template("billing_trial_ending", "de")

    assert _subject("billing_trial_ending", "de", None) == "billing_trial_ending de platform"
    assert (
        _subject("billing_trial_ending", "fr", german_store) == "billing_trial_ending de platform"
    )
    assert (
        _subject("billing_trial_ending", "fr", french_store) == "billing_trial_ending en platform"
    )
    assert _subject("billing_trial_ending", None, None) == "billing_trial_ending en platform"


@pytest.mark.django_db
def test_store_override_wins_over_the_platform_default_for_that_store_only(store, other_store):
    EmailTemplate.objects.filter(code="order_shipped", language="fr", store=None).update(
        subject="Platform {{ order_number }}"
    )
    _template("order_shipped", "fr", store=store, subject="Lux Shop: {{ order_number }} arrive")

    def subject(store):
        return services.render_email(
            "order_shipped", language="fr", store=store, context={"order_number": "A-1"}
        ).subject

    assert subject(store) == "Lux Shop: A-1 arrive"
    assert subject(other_store) == "Platform A-1"
    assert subject(None) == "Platform A-1"


@pytest.mark.django_db
def test_a_platform_template_in_the_shopper_language_beats_a_store_override_in_another(store):
    _template("order_shipped", "en", store=store, subject="Lux Shop english override")
    subject = services.render_email("order_shipped", language="de", store=store, context={})
    assert subject.subject.startswith("Ihre Bestellung")


@pytest.mark.django_db
def test_files_are_the_last_fallback_when_no_row_exists(store):
    EmailTemplate.objects.filter(code="order_cancelled").delete()
    rendered = services.render_email(
        "order_cancelled", language="de", store=store, context={"order_number": "A-1"}
    )
    assert rendered.subject == "Ihre Bestellung A-1 wurde storniert"
    assert rendered.origin == "file emails/order_cancelled/de"


@pytest.mark.django_db
def test_every_platform_default_is_seeded_in_three_languages():
    seeded = set(EmailTemplate.objects.filter(store=None).values_list("code", "language"))
    codes = {
        "order_confirmation",
        "store_new_order",
        "order_shipped",
        "order_cancelled",
        "password_reset",
        "team_invitation",
        "import_finished",
        "import_failed",
    }
    assert seeded == {(code, lang) for code in codes for lang in ("en", "fr", "de")}


@pytest.mark.django_db
def test_one_row_per_code_language_and_owner_platform_rows_included(store):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        _template("order_shipped", "fr")  # the seeded platform row exists (store NULL)
    _template("order_shipped", "fr", store=store)
    with pytest.raises(IntegrityError), transaction.atomic():
        _template("order_shipped", "fr", store=store)


def test_html_is_autoescaped_and_text_is_not():
    source = services.selectors.TemplateSource(
        subject="Hi {{ name }}",
        body_text="Hi {{ name }}",
        body_html="<p>Hi {{ name }}</p>",
        language="en",
        origin="test",
    )
    rendered = services.render_source(source, store=None, context={"name": "<b>Ann</b> & co"})
    assert rendered.text == "Hi <b>Ann</b> & co\n"
    assert "<p>Hi &lt;b&gt;Ann&lt;/b&gt; &amp; co</p>" in rendered.html


def test_subject_newlines_cannot_inject_headers():
    source = services.selectors.TemplateSource(
        subject="Order {{ number }}", body_text="x", body_html="", language="en", origin="t"
    )
    rendered = services.render_source(
        source, store=None, context={"number": "1\r\nBcc: victim@example.lu"}
    )
    assert rendered.subject == "Order 1 Bcc: victim@example.lu"


@pytest.mark.parametrize(
    "source",
    [
        "{% load static %}",
        '{% include "base.html" %}',
        '{% extends "base.html" %}',
        "{% debug %}",
        "{% lorem 2000000 w %}",
        "{% if %}",
    ],
)
def test_templates_cannot_reach_outside_the_sandbox(source):
    with pytest.raises(services.EmailRenderError):
        services.check_template_syntax(source)


@pytest.mark.django_db
def test_a_template_rendering_megabytes_is_refused_not_sent():
    source = services.selectors.TemplateSource(
        language="en",
        subject="Hi",
        body_text="{% for a in s %}{% for b in s %}{% for c in s %}xxxx{% endfor %}{% endfor %}{% endfor %}",
        body_html="",
        origin="test",
    )

    with pytest.raises(services.EmailRenderError, match="more than the 1,000,000 allowed"):
        services.render_source(source, store=None, context={"s": "y" * 70})


@pytest.mark.django_db
def test_admin_validation_refuses_bad_syntax_and_store_overrides_of_platform_emails(store):
    from django.core.exceptions import ValidationError

    bad = EmailTemplate(code="order_shipped", language="en", subject="{% if %}", body_text="x")
    with pytest.raises(ValidationError) as excinfo:
        bad.full_clean()
    assert "subject" in excinfo.value.message_dict

    override = EmailTemplate(
        code="password_reset", language="en", store=store, subject="s", body_text="x"
    )
    with pytest.raises(ValidationError) as excinfo:
        override.full_clean()
    assert "store" in excinfo.value.message_dict


@pytest.mark.django_db
def test_a_template_error_at_send_time_fails_the_row_once(
    store, smtp_server, broker, worker, django_capture_on_commit_callbacks
):
    EmailTemplate.objects.filter(code="order_cancelled", language="en", store=None).update(
        body_text="{{ reason|date:'Y' }}{% for x in 1 %}{% endfor %}"
    )
    EmailTemplate.objects.filter(code="order_cancelled", language="en", store=None).update(
        body_text="{% cycle %}"
    )
    with django_capture_on_commit_callbacks(execute=True):
        email = services.queue_email(
            "order_cancelled", to="a@example.lu", context={}, language="en"
        )
    assert worker() == ["failed"]
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert email.last_error.startswith("Cannot render: Template syntax error")
    assert smtp_server.messages == []
