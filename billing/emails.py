"""E-mailing an issued statement (invoice or credit note) to the customer, PDF attached.

Sent through Django's configured mail backend from ``DEFAULT_FROM_EMAIL``.
The outcome is recorded on the statement; a failure is kept as an error for
staff to see and resend from the admin, and never undoes the issue.
"""

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Contract, Statement

log = logging.getLogger(__name__)

SUBJECT_TEMPLATE = "billing/statement_email_subject.txt"
BODY_TEMPLATE = "billing/statement_email_body.txt"
NO_ADDRESS = ("Aucune adresse : renseignez l'e-mail de facturation du contrat "
              "ou l'adresse des avis du client.")


def recipient_for(statement):
    """The contract's billing address, else the customer's notice address, else ''."""
    try:
        billing_email = statement.contract.billing_email
    except Contract.DoesNotExist:
        billing_email = ""
    return billing_email or statement.customer.notification_email or ""


def build_message(statement, to):
    context = {"statement": statement, "original": statement.credited_statement,
               "is_credit_note": statement.kind == Statement.Kind.CREDIT_NOTE,
               "seller": statement.seller or {},
               # The PDF shows a credit note's amounts negative; a sentence states the sum credited.
               "amount_ttc": abs(statement.total_ttc)}
    subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
    message = EmailMessage(subject=subject, body=render_to_string(BODY_TEMPLATE, context),
                           from_email=settings.DEFAULT_FROM_EMAIL, to=[to])
    if (statement.seller or {}).get("email"):
        message.reply_to = [statement.seller["email"]]
    with statement.pdf.open("rb") as pdf:
        message.attach(f"{statement.number}.pdf", pdf.read(), "application/pdf")
    return message


def send_statement(statement):
    """E-mail an issued statement's PDF; returns the statement with its send record refreshed."""
    statement = Statement.objects.select_related("customer", "contract", "credited_statement").get(
        pk=statement.pk)
    to = recipient_for(statement)
    record = {"send_error": ""}
    if not statement.is_final or not statement.pdf:
        record["send_error"] = "Seul un relevé émis, avec son PDF, peut être envoyé."
    elif not to:
        record["send_error"] = NO_ADDRESS
    else:
        try:
            build_message(statement, to).send()
        # Any transport (SMTP, an ESP's API) raises its own exception types; whichever it
        # is, the statement stays issued and staff see why it did not leave.
        except Exception as exc:
            log.warning("Relevé %s non envoyé à %s : %s", statement.number, to, exc)
            record["send_error"] = f"Envoi à {to} impossible : {exc}"
        else:
            record.update(sent_at=timezone.now(), sent_to=to)
            log.info("Relevé %s envoyé à %s", statement.number, to)
    # An update, not save(): only the send record changes, whatever the statement's state.
    Statement.objects.filter(pk=statement.pk).update(**record, updated_at=timezone.now())
    statement.refresh_from_db()
    return statement
