"""Reminder e-mail templates: validation of what staff write, and the rendered French text."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from relance.gestimum.types import ContactInfo
from relance.models import ReminderTask
from relance.rendering import sample_candidate, sample_customer
from relance.templating import (
    DEFAULT_BODY,
    DEFAULT_SUBJECT,
    VARIABLES,
    build_context,
    late_interest,
    render_message,
    validate_message_template,
)

NBSP = "\u00a0"
# sample_candidate() is due on 14/02/2026: thirty days later.
TODAY = date(2026, 3, 16)


@pytest.fixture(autouse=True)
def _legal_rates(settings):
    settings.LATE_PAYMENT_ECB_RATE = Decimal("2.15")
    settings.LATE_PAYMENT_MARGIN_POINTS = Decimal("10")
    settings.RECOVERY_INDEMNITY = Decimal("40.00")


def error_text(source):
    with pytest.raises(ValidationError) as info:
        validate_message_template(source)
    return " ".join(info.value.messages)


def make_context(candidate=None, today=TODAY, level=1):
    customer = sample_customer()
    customer.signature = "Service recouvrement\nAtelier Durand SAS"
    task = ReminderTask(level=level)
    return build_context(customer=customer, task=task, candidate=candidate or sample_candidate(),
                         today=today)


def render(subject=DEFAULT_SUBJECT, body=DEFAULT_BODY, **context_options):
    task = ReminderTask(subject_template=subject, body_template=body)
    return render_message(task=task, context=make_context(**context_options))


# -- validation -------------------------------------------------------------------------


def test_the_default_subject_and_body_are_valid():
    validate_message_template(DEFAULT_SUBJECT)
    validate_message_template(DEFAULT_BODY)
    validate_message_template(ReminderTask._meta.get_field("subject_template").default)


def test_every_documented_variable_is_accepted():
    validate_message_template(" ".join(f"{{{{ {name} }}}}" for name in VARIABLES))


def test_it_refuses_a_syntax_error_in_french_with_the_line():
    text = error_text("Bonjour,\n{% if jours_retard > 30 %}très en retard")
    assert "Erreur de syntaxe" in text
    assert "ligne 2" in text
    assert "non fermée" in text


def test_it_refuses_an_unknown_filter():
    assert "filtre inconnu « majuscules »" in error_text("{{ tiers_nom|majuscules }}")


def test_it_refuses_an_unknown_variable_and_lists_the_known_ones():
    text = error_text("Reste dû : {{ montant_du }}")
    assert "Variable inconnue : {{ montant_du }}" in text
    assert "vouliez-vous dire {{ montant }}" in text
    assert "Variables disponibles : tiers_nom, tiers_code" in text


def test_it_refuses_an_unknown_variable_behind_a_filter():
    assert "Variable inconnue : {{ montant_du }}" in error_text("{{ montant_du|upper }}")


def test_it_refuses_an_unknown_variable_as_a_filter_argument():
    assert "{{ autre_nom }}" in error_text("{{ contact_nom|default:autre_nom }}")


def test_it_refuses_an_unknown_variable_in_an_if_condition():
    text = error_text("{% if retard > 30 and niveau == 2 %}Mise en demeure{% endif %}")
    assert "Variable inconnue : {{ retard }}" in text
    text = error_text("{% if niveau == 1 %}a{% elif not litige %}b{% endif %}")
    assert "{{ litige }}" in text


def test_it_accepts_loop_and_with_variables_only_inside_their_block():
    validate_message_template(
        "{% for lettre in tiers_nom %}{{ lettre }}{{ forloop.counter }}{% endfor %}"
        "{% with total=montant_restant %}{{ total }}{% endwith %}"
        "{% firstof contact_nom tiers_nom as destinataire %}{{ destinataire }}"
    )
    assert "{{ lettre }}" in error_text("{% for lettre in tiers_nom %}{% endfor %}{{ lettre }}")
    assert "{{ total }}" in error_text("{% with total=montant %}{% endwith %}{{ total }}")


def test_it_refuses_tags_that_reach_outside_the_message():
    assert "Balise interdite" in error_text("{% include 'secrets.txt' %}")
    assert "Balise interdite" in error_text("{% load static %}{% static 'x' %}")
    assert "Balise interdite" in error_text("{% extends 'base.html' %}")
    assert "Balise interdite" in error_text("{% url 'admin:index' %}")
    assert "Balise interdite" in error_text("{% debug %}")
    assert "Balise non autorisée" in error_text("{% lorem %}")


def test_a_commented_out_tag_is_harmless():
    validate_message_template("{% comment %}{% include 'x' %}{% endcomment %}{{ tiers_nom }}")


# -- context and rendering ------------------------------------------------------------------


def test_the_context_holds_french_formatted_values():
    context = make_context()
    assert context["montant_restant"] == f"1{NBSP}234,56{NBSP}€"
    assert context["montant_regle"] == f"1{NBSP}937,55{NBSP}€"
    assert context["echeance_date"] == "14/02/2026"
    assert context["document_date"] == "15/01/2026"
    assert context["date_du_jour"] == "16/03/2026"
    assert context["document_numero"] == "FA000123"
    assert context["jours_retard"] == 30
    assert context["niveau"] == 1
    assert context["penalites_taux"] == f"12,15{NBSP}%"
    assert context["indemnite_recouvrement"] == f"40,00{NBSP}€"
    assert context["societe"] == "Atelier Durand SAS"
    assert context["contact_nom"] == ""


def test_late_interest_is_computed_on_the_remaining_amount():
    # 1 234,56 € × 12,15 % × 30 / 365 = 12,3287 €
    assert make_context()["penalites_montant"] == f"12,33{NBSP}€"
    # 0,25 × 10 % × 73 / 365 = 0,005 exactly: commercial rounding goes up.
    assert late_interest(remaining=Decimal("0.25"), days_late=73, rate=Decimal("10")) == Decimal("0.01")


def test_there_is_no_late_interest_before_the_due_date():
    context = make_context(today=date(2026, 2, 10))
    assert context["jours_retard"] == -4
    assert context["penalites_montant"] == f"0,00{NBSP}€"


def test_the_default_body_reads_as_a_french_reminder():
    subject, body = render()
    assert subject == "Relance : facture FA000123 échue le 14/02/2026"
    assert body.startswith("Madame, Monsieur,")
    assert "la facture n° FA000123 du 15/01/2026, arrivée à échéance le 14/02/2026" in body
    assert f"1{NBSP}234,56{NBSP}€" in body
    assert "ne pas tenir compte de ce message" in body
    assert f"40,00{NBSP}€" in body and f"12,15{NBSP}%" in body
    assert body.rstrip().endswith("Service recouvrement\nAtelier Durand SAS")
    assert "{{" not in body and "{%" not in body
    assert "\n\n\n" not in body


def test_the_default_body_greets_the_first_contact_by_name():
    contact = ContactInfo(numero="1", first_name="Claire", last_name="Martin",
                          email="claire@example.fr", function="COMPTA", qualifiers=())
    candidate = replace(sample_candidate(), contacts=[contact])
    _, body = render(candidate=candidate)
    assert body.startswith("Bonjour Claire Martin,")


def test_numbers_can_be_compared_in_conditions():
    body_source = "{% if jours_retard > 30 %}tard{% else %}tôt{% endif %} niveau {{ niveau }}"
    assert render(body=body_source)[1] == "tôt niveau 1\n"
    assert render(body=body_source, today=date(2026, 3, 20))[1] == "tard niveau 1\n"


def test_the_subject_is_one_line_of_at_most_300_characters():
    subject, _ = render(subject="Relance\n  {{ document_numero }}\r\n\téchue le {{ echeance_date }}  ")
    assert subject == "Relance FA000123 échue le 14/02/2026"
    long_subject, _ = render(subject="x" * 290 + " {{ tiers_nom }}")
    assert len(long_subject) == 300


def test_values_are_not_html_escaped():
    # The tiers is « Boulangerie Martin & Fils »: a plain-text e-mail must not say &amp;.
    subject, body = render(subject="{{ tiers_nom }}", body="{{ tiers_nom }}")
    assert subject == "Boulangerie Martin & Fils"
    assert body == "Boulangerie Martin & Fils\n"


def test_a_blank_body_falls_back_to_the_default_text():
    _, body = render(body="  ")
    assert body.startswith("Madame, Monsieur,")
