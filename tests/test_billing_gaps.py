"""Billing: credit notes with a typed reason (full or partial), and statements e-mailed on issue."""

from datetime import date
from decimal import Decimal

import pytest

from billing.models import Statement, StatementLine
from billing.selectors import BillingError
from billing.services import create_credit_note, generate_statement, issue_statement, mark_paid
from relance.models import Customer

from .conftest import pdf_text
from .test_billing import MARCH, at, make_contract, seller, send  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def company():
    return Customer.objects.create(name="Martin Négoce", slug="martin", address="5 rue Neuve\n38000 Grenoble",
                                   siret="11122233300044", notification_email="adv@martin.example")


@pytest.fixture
def invoice(company):
    """March: installation 500.00, fee 100.00, three documents at 0.25 (0.75); ER-2026-00001."""
    make_contract(company, start=date(2026, 3, 1), installation="500.00", monthly="100.00", unit="0.2500")
    for day in (2, 3, 4):
        send(company, at(2026, 3, day))
    return issue_statement(generate_statement(company, MARCH), today=date(2026, 4, 1), send_email=False)


def line(statement, kind):
    return statement.lines.get(kind=kind)


def text_of(statement):
    statement.pdf.open("rb")
    try:
        return " ".join(pdf_text(statement.pdf.read()).split())
    finally:
        statement.pdf.close()


# -- credit notes ---------------------------------------------------------------------------

def test_a_full_credit_note_cancels_every_line_and_prints_its_reason(invoice):
    credit = create_credit_note(invoice, reason="Tarif contractuel mal saisi", today=date(2026, 4, 5),
                                send_email=False)

    invoice.refresh_from_db()
    assert invoice.status == Statement.Status.CREDITED
    assert credit.number == "ER-2026-00002" and credit.reason == "Tarif contractuel mal saisi"
    assert (credit.total_ht, credit.total_vat, credit.total_ttc) == (
        Decimal("-600.75"), Decimal("-120.15"), Decimal("-720.90"))
    assert credit.billed_units == 3
    text = text_of(credit)
    assert "Motif de l'avoir : Tarif contractuel mal saisi" in text
    assert "Avoir sur la facture n° ER-2026-00001" in text


def test_a_partial_credit_note_cancels_only_the_chosen_lines_with_vat_recomputed(invoice):
    installation = line(invoice, StatementLine.Kind.INSTALLATION)

    credit = create_credit_note(invoice, reason="Installation offerte", lines=[installation],
                                today=date(2026, 4, 5), send_email=False)

    invoice.refresh_from_db()
    assert invoice.status == Statement.Status.PARTIALLY_CREDITED
    assert invoice.get_status_display() == "partiellement annulée"
    assert credit.number == "ER-2026-00002"
    assert [(li.kind, li.amount, li.credited_line_id) for li in credit.lines.all()] == [
        (StatementLine.Kind.INSTALLATION, Decimal("-500.00"), installation.pk)]
    assert (credit.total_ht, credit.total_vat, credit.total_ttc) == (
        Decimal("-500.00"), Decimal("-100.00"), Decimal("-600.00"))
    assert credit.billed_units == 0
    text = text_of(credit)
    assert "Avoir partiel sur la facture n° ER-2026-00001" in text
    assert "Motif de l'avoir : Installation offerte" in text
    # The month still has its (partly cancelled) invoice: nothing new to generate.
    assert generate_statement(invoice.customer, MARCH).pk == invoice.pk


def test_partial_credit_notes_never_credit_a_line_twice_and_the_last_one_cancels_the_invoice(invoice):
    installation = line(invoice, StatementLine.Kind.INSTALLATION)
    usage = line(invoice, StatementLine.Kind.USAGE)
    create_credit_note(invoice, reason="Installation offerte", lines=[installation.pk],
                       today=date(2026, 4, 5), send_email=False)

    with pytest.raises(BillingError, match="déjà fait l'objet d'un avoir"):
        create_credit_note(invoice, reason="Encore", lines=[installation.pk], send_email=False)
    second = create_credit_note(invoice, reason="Documents envoyés en double", lines=[usage],
                                today=date(2026, 4, 6), send_email=False)
    # The credit note's CSV lists the sends it cancels.
    assert second.lines.get().dispatches.count() == 3 and second.billed_units == 3
    assert (second.number, second.total_ht, second.total_vat) == (
        "ER-2026-00003", Decimal("-0.75"), Decimal("-0.15"))
    third = create_credit_note(invoice, reason="Abonnement", today=date(2026, 4, 7), send_email=False)

    invoice.refresh_from_db()
    assert invoice.status == Statement.Status.CREDITED
    assert [li.kind for li in third.lines.all()] == [StatementLine.Kind.MONTHLY_FEE]
    assert third.number == "ER-2026-00004"
    total = sum(c.total_ttc for c in invoice.credit_notes.all())
    assert total == -invoice.total_ttc
    with pytest.raises(BillingError):
        create_credit_note(invoice, reason="Rien à annuler", send_email=False)


def test_a_partly_credited_invoice_can_still_be_marked_paid(invoice):
    create_credit_note(invoice, reason="Installation offerte",
                       lines=[line(invoice, StatementLine.Kind.INSTALLATION)], send_email=False)

    assert mark_paid(invoice, paid_on=date(2026, 4, 20)).status == Statement.Status.PAID


def test_a_credit_note_needs_a_reason(invoice):
    with pytest.raises(BillingError, match="motif"):
        create_credit_note(invoice, reason="  ", send_email=False)


# -- the admin action with its intermediate page -----------------------------------------------

def test_the_admin_asks_for_a_reason_and_the_lines_before_creating_a_credit_note(invoice, admin_client):
    usage = line(invoice, StatementLine.Kind.USAGE)
    selection = {"action": "credit", "_selected_action": [invoice.pk]}

    page = admin_client.post("/admin/billing/statement/", selection).content.decode()
    assert "Motif de l&#x27;avoir" in page and page.count('type="checkbox" name="lines"') == 3
    assert page.count("checked") == 3  # every line offered, all ticked: a full credit note by default
    missing = admin_client.post("/admin/billing/statement/", {**selection, "apply": "1", "reason": "",
                                                               "lines": [usage.pk]})
    assert "Ce champ est obligatoire" in missing.content.decode()
    assert not invoice.credit_notes.exists()

    admin_client.post("/admin/billing/statement/", {**selection, "apply": "1", "lines": [usage.pk],
                                                     "reason": "Trois documents facturés à tort"})

    invoice.refresh_from_db()
    credit = invoice.credit_notes.get()
    assert invoice.status == Statement.Status.PARTIALLY_CREDITED
    assert credit.reason == "Trois documents facturés à tort" and credit.total_ht == Decimal("-0.75")
    assert "Motif de l'avoir : Trois documents facturés à tort" in text_of(credit)


# -- e-mailing the statement ---------------------------------------------------------------------

def attachment(message):
    parts = [part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert len(parts) == 1
    return parts[0].get_filename(), parts[0].get_content()


def test_issuing_emails_the_pdf_to_the_contracts_billing_address(company, smtp_server):
    contract = make_contract(company, start=date(2026, 3, 1))
    contract.billing_email = "factures@martin.example"
    contract.save()

    statement = issue_statement(generate_statement(company, MARCH), today=date(2026, 4, 1))

    [received] = smtp_server.messages
    assert received.rcpt_tos == ["factures@martin.example"]
    message = received.message
    assert message["Subject"].startswith("Facture ER-2026-00001")
    body = message.get_body(("plain",)).get_content()
    assert "notre facture n° ER-2026-00001" in body and "au plus tard le 01/05/2026" in body
    filename, content = attachment(message)
    assert filename == "ER-2026-00001.pdf"
    assert "Facture n° ER-2026-00001" in " ".join(pdf_text(content).split())
    assert statement.sent_to == "factures@martin.example" and statement.sent_at is not None
    assert statement.send_error == ""


def test_without_a_billing_address_the_customers_notice_address_gets_it(invoice, smtp_server):
    credit = create_credit_note(invoice, reason="Geste commercial", today=date(2026, 4, 5))

    [received] = smtp_server.messages
    assert received.rcpt_tos == ["adv@martin.example"] and credit.sent_to == "adv@martin.example"
    assert received.message["Subject"].startswith("Avoir ER-2026-00002")
    body = received.message.get_body(("plain",)).get_content()
    assert "Motif : Geste commercial" in body and "d'un montant de 720,90\xa0€ TTC" in body
    _, content = attachment(received.message)
    assert "Avoir n° ER-2026-00002" in " ".join(pdf_text(content).split())


def test_a_refused_send_is_recorded_and_the_statement_stays_issued(company, smtp_server):
    make_contract(company, start=date(2026, 3, 1))
    smtp_server.rcpt_replies["adv@martin.example"] = "550 5.1.1 Unknown user"

    statement = issue_statement(generate_statement(company, MARCH), today=date(2026, 4, 1))

    assert statement.status == Statement.Status.ISSUED and statement.number == "ER-2026-00001"
    assert statement.sent_at is None and "adv@martin.example" in statement.send_error
    assert smtp_server.messages == []


def test_a_customer_without_any_address_is_told_so(company, settings):
    company.notification_email = ""
    company.save()
    make_contract(company, start=date(2026, 3, 1))

    statement = issue_statement(generate_statement(company, MARCH), today=date(2026, 4, 1))

    assert statement.status == Statement.Status.ISSUED and "Aucune adresse" in statement.send_error


def test_the_admin_resends_a_statement_after_a_failure(company, smtp_server, admin_client):
    make_contract(company, start=date(2026, 3, 1))
    smtp_server.rcpt_replies["adv@martin.example"] = "550 5.1.1 Unknown user"
    statement = issue_statement(generate_statement(company, MARCH), today=date(2026, 4, 1))
    assert statement.send_error
    smtp_server.rcpt_replies.clear()

    response = admin_client.post("/admin/billing/statement/", {
        "action": "resend", "_selected_action": [statement.pk]}, follow=True)

    statement.refresh_from_db()
    assert "ER-2026-00001 envoyé à adv@martin.example" in response.content.decode()
    assert statement.send_error == "" and statement.sent_to == "adv@martin.example"
    [received] = smtp_server.messages
    assert attachment(received.message)[0] == "ER-2026-00001.pdf"
