"""Provider webhooks posted to the live endpoint, status precedence, hard-bounce consequences."""

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import TestCase
from django.utils import timezone
from django_q.conf import Conf

from relance import tracking
from relance.engine import run_task
from relance.gestimum import models as g
from relance.models import DeliveryEvent, Dispatch, SuppressedAddress

pytestmark = pytest.mark.django_db

RECIPIENT = "compta@martin.example"
SECRET = "easyrelance:Tr4ck1ng-s3cret"
MAILGUN_KEY = "key-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


@pytest.fixture(autouse=True)
def queue_runs_at_once(monkeypatch):
    # A hard bounce's Gestimum row and notice are queued on django-q2; here the queue
    # runs them as soon as they are queued. (django-q2 reads Q_CLUSTER once, at import.)
    monkeypatch.setattr(Conf, "SYNC", True)


def auth(credentials=SECRET):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def make_dispatch(customer, **fields):
    values = dict(
        customer=customer, level=1, ech_numero="0000000002", doc_numero="0000000001",
        doc_piece="FA000123", pcf_code="CL001", tiers_name="Boulangerie Martin",
        due_date=timezone.localdate() - timedelta(days=10), remaining=Decimal("1234.56"),
        to=RECIPIENT, status=Dispatch.Status.SENT, message_id="<173860927012.1@e-doc-erp.fr>",
        provider_message_id="<202502031901.12345678901@smtp-relay.mailin.fr>",
        sent_at=timezone.now() - timedelta(minutes=5),
    )
    values.update(fields)
    return Dispatch.objects.create(**values)


def post_json(client, url, payload, **extra):
    # The webhook queues a hard bounce's consequences once its transaction commits; the
    # test's transaction never does, so the commit callbacks are run here.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(url, data=json.dumps(payload), content_type="application/json", **extra)


# Real shapes, from the providers' documentation and anymail's own tests.

def brevo_event(dispatch, event, **fields):
    payload = {
        "event": event, "email": RECIPIENT, "id": 1234567,
        "date": "2025-02-03 20:01:12", "ts": 1738609272, "ts_event": 1738609272,
        "ts_epoch": 1738609272123, "message-id": dispatch.provider_message_id,
        "subject": "Relance facture FA000123", "tag": "niveau-1", "sending_ip": "185.41.28.109",
        "tags": ["niveau-1", "dupont"],
        "X-Mailin-custom": json.dumps({"dispatch_id": str(dispatch.pk), "customer": "dupont"}),
    }
    payload.update(fields)
    return payload


def postmark_bounce(dispatch, *, bounce_type="HardBounce", bounce_id=4323372036854775807):
    return {
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": bounce_id,
        "Type": bounce_type, "TypeCode": 1 if bounce_type == "HardBounce" else 4096,
        "Name": "Hard bounce", "Tag": "niveau-1", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"dispatch_id": str(dispatch.pk), "customer": "dupont"},
        "ServerID": 23, "Description": "The server was unable to deliver your message (ex: unknown "
        "user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": RECIPIENT, "From": "dupont@e-doc-erp.fr", "BouncedAt": "2025-02-03T19:01:12Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True,
        "Subject": "Relance facture FA000123", "Content": "<Full dump of bounce>",
    }


def mailgun_event(dispatch, *, event="failed", severity="permanent", key=MAILGUN_KEY,
                  token="f6b4a1c3d2e5f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5"):
    timestamp = "1738609272"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": event, "severity": severity, "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "timestamp": 1738609272.123456, "recipient": RECIPIENT, "recipient-domain": "martin.example",
            "reason": "bounce", "log-level": "error",
            "message": {"headers": {"to": RECIPIENT, "message-id": dispatch.message_id.strip("<>"),
                                    "from": "dupont@e-doc-erp.fr", "subject": "Relance facture FA000123"},
                        "attachments": [], "size": 48213},
            "delivery-status": {"code": 550, "attempt-no": 1, "description": "",
                                "message": "5.1.1 The email account that you tried to reach does not exist.",
                                "mx-host": "mx.martin.example"},
            "user-variables": {"dispatch_id": str(dispatch.pk), "customer": "dupont"},
            "tags": ["niveau-1", "dupont"],
        },
    }


BREVO = "/anymail/brevo/tracking/"
POSTMARK = "/anymail/postmark/tracking/"
MAILGUN = "/anymail/mailgun/tracking/"


def test_a_postmark_hard_bounce_suppresses_notifies_and_writes_gestimum(client, customer, gestimum,
                                                                         smtp_server):
    dispatch = make_dispatch(customer)

    response = post_json(client, POSTMARK, postmark_bounce(dispatch), **auth())

    assert response.status_code == 200
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED
    [event] = dispatch.events.all()
    assert (event.kind, event.bounce_type, event.provider) == ("bounced", "hard", "Postmark")
    assert "5.1.1" in event.reason
    assert event.raw["ID"] == 4323372036854775807
    suppressed = SuppressedAddress.objects.get(customer=customer)
    assert (suppressed.address, suppressed.dispatch) == (RECIPIENT, dispatch)
    [notice] = smtp_server.messages
    assert notice.rcpt_tos == ["adv@dupont.example"]
    assert notice.message["From"] == "EasyRelance <noreply@e-doc-erp.fr>"
    # (a long encoded subject is folded right after "Subject:"; clients unfold it)
    assert notice.message["Subject"].strip() == "Relance non délivrée : FA000123 — Boulangerie Martin"
    body = notice.message.get_body(("plain",)).get_content()
    for expected in ("Document : FA000123", "Débiteur : Boulangerie Martin (code tiers CL001)",
                     f"Adresse en échec : {RECIPIENT}", "does not exist", "1\u00a0234,56\u00a0€",
                     "Une action « à faire » a été ajoutée dans Gestimum"):
        assert expected in body
    [action] = gestimum.rows(g.Action)
    assert action.pcf_code == "CL001" and action.doc_numero == "0000000001"
    assert action.act_objet == "Relance non délivrée (rejet) : FA000123"
    assert action.act_termine is False and RECIPIENT in action.act_desc
    event.refresh_from_db()
    assert event.notice_sent_at and event.gestimum_written_at


def test_a_signed_mailgun_bounce_is_applied(client, customer, gestimum, smtp_server):
    dispatch = make_dispatch(customer)

    response = post_json(client, MAILGUN, mailgun_event(dispatch), **auth())

    assert response.status_code == 200
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED
    assert dispatch.events.get().bounce_type == "hard"


@pytest.mark.parametrize("url, make_payload, credentials", [
    (POSTMARK, postmark_bounce, "easyrelance:wrong"),
    (BREVO, lambda d: brevo_event(d, "hard_bounce"), "someone:Tr4ck1ng-s3cret"),
    (MAILGUN, lambda d: mailgun_event(d, key="key-not-the-right-one"), SECRET),
])
def test_wrong_credentials_or_signature_are_rejected_and_change_nothing(
        client, customer, smtp_server, url, make_payload, credentials):
    dispatch = make_dispatch(customer)

    response = post_json(client, url, make_payload(dispatch), **auth(credentials))
    missing = post_json(client, url, make_payload(dispatch))

    assert response.status_code == 400 and missing.status_code == 400
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.SENT
    assert not DeliveryEvent.objects.exists()
    assert not SuppressedAddress.objects.exists()
    assert smtp_server.messages == []


def test_the_same_event_twice_changes_nothing_more(client, customer, gestimum, smtp_server):
    dispatch = make_dispatch(customer)
    payload = brevo_event(dispatch, "hard_bounce", reason="550 5.1.1 User unknown")

    first = post_json(client, BREVO, payload, **auth())
    second = post_json(client, BREVO, payload, **auth())

    assert first.status_code == second.status_code == 200
    assert DeliveryEvent.objects.count() == 1
    assert SuppressedAddress.objects.count() == 1
    assert len(smtp_server.messages) == 1
    assert len(gestimum.rows(g.Action)) == 1


def test_a_late_delivered_does_not_undo_a_bounce(client, customer, gestimum, smtp_server):
    dispatch = make_dispatch(customer)

    post_json(client, BREVO, brevo_event(dispatch, "deferred", ts_epoch=1738609200000), **auth())
    post_json(client, BREVO, brevo_event(dispatch, "hard_bounce", ts_epoch=1738609300000), **auth())
    post_json(client, BREVO, brevo_event(dispatch, "delivered", ts_epoch=1738609250000), **auth())

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED
    timeline = list(dispatch.events.values_list("kind", flat=True))
    assert timeline == ["deferred", "delivered", "bounced"]  # in the order they happened


def test_delivered_after_deferred_moves_forward(client, customer):
    dispatch = make_dispatch(customer)

    post_json(client, BREVO, brevo_event(dispatch, "deferred"), **auth())
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.DEFERRED
    post_json(client, BREVO, brevo_event(dispatch, "delivered"), **auth())

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.DELIVERED


def test_a_soft_bounce_marks_the_send_but_keeps_the_address(client, customer, smtp_server):
    dispatch = make_dispatch(customer)

    response = post_json(client, POSTMARK, postmark_bounce(dispatch, bounce_type="SoftBounce"), **auth())

    assert response.status_code == 200
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED
    assert dispatch.events.get().bounce_type == "soft"
    assert not SuppressedAddress.objects.exists()
    assert smtp_server.messages == []


def test_a_bounced_cc_is_suppressed_without_marking_the_reminder_undelivered(client, customer, gestimum,
                                                                              smtp_server):
    dispatch = make_dispatch(customer, cc="ancien@martin.example")
    post_json(client, BREVO, brevo_event(dispatch, "delivered"), **auth())

    post_json(client, BREVO, brevo_event(dispatch, "hard_bounce", email="ancien@martin.example"), **auth())

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.DELIVERED
    assert list(SuppressedAddress.objects.values_list("address", flat=True)) == ["ancien@martin.example"]


def test_an_unknown_message_is_acknowledged_and_ignored(client, customer, caplog):
    payload = {"event": "delivered", "email": RECIPIENT, "ts_epoch": 1738609272123,
               "message-id": "<nobody@smtp-relay.mailin.fr>"}

    response = post_json(client, BREVO, payload, **auth())

    assert response.status_code == 200
    assert not DeliveryEvent.objects.exists()
    assert "message inconnu" in caplog.text


def test_an_event_found_by_provider_message_id_alone(client, customer):
    dispatch = make_dispatch(customer)
    payload = brevo_event(dispatch, "delivered")
    del payload["X-Mailin-custom"]

    post_json(client, BREVO, payload, **auth())

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.DELIVERED


def test_gestimum_down_is_retried_later_and_the_notice_still_goes(client, customer, gestimum,
                                                                   smtp_server, gestimum_url):
    dispatch = make_dispatch(customer)
    customer.gestimum_url = "sqlite:////nonexistent/folder/gestimum.sqlite3"
    customer.save()

    post_json(client, POSTMARK, postmark_bounce(dispatch), **auth())

    event = DeliveryEvent.objects.get()
    assert event.gestimum_written_at is None and event.notice_sent_at is not None
    assert "action « à faire »" not in smtp_server.messages[0].message.get_body(("plain",)).get_content()
    assert gestimum.rows(g.Action) == []
    customer.gestimum_url = gestimum_url
    customer.save()

    tracking.complete_pending_bounces(customer=customer)

    event.refresh_from_db()
    assert event.gestimum_written_at is not None
    assert len(gestimum.rows(g.Action)) == 1
    assert len(smtp_server.messages) == 1  # the notice is not sent twice


def test_a_suppressed_address_diverts_the_next_run_until_staff_clear_it(client, gestimum, smtp_server,
                                                                         make_task, customer):
    gestimum.tiers("CL001", name="Boulangerie Martin", email=RECIPIENT)
    gestimum.invoice("CL001", piece="FA000123", days_late=10)
    gestimum.tiers("CL002", email="ok@boulanger.example")
    gestimum.invoice("CL002", piece="FA000124", days_late=10)
    level1 = make_task(level=1)
    run_task(level1.pk)
    dispatch = Dispatch.objects.get(doc_piece="FA000123")
    post_json(client, POSTMARK, postmark_bounce(dispatch), **auth())
    smtp_server.messages.clear()
    level2 = make_task(level=2, days=5, min_days_since_previous=0)

    run = run_task(level2.pk)

    assert (run.sent, run.diverted) == (1, 1)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ok@boulanger.example"]]
    diverted = Dispatch.objects.get(level=2, doc_piece="FA000123")
    assert diverted.status == Dispatch.Status.DIVERTED
    assert diverted.divert_reason == f"Adresse en échec définitif (rejet) : {RECIPIENT}"

    SuppressedAddress.objects.filter(customer=customer).delete()  # staff clear it in the admin
    level3 = make_task(level=3, days=5, min_days_since_previous=0, require_previous_level=False)
    run_task(level3.pk)

    assert sorted(a for m in smtp_server.messages for a in m.rcpt_tos) == [
        RECIPIENT, "ok@boulanger.example", "ok@boulanger.example"]


def test_a_webhook_faster_than_the_engine_is_not_overwritten(customer):
    dispatch = make_dispatch(customer, status=Dispatch.Status.SENDING)
    tracking.apply_event(dispatch, kind=DeliveryEvent.Kind.DELIVERED, recipient=RECIPIENT,
                         provider="Brevo", raw={"event": "delivered"})
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.SENDING

    dispatch.status = Dispatch.Status.SENT  # what the engine saves once the transport returns
    dispatch.save()
    tracking.advance_status(dispatch)

    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.DELIVERED
