"""Plain SMTP bounces: signed VERP return paths, real-world DSNs, manage.py fetch_bounces."""

import mailbox
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from relance import dsn
from relance.engine import run_task
from relance.gestimum import models as g
from relance.models import DeliveryEvent, Dispatch, SuppressedAddress

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "dsn"
RECIPIENT = "compta@martin.example"
MESSAGE_ID = "<173860927012.4242.1234567890@e-doc-erp.fr>"


def make_dispatch(customer, **fields):
    values = dict(
        customer=customer, level=1, ech_numero="0000000002", doc_numero="0000000001",
        doc_piece="FA000123", pcf_code="CL001", tiers_name="Boulangerie Martin",
        due_date=timezone.localdate() - timedelta(days=10), remaining=Decimal("1234.56"),
        to=RECIPIENT, status=Dispatch.Status.SENT, message_id=MESSAGE_ID,
        sent_at=timezone.now() - timedelta(minutes=5),
    )
    values.update(fields)
    return Dispatch.objects.create(**values)


def sample(name, *, verp, recipient=RECIPIENT):
    text = (FIXTURES / name).read_text()
    return (text.replace("{{VERP}}", verp).replace("{{RECIPIENT}}", recipient)
            .replace("{{MESSAGE_ID}}", MESSAGE_ID)).encode()


def maildir_with(tmp_path, *messages):
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    for raw in messages:
        box.add(raw)
    return tmp_path / "bounces"


# -- VERP ----------------------------------------------------------------------------------

def test_a_verp_address_names_its_dispatch_even_lower_cased(settings):
    settings.BOUNCE_DOMAIN = "bounce.e-doc-erp.fr"
    address = dsn.verp_address(4242)

    assert address.startswith("bounce+") and address.endswith("@bounce.e-doc-erp.fr")
    assert dsn.verify_verp(address) == 4242
    assert dsn.verify_verp(address.upper()) == 4242


def test_a_forged_or_foreign_verp_address_names_nothing(settings):
    settings.BOUNCE_DOMAIN = "bounce.e-doc-erp.fr"
    good = dsn.verp_address(7)
    local, domain = good.split("@")
    tampered = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
    other_id = good.replace("bounce+7-", "bounce+8-")

    assert dsn.verify_verp(tampered) is None
    assert dsn.verify_verp(other_id) is None
    assert dsn.verify_verp(local + "@evil.example") is None
    assert dsn.verify_verp("bounces@bounce.e-doc-erp.fr") is None


# -- parsing real-world reports ----------------------------------------------------------------

@pytest.mark.parametrize("name, status, hard, diagnostic", [
    ("postfix-user-unknown.eml", "5.1.1", True, "User unknown in virtual mailbox table"),
    ("office365-recipient-not-found.eml", "5.1.10", True, "RESOLVER.ADR.RecipientNotFound"),
    ("gmail-no-such-user.eml", "5.1.1", True, "tried to reach does not exist"),
    ("postfix-delayed-mailbox-full.eml", "4.2.2", False, "Mailbox full"),
])
def test_it_reads_real_world_delivery_reports(name, status, hard, diagnostic):
    verp = dsn.verp_address(12)

    report = dsn.parse_report(sample(name, verp=verp))

    assert report.dispatch_id == 12
    [recipient] = report.recipients
    assert recipient.recipient == RECIPIENT
    assert recipient.status == status
    assert recipient.hard is hard
    assert diagnostic in recipient.diagnostic
    assert report.arrived_at.tzinfo is not None


def test_an_ordinary_message_is_not_a_report():
    raw = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: Re: relance\r\n\r\nJe paie demain.\r\n"

    assert dsn.parse_report(raw) is None


# -- the command ----------------------------------------------------------------------------

def test_fetch_bounces_applies_a_hard_bounce_from_a_maildir_once(customer, gestimum, smtp_server,
                                                                  tmp_path, capsys):
    dispatch = make_dispatch(customer)
    folder = maildir_with(tmp_path, sample("postfix-user-unknown.eml", verp=dsn.verp_address(dispatch.pk)))

    call_command("fetch_bounces", "--maildir", str(folder))
    call_command("fetch_bounces", "--maildir", str(folder), "--delete")

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED
    [event] = DeliveryEvent.objects.filter(dispatch=dispatch)
    assert (event.kind, event.bounce_type, event.provider) == ("bounced", "hard", "dsn")
    assert event.reason.startswith("5.1.1 550 5.1.1")
    assert SuppressedAddress.objects.filter(customer=customer, address=RECIPIENT).exists()
    [notice] = smtp_server.messages
    assert notice.rcpt_tos == ["adv@dupont.example"]
    assert "FA000123" in notice.message["Subject"]
    [action] = gestimum.rows(g.Action)
    assert action.pcf_code == "CL001" and action.act_etat == "A FAIRE"
    assert not list(mailbox.Maildir(folder, create=False).keys())  # --delete emptied it
    assert "déjà connus : 1" in capsys.readouterr().out


def test_a_delayed_report_only_marks_the_send_deferred(customer, smtp_server, tmp_path):
    dispatch = make_dispatch(customer)
    folder = maildir_with(tmp_path, sample("postfix-delayed-mailbox-full.eml",
                                           verp=dsn.verp_address(dispatch.pk)))

    call_command("fetch_bounces", "--maildir", str(folder))

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.DEFERRED
    assert not SuppressedAddress.objects.exists()
    assert smtp_server.messages == []


def test_forged_and_unsigned_reports_are_ignored(customer, smtp_server, tmp_path, capsys):
    dispatch = make_dispatch(customer)
    good = dsn.verp_address(dispatch.pk)
    forged = good.split("-")[0] + "-" + "0" * 16 + "@" + good.split("@")[1]
    folder = maildir_with(
        tmp_path,
        sample("gmail-no-such-user.eml", verp=forged),
        sample("office365-recipient-not-found.eml", verp="bounces@bounce.e-doc-erp.fr"),
    )

    call_command("fetch_bounces", "--maildir", str(folder))

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.SENT
    assert not DeliveryEvent.objects.exists()
    assert not SuppressedAddress.objects.exists()
    assert smtp_server.messages == []
    output = capsys.readouterr().out
    assert "signature invalide : 1" in output and "sans adresse signée : 1" in output


def test_plain_smtp_sends_use_the_signed_verp_envelope_sender(gestimum, smtp_server, make_task,
                                                              settings):
    settings.EMAIL_BACKEND = "relance.mail_backends.VerpSMTPBackend"
    gestimum.tiers("CL001", email=RECIPIENT)
    gestimum.invoice("CL001", piece="FA000123", days_late=10)
    task = make_task()

    run_task(task.pk)

    dispatch = Dispatch.objects.get()
    [received] = smtp_server.messages
    assert received.mail_from == dsn.verp_address(dispatch.pk)
    assert received.message["From"] == "Dupont Industrie <dupont@e-doc-erp.fr>"
    assert dsn.verify_verp(received.mail_from) == dispatch.pk
