"""The commands a newcomer and staff type: demo setup, runs, dry runs, previews."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from relance.engine import preview_task
from relance.gestimum import models as g
from relance.models import Customer, Dispatch, TaskRun

from .conftest import pdf_text

pytestmark = pytest.mark.django_db


def call(*args, **kwargs):
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_the_demo_sends_and_diverts_then_sends_nothing_new(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.EMAIL_BACKEND = "relance.mail_backends.EmlFileBackend"
    call("setup_demo")
    demo = Customer.objects.get(slug="demo")

    first = call("run_reminders", customer="demo")
    eml_files = list(settings.EMAIL_FILE_PATH.glob("*.eml"))
    second = call("run_reminders", customer="demo")

    run1 = TaskRun.objects.filter(task__level=1).order_by("started_at").first()
    assert run1.sent > 20 and run1.diverted > 0 and run1.failed == 0
    assert "e-mails envoyés" in first and "documents réacheminés" in first
    assert len(eml_files) == run1.sent
    assert len(list(settings.EMAIL_FILE_PATH.glob("*.eml"))) == len(eml_files)
    assert "déjà relancée à ce niveau" in second
    # One debtor of the demo is in dispute: none of its invoices is reminded.
    paused = demo.pauses.get()
    assert run1.skip_reasons.get("en pause (débiteur ou facture suspendu)", 0) >= 2
    assert not Dispatch.objects.filter(customer=demo, pcf_code=paused.pcf_code).exists()
    assert Dispatch.objects.filter(customer=demo).count() == run1.sent + run1.diverted
    assert demo.portal_users.get().user.email == "adv@demo-negoce.example.com"
    assert demo.contract.prices.get().unit_price == Decimal("0.35")
    manifest = settings.DIVERT_ROOT / "demo" / "courrier" / "niveau1" / "manifeste.csv"
    assert len(manifest.read_text(encoding="utf-8-sig").splitlines()) == run1.diverted + 1


def test_a_dry_run_lists_what_would_be_sent_and_records_nothing(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", email="compta@un.example")
    gestimum.tiers("CL002", email="")
    gestimum.invoice("CL001", piece="FA1", days_late=10)
    gestimum.invoice("CL002", piece="FA2", days_late=10)
    task = make_task()

    out = call("run_reminders", task=task.pk, dry_run=True)

    assert "compta@un.example" in out and "Aucune adresse e-mail" in out
    assert "1 e-mail(s), 1 réacheminement(s), 0 ignorée(s)" in out
    assert not Dispatch.objects.exists() and not TaskRun.objects.exists()
    assert smtp_server.messages == [] and gestimum.rows(g.Action) == []


def test_the_preview_shows_the_message_and_pdf_without_recording(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001", name="Garage Leroy", email="compta@leroy.example")
    gestimum.invoice("CL001", piece="FA42", days_late=12, amount="240.00")
    task = make_task(subject_template="Facture {{ document_numero }} en retard")

    preview = preview_task(task)

    assert preview.selected == 1
    [item] = preview.items
    assert (item.action, item.to) == ("email", ["compta@leroy.example"])
    assert preview.sample.subject == "Facture FA42 en retard"
    assert "Garage Leroy" in preview.sample.body
    assert "FA42" in pdf_text(preview.sample.pdf)
    assert not Dispatch.objects.exists() and not TaskRun.objects.exists()
    assert smtp_server.messages == [] and gestimum.rows(g.Action) == []


def test_run_reminders_refuses_unknown_targets():
    with pytest.raises(CommandError, match="Aucune tâche n° 999"):
        call("run_reminders", task=999)
    with pytest.raises(CommandError, match="Aucun client « absent »"):
        call("run_reminders", customer="absent")


def test_run_reminders_exits_in_error_when_a_task_fails(make_task, customer):
    customer.gestimum_url = "sqlite:////nonexistent-folder/base.sqlite3"
    customer.save()
    task = make_task()
    with pytest.raises(CommandError, match="Au moins une tâche a échoué"):
        call("run_reminders", task=task.pk)
    assert TaskRun.objects.get().status == TaskRun.Status.FAILED


def test_the_gestimum_url_is_encrypted_at_rest(customer, gestimum_url):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT gestimum_url FROM relance_customer WHERE id = %s", [customer.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and gestimum_url not in stored
    assert Customer.objects.get(pk=customer.pk).gestimum_url == gestimum_url


def test_run_reminders_says_when_the_task_is_already_running(gestimum, smtp_server, make_task):
    from relance.scheduling import claim_task

    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    task = make_task()
    claim_task(task)

    out = call("run_reminders", task=task.pk)

    assert "déjà en cours d'exécution" in out
    assert smtp_server.messages == [] and not TaskRun.objects.exists()
