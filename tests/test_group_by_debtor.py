"""One e-mail per debtor listing all its overdue invoices (task option « un seul e-mail par débiteur »)."""

from datetime import date

import pytest
from django.urls import reverse
from django_q.conf import Conf

from billing.selectors import billable_units
from relance.engine import TaskRunner, run_task, summarize
from relance.gestimum import models as g
from relance.gestimum.gateway import Gateway
from relance.models import DeliveryEvent, Dispatch, ReminderTask, SuppressedAddress
from relance.templating import DEFAULT_GROUP_BODY, DEFAULT_SUBJECT

from .conftest import pdf_text
from .test_tracking import BREVO, auth, brevo_event, post_json

pytestmark = pytest.mark.django_db

LIST_BODY = ("Bonjour {{ tiers_nom }},\n{% for facture in factures %}- {{ facture.numero }} du "
             "{{ facture.date }} : {{ facture.montant_restant }} ({{ facture.jours_retard }} j)\n{% endfor %}"
             "Total : {{ total_restant }} pour {{ nombre_factures }} facture(s).")


def pdf_names(message):
    return sorted(part.get_filename() for part in message.iter_attachments()
                  if part.get_content_type() == "application/pdf")


def by_recipient(smtp_server):
    return {received.rcpt_tos[0]: received.message for received in smtp_server.messages}


@pytest.fixture
def two_debtors(gestimum):
    """Martin owes FA1 and FA2, Dubois owes FA3, all 10 days late."""
    gestimum.tiers("CL001", email="compta@martin.example")
    gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL001", piece="FA2")
    gestimum.tiers("CL002", email="compta@dubois.example")
    gestimum.invoice("CL002", piece="FA3")
    return gestimum


def test_a_debtors_overdue_invoices_go_in_one_email_with_one_pdf_each(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", name="Garage Martin", email="compta@martin.example")
    gestimum.invoice("CL001", piece="FA1", days_late=10, amount="1200.00")
    gestimum.invoice("CL001", piece="FA2", days_late=40, amount="300.50", received="100.50")
    gestimum.tiers("CL002", email="compta@dubois.example")
    gestimum.invoice("CL002", piece="FA3", days_late=10)
    task = make_task(group_by_debtor=True, subject_template="Vos factures", body_template=LIST_BODY)

    run = run_task(task.pk)

    assert (run.sent, run.emails, run.selected) == (3, 2, 3)
    assert "3 documents en 2 e-mail(s)" in summarize(run)
    messages = by_recipient(smtp_server)
    martin = messages["compta@martin.example"]
    assert pdf_names(martin) == ["Facture_FA1.pdf", "Facture_FA2.pdf"]
    body = martin.get_body(("plain",)).get_content()
    assert "Bonjour Garage Martin" in body
    assert "- FA1 du" in body and "1\u00a0200,00\u00a0€ (10 j)" in body
    assert "- FA2 du" in body and "200,00\u00a0€ (40 j)" in body
    assert "Total : 1\u00a0400,00\u00a0€ pour 2 facture(s)." in body
    texts = sorted(pdf_text(part.get_content()) for part in martin.iter_attachments()
                   if part.get_content_type() == "application/pdf")
    assert "FA1" in texts[0] and "FA2" in texts[1]
    assert len(pdf_names(messages["compta@dubois.example"])) == 1
    rows = Dispatch.objects.filter(pcf_code="CL001")
    assert rows.count() == 2 and len({d.message_id for d in rows}) == 1
    assert {d.message_id for d in rows} == {martin["Message-ID"]}
    assert {(d.status, d.subject) for d in rows} == {(Dispatch.Status.SENT, "Vos factures")}
    # Gestimum learns of each document; a second run sends nothing.
    assert len(gestimum.rows(g.Action)) == 3
    again = run_task(task.pk)
    assert again.sent == 0 and len(smtp_server.messages) == 2


def test_the_default_message_of_the_mode_lists_the_invoices(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="compta@martin.example")
    gestimum.invoice("CL001", piece="FA1", days_late=10, amount="1000.00")
    gestimum.invoice("CL001", piece="FA2", days_late=12, amount="500.00")
    task = make_task(group_by_debtor=True, body_template="",
                     subject_template="{% if nombre_factures > 1 %}{{ nombre_factures }} factures "
                                      "échues : {{ total_restant }}{% endif %}")

    run_task(task.pk)

    [received] = smtp_server.messages
    assert received.message["Subject"] == "2 factures échues : 1 500,00 €"  # subjects: plain spaces
    body = received.message.get_body(("plain",)).get_content()
    assert "les factures suivantes restent impayées" in body
    assert "- facture n° FA1 du" in body and "- facture n° FA2 du" in body
    assert "Total restant dû : 1\u00a0500,00\u00a0€." in body


def test_a_debtor_whose_invoices_straddle_two_pages_still_gets_one_email(gestimum, smtp_server,
                                                                          make_task, settings):
    settings.GESTIMUM = {**settings.GESTIMUM, "PAGE_SIZE": 2}
    for code, count in (("CL001", 1), ("CL002", 3), ("CL003", 2)):
        gestimum.tiers(code, email=f"{code.lower()}@client.example")
        for n in range(count):
            gestimum.invoice(code, piece=f"{code}-{n}")
    task = make_task(group_by_debtor=True, body_template=LIST_BODY)

    run = run_task(task.pk)

    assert (run.selected, run.sent, run.emails) == (6, 6, 3)
    counts = {r: len(pdf_names(m)) for r, m in by_recipient(smtp_server).items()}
    assert counts == {"cl001@client.example": 1, "cl002@client.example": 3, "cl003@client.example": 2}


def test_an_invoice_paid_just_before_sending_leaves_the_email_and_its_list(gestimum, smtp_server,
                                                                          make_task, monkeypatch):
    gestimum.tiers("CL001", email="compta@martin.example")
    paid = gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL001", piece="FA2")
    original = Gateway.still_unpaid

    def pay_then_check(self, numbers):
        gestimum.pay(paid)
        return original(self, numbers)

    monkeypatch.setattr(Gateway, "still_unpaid", pay_then_check)
    run = run_task(make_task(group_by_debtor=True, body_template=LIST_BODY).pk)

    [received] = smtp_server.messages
    assert len(pdf_names(received.message)) == 1
    body = received.message.get_body(("plain",)).get_content()
    assert "FA2" in body and "FA1" not in body
    assert run.skip_reasons == {"réglée entre-temps (vérifiée juste avant l'envoi)": 1}


def test_a_refused_email_fails_every_document_it_carried(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="inconnu@martin.example")
    gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL001", piece="FA2")
    smtp_server.rcpt_replies["inconnu@martin.example"] = "550 5.1.1 Utilisateur inconnu"

    run = run_task(make_task(group_by_debtor=True, body_template=LIST_BODY).pk)

    assert (run.sent, run.failed, run.emails) == (0, 2, 0)
    assert set(Dispatch.objects.values_list("status", flat=True)) == {Dispatch.Status.FAILED}
    assert gestimum.rows(g.Action) == []


def test_a_hard_bounce_of_the_email_bounces_each_document_with_one_notice(
        client, customer, gestimum, smtp_server, make_task, settings, monkeypatch):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "easyrelance:Tr4ck1ng-s3cret"}
    monkeypatch.setattr(Conf, "SYNC", True)
    gestimum.tiers("CL001", name="Boulangerie Martin", email="compta@martin.example")
    gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL001", piece="FA2")
    run_task(make_task(group_by_debtor=True, body_template=LIST_BODY).pk)
    first = Dispatch.objects.order_by("pk").first()
    smtp_server.messages.clear()

    response = post_json(client, BREVO, brevo_event(first, "hard_bounce", reason="550 5.1.1 User unknown"),
                         **auth())

    assert response.status_code == 200
    assert set(Dispatch.objects.values_list("status", flat=True)) == {Dispatch.Status.BOUNCED}
    assert DeliveryEvent.objects.count() == 2
    assert SuppressedAddress.objects.get().address == "compta@martin.example"
    [notice] = smtp_server.messages
    text = notice.message.get_body(("plain",)).get_content()
    assert notice.message["Subject"].strip() == "Relance non délivrée : FA1, FA2 — Boulangerie Martin"
    assert "Documents (2, dans le même e-mail)" in text
    undelivered = [a for a in gestimum.rows(g.Action) if a.act_objet.startswith("Relance non délivrée")]
    assert sorted(a.act_objet for a in undelivered) == ["Relance non délivrée (rejet) : FA1",
                                                        "Relance non délivrée (rejet) : FA2"]


def test_every_document_of_a_grouped_email_is_billed(gestimum, smtp_server, make_task, customer):
    gestimum.tiers("CL001", email="compta@martin.example")
    gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL001", piece="FA2")
    run_task(make_task(group_by_debtor=True, body_template=LIST_BODY).pk)
    today = date.today()

    units = billable_units(customer, today.replace(day=1), today)

    assert sorted(u.doc_piece for u in units) == ["FA1", "FA2"]


def test_the_preview_shows_the_debtors_whole_email(two_debtors, make_task):

    preview = TaskRunner(make_task(group_by_debtor=True, body_template=LIST_BODY)).preview()

    assert preview.sample.to == ["compta@martin.example"]
    assert "- FA1" in preview.sample.body and "- FA2" in preview.sample.body
    assert "FA3" not in preview.sample.body
    assert len([n for n in preview.sample.attachment_names if n.endswith(".pdf")]) == 2
    assert Dispatch.objects.count() == 0


def test_the_admin_turns_the_defaults_into_the_modes_and_refuses_a_body_without_the_list(
        admin_client, customer):
    from .test_admin import task_post_data

    url = reverse("admin:relance_remindertask_add")
    refused = admin_client.post(url, task_post_data(customer, group_by_debtor="on",
                                                    body_template="Bonjour {{ tiers_nom }}"))
    assert refused.status_code == 200
    assert "le message doit lister les factures" in refused.content.decode()
    assert not ReminderTask.objects.exists()

    saved = admin_client.post(url, task_post_data(customer, group_by_debtor="on",
                                                  subject_template=DEFAULT_SUBJECT))

    assert saved.status_code == 302
    task = ReminderTask.objects.get()
    assert task.group_by_debtor and task.body_template == DEFAULT_GROUP_BODY
    assert "nombre_factures" in task.subject_template


def test_the_portal_send_page_links_the_other_documents_of_the_email(client, customer, two_debtors,
                                                                     smtp_server, make_task):
    from .portal_support import make_portal_user

    run_task(make_task(group_by_debtor=True, body_template=LIST_BODY).pk)
    client.force_login(make_portal_user(customer))
    fa1, fa2, fa3 = (Dispatch.objects.get(doc_piece=p) for p in ("FA1", "FA2", "FA3"))

    page = client.get(reverse("portal:detail", args=[fa1.pk])).content.decode()
    alone = client.get(reverse("portal:detail", args=[fa3.pk])).content.decode()

    assert f'Dans le même e-mail : <a href="{reverse("portal:detail", args=[fa2.pk])}">FA2</a>.' in page
    assert "Dans le même e-mail" not in alone


def test_a_dry_run_counts_the_emails_of_the_mode(two_debtors, make_task):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()

    call_command("run_reminders", task=make_task(group_by_debtor=True, body_template=LIST_BODY).pk,
                 dry_run=True, stdout=out)

    assert "=> 2 e-mail(s) (3 documents), 0 réacheminement(s), 0 ignorée(s)" in out.getvalue()
    assert not Dispatch.objects.exists()
