"""Files the customer downloads: the history as CSV, pending diverted documents as one PDF,
the proof of one send as a ZIP."""

import csv
import io
import logging
from datetime import UTC

from django.utils import timezone

from relance.formatting import date_fr
from relance.models import Dispatch

log = logging.getLogger(__name__)

CSV_HEADER = [
    "Date", "Heure", "Niveau", "Tâche", "Statut", "Canal", "Code tiers", "Tiers", "N° de pièce",
    "Échéance", "Montant", "Reste dû", "Destinataires", "Objet", "Motif du réacheminement",
    "N° d'échéance Gestimum", "N° de document Gestimum", "Envoi n°",
]
CSV_COLUMNS = [
    "created_at", "level", "task__name", "status", "channel", "pcf_code", "tiers_name", "doc_piece",
    "due_date", "amount", "remaining", "to", "subject", "divert_reason", "ech_numero", "doc_numero", "pk",
]
CHUNK_SIZE = 2000
STATUS_LABELS = dict(Dispatch.Status.choices)
CHANNEL_LABELS = dict(Dispatch.Channel.choices)


class _Line:
    """A file-like object whose write() returns what was written, for csv.writer in a generator."""

    def write(self, value):
        return value


def _decimal(value):
    # Plain digits with a decimal comma: what French Excel reads as a number.
    return "" if value is None else f"{value:f}".replace(".", ",")


def csv_rows(queryset):
    """Yield the CSV text, a line at a time, without loading the queryset in memory.

    values_list + iterator(chunk_size) reads the rows in chunks (a server-side
    cursor on PostgreSQL) and skips model instances: 100,000 rows stream in
    constant memory.
    """
    writer = csv.writer(_Line(), delimiter=";")
    yield "\ufeff"  # BOM: Excel opens UTF-8 with accents right
    yield writer.writerow(CSV_HEADER)
    rows = queryset.values_list(*CSV_COLUMNS).iterator(chunk_size=CHUNK_SIZE)
    for (created, level, task, status, channel, pcf_code, tiers, piece, due, amount, remaining, to,
         subject, reason, ech, doc, pk) in rows:
        local = timezone.localtime(created)
        yield writer.writerow([
            date_fr(local), local.strftime("%H:%M"), level, task or "", STATUS_LABELS.get(status, status),
            CHANNEL_LABELS.get(channel, channel), pcf_code, tiers, piece, date_fr(due), _decimal(amount),
            _decimal(remaining), to.replace("\n", ", "), subject, reason, ech, doc, pk,
        ])


def merged_pdf(dispatches):
    """One PDF holding every document of ``dispatches`` in order, and the ids left out.

    A missing or unreadable file is skipped (and reported) rather than failing
    the whole print run.
    """
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    missing = []
    for dispatch in dispatches:
        try:
            with dispatch.pdf.open("rb") as handle:
                writer.append(PdfReader(io.BytesIO(handle.read())))
        except Exception:  # noqa: BLE001 - any bad file must not block printing the others
            log.warning("PDF illisible pour l'envoi %s", dispatch.pk, exc_info=True)
            missing.append(dispatch.pk)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue(), missing


# -- proof of sending -------------------------------------------------------------------------

def _moment(value):
    """Paris time with its offset, and UTC: unambiguous in a dispute."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    utc = value.astimezone(UTC)
    return f"{local:%d/%m/%Y %H:%M:%S} (heure de Paris, UTC{local:%z}) — {utc:%Y-%m-%dT%H:%M:%SZ}"


def proof_archive(dispatch, events, *, pdf_name):
    """A ZIP proving one send: what left, to whom, when, what became of it, and the PDF as sent.

    ``preuve.txt`` sums it up in French, ``message.txt`` is the body as sent,
    ``evenements.json`` keeps the providers' own event payloads, and the PDF's
    SHA-256 (computed again here) lets anyone check the attachment was not altered.
    """
    import hashlib
    import json
    import zipfile

    from django.core.serializers.json import DjangoJSONEncoder

    from relance.formatting import money

    pdf = b""
    if dispatch.pdf:
        try:
            with dispatch.pdf.open("rb") as handle:
                pdf = handle.read()
        except FileNotFoundError:
            pdf = b""
    digest = hashlib.sha256(pdf).hexdigest() if pdf else ""
    if not pdf:
        pdf_state = "aucun PDF enregistré pour cet envoi"
    elif digest == dispatch.pdf_sha256:
        pdf_state = f"{pdf_name}, SHA-256 {digest} (identique à l'empreinte enregistrée à l'envoi)"
    else:
        pdf_state = (f"{pdf_name}, SHA-256 {digest} — DIFFÉRENT de l'empreinte enregistrée à l'envoi "
                     f"({dispatch.pdf_sha256 or 'aucune'})")
    emailed = dispatch.channel == Dispatch.Channel.EMAIL
    lines = [
        "PREUVE D'ENVOI — EasyRelance",
        "",
        f"Expéditeur (client EasyRelance) : {dispatch.customer.name}",
        f"Débiteur : {dispatch.tiers_name} (code tiers Gestimum {dispatch.pcf_code})",
        f"Document : {dispatch.doc_piece or '—'} (document Gestimum {dispatch.doc_numero or '—'}, "
        f"échéance {dispatch.ech_numero})",
        f"Échéance du : {date_fr(dispatch.due_date) or '—'} ; montant : {money(dispatch.amount) or '—'} ; "
        f"reste dû au moment de l'envoi : {money(dispatch.remaining) or '—'}",
        f"Relance de niveau {dispatch.level} — envoi n° {dispatch.pk}",
        f"Canal : {CHANNEL_LABELS.get(dispatch.channel, dispatch.channel)} ; "
        f"statut : {STATUS_LABELS.get(dispatch.status, dispatch.status)}",
        "",
    ]
    if emailed:
        lines += [
            f"De : {dispatch.from_email}",
            f"À : {dispatch.to}",
            *([f"Copie : {dispatch.cc}"] if dispatch.cc else []),
            *([f"Copie cachée : {dispatch.bcc}"] if dispatch.bcc else []),
            f"Objet : {dispatch.subject}",
            f"Message-ID : {dispatch.message_id or '—'}",
            f"Identifiant chez le fournisseur d'envoi : {dispatch.provider_message_id or '—'}",
            f"Préparé le : {_moment(dispatch.created_at)}",
            f"Remis au fournisseur d'envoi le : {_moment(dispatch.sent_at)}",
        ]
    else:
        lines += [
            f"Document réacheminé vers le courrier : {dispatch.divert_reason or '—'}",
            f"Déposé le : {_moment(dispatch.sent_at)}",
        ]
    lines += ["", f"Pièce jointe : {pdf_state}", "", "Suivi de délivrance :"]
    if not events:
        lines.append("  (aucun événement reçu du fournisseur d'envoi)")
    for event in events:
        detail = " — ".join(x for x in (event.recipient, event.get_bounce_type_display() if event.bounce_type
                                         else "", event.reason) if x)
        lines.append(f"  {_moment(event.occurred_at)} : {event.get_kind_display().capitalize()}"
                     + (f" ({detail})" if detail else "") + f" [source : {event.provider or '—'}]")
    lines += ["", f"Dossier établi le {_moment(timezone.now())}.", ""]
    raw_events = [{"occurred_at": e.occurred_at, "kind": e.kind, "bounce_type": e.bounce_type,
                   "recipient": e.recipient, "reason": e.reason, "provider": e.provider,
                   "event_id": e.event_id, "payload": e.raw} for e in events]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("preuve.txt", "\n".join(lines))
        if emailed:
            archive.writestr("message.txt", f"Objet : {dispatch.subject}\n\n{dispatch.body}")
        archive.writestr("evenements.json", json.dumps(raw_events, cls=DjangoJSONEncoder, ensure_ascii=False,
                                                       indent=2))
        if pdf:
            archive.writestr(pdf_name, pdf)
    return buffer.getvalue()
