"""Amazon SES webhooks: SNS signatures verified, hard-bounce consequences queued on django-q2.

AWS is played by a key pair and a self-signed certificate made here; the
certificate download is the only thing replaced, so the live endpoint, anymail,
the signature check, the queue and the SMTP server are the real ones.
"""

import base64
import json
import urllib.error
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.test import Client, TestCase
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from relance import sns, tracking
from relance.gestimum import models as g
from relance.models import DeliveryEvent, Dispatch, SuppressedAddress

pytestmark = pytest.mark.django_db

URL = "/anymail/amazon_ses/tracking/"
SECRET = "easyrelance:S3s-tr4ck1ng"
RECIPIENT = "compta@martin.example"
SES_MESSAGE_ID = "010701948a1e5f8c-2b8f1c3e-6d0a-4f55-9d1e-3c2b1a0f9e8d-000000"
TOPIC = "arn:aws:sns:eu-west-3:123456789012:easyrelance-ses-events"
CERT_URL = ("https://sns.eu-west-3.amazonaws.com/"
            "SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem")


def make_key_and_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    return key, certificate.public_bytes(serialization.Encoding.PEM)


AWS_KEY, AWS_CERT_PEM = make_key_and_certificate()


@pytest.fixture(autouse=True)
def aws(settings, monkeypatch):
    """Amazon's certificate server: records what is downloaded."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": False}
    downloads = []

    def download(url):
        downloads.append(url)
        return AWS_CERT_PEM

    monkeypatch.setattr(sns, "download", download)
    sns.signing_certificate.cache_clear()
    yield downloads
    sns.signing_certificate.cache_clear()


@pytest.fixture
def sync_queue(monkeypatch):
    # django-q2 reads Q_CLUSTER once, at import: its parsed copy is what must change.
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def orm_queue(monkeypatch):
    """The default production set-up without Redis: tasks wait in the ORM broker for a worker."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")
    monkeypatch.setattr(Conf, "REDIS", None)


def make_dispatch(customer):
    return Dispatch.objects.create(
        customer=customer, level=1, ech_numero="0000000002", doc_numero="0000000001",
        doc_piece="FA000123", pcf_code="CL001", tiers_name="Boulangerie Martin",
        due_date=timezone.localdate() - timedelta(days=10), remaining=Decimal("1234.56"),
        to=RECIPIENT, status=Dispatch.Status.SENT, message_id="<173860927012.1@e-doc-erp.fr>",
        provider_message_id=SES_MESSAGE_ID, sent_at=timezone.now() - timedelta(minutes=5),
    )


def ses_bounce(dispatch):
    """An SES event-publishing Bounce, as SES puts it in the SNS Message."""
    return {
        "eventType": "Bounce",
        "bounce": {
            "feedbackId": "010701948a1e6a2b-8d3c4e5f-1a2b-4c3d-9e8f-7a6b5c4d3e2f-000000",
            "bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": RECIPIENT, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 <compta@martin.example>: "
                                                     "Recipient address rejected: User unknown"}],
            "timestamp": "2025-02-03T19:01:12.345Z",
            "reportingMTA": "dsn; e226-57.smtp-out.eu-west-3.amazonses.com",
        },
        "mail": {
            "timestamp": "2025-02-03T19:01:10.123Z", "source": "dupont@e-doc-erp.fr",
            "sourceArn": "arn:aws:ses:eu-west-3:123456789012:identity/e-doc-erp.fr",
            "sendingAccountId": "123456789012", "messageId": SES_MESSAGE_ID,
            "destination": [RECIPIENT], "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "Dupont Industrie <dupont@e-doc-erp.fr>"},
                {"name": "To", "value": RECIPIENT},
                {"name": "Subject", "value": "Relance facture FA000123"},
                {"name": "X-Metadata",
                 "value": json.dumps({"dispatch_id": str(dispatch.pk), "customer": "dupont"})},
                {"name": "X-Tag", "value": "niveau-1"},
            ],
            "commonHeaders": {"from": ["Dupont Industrie <dupont@e-doc-erp.fr>"], "to": [RECIPIENT],
                              "messageId": SES_MESSAGE_ID, "subject": "Relance facture FA000123"},
            "tags": {"ses:configuration-set": ["easyrelance"], "ses:source-ip": ["192.0.2.10"]},
        },
    }


def signed(envelope, *, key=AWS_KEY, version="1"):
    envelope = {**envelope, "SignatureVersion": version, "SigningCertURL": CERT_URL}
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns.string_to_sign(envelope), padding.PKCS1v15(), digest)
    return {**envelope, "Signature": base64.b64encode(signature).decode()}


def notification(dispatch, *, version="1", subject=None, message_id="7f3e9c2a-5b1d-5e8f-a4c6-2d9b8e7f1a3c"):
    envelope = {
        "Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC,
        "Message": json.dumps(ses_bounce(dispatch)), "Timestamp": "2025-02-03T19:01:12.789Z",
        "UnsubscribeURL": "https://sns.eu-west-3.amazonaws.com/?Action=Unsubscribe"
                          f"&SubscriptionArn={TOPIC}:4b1c2d3e-5f6a-7b8c-9d0e-1f2a3b4c5d6e",
    }
    if subject is not None:
        envelope["Subject"] = subject
    return signed(envelope, version=version)


def post(client, envelope, credentials=SECRET):
    # A hard bounce's consequences are queued when the webhook's transaction commits; the
    # test's transaction never does, so its commit callbacks are run here.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            URL, data=json.dumps(envelope), content_type="text/plain; charset=UTF-8",
            HTTP_X_AMZ_SNS_MESSAGE_TYPE=envelope["Type"], HTTP_X_AMZ_SNS_MESSAGE_ID=envelope["MessageId"],
            HTTP_AUTHORIZATION="Basic " + base64.b64encode(credentials.encode()).decode())


def assert_nothing_changed(dispatch, smtp_server):
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.SENT
    assert not DeliveryEvent.objects.exists()
    assert not SuppressedAddress.objects.exists()
    assert smtp_server.messages == []


# -- signatures -----------------------------------------------------------------------

@pytest.mark.parametrize("version, subject", [("1", "Amazon SES Email Event Notification"), ("2", None)])
def test_a_signed_ses_bounce_is_applied_and_the_customer_notified(
        client, customer, gestimum, smtp_server, sync_queue, aws, version, subject):
    dispatch = make_dispatch(customer)

    response = post(client, notification(dispatch, version=version, subject=subject))

    assert response.status_code == 200
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED
    event = DeliveryEvent.objects.get()
    assert (event.kind, event.bounce_type, event.provider) == ("bounced", "hard", "Amazon SES")
    assert "User unknown" in event.reason
    assert SuppressedAddress.objects.get(customer=customer).address == RECIPIENT
    [notice] = smtp_server.messages
    assert notice.rcpt_tos == ["adv@dupont.example"]
    assert "FA000123" in notice.message["Subject"]
    assert len(gestimum.rows(g.Action)) == 1
    assert aws == [CERT_URL]


def test_the_certificate_is_downloaded_once_per_url(client, customer, aws):
    dispatch = make_dispatch(customer)

    first = post(client, notification(dispatch, message_id="11111111-1111-5111-8111-111111111111"))
    second = post(client, notification(dispatch, message_id="22222222-2222-5222-8222-222222222222"))

    assert first.status_code == second.status_code == 200
    assert DeliveryEvent.objects.count() == 2
    assert aws == [CERT_URL]


def test_a_tampered_message_is_refused_and_changes_nothing(client, customer, smtp_server, sync_queue):
    dispatch = make_dispatch(customer)
    envelope = notification(dispatch)
    bounce = json.loads(envelope["Message"])
    bounce["bounce"]["bouncedRecipients"][0]["emailAddress"] = "direction@martin.example"
    envelope["Message"] = json.dumps(bounce)

    response = post(client, envelope)

    assert response.status_code == 400
    assert_nothing_changed(dispatch, smtp_server)


def test_a_message_signed_by_another_key_is_refused(client, customer, smtp_server):
    dispatch = make_dispatch(customer)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    envelope = notification(dispatch)
    envelope = signed({k: v for k, v in envelope.items() if k != "Signature"}, key=other_key)

    response = post(client, envelope)

    assert response.status_code == 400
    assert_nothing_changed(dispatch, smtp_server)


def test_only_the_configured_topics_are_accepted_and_a_foreign_one_costs_no_download(
        client, customer, smtp_server, sync_queue, aws, settings):
    dispatch = make_dispatch(customer)
    settings.AMAZON_SES_SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-3:123456789012:autre-sujet"]

    refused = post(client, notification(dispatch))

    assert refused.status_code == 400
    assert aws == []
    assert_nothing_changed(dispatch, smtp_server)
    settings.AMAZON_SES_SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-3:123456789012:autre-sujet", TOPIC]
    assert post(client, notification(dispatch)).status_code == 200
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED


@pytest.mark.parametrize("cert_url", [
    "https://sns.eu-west-3.amazonaws.com.attacker.example/SimpleNotificationService.pem",
    "https://attacker.example/sns.eu-west-3.amazonaws.com/SimpleNotificationService.pem",
    "http://sns.eu-west-3.amazonaws.com/SimpleNotificationService.pem",
    "https://sns.eu-west-3.amazonaws.com:8443/SimpleNotificationService.pem",
    "https://s3.eu-west-3.amazonaws.com/SimpleNotificationService.pem",
])
def test_a_certificate_url_outside_amazon_sns_is_refused_without_downloading(
        client, customer, smtp_server, aws, cert_url):
    dispatch = make_dispatch(customer)
    envelope = {**notification(dispatch), "SigningCertURL": cert_url}

    response = post(client, envelope)

    assert response.status_code == 400
    assert aws == []
    assert_nothing_changed(dispatch, smtp_server)


def test_wrong_credentials_are_refused_before_any_download(client, customer, smtp_server, aws):
    dispatch = make_dispatch(customer)

    response = post(client, notification(dispatch), credentials="easyrelance:wrong")

    assert response.status_code == 400
    assert aws == []
    assert_nothing_changed(dispatch, smtp_server)


def test_an_unreachable_certificate_answers_500_so_sns_retries(customer, smtp_server, monkeypatch):
    dispatch = make_dispatch(customer)

    def unreachable(url):
        raise urllib.error.URLError("timed out")

    monkeypatch.setattr(sns, "download", unreachable)

    response = post(Client(raise_request_exception=False), notification(dispatch))

    assert response.status_code == 500
    assert_nothing_changed(dispatch, smtp_server)


def test_a_signed_subscription_confirmation_is_accepted_and_a_forged_one_refused(client):
    envelope = signed({
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb7"
                 "1854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd",
        "TopicArn": TOPIC, "Timestamp": "2025-02-03T18:55:00.000Z",
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\n"
                   "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.eu-west-3.amazonaws.com/?Action=ConfirmSubscription"
                        f"&TopicArn={TOPIC}&Token=2336412f37fb687f",
    }, version="2")

    accepted = post(client, envelope)
    forged = post(client, {**envelope, "Token": "0" * 64})

    assert accepted.status_code == 200
    assert forged.status_code == 400


def test_the_string_to_sign_follows_the_documented_keys_and_order():
    envelope = {"Type": "Notification", "TopicArn": TOPIC, "Timestamp": "T", "MessageId": "M",
                "Message": "hello", "UnsubscribeURL": "not signed", "SignatureVersion": "1"}

    assert sns.string_to_sign(envelope) == (
        f"Message\nhello\nMessageId\nM\nTimestamp\nT\nTopicArn\n{TOPIC}\nType\nNotification\n").encode()
    assert sns.string_to_sign({**envelope, "Subject": "S"}).startswith(
        b"Message\nhello\nMessageId\nM\nSubject\nS\nTimestamp\n")


def test_an_unsigned_post_is_accepted_only_when_verification_is_turned_off(
        client, customer, settings, aws):
    dispatch = make_dispatch(customer)
    envelope = {k: v for k, v in notification(dispatch).items() if k != "Signature"}

    refused = post(client, envelope)
    settings.AMAZON_SES_VERIFY_SNS_SIGNATURE = False
    accepted = post(client, envelope)

    assert (refused.status_code, accepted.status_code) == (400, 200)
    assert DeliveryEvent.objects.count() == 1


# -- consequences queued ----------------------------------------------------------------

def queued_tasks(list_key=None):
    broker = get_broker(list_key)
    tasks = []
    while queued := broker.dequeue():
        for ack_id, payload in queued:
            tasks.append(SignedPackage.loads(payload))
            broker.acknowledge(ack_id)
    return tasks


def test_the_webhook_only_queues_the_consequences_and_the_task_does_them_once(
        client, customer, gestimum, smtp_server, orm_queue):
    dispatch = make_dispatch(customer)

    response = post(client, notification(dispatch))

    # Answered without touching Gestimum or SMTP; the address is suppressed at once.
    assert response.status_code == 200
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.BOUNCED
    assert SuppressedAddress.objects.get(customer=customer).address == RECIPIENT
    assert smtp_server.messages == [] and gestimum.rows(g.Action) == []
    [task] = queued_tasks()
    event = DeliveryEvent.objects.get()
    assert (task["func"], task["args"]) == ("relance.tracking.complete_bounce", (event.pk,))

    # What the worker runs; a second run (retry, or the next run's safety net) adds nothing.
    tracking.complete_bounce(*task["args"])
    tracking.complete_bounce(*task["args"])
    tracking.complete_pending_bounces(customer=customer)

    [notice] = smtp_server.messages
    assert notice.rcpt_tos == ["adv@dupont.example"]
    assert "Une action « à faire » a été ajoutée dans Gestimum" in notice.message.get_body(
        ("plain",)).get_content()
    assert len(gestimum.rows(g.Action)) == 1


def test_an_on_premise_customer_gets_its_consequences_on_its_own_worker(client, customer, orm_queue):
    customer.worker_cluster = "dupont-site"
    customer.save()
    dispatch = make_dispatch(customer)

    post(client, notification(dispatch))

    assert queued_tasks() == []
    [task] = queued_tasks("dupont-site")
    assert task["func"] == "relance.tracking.complete_bounce"


def test_a_queue_that_is_down_leaves_the_consequences_to_the_next_run(
        client, customer, gestimum, smtp_server, monkeypatch, caplog):
    dispatch = make_dispatch(customer)

    def broker_down(*args, **kwargs):
        raise ConnectionError("Redis injoignable")

    monkeypatch.setattr(tracking, "async_task", broker_down)

    response = post(client, notification(dispatch))

    assert response.status_code == 200
    assert "reprises au prochain passage" in caplog.text
    assert smtp_server.messages == []
    tracking.complete_pending_bounces(customer=customer)
    assert len(smtp_server.messages) == 1 and len(gestimum.rows(g.Action)) == 1
