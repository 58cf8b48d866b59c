"""The staff back-office: secrets stay hidden, bad tasks are refused, previews send nothing."""

from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.urls import reverse
from django.utils.html import escape

from relance.admin.forms import mask_url
from relance.models import Criterion, Customer, Dispatch, ReminderTask, TaskRun
from relance.rendering import sample_candidate
from relance.templating import DEFAULT_BODY

pytestmark = pytest.mark.django_db

SECRET_URL = "mssql://sa:S3cr3t-Pa55@srv-gestimum:1433/GESTIMUM"
INLINE_PREFIXES = ("criteria", "address_sources", "attachments", "runs")


@pytest.fixture
def company():
    return Customer.objects.create(name="Dupont Industrie", slug="dupont", gestimum_url=SECRET_URL,
                                   signature="Service comptabilité")


@pytest.fixture
def task(company):
    return ReminderTask.objects.create(customer=company, name="Relance 1", body_template=DEFAULT_BODY)


@pytest.fixture
def columns_checked(monkeypatch):
    """Replace the live column check; record its calls and answer ``errors``."""
    from relance.gestimum import gateway

    state = SimpleNamespace(calls=[], errors=[], unavailable=None)

    def fake_check_columns(customer, pairs, criteria=()):
        state.calls.append((customer, list(pairs)))
        if state.unavailable:
            raise gateway.GestimumUnavailable(state.unavailable)
        return state.errors

    monkeypatch.setattr(gateway, "check_columns", fake_check_columns)
    return state


def customer_post_data(customer, **overrides):
    data = {"name": customer.name, "slug": customer.slug, "active": "on",
            "timezone": customer.timezone, "new_gestimum_url": ""}
    data.update(overrides)
    return data


def task_post_data(customer, **overrides):
    data = {
        "customer": customer.pk, "name": "Relance niveau 1", "active": "on", "level": "1",
        "require_previous_level": "on", "min_days_since_previous": "10",
        "min_days_between_debtor_reminders": "0", "trigger": "due_date",
        "days": "5", "schedule": "0 20 * * *",
        "doc_stypes": "F", "subject_template": "Relance : facture {{ document_numero }}",
        "body_template": DEFAULT_BODY, "print_model": "template", "archive_pattern": "{DOC_PIECE}.pdf",
        "divert_folder": "courrier", "writeback_action": "on", "writeback_nbrel": "on",
    }
    for prefix in INLINE_PREFIXES:
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0",
                     f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"})
    data.update(overrides)
    return data


def with_criterion(data, column, table="TIERS", value="BOUL"):
    data.update({"criteria-TOTAL_FORMS": "1", "criteria-0-table": table, "criteria-0-column": column,
                 "criteria-0-operator": "eq", "criteria-0-value": value})
    return data


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


# -- customers -------------------------------------------------------------------------------


def test_the_customer_page_never_shows_the_database_password(admin_client, company):
    response = admin_client.get(reverse("admin:relance_customer_change", args=[company.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "S3cr3t-Pa55" not in content
    assert "mssql://sa:••••@srv-gestimum:1433/GESTIMUM" in content
    assert "nouvelle URL de connexion" in content
    listing = admin_client.get(reverse("admin:relance_customer_changelist"))
    assert "S3cr3t-Pa55" not in listing.content.decode()


def test_masking_hides_passwords_in_the_user_info_and_the_query_string():
    assert mask_url("mssql://sa:p%40ss@srv:1433/G?driver=ODBC+Driver+18") == (
        "mssql://sa:••••@srv:1433/G?driver=ODBC%20Driver%2018")
    assert "hunter2" not in mask_url("mssql://srv/G?extra_params=UID%3Dsa%3BPWD%3Dhunter2")
    assert "hunter2" not in mask_url("postgres://u@h/db?password=hunter2")
    assert mask_url("sqlite:////var/gestimum.sqlite3") == "sqlite:////var/gestimum.sqlite3"


def test_a_blank_new_url_keeps_the_current_connection(admin_client, company):
    url = reverse("admin:relance_customer_change", args=[company.pk])
    response = admin_client.post(url, customer_post_data(company, name="Dupont Industrie SA"))
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.name == "Dupont Industrie SA"
    assert company.gestimum_url == SECRET_URL


def test_a_new_url_replaces_the_connection_and_is_stored_encrypted(admin_client, company):
    url = reverse("admin:relance_customer_change", args=[company.pk])
    new_url = "mssql://relance:Autre-Secret@srv2:1433/GESTIMUM"
    response = admin_client.post(url, customer_post_data(company, new_gestimum_url=new_url))
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.gestimum_url == new_url
    with connection.cursor() as cursor:  # raw SQL: the ORM would decrypt it
        cursor.execute("SELECT gestimum_url FROM relance_customer WHERE id = %s", [company.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and "Autre-Secret" not in stored


def test_it_refuses_the_masked_url_pasted_back_or_an_unknown_scheme(admin_client, company):
    url = reverse("admin:relance_customer_change", args=[company.pk])
    response = admin_client.post(url, customer_post_data(
        company, new_gestimum_url="mssql://sa:••••@srv-gestimum:1433/GESTIMUM"))
    assert response.status_code == 200
    assert "version masquée" in response.content.decode()
    response = admin_client.post(url, customer_post_data(company, new_gestimum_url="ftp://srv/x"))
    assert "URL de connexion non reconnue" in response.content.decode()
    company.refresh_from_db()
    assert company.gestimum_url == SECRET_URL


# -- reminder tasks ---------------------------------------------------------------------------


def test_every_editable_task_field_is_in_the_admin_form():
    # Fields are listed by hand in the fieldsets: a new model field must not be forgotten.
    from django.contrib import admin
    from django.contrib.admin.utils import flatten_fieldsets

    shown = set(flatten_fieldsets(admin.site._registry[ReminderTask].fieldsets))
    editable = {f.name for f in ReminderTask._meta.concrete_fields if f.editable and not f.primary_key}
    assert editable - {"created_at", "updated_at"} <= shown


def test_a_new_task_starts_from_the_default_body(admin_client, company):
    response = admin_client.get(reverse("admin:relance_remindertask_add"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Sauf erreur ou omission de notre part" in content
    assert "{{ penalites_montant }}" in content  # the variables help block


def test_a_task_with_an_unknown_variable_in_its_subject_is_refused(admin_client, company):
    data = task_post_data(company, subject_template="Relance : reste dû {{ montant_du }}")
    response = admin_client.post(reverse("admin:relance_remindertask_add"), data)
    assert response.status_code == 200
    assert "Variable inconnue : {{ montant_du }}" in response.content.decode()
    assert not ReminderTask.objects.exists()


def test_a_valid_task_is_saved_and_its_columns_checked(admin_client, company, columns_checked):
    data = with_criterion(task_post_data(company), "xxx_tour", value="NORD")
    response = admin_client.post(reverse("admin:relance_remindertask_add"), data)
    assert response.status_code == 302
    task = ReminderTask.objects.get()
    assert task.criteria.get().column == "XXX_TOUR"
    assert columns_checked.calls == [(company, [("TIERS", "XXX_TOUR")])]


def test_a_criterion_value_that_does_not_fit_its_live_column_type_refuses_the_save(
        admin_client, customer, gestimum):
    data = with_criterion(task_post_data(customer), "XXX_PROMESSE", table="DOCUMENTS", value="demain")
    response = admin_client.post(reverse("admin:relance_remindertask_add"), data)
    assert response.status_code == 200
    assert escape("Critère DOCUMENTS.XXX_PROMESSE : « demain » n'est pas une date. Écrivez jj/mm/aaaa"
                  ) in response.content.decode()
    assert not ReminderTask.objects.exists()

    data = with_criterion(task_post_data(customer), "XXX_PROMESSE", table="DOCUMENTS", value="J-30")
    assert admin_client.post(reverse("admin:relance_remindertask_add"), data).status_code == 302
    assert ReminderTask.objects.get().criteria.get().value == "J-30"


def test_an_unknown_gestimum_column_refuses_the_save(admin_client, company, columns_checked):
    columns_checked.errors = ["Colonne XXX_TOURNEE absente de la table TIERS."]
    data = with_criterion(task_post_data(company), "XXX_TOURNEE")
    response = admin_client.post(reverse("admin:relance_remindertask_add"), data)
    assert response.status_code == 200
    assert "Colonne XXX_TOURNEE absente de la table TIERS." in response.content.decode()
    assert not ReminderTask.objects.exists()


def test_an_unknown_address_column_refuses_the_save(admin_client, company, columns_checked):
    columns_checked.errors = ["Colonne XXX_MAIL absente de la table DOCUMENTS."]
    data = task_post_data(company, **{
        "address_sources-TOTAL_FORMS": "1", "address_sources-0-role": "to",
        "address_sources-0-position": "0", "address_sources-0-kind": "document_column",
        "address_sources-0-value": "XXX_MAIL",
    })
    response = admin_client.post(reverse("admin:relance_remindertask_add"), data)
    assert response.status_code == 200
    assert "Colonne XXX_MAIL absente de la table DOCUMENTS." in response.content.decode()
    assert columns_checked.calls == [(company, [("DOCUMENTS", "XXX_MAIL")])]


def test_an_unreachable_gestimum_saves_the_task_with_a_warning(admin_client, company, columns_checked):
    columns_checked.unavailable = "Serveur Gestimum injoignable."
    data = with_criterion(task_post_data(company), "XXX_TOUR")
    response = admin_client.post(reverse("admin:relance_remindertask_add"), data, follow=True)
    assert Criterion.objects.get().column == "XXX_TOUR"
    assert any("Serveur Gestimum injoignable." in text for text in messages_of(response))


def test_the_task_pages_load_and_show_the_last_runs(admin_client, task):
    TaskRun.objects.create(task=task, status=TaskRun.Status.FAILED, errors="Base injoignable")
    response = admin_client.get(reverse("admin:relance_remindertask_changelist"))
    assert response.status_code == 200
    assert "échouée" in response.content.decode()
    response = admin_client.get(reverse("admin:relance_remindertask_change", args=[task.pk]))
    assert response.status_code == 200
    assert "Base injoignable" in response.content.decode()
    assert reverse("admin:relance_remindertask_preview", args=[task.pk]) in response.content.decode()


# -- preview ----------------------------------------------------------------------------------


def fake_preview():
    candidate = sample_candidate()
    sample = SimpleNamespace(
        from_email="Atelier Durand <dupont@e-doc-erp.fr>", reply_to=["compta@dupont.example"],
        to=["compta@boulangerie-martin.fr"], cc=[], bcc=["archive@dupont.example"],
        subject="Relance : facture FA000123", body="Bonjour,\nTexte de la relance d'essai.",
        attachment_names=["Facture_FA000123.pdf", "CGV.pdf"], pdf_filename="Facture_FA000123.pdf",
        pdf=b"%PDF-1.4 fake",
    )
    items = [
        SimpleNamespace(candidate=candidate, action="email", reason="",
                        to=["compta@boulangerie-martin.fr"], cc=[], bcc=["archive@dupont.example"]),
        SimpleNamespace(candidate=candidate, action="skip", reason="tiers en litige",
                        to=[], cc=[], bcc=[]),
    ]
    return SimpleNamespace(items=items, selected=2, skip_counts={"tiers en litige": 1},
                           sample=sample, error=None)


@pytest.fixture
def previewed(monkeypatch):
    from relance import engine

    calls = []

    def fake_preview_task(task, **kwargs):
        calls.append((task, kwargs))
        return fake_preview()

    monkeypatch.setattr(engine, "preview_task", fake_preview_task)
    return calls


def test_the_preview_action_shows_what_would_be_sent_and_records_nothing(admin_client, task, previewed):
    response = admin_client.post(reverse("admin:relance_remindertask_changelist"),
                                 {"action": "preview", "_selected_action": [task.pk]})
    content = response.content.decode()
    assert response.status_code == 200
    assert [call[0] for call in previewed] == [task]
    for expected in ("FA000123", "Boulangerie Martin &amp; Fils", "14/02/2026", "1\u00a0234,56\u00a0€",
                     "compta@boulangerie-martin.fr", "tiers en litige", "Relance : facture FA000123",
                     "Texte de la relance d", "CGV.pdf", "Rien n'a été envoyé"):
        assert expected in content, expected
    assert reverse("admin:relance_remindertask_preview_pdf", args=[task.pk]) in content
    assert not Dispatch.objects.exists()
    assert not TaskRun.objects.exists()


def test_the_preview_needs_exactly_one_task(admin_client, task, previewed):
    other = ReminderTask.objects.create(customer=task.customer, name="Relance 2", level=2)
    response = admin_client.post(reverse("admin:relance_remindertask_changelist"),
                                 {"action": "preview", "_selected_action": [task.pk, other.pk]},
                                 follow=True)
    assert "Sélectionnez exactement une tâche à prévisualiser." in messages_of(response)
    assert previewed == []


def test_a_preview_error_is_shown_in_french(admin_client, task, monkeypatch):
    from relance import engine

    def failing_preview(task, **kwargs):
        raise engine.TaskError("Colonne XXX_TOUR introuvable.")

    monkeypatch.setattr(engine, "preview_task", failing_preview)
    response = admin_client.post(reverse("admin:relance_remindertask_changelist"),
                                 {"action": "preview", "_selected_action": [task.pk]}, follow=True)
    assert any("Colonne XXX_TOUR introuvable." in text for text in messages_of(response))


def test_the_sample_pdf_is_served_by_the_admin(admin_client, task, previewed, monkeypatch):
    response = admin_client.get(reverse("admin:relance_remindertask_preview_pdf", args=[task.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content == b"%PDF-1.4 fake"
    assert previewed[0][1] == {"limit": 1}

    from relance import engine

    monkeypatch.setattr(engine, "preview_task", lambda task, **kw: SimpleNamespace(
        items=[], selected=0, skip_counts={}, sample=None, error=None))
    response = admin_client.get(reverse("admin:relance_remindertask_preview_pdf", args=[task.pk]))
    assert response.status_code == 404


def test_run_now_queues_each_selected_task(admin_client, task, monkeypatch):
    from relance import services

    queued = []
    monkeypatch.setattr(services, "enqueue_run", lambda task, origin: queued.append((task, origin)))
    response = admin_client.post(reverse("admin:relance_remindertask_changelist"),
                                 {"action": "run_now", "_selected_action": [task.pk]}, follow=True)
    assert queued == [(task, "manual")]
    assert "La tâche « Relance 1 » a été mise en file d'attente." in messages_of(response)


# -- runs and sends --------------------------------------------------------------------------


def make_dispatch(customer, task, **fields):
    fields.setdefault("ech_numero", f"{Dispatch.objects.count() + 1:010d}")
    return Dispatch.objects.create(customer=customer, task=task, level=1, doc_piece="FA000123",
                                   tiers_name="Boulangerie Martin", to="compta@client.example",
                                   **fields)


def test_the_run_and_dispatch_lists_load(admin_client, task):
    run = TaskRun.objects.create(task=task, status=TaskRun.Status.PARTIAL, sent=3, failed=1)
    dispatch = make_dispatch(task.customer, task, run=run, status=Dispatch.Status.SENT)
    for name, args in (("taskrun_changelist", []), ("taskrun_change", [run.pk]),
                       ("dispatch_changelist", []), ("dispatch_change", [dispatch.pk]),
                       ("customer_changelist", [])):
        response = admin_client.get(reverse(f"admin:relance_{name}", args=args))
        assert response.status_code == 200, name
    response = admin_client.get(reverse("admin:relance_taskrun_changelist"))
    assert "terminée avec des erreurs" in response.content.decode()


def test_an_interrupted_send_can_be_confirmed_or_released(admin_client, task):
    confirm = make_dispatch(task.customer, task, status=Dispatch.Status.NEEDS_REVIEW)
    release = make_dispatch(task.customer, task, status=Dispatch.Status.NEEDS_REVIEW)
    bounced = make_dispatch(task.customer, task, status=Dispatch.Status.BOUNCED)
    url = reverse("admin:relance_dispatch_changelist")
    admin_client.post(url, {"action": "confirm_sent", "_selected_action": [confirm.pk, bounced.pk]})
    admin_client.post(url, {"action": "allow_resend", "_selected_action": [release.pk, bounced.pk]})
    confirm.refresh_from_db()
    release.refresh_from_db()
    bounced.refresh_from_db()
    assert confirm.status == Dispatch.Status.SENT and confirm.sent_at is not None
    assert release.status == Dispatch.Status.FAILED
    assert bounced.status == Dispatch.Status.BOUNCED


def test_the_stored_pdf_is_downloaded_through_the_admin(admin_client, task):
    dispatch = make_dispatch(task.customer, task, status=Dispatch.Status.SENT)
    dispatch.pdf.save("Facture_FA000123.pdf", ContentFile(b"%PDF-1.4 stored"))
    url = reverse("admin:relance_dispatch_pdf", args=[dispatch.pk])
    assert url in admin_client.get(reverse("admin:relance_dispatch_changelist")).content.decode()
    response = admin_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == b"%PDF-1.4 stored"


def test_a_send_record_cannot_be_edited(admin_client, task):
    dispatch = make_dispatch(task.customer, task, status=Dispatch.Status.SENT)
    url = reverse("admin:relance_dispatch_change", args=[dispatch.pk])
    response = admin_client.post(url, {"status": "failed"})
    assert response.status_code == 403
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.SENT
