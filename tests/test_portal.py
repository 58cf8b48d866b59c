"""Customer portal: login, dashboard, history, CSV export, send detail, diverted documents."""

import csv
import io
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from portal.models import PortalUser
from relance.divert import MANIFEST_HEADER, MANIFEST_NAME
from relance.models import Customer, Dispatch

pytestmark = pytest.mark.django_db
PASSWORD = "Relance-2026-secret"
Status = Dispatch.Status
_numbers = itertools.count(1)


def pdf_bytes(pages=1, text_marker=""):
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if text_marker:
        writer.add_metadata({"/Title": text_marker})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_customer(slug, name=None):
    return Customer.objects.create(name=name or f"Société {slug}", slug=slug)


def make_portal_user(customer, email=None, password=PASSWORD, **fields):
    email = email or f"adv@{customer.slug}.example"
    user = get_user_model().objects.create_user(username=email, email=email, password=password, **fields)
    PortalUser.objects.create(user=user, customer=customer)
    return user


def make_dispatch(customer, *, status=Status.SENT, level=1, task=None, pdf=None, created_at=None, **fields):
    number = next(_numbers)
    fields.setdefault("ech_numero", f"{number:010d}")
    fields.setdefault("doc_piece", f"FA{number:06d}")
    fields.setdefault("pcf_code", "CL001")
    fields.setdefault("tiers_name", "Boulangerie Martin")
    fields.setdefault("amount", Decimal("1200.00"))
    fields.setdefault("remaining", Decimal("1200.00"))
    fields.setdefault("due_date", timezone.localdate() - timedelta(days=10))
    if status == Status.DIVERTED:
        fields.setdefault("channel", Dispatch.Channel.POSTAL)
        fields.setdefault("divert_reason", "aucune adresse e-mail")
    else:
        fields.setdefault("to", "compta@martin.example")
        fields.setdefault("subject", f"Relance facture {fields['doc_piece']}")
        fields.setdefault("body", "Bonjour,\nLa facture reste due.")
    dispatch = Dispatch.objects.create(
        customer=customer, status=status, level=level, task=task,
        created_at=created_at or timezone.now(), sent_at=timezone.now(), **fields)
    if pdf is not None:
        dispatch.pdf.save(f"{dispatch.doc_piece}.pdf", ContentFile(pdf), save=True)
    return dispatch


def write_divert(customer, dispatch, address):
    """Put the PDF and its manifest line where the engine does (relance.divert)."""
    folder = customer.divert_root / "courrier" / "niveau1"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dispatch.doc_piece}_N1_{dispatch.ech_numero}.pdf"
    path.write_bytes(b"%PDF-1.4")
    manifest = folder / MANIFEST_NAME
    new = not manifest.exists()
    with manifest.open("a", newline="", encoding="utf-8-sig" if new else "utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        if new:
            writer.writerow(MANIFEST_HEADER)
        writer.writerow(["01/03/2026 20:00", 1, dispatch.tiers_name, dispatch.pcf_code, dispatch.doc_piece,
                         "01/02/2026", "1 200,00", address, dispatch.divert_reason, path.name])
    dispatch.divert_path = str(path)
    dispatch.save(update_fields=["divert_path"])


def fast_passwords_and_fresh_cache(settings):
    # The production hasher takes ~0.3 s per login on purpose; tests log in dozens of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Login throttling counts in the cache: no test inherits another's failures.
    cache.clear()


@pytest.fixture(autouse=True)
def _portal_test_settings(settings):
    fast_passwords_and_fresh_cache(settings)
    yield
    cache.clear()


@pytest.fixture
def acme():
    return make_customer("acme", "Acme Distribution")


@pytest.fixture
def other():
    return make_customer("rival", "Rival Négoce")


@pytest.fixture
def portal_client(client, acme):
    client.force_login(make_portal_user(acme))
    return client


def login(client, email, password=PASSWORD, ip="10.0.0.1"):
    return client.post(reverse("portal:login"), {"username": email, "password": password},
                       REMOTE_ADDR=ip)


# -- access ---------------------------------------------------------------------------

def test_a_portal_user_logs_in_with_email_and_lands_on_the_dashboard(client, acme):
    make_portal_user(acme, email="claire@acme.example")

    response = login(client, "Claire@ACME.example")

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:dashboard")
    page = client.get(reverse("portal:dashboard"))
    assert page.status_code == 200
    assert "Tableau de bord" in page.content.decode()
    assert "Acme Distribution" in page.content.decode()


def test_a_wrong_password_is_refused_in_french(client, acme):
    make_portal_user(acme, email="claire@acme.example")

    response = login(client, "claire@acme.example", "mauvais")

    assert response.status_code == 200
    assert "Adresse e-mail ou mot de passe incorrect." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_inactive_account_cannot_log_in(client, acme):
    make_portal_user(acme, email="claire@acme.example", is_active=False)

    response = login(client, "claire@acme.example")

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_five_failures_lock_the_login_even_with_the_right_password(client, acme):
    make_portal_user(acme, email="claire@acme.example")
    for _ in range(5):
        response = login(client, "claire@acme.example", "mauvais")

    assert "bloquée pendant 15 minutes" in response.content.decode()
    response = login(client, "claire@acme.example")
    assert response.status_code == 200
    assert "bloquée pendant 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_address_and_ip(client, acme):
    make_portal_user(acme, email="claire@acme.example")
    for _ in range(5):
        login(client, "claire@acme.example", "mauvais", ip="10.0.0.1")

    assert login(client, "claire@acme.example", ip="10.0.0.2").status_code == 302


def test_the_lock_ends_after_15_minutes(client, acme, monkeypatch):
    from portal import throttle

    make_portal_user(acme, email="claire@acme.example")
    for _ in range(5):
        login(client, "claire@acme.example", "mauvais")
    assert throttle.is_locked("claire@acme.example", "10.0.0.1")

    # LocMem expiry reads time.time(): jump past the lock instead of sleeping 15 minutes.
    real_time = __import__("time").time
    monkeypatch.setattr("django.core.cache.backends.locmem.time.time",
                        lambda: real_time() + throttle.LOCK_SECONDS + 1)

    assert login(client, "claire@acme.example").status_code == 302


def test_a_success_resets_the_failure_count(client, acme):
    make_portal_user(acme, email="claire@acme.example")
    for _ in range(4):
        login(client, "claire@acme.example", "mauvais")
    assert login(client, "claire@acme.example").status_code == 302
    client.logout()
    for _ in range(4):
        login(client, "claire@acme.example", "mauvais")

    assert login(client, "claire@acme.example").status_code == 302


def test_password_reset_mails_a_french_link_that_sets_a_new_password(client, acme, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_portal_user(acme, email="claire@acme.example")

    response = client.post(reverse("portal:password_reset"), {"email": "claire@acme.example"})

    assert response["Location"] == reverse("portal:password_reset_done")
    [message] = mail.outbox
    assert message.to == ["claire@acme.example"]
    assert message.subject == "Votre mot de passe EasyRelance"
    assert "choisir un nouveau mot de passe" in message.body
    link = next(line for line in message.body.splitlines() if "/mot-de-passe/" in line)
    form_page = client.get(link.replace("http://testserver", ""), follow=True)
    assert "Choisir un nouveau mot de passe" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0],
                       {"new_password1": "Nouveau-Secret-42", "new_password2": "Nouveau-Secret-42"})
    assert done["Location"] == reverse("portal:password_reset_complete")
    assert login(client, "claire@acme.example", "Nouveau-Secret-42").status_code == 302


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(reverse("portal:history"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_staff_without_a_portal_profile_are_sent_to_the_admin(client, acme):
    staff = get_user_model().objects.create_user("staff", "staff@e-doc-erp.fr", PASSWORD, is_staff=True)
    client.force_login(staff)

    response = client.get(reverse("portal:dashboard"))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_an_account_without_a_portal_profile_sees_nothing(client, acme):
    make_dispatch(acme)
    client.force_login(get_user_model().objects.create_user("x", "x@x.example", PASSWORD))

    assert client.get(reverse("portal:history")).status_code == 404


def test_staff_manage_portal_users_in_the_admin(admin_client, acme):
    make_portal_user(acme, email="claire@acme.example")

    response = admin_client.get(reverse("admin:portal_portaluser_changelist"))

    assert response.status_code == 200
    assert "claire@acme.example" in response.content.decode()
    assert admin_client.get(reverse("admin:portal_portaluser_add")).status_code == 200
