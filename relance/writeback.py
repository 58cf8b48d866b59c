"""Recording sends in Gestimum: what each send becomes there, written in batches.

The ``writeback_pending`` flag on each Dispatch is the to-do list: a crash
between a send and its write-back leaves the flag set, and the next run of the
task writes it.
"""

from django.utils import timezone

from .formatting import money
from .gestimum.gateway import WriteBack
from .models import Dispatch

# Sends are written back to Gestimum every this many sends (and at the end of
# the run), a few statements per batch: Gestimum sees the status within minutes
# and a run stays within its budget of Gestimum statements (bench/README.md).
WRITEBACK_BATCH = 5000


def flush_pending(*, task, gateway):
    """Write every recorded send of ``task`` that Gestimum does not know yet."""
    enabled = task.writeback_action or task.writeback_nbrel or task.writeback_relances
    while True:
        pending = Dispatch.objects.filter(task=task, writeback_pending=True).order_by("pk")
        batch = list(pending[:WRITEBACK_BATCH])
        if not batch:
            return
        if enabled:
            gateway.write_back(
                [writeback_record(d) for d in batch], action=task.writeback_action,
                nbrel=task.writeback_nbrel, relances=task.writeback_relances,
            )
        Dispatch.objects.filter(pk__in=[d.pk for d in batch]).update(
            writeback_pending=False, writeback_at=timezone.now())


def writeback_record(dispatch):
    emailed = dispatch.channel == Dispatch.Channel.EMAIL
    if emailed:
        summary = f"Relance niveau {dispatch.level} envoyée par e-mail : {dispatch.doc_piece}"
        details = (f"Relance EasyRelance niveau {dispatch.level}\nÀ : {dispatch.to}\n"
                   + (f"Cc : {dispatch.cc}\n" if dispatch.cc else "")
                   + f"Objet : {dispatch.subject}\nReste dû : {money(dispatch.remaining)}\n"
                   + f"Envoi n° {dispatch.pk}, Message-ID {dispatch.message_id}")
    else:
        summary = f"Relance niveau {dispatch.level} à envoyer par courrier : {dispatch.doc_piece}"
        details = (f"Document réacheminé (pas d'envoi par e-mail) : {dispatch.divert_reason}\n"
                   f"Fichier : {dispatch.divert_path}\nEnvoi n° {dispatch.pk}")
    return WriteBack(
        ech_numero=dispatch.ech_numero, doc_numero=dispatch.doc_numero, pcf_code=dispatch.pcf_code,
        piece=dispatch.doc_piece, level=dispatch.level, emailed=emailed, summary=summary,
        details=details, amount=dispatch.remaining or 0,
        file_name=dispatch.divert_path or (dispatch.pdf.name if dispatch.pdf else ""),
    )
