"""Delivery tracking: what happened to a reminder after the transport took it.

Events come from two places and meet here: the providers' webhooks (anymail
validates them and sends the ``tracking`` signal, received below) and the
delivery reports of plain SMTP (``manage.py fetch_bounces``). Applying an
event is idempotent (one row per fingerprint and Dispatch) and
order-tolerant: the Dispatch status only ever moves up the ranking below, so a
late "delivered" never undoes a "bounced".

A hard bounce has three consequences, each done once and retried until done:
the address is suppressed for the customer, the customer's notification
mailbox gets a French notice, and Gestimum gets an ACTIONS row. A webhook only
suppresses the address (one fast row) and queues the other two on django-q2:
the customer's Gestimum and our SMTP relay may each take many seconds, and the
provider gives up on, then retries, a webhook that answers slowly.
"""

import hashlib
import json
import logging
from datetime import timedelta
from functools import partial

from anymail.signals import tracking
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone
from django_q.tasks import async_task

from .formatting import date_fr, money
from .gestimum.gateway import GestimumUnavailable, open_gateway
from .mailer import Mailer, SendError, build_message
from .models import DeliveryEvent, Dispatch, SuppressedAddress

logger = logging.getLogger(__name__)

Kind = DeliveryEvent.Kind
BounceType = DeliveryEvent.BounceType
Status = Dispatch.Status

# anymail's normalised event types -> ours. Engagement events (opened,
# clicked...) are kept in the timeline as "other" and change no status.
ANYMAIL_KINDS = {
    "sent": Kind.SENT,
    "delivered": Kind.DELIVERED,
    "deferred": Kind.DEFERRED,
    "bounced": Kind.BOUNCED,
    "rejected": Kind.REJECTED,
    "failed": Kind.REJECTED,
    "complained": Kind.COMPLAINED,
}
KIND_STATUS = {
    Kind.SENT: Status.SENT,
    Kind.DELIVERED: Status.DELIVERED,
    Kind.DEFERRED: Status.DEFERRED,
    Kind.BOUNCED: Status.BOUNCED,
    Kind.REJECTED: Status.REJECTED,
    Kind.COMPLAINED: Status.COMPLAINED,
}
# Higher wins. A bounce may follow a relay's "delivered" (the final server
# refused later), never the reverse; a complaint is the last word.
STATUS_RANK = {
    Status.SENT: 1,
    Status.DEFERRED: 2,
    Status.DELIVERED: 3,
    Status.BOUNCED: 4,
    Status.REJECTED: 4,
    Status.COMPLAINED: 5,
}


# -- finding the Dispatch ------------------------------------------------------------

def find_dispatch(*, metadata=None, message_id=None, customer_slug=None):
    """The Dispatch an event is about: metadata first, then the provider's or our Message-ID."""
    metadata = metadata or {}
    dispatch_id = str(metadata.get("dispatch_id") or "")
    queryset = Dispatch.objects.select_related("customer")
    if dispatch_id.isdigit():
        dispatch = queryset.filter(pk=int(dispatch_id)).first()
        slug = metadata.get("customer") or customer_slug
        if dispatch is not None and (not slug or dispatch.customer.slug == slug):
            return dispatch
    if message_id:
        dispatch = (queryset.filter(provider_message_id=message_id).first()
                    or queryset.filter(message_id=message_id).first())
        if dispatch is not None:
            return dispatch
    return None


def message_dispatches(dispatch):
    """``dispatch`` and the others sent in the same e-mail (a task sending one e-mail per
    debtor records one Dispatch per échéance, all with the same Message-ID)."""
    return [dispatch, *dispatch.same_email().select_related("customer")]


# -- recording events ----------------------------------------------------------------

def fingerprint(*, provider, event_id, kind, recipient, raw):
    """Stable identity of one event: the provider's id when it has one, else the payload."""
    basis = event_id or json.dumps(raw, sort_keys=True, cls=DjangoJSONEncoder, default=str)
    text = "\x1f".join([provider, basis, kind, (recipient or "").lower()])
    return hashlib.sha256(text.encode()).hexdigest()


def apply_event(dispatch, *, kind, occurred_at=None, event_id="", recipient="", reason="",
                bounce_type="", provider="", raw=None, queue_consequences=False):
    """Record one event on a Dispatch and carry out what it implies. Returns (event, created).

    The same event applied twice is stored once and has its consequences once.
    With ``queue_consequences``, a hard bounce's Gestimum row and notice are left
    to a django-q2 worker (see ``queue_bounce_completion``) instead of done here.
    """
    raw = raw if raw is not None else {}
    occurred_at = occurred_at or timezone.now()
    key = fingerprint(provider=provider, event_id=event_id, kind=kind, recipient=recipient, raw=raw)
    try:
        with transaction.atomic():
            event = DeliveryEvent.objects.create(
                dispatch=dispatch, kind=kind, bounce_type=bounce_type if kind in (
                    Kind.BOUNCED, Kind.REJECTED) else "",
                occurred_at=occurred_at, recipient=(recipient or "")[:320], reason=reason or "",
                provider=provider[:40], event_id=(event_id or "")[:200], fingerprint=key,
                raw=json.loads(json.dumps(raw, cls=DjangoJSONEncoder, default=str)),
            )
    except IntegrityError:
        return DeliveryEvent.objects.get(dispatch=dispatch, fingerprint=key), False
    advance_status(dispatch)
    if event.bounce_type == BounceType.HARD:
        if queue_consequences:
            suppress_bounced(event)
            # Queued once the event row is committed, or a fast worker would not find it.
            transaction.on_commit(partial(queue_bounce_completion, event))
        else:
            complete_hard_bounce(event)
    return event, True


def _addresses(text):
    return {a.strip().lower() for a in (text or "").split(";") if a.strip()}


def advance_status(dispatch):
    """Move the Dispatch to the highest-ranked status its events justify, never down.

    Only events about a main recipient (or naming none) count: a bounced CC
    does not make the reminder undelivered. A Dispatch still ``sending`` is
    left alone; the engine calls this again once it has recorded the send.
    """
    main = _addresses(dispatch.to)
    best = None
    for kind, recipient in DeliveryEvent.objects.filter(dispatch=dispatch).values_list(
            "kind", "recipient"):
        status = KIND_STATUS.get(kind)
        if status is None or (recipient and main and recipient.lower() not in main):
            continue
        if best is None or STATUS_RANK[status] > STATUS_RANK[best]:
            best = status
    if best is None:
        return
    lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[best]]
    # Conditional UPDATE: two webhooks racing can only move the status up.
    Dispatch.objects.filter(pk=dispatch.pk, status__in=lower).update(
        status=best, updated_at=timezone.now())


# -- the anymail webhook receiver ----------------------------------------------------------

def bounce_type_of(event):
    """Hard or soft, from each provider's own words; an SMTP 4.x.x code means soft."""
    esp = event.esp_event if isinstance(event.esp_event, dict) else {}
    if esp.get("event") in ("soft_bounce", "hard_bounce", "invalid_email"):  # Brevo
        return BounceType.SOFT if esp["event"] == "soft_bounce" else BounceType.HARD
    if esp.get("Type") in ("SoftBounce", "HardBounce", "BadEmailAddress"):  # Postmark
        return BounceType.SOFT if esp["Type"] == "SoftBounce" else BounceType.HARD
    if "hard_bounce" in esp:  # Mailjet
        return BounceType.HARD if esp["hard_bounce"] else BounceType.SOFT
    bounce = esp.get("bounce") or {}
    if isinstance(bounce, dict) and bounce.get("bounceType"):  # Amazon SES
        return BounceType.HARD if bounce["bounceType"] == "Permanent" else BounceType.SOFT
    severity = (esp.get("event-data") or {}).get("severity")  # Mailgun
    if severity:
        return BounceType.HARD if severity == "permanent" else BounceType.SOFT
    from .dsn import STATUS_RE

    code = STATUS_RE.search(event.mta_response or "")
    if code:
        return BounceType.HARD if code.group(1) == "5" else BounceType.SOFT
    if event.event_type == "rejected" and event.reject_reason not in ("invalid", "bounced"):
        return ""  # refused by the provider's policy: the address itself may be fine
    return BounceType.HARD


@receiver(tracking, dispatch_uid="relance.tracking.on_tracking_event")
def on_tracking_event(sender, event, esp_name, **kwargs):
    """Apply an anymail tracking event. Never raises for an unknown message: the
    provider gets a 200 and stops retrying; a database error does raise, so it retries."""
    kind = ANYMAIL_KINDS.get(event.event_type, Kind.OTHER)
    dispatch = find_dispatch(metadata=event.metadata, message_id=event.message_id)
    if dispatch is None:
        logger.warning("Événement %s de %s pour un message inconnu (%s) : ignoré",
                       event.event_type, esp_name, event.message_id)
        return
    reason = " — ".join(x for x in (event.description, event.mta_response) if x)
    if kind == Kind.OTHER:
        reason = reason or event.event_type
    for target in message_dispatches(dispatch):
        apply_event(
            target, kind=kind, occurred_at=event.timestamp, event_id=event.event_id or "",
            recipient=event.recipient or "", reason=reason,
            bounce_type=bounce_type_of(event) if kind in (Kind.BOUNCED, Kind.REJECTED) else "",
            provider=esp_name, raw=event.esp_event if isinstance(event.esp_event, (dict, list)) else {},
            queue_consequences=True,
        )


# -- hard bounces ------------------------------------------------------------------------

def suppress(*, customer, address, reason="", dispatch=None):
    """Stop mailing ``address`` for ``customer``; idempotent."""
    suppressed, _ = SuppressedAddress.objects.get_or_create(
        customer=customer, address=address.strip().lower(),
        defaults={"reason": reason[:2000], "dispatch": dispatch})
    return suppressed


def suppressed_addresses(customer):
    """Lower-case addresses the engine must not mail for this customer."""
    return set(SuppressedAddress.objects.filter(customer=customer).values_list("address", flat=True))


def _document_line(dispatch):
    return (f"{dispatch.doc_piece or dispatch.ech_numero}"
            + (f" (échéance du {date_fr(dispatch.due_date)}" if dispatch.due_date else "")
            + (f", reste dû {money(dispatch.remaining)})" if dispatch.remaining is not None
               else (")" if dispatch.due_date else "")))


def notice_text(event, *, gestimum_written):
    dispatch = event.dispatch
    occurred = timezone.localtime(event.occurred_at)
    sent = timezone.localtime(dispatch.sent_at) if dispatch.sent_at else None
    documents = message_dispatches(dispatch)
    pieces = ", ".join(d.doc_piece or d.ech_numero for d in documents)
    subject = f"Relance non délivrée : {pieces} — {dispatch.tiers_name}"
    if len(documents) == 1:
        document_lines = [f"Document : {_document_line(dispatch)}"]
    else:
        document_lines = [f"Documents ({len(documents)}, dans le même e-mail) :"]
        document_lines += [f"  - {_document_line(d)}" for d in documents]
    lines = [
        "Bonjour,",
        "",
        "Une relance envoyée par EasyRelance n'a pas pu être délivrée : le serveur du destinataire",
        "a refusé le message de façon définitive.",
        "",
        *document_lines,
        f"Débiteur : {dispatch.tiers_name} (code tiers {dispatch.pcf_code})",
        f"Adresse en échec : {event.recipient}",
        f"Motif donné par le serveur : {event.reason or 'non précisé'}",
        f"Relance de niveau {dispatch.level}"
        + (f", envoyée le {sent:%d/%m/%Y à %H:%M}" if sent else ""),
        f"Rejet constaté le {occurred:%d/%m/%Y à %H:%M}",
        "",
        "Cette adresse ne recevra plus de relances : les prochaines relances de ce débiteur seront",
        "réacheminées vers le courrier tant que l'adresse n'aura pas été corrigée. Corrigez l'adresse",
        "e-mail du tiers dans Gestimum, puis demandez à EasyRelance de la réactiver.",
    ]
    if gestimum_written:
        lines += ["", "Une action « à faire » a été ajoutée dans Gestimum sur la fiche de ce tiers."]
    lines += ["", "—", "EasyRelance (message automatique, ne pas répondre)"]
    return subject, "\n".join(lines) + "\n"


def _write_gestimum(event):
    dispatch = event.dispatch
    claimed = DeliveryEvent.objects.filter(pk=event.pk, gestimum_written_at=None).update(
        gestimum_written_at=timezone.now())
    if not claimed:
        return True
    details = (f"La relance EasyRelance niveau {dispatch.level} n'a pas été délivrée.\n"
               f"Adresse en échec définitif : {event.recipient}\n"
               f"Motif : {event.reason or 'non précisé'}\n"
               f"Cette adresse ne sera plus utilisée : corrigez l'e-mail du tiers.\n"
               f"Envoi n° {dispatch.pk}, Message-ID {dispatch.message_id}")
    try:
        with open_gateway(dispatch.customer) as gateway:
            gateway.write_bounce(
                pcf_code=dispatch.pcf_code, doc_numero=dispatch.doc_numero,
                summary=f"Relance non délivrée (rejet) : {dispatch.doc_piece}", details=details)
    except Exception as exc:
        # Gestimum is often unreachable (customer's server): retried by later runs.
        DeliveryEvent.objects.filter(pk=event.pk).update(gestimum_written_at=None)
        level = logging.WARNING if isinstance(exc, GestimumUnavailable) else logging.ERROR
        logger.log(level, "Rejet de l'envoi %s non écrit dans Gestimum : %s", dispatch.pk, exc)
        return False
    return True


def _send_notice(event, *, gestimum_written):
    customer = event.dispatch.customer
    if not customer.notification_email:
        return
    dispatch = event.dispatch
    # One notice per refused address and e-mail, even when the e-mail carried several
    # documents (one event per Dispatch): the first event claims its siblings' too.
    same_email = DeliveryEvent.objects.filter(pk=event.pk) | DeliveryEvent.objects.filter(
        dispatch__in=dispatch.same_email(), kind=event.kind, recipient=event.recipient)
    already = same_email.exclude(pk=event.pk).filter(notice_sent_at__isnull=False).exists()
    claimed_at = timezone.now()
    claimed = same_email.filter(notice_sent_at=None).update(notice_sent_at=claimed_at)
    if not claimed or already:
        return
    subject, body = notice_text(event, gestimum_written=gestimum_written)
    message = build_message(from_email=settings.DEFAULT_FROM_EMAIL, to=[customer.notification_email],
                            subject=subject, body=body,
                            metadata={"customer": customer.slug, "notice_for": str(event.dispatch_id)},
                            tags=["avis-de-rejet"])
    try:
        with Mailer() as mailer:
            mailer.send(message)
    except SendError as exc:
        same_email.filter(notice_sent_at=claimed_at).update(notice_sent_at=None)
        logger.warning("Avis de rejet de l'envoi %s non envoyé : %s", event.dispatch_id, exc)


def suppress_bounced(event):
    """The first consequence, cheap and done at once: never mail this address again."""
    if event.recipient:
        suppress(customer=event.dispatch.customer, address=event.recipient, reason=event.reason,
                 dispatch=event.dispatch)


def complete_hard_bounce(event):
    """Suppress the address, write Gestimum, tell the customer. Each step at most once."""
    suppress_bounced(event)
    gestimum_written = _write_gestimum(event)
    _send_notice(event, gestimum_written=gestimum_written)


def queue_bounce_completion(event):
    """Queue ``complete_bounce`` for this hard bounce; returns the queue task id or None.

    It goes to the customer's on-site worker when it has one: only that worker
    reaches its Gestimum. If the queue cannot take it, the customer's next run
    completes it (``complete_pending_bounces``), so the webhook still succeeds.
    """
    customer = event.dispatch.customer
    try:
        return async_task("relance.tracking.complete_bounce", event.pk,
                          task_name=f"rejet-{event.pk}", group=f"customer-{customer.pk}",
                          cluster=customer.worker_cluster or None)
    except Exception as exc:
        logger.warning("Suites du rejet %s non mises en file (reprises au prochain passage) : %s",
                       event.pk, exc)
        return None


def complete_bounce(event_id):
    """django-q2 entry point: carry out the consequences of one hard bounce, by DeliveryEvent id."""
    event = DeliveryEvent.objects.select_related("dispatch__customer").filter(
        pk=event_id, bounce_type=BounceType.HARD).first()
    if event is None:
        return f"Rejet {event_id} introuvable"
    complete_hard_bounce(event)
    event.refresh_from_db(fields=["gestimum_written_at"])
    if event.gestimum_written_at is None:
        return f"Rejet {event_id} traité ; Gestimum injoignable, repris au prochain passage"
    return f"Rejet {event_id} traité"


def complete_pending_bounces(*, customer=None, max_age_days=30):
    """Retry the consequences of hard bounces that could not be completed (Gestimum down...)."""
    pending = DeliveryEvent.objects.filter(
        bounce_type=BounceType.HARD, received_at__gte=timezone.now() - timedelta(days=max_age_days),
    ).filter(Q(gestimum_written_at=None) | Q(notice_sent_at=None)).select_related("dispatch__customer")
    if customer is not None:
        pending = pending.filter(dispatch__customer=customer)
    done = 0
    for event in pending:
        complete_hard_bounce(event)
        done += 1
    return done
