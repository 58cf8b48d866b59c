"""Billing: what is billed, how a month is computed, and what an issued statement guarantees."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone

from billing import services
from billing.models import Contract, ContractPrice, ImmutableStatementError, NumberSequence, Statement
from billing.selectors import billable_units, compute_month
from billing.services import create_credit_note, generate_statement, issue_statement, mark_paid
from relance.models import Customer, Dispatch

from .conftest import pdf_text

pytestmark = pytest.mark.django_db

PARIS = timezone.get_default_timezone()
MARCH = date(2026, 3, 1)


def at(year, month, day, hour=12, minute=0):
    return timezone.make_aware(datetime(year, month, day, hour, minute), PARIS)


@pytest.fixture(autouse=True)
def seller(settings):
    settings.BILLING_SELLER = {
        "name": "EasyRelance SAS", "legal_form": "SAS au capital de 5 000 €",
        "address": "10 rue de la République\n69001 Lyon", "siret": "98765432100019",
        "vat_number": "FR55987654321", "rcs": "RCS Lyon 987 654 321", "iban": "", "email": "",
    }


@pytest.fixture
def client_company():
    return Customer.objects.create(name="Martin Négoce", slug="martin", address="5 rue Neuve\n38000 Grenoble",
                                   siret="11122233300044", vat_number="FR01111222333")


def make_contract(customer, *, start=date(2026, 1, 1), end=None, installation="0", monthly="100.00",
                  unit="0.2500", vat="20.00"):
    contract = Contract.objects.create(customer=customer, start_date=start, end_date=end,
                                       installation_fee=Decimal(installation), vat_rate=Decimal(vat))
    ContractPrice.objects.create(contract=contract, effective_from=start, monthly_fee=Decimal(monthly),
                                 unit_price=Decimal(unit))
    return contract


_counter = iter(range(1, 10**6))


def send(customer, when, *, status=Dispatch.Status.SENT, channel=Dispatch.Channel.EMAIL, message_id=None,
         doc_numero=None, piece=None):
    n = next(_counter)
    return Dispatch.objects.create(
        customer=customer, level=1, channel=channel, status=status, ech_numero=f"E{n:09d}",
        doc_numero=doc_numero or f"D{n:09d}", doc_piece=piece or f"FA{n:06d}", pcf_code="CL001",
        tiers_name="Boulangerie Martin", to="compta@martin.example",
        message_id=message_id if message_id is not None else f"<{n}@e-doc-erp.fr>",
        sent_at=when if status != Dispatch.Status.DIVERTED else None, created_at=when,
    )


def amounts(statement):
    return [(line.kind, line.quantity, line.amount) for line in statement.lines.order_by("position")]


# -- the billable unit -------------------------------------------------------------

def test_only_documents_the_provider_accepted_are_billed(client_company):
    billed = [send(client_company, at(2026, 3, 5), status=status) for status in (
        Dispatch.Status.SENT, Dispatch.Status.DELIVERED, Dispatch.Status.DEFERRED, Dispatch.Status.BOUNCED,
        Dispatch.Status.COMPLAINED)]
    for status in (Dispatch.Status.FAILED, Dispatch.Status.REJECTED, Dispatch.Status.PENDING,
                   Dispatch.Status.SENDING, Dispatch.Status.NEEDS_REVIEW):
        send(client_company, at(2026, 3, 5), status=status)
    send(client_company, at(2026, 3, 5), status=Dispatch.Status.DIVERTED, channel=Dispatch.Channel.POSTAL)
    other = Customer.objects.create(name="Autre", slug="autre")
    send(other, at(2026, 3, 5))

    units = billable_units(client_company, date(2026, 3, 1), date(2026, 3, 31))

    assert sorted(u.pk for u in units) == sorted(d.pk for d in billed)


def test_each_document_of_one_email_counts_but_a_document_counts_once_per_email(client_company):
    send(client_company, at(2026, 3, 5), message_id="<one@x>", doc_numero="D1")
    send(client_company, at(2026, 3, 5), message_id="<one@x>", doc_numero="D2")
    # Two échéances of the same invoice in one e-mail: one document.
    send(client_company, at(2026, 3, 5), message_id="<one@x>", doc_numero="D2")
    send(client_company, at(2026, 3, 6), message_id="<two@x>", doc_numero="D2")

    assert len(billable_units(client_company, date(2026, 3, 1), date(2026, 3, 31))) == 3


def test_a_send_belongs_to_the_paris_day_it_was_sent(client_company):
    late_march = send(client_company, at(2026, 3, 31, 23, 30))  # 21:30 UTC
    early_april = send(client_company, at(2026, 4, 1, 0, 30))  # 22:30 UTC on 31 March

    march = billable_units(client_company, date(2026, 3, 1), date(2026, 3, 31))
    april = billable_units(client_company, date(2026, 4, 1), date(2026, 4, 30))

    assert [u.pk for u in march] == [late_march.pk]
    assert [u.pk for u in april] == [early_april.pk]


# -- computing a month ---------------------------------------------------------------

def test_a_full_month_bills_the_monthly_fee_and_each_document(client_company):
    make_contract(client_company, monthly="100.00", unit="0.2500")
    for day in (2, 3, 30):
        send(client_company, at(2026, 3, day))

    statement = generate_statement(client_company, MARCH)

    assert statement.status == Statement.Status.DRAFT
    assert amounts(statement) == [("monthly_fee", Decimal("1.0000"), Decimal("100.00")),
                                  ("usage", Decimal("3.0000"), Decimal("0.75"))]
    assert (statement.total_ht, statement.total_vat, statement.total_ttc) == (
        Decimal("100.75"), Decimal("20.15"), Decimal("120.90"))
    assert statement.billed_units == 3


def test_the_first_month_bills_installation_and_a_fee_prorated_by_days(client_company):
    make_contract(client_company, start=date(2026, 3, 10), installation="450.00", monthly="100.00")

    first = generate_statement(client_company, MARCH)
    second = generate_statement(client_company, date(2026, 4, 1))

    # 22 days of service (10 to 31 March) out of 31: 100 × 22 / 31 = 70.967… -> 70.97.
    assert amounts(first)[:2] == [("installation", Decimal("1.0000"), Decimal("450.00")),
                                  ("monthly_fee", Decimal("0.7097"), Decimal("70.97"))]
    assert "prorata 22/31 jours" in first.lines.get(kind="monthly_fee").label
    assert [kind for kind, _q, _a in amounts(second)] == ["monthly_fee", "usage"]
    assert amounts(second)[0][2] == Decimal("100.00")


def test_the_last_month_is_prorated_and_nothing_is_billed_after_the_end(client_company):
    make_contract(client_company, end=date(2026, 4, 15), monthly="100.00")
    send(client_company, at(2026, 4, 20))  # after the end of service: not billed

    april = generate_statement(client_company, date(2026, 4, 1))

    assert amounts(april) == [("monthly_fee", Decimal("0.5000"), Decimal("50.00")),
                              ("usage", Decimal("0.0000"), Decimal("0.00"))]
    assert generate_statement(client_company, date(2026, 5, 1)) is None


def test_each_line_is_rounded_half_up_to_the_cent_and_vat_is_on_the_total(client_company):
    make_contract(client_company, monthly="10.00", unit="0.0125")
    send(client_company, at(2026, 3, 2))
    send(client_company, at(2026, 3, 3))

    statement = generate_statement(client_company, MARCH)

    # 2 × 0.0125 = 0.025: half-up gives 0.03 where banker's rounding would give 0.02.
    assert amounts(statement)[1] == ("usage", Decimal("2.0000"), Decimal("0.03"))
    # 20 % of 10.03 = 2.006 -> 2.01, on the total HT.
    assert (statement.total_ht, statement.total_vat, statement.total_ttc) == (
        Decimal("10.03"), Decimal("2.01"), Decimal("12.04"))


def test_a_price_change_applies_to_sends_from_its_date_and_the_fee_from_the_next_month(client_company):
    contract = make_contract(client_company, monthly="100.00", unit="0.2000")
    ContractPrice.objects.create(contract=contract, effective_from=date(2026, 3, 16),
                                 monthly_fee=Decimal("150.00"), unit_price=Decimal("0.3000"))
    send(client_company, at(2026, 3, 10))
    send(client_company, at(2026, 3, 20))
    send(client_company, at(2026, 3, 21))

    march = generate_statement(client_company, MARCH)
    april = generate_statement(client_company, date(2026, 4, 1))

    assert amounts(march) == [("monthly_fee", Decimal("1.0000"), Decimal("100.00")),
                              ("usage", Decimal("1.0000"), Decimal("0.20")),
                              ("usage", Decimal("2.0000"), Decimal("0.60"))]
    assert amounts(april)[0][2] == Decimal("150.00")
    assert contract.prices.count() == 2  # the history is kept


def test_the_running_estimate_counts_sends_up_to_today(client_company):
    make_contract(client_company, monthly="100.00", unit="1.0000")
    send(client_company, at(2026, 3, 2))
    send(client_company, at(2026, 3, 20))

    estimate = compute_month(client_company.contract, date(2026, 3, 10), usage_until=date(2026, 3, 10))

    assert estimate.billed_units == 1
    assert estimate.total_ht == Decimal("101.00")
    assert not Statement.objects.exists()


def test_regenerating_a_draft_replaces_its_lines(client_company):
    make_contract(client_company)
    first = generate_statement(client_company, MARCH)
    send(client_company, at(2026, 3, 4))

    again = generate_statement(client_company, MARCH)

    assert again.pk == first.pk
    assert again.billed_units == 1 and again.lines.count() == 2


# -- issuing, numbering, immutability ------------------------------------------------------

def test_issuing_numbers_statements_consecutively_per_year(client_company):
    make_contract(client_company)
    jan, feb, mar = (generate_statement(client_company, date(2026, m, 1)) for m in (1, 2, 3))

    numbers = [issue_statement(s, today=date(2026, 4, 1)).number for s in (feb, jan)]
    numbers.append(issue_statement(mar, today=date(2027, 1, 2)).number)

    assert numbers == ["ER-2026-00001", "ER-2026-00002", "ER-2027-00001"]


def test_an_issued_statement_has_a_pdf_with_the_legal_mentions(client_company):
    make_contract(client_company, monthly="100.00")
    send(client_company, at(2026, 3, 2))

    statement = issue_statement(generate_statement(client_company, MARCH), today=date(2026, 4, 1))

    text = " ".join(pdf_text(statement.pdf.read()).split())
    assert statement.pdf_sha256 and statement.due_date == date(2026, 5, 1)
    for expected in ("Facture n° ER-2026-00001", "01/04/2026", "EasyRelance SAS", "98765432100019",
                     "FR55987654321", "Martin Négoce", "FR01111222333", "Total TTC", "120,30",
                     "40,00", "Pas d'escompte", "01/05/2026"):
        assert expected in text, expected


def test_a_failed_pdf_gives_back_the_number(client_company, monkeypatch):
    from relance.rendering import RenderError

    make_contract(client_company)
    draft = generate_statement(client_company, MARCH)

    def broken(statement):
        raise RenderError("Le PDF n'a pas pu être produit")

    monkeypatch.setattr("billing.pdf.render_statement_pdf", broken)
    with pytest.raises(RenderError):
        issue_statement(draft, today=date(2026, 4, 1))
    monkeypatch.undo()

    draft.refresh_from_db()
    assert draft.status == Statement.Status.DRAFT and draft.number is None
    assert issue_statement(draft, today=date(2026, 4, 1)).number == "ER-2026-00001"


def test_in_production_a_statement_is_not_issued_without_the_issuer_legal_mentions(client_company,
                                                                                   settings):
    del settings.BILLING_SELLER
    settings.DEV_MODE = False
    make_contract(client_company)
    draft = generate_statement(client_company, MARCH)

    with pytest.raises(ImproperlyConfigured, match="SIRET"):
        issue_statement(draft)

    assert not NumberSequence.objects.exists()


def test_an_issued_statement_refuses_any_change_of_its_amounts_or_lines(client_company):
    make_contract(client_company)
    statement = issue_statement(generate_statement(client_company, MARCH), today=date(2026, 4, 1))

    statement.total_ht = Decimal("1.00")
    with pytest.raises(ImmutableStatementError, match="ER-2026-00001 est émis"):
        statement.save()
    line = statement.lines.first()
    line.amount = Decimal("0.01")
    with pytest.raises(ImmutableStatementError, match="Corrigez-le par un avoir"):
        line.save()
    with pytest.raises(ImmutableStatementError):
        line.delete()
    with pytest.raises(ImmutableStatementError):
        Statement.objects.get(pk=statement.pk).delete()
    send(client_company, at(2026, 3, 9))
    assert generate_statement(client_company, MARCH).billed_units == 0  # returned untouched
    statement.refresh_from_db()
    assert statement.total_ht == Decimal("100.00")


def test_marking_an_issued_statement_paid_is_allowed(client_company):
    make_contract(client_company)
    statement = issue_statement(generate_statement(client_company, MARCH), today=date(2026, 4, 1))

    paid = mark_paid(statement, paid_on=date(2026, 4, 20), note="virement reçu")

    assert (paid.status, paid.paid_at) == (Statement.Status.PAID, date(2026, 4, 20))


def test_a_credit_note_cancels_an_invoice_with_negative_amounts_and_the_next_number(client_company):
    make_contract(client_company)
    send(client_company, at(2026, 3, 3))
    invoice = issue_statement(generate_statement(client_company, MARCH), today=date(2026, 4, 1))

    credit = create_credit_note(invoice, reason="Erreur de tarif", today=date(2026, 4, 5))

    invoice.refresh_from_db()
    assert credit.number == "ER-2026-00002"
    assert credit.kind == Statement.Kind.CREDIT_NOTE and credit.credited_statement == invoice
    assert (credit.total_ht, credit.total_ttc) == (-invoice.total_ht, -invoice.total_ttc)
    assert sum(line.amount for line in credit.lines.all()) == -invoice.total_ht
    assert invoice.status == Statement.Status.CREDITED
    assert "Avoir sur la facture n° ER-2026-00001" in " ".join(pdf_text(credit.pdf.read()).split())
    corrected = generate_statement(client_company, MARCH)
    assert corrected.pk != invoice.pk and corrected.status == Statement.Status.DRAFT


# -- audit CSV and portal page ---------------------------------------------------------------

@pytest.fixture
def issued(client_company):
    make_contract(client_company, unit="0.5000")
    send(client_company, at(2026, 3, 3), piece="FA000001")
    changing = send(client_company, at(2026, 3, 4), piece="FA000002")
    statement = issue_statement(generate_statement(client_company, MARCH), today=date(2026, 4, 1))
    # A status that changes after the statement does not change what it billed.
    Dispatch.objects.filter(pk=changing.pk).update(status=Dispatch.Status.BOUNCED)
    return statement


@pytest.fixture
def portal_client(client, django_user_model, client_company):
    from portal.models import PortalUser

    user = django_user_model.objects.create_user("adv@martin.example", "adv@martin.example", "x")
    PortalUser.objects.create(user=user, customer=client_company)
    client.force_login(user)
    return client


def test_the_csv_lists_the_billed_documents_of_a_statement(issued, portal_client):
    response = portal_client.get(f"/facturation/releves/{issued.pk}/envois.csv")

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    pieces = [row[4] for row in rows[1:] if len(row) > 4]
    assert pieces == ["FA000001", "FA000002"]
    assert rows[-1] == ["Total du 01/03/2026 au 31/03/2026", "2"]


def test_the_portal_shows_the_statements_and_the_running_month_of_its_own_customer(issued, portal_client,
                                                                                   client_company):
    generate_statement(client_company, date(2026, 4, 1))  # a draft: not shown

    page = portal_client.get("/facturation/").content.decode()

    assert "ER-2026-00001" in page
    assert "(brouillon)" not in page and page.count("/pdf/") == 1
    assert "Un e-mail qui porte plusieurs documents compte pour autant de documents" in page
    pdf = portal_client.get(f"/facturation/releves/{issued.pk}/pdf/")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content)[:4] == b"%PDF"


def test_a_portal_user_cannot_see_another_customers_statement(issued, client, django_user_model):
    from portal.models import PortalUser

    other = Customer.objects.create(name="Autre", slug="autre")
    user = django_user_model.objects.create_user("x@autre.example", "x@autre.example", "x")
    PortalUser.objects.create(user=user, customer=other)
    client.force_login(user)

    assert client.get(f"/facturation/releves/{issued.pk}/pdf/").status_code == 404
    assert client.get(f"/facturation/releves/{issued.pk}/envois.csv?customer=martin").status_code == 404


def test_staff_choose_the_customer_and_a_user_without_customer_gets_404(issued, client, admin_user,
                                                                          django_user_model):
    client.force_login(admin_user)
    assert "ER-2026-00001" in client.get("/facturation/?customer=martin").content.decode()
    nobody = django_user_model.objects.create_user("nobody", "n@example.com", "x")
    client.force_login(nobody)
    assert client.get("/facturation/").status_code == 404
    client.logout()
    assert client.get("/facturation/").status_code == 302


# -- command and schedule --------------------------------------------------------------------

def test_the_command_installs_one_monthly_schedule(client_company):
    from django_q.models import Schedule

    call_command("generate_statements", "--install-schedule", stdout=io.StringIO())
    call_command("generate_statements", "--install-schedule", stdout=io.StringIO())

    schedule = Schedule.objects.get()
    assert (schedule.func, schedule.schedule_type, schedule.cron) == (
        services.SCHEDULE_FUNC, Schedule.CRON, "0 6 1 * *")


def test_the_command_generates_and_optionally_issues_a_month(client_company):
    make_contract(client_company)
    out = io.StringIO()

    call_command("generate_statements", "--month", "2026-03", "--issue", stdout=out)

    statement = Statement.objects.get()
    assert statement.number and statement.status == Statement.Status.ISSUED
    assert "100,00" in out.getvalue()


def test_the_scheduled_task_drafts_last_months_statements(client_company):
    from billing.tasks import generate_monthly_statements

    make_contract(client_company)

    summary = generate_monthly_statements("2026-03-01")

    assert summary == "1 relevé(s) pour 03/2026"
    assert Statement.objects.get().status == Statement.Status.DRAFT


# -- admin -----------------------------------------------------------------------------------

def test_the_admin_issues_a_draft_and_shows_an_issued_statement_read_only(client_company, admin_client):
    make_contract(client_company)
    draft = generate_statement(client_company, MARCH)

    response = admin_client.post("/admin/billing/statement/", {
        "action": "issue", "_selected_action": [draft.pk]}, follow=True)

    draft.refresh_from_db()
    assert response.status_code == 200 and draft.number == f"ER-{timezone.localdate().year}-00001"
    page = admin_client.get(f"/admin/billing/statement/{draft.pk}/change/").content.decode()
    assert 'name="total_ht"' not in page and 'name="payment_note"' in page
    assert "envois facturés (CSV)" in page


def test_the_admin_credit_note_action_cancels_an_issued_invoice(client_company, admin_client):
    make_contract(client_company)
    invoice = issue_statement(generate_statement(client_company, MARCH), today=date(2026, 4, 1))

    page = admin_client.post("/admin/billing/statement/",
                             {"action": "credit", "_selected_action": [invoice.pk]})
    assert "Motif" in page.content.decode() and not invoice.credit_notes.exists()
    admin_client.post("/admin/billing/statement/", {
        "action": "credit", "_selected_action": [invoice.pk], "apply": "1",
        "reason": "Erreur de tarif", "lines": [line.pk for line in invoice.lines.all()],
    })

    invoice.refresh_from_db()
    assert invoice.status == Statement.Status.CREDITED
    assert invoice.credit_notes.get().total_ht == Decimal("-100.00")


def test_the_admin_contract_page_and_generate_action_work(client_company, admin_client):
    contract = make_contract(client_company, start=date(2020, 1, 1))

    assert admin_client.get(f"/admin/billing/contract/{contract.pk}/change/").status_code == 200
    admin_client.post("/admin/billing/contract/", {"action": "generate_last_month",
                                                    "_selected_action": [contract.pk]})

    assert Statement.objects.get().period_start == services.previous_month()


# -- sends recorded after their month was invoiced -------------------------------------------

APRIL, MAY = date(2026, 4, 1), date(2026, 5, 1)


def usage_lines(statement):
    return [(line.label, line.quantity, line.amount) for line in statement.lines.filter(kind="usage")
            .order_by("position")]


def test_a_send_recorded_after_its_months_invoice_is_billed_once_by_the_next_one(client_company):
    make_contract(client_company, unit="0.2500")
    send(client_company, at(2026, 3, 5))
    interrupted = send(client_company, at(2026, 3, 20), status=Dispatch.Status.NEEDS_REVIEW)
    march = issue_statement(generate_statement(client_company, MARCH), send_email=False)
    assert march.billed_units == 1
    # Staff confirm in April that the interrupted March send did leave (admin « Confirmer »).
    Dispatch.objects.filter(pk=interrupted.pk).update(status=Dispatch.Status.SENT)

    april = generate_statement(client_company, APRIL)

    assert april.billed_units == 1
    assert usage_lines(april)[-1] == (
        "Régularisation : documents envoyés par e-mail du 20/03/2026 au 20/03/2026, enregistrés après "
        "l'établissement de leur relevé", Decimal("1.0000"), Decimal("0.25"))
    assert list(april.lines.get(label__startswith="Régularisation").dispatches.all()) == [interrupted]
    issue_statement(april, send_email=False)
    may = generate_statement(client_company, MAY)
    assert may.billed_units == 0 and not may.lines.filter(label__startswith="Régularisation").exists()
    # The running estimate of the portal leaves regularisations to the statement.
    assert compute_month(client_company.contract, APRIL, usage_until=date(2026, 4, 10)).billed_units == 0


def test_a_credited_month_is_rebilled_by_its_own_new_invoice_not_as_a_regularisation(client_company):
    make_contract(client_company)
    send(client_company, at(2026, 3, 5))
    march = issue_statement(generate_statement(client_company, MARCH), send_email=False)
    create_credit_note(march, reason="Erreur de tarif", send_email=False)

    april = generate_statement(client_company, APRIL)
    march_again = generate_statement(client_company, MARCH)

    assert april.billed_units == 0
    assert march_again.pk != march.pk and march_again.billed_units == 1


def test_a_month_not_yet_invoiced_and_a_document_already_billed_in_its_email_are_not_regularised(
        client_company):
    make_contract(client_company)
    send(client_company, at(2026, 2, 10))  # February has no statement yet: it stays February's
    send(client_company, at(2026, 3, 5), message_id="<m1@e-doc-erp.fr>", doc_numero="D1")
    send(client_company, at(2026, 3, 5), message_id="<m1@e-doc-erp.fr>", doc_numero="D1")  # 2 échéances
    issue_statement(generate_statement(client_company, MARCH), send_email=False)

    april = generate_statement(client_company, APRIL)

    assert april.billed_units == 0
    assert generate_statement(client_company, date(2026, 2, 1)).billed_units == 1
