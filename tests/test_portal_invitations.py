"""Portal invitations: staff add a portal user in one step; the invitee chooses a password by e-mail."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from portal.models import PortalUser

pytestmark = pytest.mark.django_db
PASSWORD = "Relance-2026-invitation"
ADD_URL = "/admin/portal/portaluser/add/"


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The login throttle counts failures in the cache.
    cache.clear()
    yield
    cache.clear()


def invite(admin_client, customer, email="Claire.Martin@Acme.example"):
    return admin_client.post(ADD_URL, {"email": email, "first_name": "Claire", "last_name": "Martin",
                                       "customer": customer.pk}, follow=True)


def link_in(message):
    body = message.get_body(("plain",)).get_content()
    return re.search(r"http://testserver(/mot-de-passe/[^/\s]+/[^/\s]+/)", body).group(1)


def test_the_add_page_asks_only_for_email_name_and_customer(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    for name in ("email", "first_name", "last_name", "customer"):
        assert f'name="{name}"' in page
    assert 'name="user"' not in page and 'name="password' not in page


def test_an_invited_user_chooses_a_password_through_the_emailed_link_and_logs_in_by_email(
        admin_client, acme, smtp_server):
    response = invite(admin_client, acme)

    assert "Invitation envoyée à claire.martin@acme.example" in response.content.decode()
    portal_user = PortalUser.objects.select_related("user").get()
    user = portal_user.user
    assert portal_user.customer == acme
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "claire.martin@acme.example", "claire.martin@acme.example", "Claire", "Martin")
    assert not user.has_usable_password() and not user.is_staff
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["claire.martin@acme.example"]
    # A long subject is folded onto the next header line; unfolded, it reads:
    subject = received.message["Subject"].strip()
    assert subject == "Votre accès à l'espace client EasyRelance — Acme Distribution"
    body = received.message.get_body(("plain",)).get_content()
    assert body.startswith("Bonjour Claire Martin,") and "choisissez votre mot de passe" in body

    invitee = Client()
    # Before choosing a password, nothing lets the invitee in.
    invitee.post("/connexion/", {"username": user.email, "password": ""})
    assert "_auth_user_id" not in invitee.session
    form = invitee.get(link_in(received.message), follow=True)
    assert "Choisir un nouveau mot de passe" in form.content.decode()
    done = invitee.post(form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD},
                        follow=True)
    assert "Mot de passe modifié" in done.content.decode()

    login = invitee.post("/connexion/", {"username": "Claire.Martin@acme.example", "password": PASSWORD})
    assert login.status_code == 302 and login["Location"] == "/"
    assert int(invitee.session["_auth_user_id"]) == user.pk
    assert "Acme Distribution" in invitee.get("/").content.decode()
    # The link works once: a password chosen, the same link is no longer valid.
    again = Client().get(link_in(received.message), follow=True)
    assert "Demander un nouveau lien" in again.content.decode()
    assert 'name="new_password1"' not in again.content.decode()


def test_an_address_that_already_has_an_account_is_refused(admin_client, acme, smtp_server):
    get_user_model().objects.create_user("claire", "claire@acme.example", PASSWORD)

    response = invite(admin_client, acme, email="CLAIRE@acme.example")

    assert "Un compte existe déjà avec cette adresse e-mail." in response.content.decode()
    assert not PortalUser.objects.exists() and smtp_server.messages == []


def test_a_failed_invitation_keeps_the_account_and_staff_resend_it(admin_client, acme, smtp_server):
    smtp_server.rcpt_replies["claire@acme.example"] = "451 4.3.0 Try again later"

    response = invite(admin_client, acme, email="claire@acme.example")

    assert "n&#x27;a pas pu être envoyée à claire@acme.example" in response.content.decode()
    portal_user = PortalUser.objects.get()
    assert smtp_server.messages == []
    smtp_server.rcpt_replies.clear()

    resent = admin_client.post("/admin/portal/portaluser/", {
        "action": "resend_invitation", "_selected_action": [portal_user.pk]}, follow=True)

    assert "1 invitation(s) envoyée(s)." in resent.content.decode()
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["claire@acme.example"]
    assert link_in(received.message).startswith("/mot-de-passe/")


def test_no_invitation_is_resent_to_someone_who_already_chose_a_password(admin_client, acme, smtp_server):
    user = get_user_model().objects.create_user("claire@acme.example", "claire@acme.example", PASSWORD)
    portal_user = PortalUser.objects.create(user=user, customer=acme)

    response = admin_client.post("/admin/portal/portaluser/", {
        "action": "resend_invitation", "_selected_action": [portal_user.pk]}, follow=True)

    assert "a déjà choisi son mot de passe" in response.content.decode()
    assert smtp_server.messages == []
