"""Inviting a customer's employee to the portal: the account, then a French e-mail with a link
to choose a password.

The link is the portal's own password-reset confirmation page, with a token
from ``django.contrib.auth``: it stays valid ``PASSWORD_RESET_TIMEOUT`` and
stops working once a password is chosen. The account has no usable password
until then, so nobody can log in to it before the invitee does.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .models import PortalUser

log = logging.getLogger(__name__)

SUBJECT_TEMPLATE = "portal/invitation_subject.txt"
BODY_TEMPLATE = "portal/invitation_email.txt"


class InvitationError(Exception):
    """The invitation could not be sent; the message is French."""


def create_portal_user(*, email, customer, first_name="", last_name=""):
    """A portal account of ``customer`` whose login is ``email``, without a usable password yet."""
    email = email.strip().lower()
    with transaction.atomic():
        user = get_user_model()(username=email, email=email, first_name=first_name, last_name=last_name)
        user.set_unusable_password()
        user.save()
        return PortalUser.objects.create(user=user, customer=customer)


def set_password_url(user, *, base_url):
    """Absolute link to the page where ``user`` chooses a password; ``base_url`` is scheme://host."""
    path = reverse("portal:password_reset_confirm", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
    })
    return base_url.rstrip("/") + path


def send_invitation(portal_user, *, base_url):
    """E-mail the invitation; raises ``InvitationError`` when the transport refuses it."""
    user = portal_user.user
    if not user.email:
        raise InvitationError(f"Le compte {user.get_username()} n'a pas d'adresse e-mail.")
    context = {
        "user": user, "customer": portal_user.customer, "email": user.email,
        "link": set_password_url(user, base_url=base_url),
        "login_url": base_url.rstrip("/") + reverse("portal:login"),
        "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
    message = EmailMessage(subject=subject, body=render_to_string(BODY_TEMPLATE, context),
                           from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email])
    try:
        message.send()
    # SMTP and the ESP backends raise unrelated exception types; the account is kept either
    # way and staff resend the invitation from the admin once the transport works again.
    except Exception as exc:
        log.warning("Invitation non envoyée à %s : %s", user.email, exc)
        raise InvitationError(f"L'invitation n'a pas pu être envoyée à {user.email} : {exc}") from exc
    log.info("Invitation à l'espace client envoyée à %s (%s)", user.email, portal_user.customer)


def invite(*, email, customer, base_url, first_name="", last_name=""):
    """Create the account and send its invitation; returns the PortalUser.

    The account is kept when the e-mail fails (``InvitationError`` is raised
    after it is created): the invitation can then be sent again.
    """
    portal_user = create_portal_user(email=email, customer=customer, first_name=first_name,
                                     last_name=last_name)
    send_invitation(portal_user, base_url=base_url)
    return portal_user
