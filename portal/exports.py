"""Files the customer downloads: the history as CSV, pending diverted documents as one PDF."""

import csv
import io
import logging

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
