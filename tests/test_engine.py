"""A reminder task run end to end: Gestimum rows in, real SMTP messages out."""

import csv
from datetime import timedelta

import pytest
from django.utils import timezone

from relance.engine import run_task
from relance.gestimum import models as g
from relance.models import AddressSource, Criterion, Dispatch, FixedAttachment, TaskRun

from .conftest import pdf_text

pytestmark = pytest.mark.django_db


def sent_to(smtp_server):
    return sorted(address for m in smtp_server.messages for address in m.rcpt_tos)


def pdf_attachment(message):
    for part in message.iter_attachments():
        if part.get_content_type() == "application/pdf":
            return part
    return None


def test_it_emails_an_overdue_invoice_with_its_pdf(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", name="Boulangerie Martin", email="compta@martin.example")
    gestimum.invoice("CL001", piece="FA000123", days_late=10, amount="1234.56")
    task = make_task(subject_template="Relance facture {{ document_numero }}")

    run = run_task(task.pk)

    assert run.status == TaskRun.Status.SUCCEEDED
    assert (run.selected, run.sent, run.diverted, run.failed) == (1, 1, 0, 0)
    [received] = smtp_server.messages
    message = received.message
    assert received.rcpt_tos == ["compta@martin.example"]
    assert message["Subject"] == "Relance facture FA000123"
    assert message["From"] == "Dupont Industrie <dupont@e-doc-erp.fr>"
    assert message["Reply-To"] == "compta@dupont.example"
    body = message.get_body(("plain",)).get_content()
    assert "Bonjour Boulangerie Martin" in body
    assert "1\u00a0234,56\u00a0€" in body
    assert "10 jours de retard" in body
    attachment = pdf_attachment(message)
    assert attachment.get_filename().endswith("FA000123.pdf")
    assert "FA000123" in pdf_text(attachment.get_content())
    dispatch = Dispatch.objects.get()
    assert dispatch.status == Dispatch.Status.SENT
    assert dispatch.to == "compta@martin.example"
    assert dispatch.message_id == message["Message-ID"]
    assert dispatch.pdf_sha256 and dispatch.pdf.read()[:4] == b"%PDF"


def test_a_second_run_sends_nothing(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    task = make_task()

    run_task(task.pk)
    second = run_task(task.pk)

    assert len(smtp_server.messages) == 1
    assert second.sent == 0
    assert second.skip_reasons == {"déjà relancée à ce niveau": 1}


def test_it_skips_invoices_not_late_enough_paid_or_settled(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="a@client.example")
    late = gestimum.invoice("CL001", piece="FA1", days_late=5)
    gestimum.invoice("CL001", piece="FA2", days_late=4)
    gestimum.invoice("CL001", piece="FA3", days_late=30, received="1200.00", settled=True)
    gestimum.invoice("CL001", piece="FA4", days_late=30, amount="100", received="100")
    task = make_task(days=5)

    run_task(task.pk)

    assert [d.ech_numero for d in Dispatch.objects.all()] == [late]


def test_it_reminds_the_remaining_amount_of_a_partly_paid_invoice(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="FA9", days_late=20, amount="1000.00", received="400.00",
                     settled=False)
    task = make_task()

    run_task(task.pk)

    body = smtp_server.messages[0].message.get_body(("plain",)).get_content()
    assert "600,00\u00a0€" in body
    assert Dispatch.objects.get().remaining == 600


def test_it_never_reminds_credit_notes(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="AV1", stype="A", days_late=30)
    task = make_task(doc_stypes="")

    run = run_task(task.pk)

    assert run.selected == 0 and smtp_server.messages == []


def test_a_payment_between_selection_and_send_stops_the_reminder(gestimum, smtp_server, make_task,
                                                                  monkeypatch):
    from relance.gestimum.gateway import Gateway

    gestimum.tiers("CL001")
    paid_meanwhile = gestimum.invoice("CL001", piece="FA1", days_late=10)
    gestimum.invoice("CL001", piece="FA2", days_late=10)
    original = Gateway.still_unpaid

    def pay_then_check(self, numbers):
        gestimum.pay(paid_meanwhile)
        return original(self, numbers)

    monkeypatch.setattr(Gateway, "still_unpaid", pay_then_check)
    task = make_task()

    run = run_task(task.pk)

    assert run.sent == 1
    assert run.skip_reasons == {"réglée entre-temps (vérifiée juste avant l'envoi)": 1}
    assert Dispatch.objects.get().doc_piece == "FA2"


def test_level_two_waits_for_level_one(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="FA1", days_late=20)
    level1 = make_task(level=1, days=5)
    level2 = make_task(level=2, days=15, subject_template="Deuxième relance {{ document_numero }}",
                       min_days_since_previous=7)

    first = run_task(level2.pk)
    run_task(level1.pk)
    too_soon = run_task(level2.pk)
    Dispatch.objects.filter(level=1).update(sent_at=timezone.now() - timedelta(days=7))
    second = run_task(level2.pk)

    assert first.sent == 0 and first.skip_reasons == {"niveau précédent non envoyé ou trop récent": 1}
    assert too_soon.sent == 0
    assert second.sent == 1
    assert [m.message["Subject"] for m in smtp_server.messages] == [
        "Relance : facture FA1 échue le " + smtp_server.messages[0].message["Subject"][-10:],
        "Deuxième relance FA1",
    ]


def test_level_two_can_skip_the_level_one_requirement(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=20)
    task = make_task(level=2, days=15, require_previous_level=False)

    assert run_task(task.pk).sent == 1


def test_recipient_chain_falls_back_in_order(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="billing@one.example", XXX_EMAILRELANCE="relance@one.example")
    gestimum.tiers("CL002", email="")
    gestimum.contact("CL002", email="compta@two.example", function="COMPTA")
    gestimum.contact("CL002", email="boss@two.example", function="DIRECTION")
    gestimum.tiers("CL003", email="a@three.example; b@three.example")
    for code in ("CL001", "CL002", "CL003"):
        gestimum.invoice(code, days_late=10)
    task = make_task()
    AddressSource.objects.create(task=task, role="to", position=1, kind="tiers_column",
                                 value="XXX_EMAILRELANCE")
    AddressSource.objects.create(task=task, role="to", position=2, kind="contact_function",
                                 value="COMPTA")
    AddressSource.objects.create(task=task, role="to", position=3, kind="billing_email")

    run_task(task.pk)

    by_tiers = {m.message["To"]: m for m in smtp_server.messages}
    assert set(by_tiers) == {"relance@one.example", "compta@two.example",
                             "a@three.example, b@three.example"}


def test_cc_and_bcc_static_and_dynamic(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="compta@client.example", rep_code="JD")
    g.Representative.objects.using(gestimum.alias).create(rep_code="JD", rep_nom="Durand",
                                                          rep_email="jd@dupont.example")
    gestimum.contact("CL001", email="dg@client.example", function="DIRECTION")
    gestimum.invoice("CL001", days_late=10)
    task = make_task()
    AddressSource.objects.create(task=task, role="cc", kind="contact_function", value="DIRECTION")
    AddressSource.objects.create(task=task, role="cc", kind="static", value="adv@dupont.example")
    AddressSource.objects.create(task=task, role="bcc", kind="representative")

    run_task(task.pk)

    [received] = smtp_server.messages
    assert received.message["Cc"] == "dg@client.example, adv@dupont.example"
    assert received.message["Bcc"] is None  # never shown to the debtor
    assert sorted(received.rcpt_tos) == sorted(
        ["compta@client.example", "dg@client.example", "adv@dupont.example", "jd@dupont.example"])
    assert Dispatch.objects.get().bcc == "jd@dupont.example"


def test_the_fixed_attachment_is_joined(gestimum, smtp_server, make_task):
    from django.core.files.base import ContentFile

    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    task = make_task()
    attachment = FixedAttachment(task=task, name="CGV.pdf")
    attachment.file.save("cgv.pdf", ContentFile(b"%PDF-1.4 conditions generales"), save=True)

    run_task(task.pk)

    names = [part.get_filename() for part in smtp_server.messages[0].message.iter_attachments()]
    assert names[1:] == ["CGV.pdf"]


def test_documents_without_a_valid_address_are_diverted_with_a_manifest(
        gestimum, smtp_server, make_task, settings):
    gestimum.tiers("CL001", name="Sans Mail SARL", email="", pcf_rue="5 avenue Foch", pcf_cp="75016",
                   pcf_ville="Paris")
    gestimum.tiers("CL002", name="Mauvais Mail", email="compta@")
    gestimum.invoice("CL001", piece="FA1", days_late=10)
    gestimum.invoice("CL002", piece="FA2", days_late=10)
    task = make_task(divert_folder="courrier/niveau1")

    run = run_task(task.pk)

    assert (run.sent, run.diverted) == (0, 2)
    folder = settings.DIVERT_ROOT / "dupont" / "courrier" / "niveau1"
    pdfs = sorted(p.name for p in folder.glob("*.pdf"))
    assert len(pdfs) == 2 and pdfs[0].startswith("Facture_FA1")
    with (folder / "manifeste.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert [r["Pièce"] for r in rows] == ["FA1", "FA2"]
    assert rows[0]["Adresse postale"] == "Sans Mail SARL / 5 avenue Foch / 75016 Paris"
    assert rows[0]["Motif"] == "Aucune adresse e-mail"
    assert rows[1]["Motif"] == "Adresse e-mail invalide : compta@"
    assert set(Dispatch.objects.values_list("status", flat=True)) == {"diverted"}


def test_a_divert_folder_outside_the_root_is_refused(make_task):
    from django.core.exceptions import ValidationError

    task = make_task(divert_folder="../../etc")
    with pytest.raises(ValidationError) as error:
        task.full_clean()
    assert "sort du dossier autorisé" in str(error.value)


def test_write_back_records_actions_counter_and_relances(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.tiers("CL002", email="")
    sent = gestimum.invoice("CL001", piece="FA1", days_late=10)
    diverted = gestimum.invoice("CL002", piece="FA2", days_late=10)
    task = make_task(writeback_relances=True)

    run_task(task.pk)

    assert gestimum.echeance(sent).ech_nbrel == 1
    assert gestimum.echeance(sent).ech_usrmaj == "EASYREL"
    assert gestimum.echeance(diverted).ech_nbrel == 0
    actions = {a.pcf_code: a for a in gestimum.rows(g.Action)}
    assert actions["CL001"].act_objet == "Relance niveau 1 envoyée par e-mail : FA1"
    assert actions["CL001"].act_type == "RELANCE" and actions["CL001"].act_termine
    assert actions["CL001"].doc_numero == gestimum.echeance(sent).document_id
    assert actions["CL002"].act_objet == "Relance niveau 1 à envoyer par courrier : FA2"
    assert len(actions["CL001"].act_numero) == 10
    [relance] = gestimum.rows(g.Relance)
    assert (relance.rel_piece, relance.rel_level) == ("FA1", "1")
    assert gestimum.rows(g.RelanceEcheance)[0].ech_numero == sent
    assert gestimum.rows(g.RelanceTiers)[0].pcf_code == "CL001"
    assert not Dispatch.objects.filter(writeback_pending=True).exists()


def test_write_back_can_be_turned_off(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    ech = gestimum.invoice("CL001", days_late=10)
    task = make_task(writeback_action=False, writeback_nbrel=False)

    run_task(task.pk)

    assert gestimum.rows(g.Action) == [] and gestimum.echeance(ech).ech_nbrel == 0


def test_a_permanent_smtp_refusal_fails_that_send_only(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="unknown@client.example")
    gestimum.tiers("CL002", email="ok@client.example")
    gestimum.invoice("CL001", piece="FA1", days_late=10)
    gestimum.invoice("CL002", piece="FA2", days_late=10)
    smtp_server.rcpt_replies["unknown@client.example"] = "550 5.1.1 Utilisateur inconnu"
    task = make_task()

    run = run_task(task.pk)

    assert (run.status, run.sent, run.failed) == (TaskRun.Status.PARTIAL, 1, 1)
    failed = Dispatch.objects.get(doc_piece="FA1")
    assert failed.status == Dispatch.Status.FAILED
    assert "550" in failed.error and failed.attempts == 1
    assert "FA1" in run.errors


def test_a_temporary_smtp_error_is_retried(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    smtp_server.data_replies = ["451 4.3.0 Réessayez plus tard"]
    task = make_task()

    run = run_task(task.pk)

    assert run.sent == 1
    assert Dispatch.objects.get().attempts == 2
    assert len(smtp_server.messages) == 1


def test_a_failed_send_is_retried_by_the_next_run(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="flaky@client.example")
    gestimum.invoice("CL001", days_late=10)
    smtp_server.rcpt_replies["flaky@client.example"] = "550 boîte pleine"
    task = make_task()
    run_task(task.pk)
    smtp_server.rcpt_replies.clear()

    second = run_task(task.pk)

    assert second.sent == 1
    assert Dispatch.objects.get().status == Dispatch.Status.SENT


def test_a_send_interrupted_by_a_crash_is_flagged_never_resent(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    ech = gestimum.invoice("CL001", days_late=10)
    task = make_task()
    dead_run = TaskRun.objects.create(task=task, status=TaskRun.Status.FAILED)
    Dispatch.objects.create(customer=task.customer, task=task, run=dead_run, level=1, ech_numero=ech,
                            status=Dispatch.Status.SENDING)

    run = run_task(task.pk)

    assert run.sent == 0 and smtp_server.messages == []
    assert Dispatch.objects.get().status == Dispatch.Status.NEEDS_REVIEW
    assert run.skip_reasons == {"envoi interrompu à vérifier dans l'admin": 1}


def test_an_unreachable_gestimum_fails_the_run_with_a_french_message(make_task, customer):
    customer.gestimum_url = "postgres://nobody@127.0.0.1:1/absent"
    customer.save()
    task = make_task()

    run = run_task(task.pk)

    assert run.status == TaskRun.Status.FAILED
    assert "Serveur Gestimum injoignable" in run.errors


def test_a_render_error_fails_one_send_and_the_run_goes_on(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.tiers("CL002")
    gestimum.invoice("CL001", piece="FA1", days_late=10)
    gestimum.invoice("CL002", piece="FA2", days_late=10)
    task = make_task(print_model="archive", archive_pattern="{DOC_PIECE}.pdf")
    from django.conf import settings

    (settings.ARCHIVE_ROOT / "FA2.pdf").write_bytes(_tiny_pdf("FA2 archive"))

    run = run_task(task.pk)

    assert (run.sent, run.failed) == (1, 1)
    assert "FA1" in Dispatch.objects.get(status="failed").error


def _tiny_pdf(text):
    import io

    from xhtml2pdf import pisa

    out = io.BytesIO()
    pisa.CreatePDF(f"<p>{text}</p>", dest=out)
    return out.getvalue()


def test_the_archive_pdf_is_sent_as_is(gestimum, smtp_server, make_task, settings):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="FA77", days_late=10)
    content = _tiny_pdf("Facture originale FA77")
    (settings.ARCHIVE_ROOT / "FA77.pdf").write_bytes(content)
    task = make_task(print_model="archive")

    run_task(task.pk)

    assert pdf_attachment(smtp_server.messages[0].message).get_content() == content


# -- selection criteria ---------------------------------------------------------------

@pytest.fixture
def two_families(gestimum):
    gestimum.tiers("CL001", fat_code="GROS ", sft_code="NORD", rep_code="AB", reg_code="VIR",
                   XXX_TOUR="EST", XXX_CLTWEB=True)
    gestimum.tiers("CL002", fat_code="DETAIL", sft_code="SUD", rep_code="CD", XXX_TOUR="OUEST")
    return {
        "CL001": gestimum.invoice("CL001", piece="FA1", days_late=10, amount="50.00",
                                  XXX_AFFAIRE="CHANTIER-12", XXX_LITIGE=True),
        "CL002": gestimum.invoice("CL002", piece="FA2", days_late=10, amount="5000.00",
                                  XXX_AFFAIRE="", stype="F "),
    }


def selected(task):
    run_task(task.pk)
    return sorted(Dispatch.objects.filter(task=task).values_list("pcf_code", flat=True))


@pytest.mark.parametrize("fields, expected", [
    ({"families": "GROS"}, ["CL001"]),
    ({"families": "DETAIL, GROS"}, ["CL001", "CL002"]),
    ({"subfamilies": "SUD"}, ["CL002"]),
    ({"representatives": "CD"}, ["CL002"]),
    ({"min_remaining": 100}, ["CL002"]),
    ({"tiers_include": "CL001"}, ["CL001"]),
    ({"tiers_exclude": "CL001; CL003"}, ["CL002"]),
    ({"doc_stypes": "F"}, ["CL001", "CL002"]),
    ({"doc_stypes": "C"}, []),
])
def test_each_dedicated_criterion_selects(two_families, smtp_server, make_task, fields, expected):
    assert selected(make_task(**fields)) == expected


def test_payment_mode_criterion(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="FA1", days_late=10)
    g.Echeance.objects.using(gestimum.alias).update(reg_code="LCR")
    assert selected(make_task(payment_modes="VIR")) == []
    assert selected(make_task(payment_modes="LCR", level=3, require_previous_level=False)) == ["CL001"]


@pytest.fixture
def promises(gestimum, today):
    """CL001 promised to pay in 5 days, CL002 promised 3 days ago, CL003 promised nothing."""
    for code, promised in (("CL001", 5), ("CL002", -3), ("CL003", None)):
        gestimum.tiers(code, XXX_PLAFOND={"CL001": 100, "CL002": 5000, "CL003": None}[code])
        extra = {} if promised is None else {"XXX_PROMESSE": gestimum.at(today + timedelta(days=promised))}
        gestimum.invoice(code, piece=f"FA{code}", days_late=10, **extra)


@pytest.mark.parametrize("column, operator, value, expected", [
    ("XXX_PROMESSE", "lt", "J", ["CL002"]),            # promise broken
    ("XXX_PROMESSE", "gt", "aujourd'hui", ["CL001"]),  # promise still to come
    ("XXX_PROMESSE", "gt", "J-4", ["CL001", "CL002"]),
    ("XXX_PROMESSE", "eq", "J+5", ["CL001"]),
    ("XXX_PROMESSE", "ne", "J+5", ["CL002", "CL003"]),
    ("XXX_PROMESSE", "empty", "", ["CL003"]),
    ("XXX_PROMESSE", "not_empty", "", ["CL001", "CL002"]),
    ("XXX_PLAFOND", "gt", "1000", ["CL002"]),
    ("XXX_PLAFOND", "lt", "1 000,50", ["CL001"]),
])
def test_date_and_number_criteria_compare_with_absolute_or_relative_values(
        promises, smtp_server, make_task, column, operator, value, expected):
    task = make_task()
    table = "TIERS" if column == "XXX_PLAFOND" else "DOCUMENTS"
    Criterion.objects.create(task=task, table=table, column=column, operator=operator, value=value)
    assert selected(task) == expected


def test_an_absolute_date_criterion_counts_whole_days_of_the_customers_calendar(
        promises, smtp_server, make_task, today):
    task = make_task()
    Criterion.objects.create(task=task, table="DOCUMENTS", column="XXX_PROMESSE", operator="eq",
                             value=(today - timedelta(days=3)).strftime("%d/%m/%Y"))
    assert selected(task) == ["CL002"]


@pytest.mark.parametrize("column, operator, value, message", [
    ("XXX_PROMESSE", "eq", "demain", "« demain » n'est pas une date. Écrivez jj/mm/aaaa"),
    ("XXX_PROMESSE", "contains", "12", "pour une date, utilisez"),
    ("XXX_TOUR", "gt", "EST", "s'appliquent aux nombres et aux dates"),
])
def test_a_criterion_that_does_not_fit_its_column_fails_the_run_in_french(
        promises, smtp_server, make_task, column, operator, value, message):
    task = make_task()
    table = "TIERS" if column == "XXX_TOUR" else "DOCUMENTS"
    Criterion.objects.create(task=task, table=table, column=column, operator=operator, value=value)
    run = run_task(task.pk)
    assert run.status == TaskRun.Status.FAILED and message in run.errors
    assert smtp_server.messages == []


@pytest.mark.parametrize("table, column, operator, value, expected", [
    ("TIERS", "XXX_TOUR", "eq", "EST", ["CL001"]),
    ("TIERS", "XXX_TOUR", "ne", "EST", ["CL002"]),
    ("TIERS", "XXX_TOUR", "in", "OUEST;NORD", ["CL002"]),
    ("TIERS", "XXX_TOUR", "contains", "ues", ["CL002"]),
    ("TIERS", "XXX_CLTWEB", "eq", "oui", ["CL001"]),
    ("TIERS", "XXX_CLTWEB", "eq", "0", ["CL002"]),  # NULL bit reads as false
    ("TIERS", "PCF_VILLE", "eq", "Lyon", ["CL001", "CL002"]),
    ("DOCUMENTS", "XXX_AFFAIRE", "empty", "", ["CL002"]),
    ("DOCUMENTS", "XXX_AFFAIRE", "not_empty", "", ["CL001"]),
    ("DOCUMENTS", "XXX_LITIGE", "ne", "1", ["CL002"]),
    ("DOCUMENTS", "DOC_MT_TTC", "in", "50;51", ["CL001"]),
    ("ECHEANCES", "REG_CODE", "eq", "VIR", ["CL001", "CL002"]),
])
def test_any_column_criterion_including_custom_fields(two_families, smtp_server, make_task,
                                                      table, column, operator, value, expected):
    task = make_task()
    Criterion.objects.create(task=task, table=table, column=column, operator=operator, value=value)
    assert selected(task) == expected


def test_an_injection_attempt_in_a_criterion_value_is_just_a_value(two_families, smtp_server,
                                                                   make_task, gestimum):
    task = make_task()
    Criterion.objects.create(task=task, table="TIERS", column="XXX_TOUR", operator="eq",
                             value="EST' OR '1'='1")
    run = run_task(task.pk)
    assert run.status == TaskRun.Status.SUCCEEDED and run.selected == 0
    assert len(gestimum.rows(g.Tiers)) == 2


@pytest.mark.parametrize("column", ['XXX_TOUR" = \'EST\' OR 1=1 --', "XXX_TOUR;DROP TABLE TIERS",
                                    "XXX_INCONNUE"])
def test_an_injection_attempt_in_a_column_name_is_refused(two_families, smtp_server, make_task,
                                                          gestimum, column):
    task = make_task()
    Criterion.objects.create(task=task, table="TIERS", column=column, operator="eq", value="x")
    run = run_task(task.pk)
    assert run.status == TaskRun.Status.FAILED
    assert "n'existe pas dans la table TIERS" in run.errors
    assert smtp_server.messages == [] and len(gestimum.rows(g.Tiers)) == 2


def test_a_courtesy_reminder_selects_invoices_due_soon_only(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="SOON", days_late=-3)
    gestimum.invoice("CL001", piece="LATER", days_late=-10)
    gestimum.invoice("CL001", piece="LATE", days_late=2)
    task = make_task(level=0, days=-5)
    run_task(task.pk)
    assert list(Dispatch.objects.values_list("doc_piece", flat=True)) == ["SOON"]


def test_max_days_ignores_very_old_invoices(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="OLD", days_late=400)
    gestimum.invoice("CL001", piece="RECENT", days_late=20)
    task = make_task(max_days=365)
    run_task(task.pk)
    assert list(Dispatch.objects.values_list("doc_piece", flat=True)) == ["RECENT"]


def test_document_date_trigger_sends_new_invoices(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="NEW", days_late=-29, issued_days_ago=1)
    gestimum.invoice("CL001", piece="TODAY", days_late=-30, issued_days_ago=0)
    task = make_task(level=0, trigger="document_date", days=1)
    run_task(task.pk)
    assert list(Dispatch.objects.values_list("doc_piece", flat=True)) == ["NEW"]


def test_the_customer_own_address_is_used_once_its_domain_is_verified(gestimum, smtp_server, make_task,
                                                                      customer):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="FA1", days_late=10)
    gestimum.invoice("CL001", piece="FA2", days_late=11)
    customer.own_sender_email = "relances@dupont-industrie.example"
    customer.save()
    task = make_task(tiers_include="CL001", max_days=10)

    run_task(task.pk)  # domain not verified yet: platform address
    customer.own_domain_verified = True
    customer.save()
    task.max_days = None
    task.save()
    run_task(task.pk)

    assert [m.message["From"] for m in smtp_server.messages] == [
        "Dupont Industrie <dupont@e-doc-erp.fr>",
        "Dupont Industrie <relances@dupont-industrie.example>",
    ]


def test_contacts_are_read_only_when_an_address_or_the_message_uses_them(gestimum, smtp_server,
                                                                          make_task):
    from relance.engine import TaskRunner

    gestimum.tiers("CL001")
    gestimum.tiers("CL002")
    gestimum.contact("CL002", email="compta@deux.example", function="COMPTA", nom="Roux", prenom="Léa")
    gestimum.invoice("CL001", piece="FA1", days_late=10)
    gestimum.invoice("CL002", piece="FA2", days_late=10)
    plain = make_task(body_template="Facture {{ document_numero }} impayée.")
    personal = make_task(level=2, require_previous_level=False,
                         body_template="Bonjour {{ contact_nom }}, facture {{ document_numero }}.")

    without = TaskRunner(plain)
    without.execute()
    with_contacts = TaskRunner(personal)
    with_contacts.execute()

    assert with_contacts.gestimum_queries == without.gestimum_queries + 1
    bodies = sorted(m.message.get_body(("plain",)).get_content().strip() for m in smtp_server.messages)
    assert "Bonjour Léa Roux, facture FA2." in bodies


def test_identifiers_are_consecutive_and_never_reused(gestimum):
    from relance.gestimum.numbering import allocate

    first = allocate(gestimum.alias, "N_ACT", 3)
    second = allocate(gestimum.alias, "N_ACT", 2)
    other = allocate(gestimum.alias, "N_REL", 1)

    assert first == ["0000000001", "0000000002", "0000000003"]
    assert second == ["0000000004", "0000000005"]
    assert other == ["0000000001"]
