"""Pauses (dispute, payment plan) and the minimum gap between two reminders to one debtor."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from relance.engine import SKIP_DEBTOR_GAP, SKIP_PAUSED, TaskRunner, run_task
from relance.models import Dispatch, ReminderPause

from .portal_support import make_dispatch, make_portal_user

pytestmark = pytest.mark.django_db


def recipients(smtp_server):
    return sorted(address for m in smtp_server.messages for address in m.rcpt_tos)


def pause(customer, code, piece="", **fields):
    return ReminderPause.objects.create(customer=customer, pcf_code=code, doc_piece=piece,
                                        reason=fields.pop("reason", "Litige"), **fields)


# -- the engine ---------------------------------------------------------------------------

def test_a_paused_debtor_gets_no_reminder_for_any_of_its_invoices(gestimum, smtp_server, make_task,
                                                                  customer):
    gestimum.tiers("CL001", email="compta@litige.example")
    gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL001", piece="FA2")
    gestimum.tiers("CL002", email="compta@autre.example")
    gestimum.invoice("CL002", piece="FA3")
    pause(customer, "CL001", reason="Litige sur la livraison")

    run = run_task(make_task().pk)

    assert recipients(smtp_server) == ["compta@autre.example"]
    assert (run.sent, run.diverted, run.skipped) == (1, 0, 2)
    assert run.skip_reasons == {SKIP_PAUSED: 2}
    assert not Dispatch.objects.filter(pcf_code="CL001").exists()


def test_an_invoice_pause_stops_that_invoice_only(gestimum, smtp_server, make_task, customer):
    gestimum.tiers("CL001", email="compta@client.example")
    gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL001", piece="FA2")
    pause(customer, " cl001 ", " fa1 ")  # typed loosely: codes compare trimmed, upper-case

    run = run_task(make_task(subject_template="Facture {{ document_numero }}").pk)

    assert [m.message["Subject"] for m in smtp_server.messages] == ["Facture FA2"]
    assert run.skip_reasons == {SKIP_PAUSED: 1}


def test_a_lifted_or_ended_pause_no_longer_applies_and_the_last_day_still_does(
        gestimum, smtp_server, make_task, customer, today):
    for code in ("CL001", "CL002", "CL003"):
        gestimum.tiers(code, email=f"{code.lower()}@client.example")
        gestimum.invoice(code)
    pause(customer, "CL001").lift(by="adv@dupont.example")
    pause(customer, "CL002", until=today - timedelta(days=1))
    pause(customer, "CL003", until=today)

    run = run_task(make_task().pk)

    assert recipients(smtp_server) == ["cl001@client.example", "cl002@client.example"]
    assert run.skip_reasons == {SKIP_PAUSED: 1}


def test_the_preview_shows_paused_invoices_as_skipped(gestimum, make_task, customer):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", piece="FA1")
    pause(customer, "CL001")

    preview = TaskRunner(make_task()).preview()

    assert [(i.candidate.echeance.piece, i.action, i.reason) for i in preview.items] == [
        ("FA1", "skip", SKIP_PAUSED)]
    assert Dispatch.objects.count() == 0


def test_a_debtor_reminded_recently_by_another_task_waits_for_the_minimum_gap(
        gestimum, smtp_server, make_task, customer):
    gestimum.tiers("CL001", email="compta@souvent.example")
    gestimum.invoice("CL001", piece="FA1", days_late=20)
    gestimum.invoice("CL001", piece="FA2", days_late=6)
    gestimum.tiers("CL002", email="compta@calme.example")
    gestimum.invoice("CL002", piece="FA3", days_late=6)
    first = make_task(name="Relance des anciennes", days=15)
    second = make_task(name="Relance des récentes", days=5, max_days=10,
                       min_days_between_debtor_reminders=7)

    run_task(first.pk)  # FA1 to CL001 tonight
    run = run_task(second.pk)

    assert recipients(smtp_server) == ["compta@calme.example", "compta@souvent.example"]
    assert run.skip_reasons == {SKIP_DEBTOR_GAP: 1}
    assert Dispatch.objects.filter(doc_piece="FA2").count() == 0


def test_the_gap_lets_every_invoice_of_one_run_go_and_counts_only_recent_reminders(
        gestimum, smtp_server, make_task, customer):
    gestimum.tiers("CL001", email="compta@client.example")
    gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL001", piece="FA2")
    gestimum.tiers("CL002", email="compta@ancien.example")
    gestimum.invoice("CL002", piece="FA3")
    old = make_dispatch(customer, pcf_code="CL002", ech_numero="ANCIEN0001", status=Dispatch.Status.DELIVERED)
    Dispatch.objects.filter(pk=old.pk).update(sent_at=timezone.now() - timedelta(days=8))

    run = run_task(make_task(min_days_between_debtor_reminders=7).pk)

    assert run.sent == 3 and run.skipped == 0
    assert recipients(smtp_server) == ["compta@ancien.example", "compta@client.example",
                                       "compta@client.example"]


# -- the portal ---------------------------------------------------------------------------

@pytest.fixture
def adv_client(client, customer, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client.force_login(make_portal_user(customer, email="adv@dupont.example"))
    return client


def test_a_customer_pauses_a_debtor_from_the_portal_and_the_next_run_leaves_it_alone(
        adv_client, customer, gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="compta@litige.example")
    gestimum.invoice("CL001")
    make_dispatch(customer, pcf_code="CL001", ech_numero="ANCIEN0001")  # an earlier, unrelated send

    response = adv_client.post(reverse("portal:pauses"), {"pcf_code": "cl001", "doc_piece": "",
                                                          "reason": "Litige qualité", "until": ""},
                               follow=True)

    page = response.content.decode()
    assert "Relances suspendues pour CL001 (tout le débiteur)" in page
    assert "Litige qualité" in page and "Aucun envoi connu" not in page
    saved = ReminderPause.objects.get()
    assert (saved.customer, saved.pcf_code, saved.created_by) == (customer, "CL001", "adv@dupont.example")
    run = run_task(make_task().pk)
    assert smtp_server.messages == [] and run.skip_reasons == {SKIP_PAUSED: 1}


@pytest.mark.parametrize(("data", "message"), [
    ({"pcf_code": " ", "reason": "Litige"}, "Indiquez le code tiers du débiteur"),
    ({"pcf_code": "CL001", "reason": ""}, "Ce champ est obligatoire."),
    ({"pcf_code": "CL001", "reason": "Litige", "until": "2020-01-31"}, "Cette date est déjà passée"),
    ({"pcf_code": "CL001", "reason": "Litige", "until": "31/02/2027"}, "Saisissez une date valide."),
])
def test_a_wrong_pause_is_refused_with_a_french_message_and_nothing_is_saved(adv_client, data, message):
    response = adv_client.post(reverse("portal:pauses"), {"doc_piece": "", "until": "", **data})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert ReminderPause.objects.count() == 0


def test_a_pause_already_in_force_is_not_doubled(adv_client, customer):
    pause(customer, "CL001")
    pause(customer, "CL002", "FA9")

    whole = adv_client.post(reverse("portal:pauses"), {"pcf_code": "CL001", "doc_piece": "FA1",
                                                       "reason": "Autre litige"})
    same = adv_client.post(reverse("portal:pauses"), {"pcf_code": "cl002", "doc_piece": "fa9",
                                                      "reason": "Doublon"})

    assert "Le débiteur CL001 est déjà en pause pour toutes ses factures." in whole.content.decode()
    assert "La facture FA9 du débiteur CL002 est déjà en pause." in same.content.decode()
    assert ReminderPause.objects.count() == 2


def test_an_unknown_debtor_code_is_accepted_with_a_warning(adv_client):
    response = adv_client.post(reverse("portal:pauses"), {"pcf_code": "CL404", "reason": "Litige"},
                               follow=True)

    assert "Aucun envoi connu pour le code tiers « CL404 »" in response.content.decode()
    assert ReminderPause.objects.filter(pcf_code="CL404").exists()


def test_the_send_detail_offers_to_pause_that_invoice_with_the_form_filled_in(adv_client, customer):
    dispatch = make_dispatch(customer, pcf_code="CL007", doc_piece="FA777")

    detail = adv_client.get(reverse("portal:detail", args=[dispatch.pk])).content.decode()
    link = f'{reverse("portal:pauses")}?pcf_code=CL007&amp;doc_piece=FA777#nouvelle-pause'
    assert link in detail
    form = adv_client.get(reverse("portal:pauses"), {"pcf_code": "CL007", "doc_piece": "FA777"})
    page = form.content.decode()
    assert 'name="pcf_code" value="CL007"' in page and 'name="doc_piece" value="FA777"' in page


def test_the_send_page_says_when_its_invoice_or_debtor_is_paused(adv_client, customer):
    dispatch = make_dispatch(customer, pcf_code="CL007", doc_piece="FA777")
    url = reverse("portal:detail", args=[dispatch.pk])
    pause(customer, "CL007", reason="Échéancier accordé")

    page = adv_client.get(url).content.decode()

    assert "Relances suspendues (tout le débiteur) : Échéancier accordé." in page
    assert "Suspendre les relances de cette facture" not in page
    ReminderPause.objects.update(lifted_at=timezone.now())
    assert "Suspendre les relances de cette facture" in adv_client.get(url).content.decode()


def test_lifting_a_pause_keeps_its_history_and_another_customers_pause_is_out_of_reach(
        adv_client, customer):
    from relance.models import Customer

    mine = pause(customer, "CL001", reason="Échéancier accordé")
    theirs = pause(Customer.objects.create(name="Rival", slug="rival"), "CL001", reason="Secret rival")

    page = adv_client.get(reverse("portal:pauses")).content.decode()
    assert "Échéancier accordé" in page and "Secret rival" not in page
    refused = adv_client.post(reverse("portal:lift_pause", args=[theirs.pk]))
    lifted = adv_client.post(reverse("portal:lift_pause", args=[mine.pk]), follow=True)

    assert refused.status_code == 404
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.lifted_at is None
    assert mine.lifted_at is not None and mine.lifted_by == "adv@dupont.example"
    text = lifted.content.decode()
    assert "Pause levée pour CL001" in text and "Levées ou terminées" in text
    assert "Aucune pause en vigueur" in text
    assert adv_client.get(reverse("portal:lift_pause", args=[mine.pk])).status_code == 405


# -- the admin ----------------------------------------------------------------------------

def test_staff_pause_an_invoice_in_the_admin_and_lift_it(admin_client, customer):
    response = admin_client.post(reverse("admin:relance_reminderpause_add"), {
        "customer": customer.pk, "pcf_code": "cl001", "doc_piece": "fa1", "reason": "Avoir en cours",
        "until": "",
    })
    assert response.status_code == 302
    saved = ReminderPause.objects.get()
    assert (saved.pcf_code, saved.doc_piece, saved.created_by) == ("CL001", "FA1", "admin")

    active = admin_client.get(reverse("admin:relance_reminderpause_changelist"), {"etat": "active"})
    assert "Avoir en cours" in active.content.decode()
    admin_client.post(reverse("admin:relance_reminderpause_changelist"),
                      {"action": "lift", "_selected_action": [saved.pk]})
    saved.refresh_from_db()
    assert saved.lifted_at is not None and saved.lifted_by == "admin"
    ended = admin_client.get(reverse("admin:relance_reminderpause_changelist"), {"etat": "active"})
    assert "Avoir en cours" not in ended.content.decode()


def test_the_task_form_offers_the_debtor_gap(admin_client, make_task):
    task = make_task()

    page = admin_client.get(reverse("admin:relance_remindertask_change", args=[task.pk])).content.decode()

    assert 'name="min_days_between_debtor_reminders"' in page
