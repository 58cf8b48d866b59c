"""Customer portal: login, dashboard, history, CSV export, send detail, diverted documents."""


import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from relance.models import Dispatch

from .portal_support import PASSWORD, make_dispatch, make_portal_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("portal_settings")]
Status = Dispatch.Status


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
