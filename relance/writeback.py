"""Recording sends in Gestimum: what each send becomes there, written in batches.

The ``writeback_pending`` flag on each Dispatch is the to-do list: a crash
between a send and its write-back leaves the flag set, and the next run of the
task writes it — once, thanks to the ACT_NUMERO reserved beforehand
(``Dispatch.writeback_ref``).
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
    """Write every recorded send of ``task`` that Gestimum does not know yet, exactly once.

    With ACTIONS rows enabled, their ACT_NUMEROs are reserved and stored on the
    sends before Gestimum's transaction. A send still pending with a number
    (the process died around that transaction) is looked up in ACTIONS: found,
    the transaction was committed and nothing is written again; missing, it is
    written with the same number.
    """
    enabled = task.writeback_action or task.writeback_nbrel or task.writeback_relances
    while True:
        pending = Dispatch.objects.filter(task=task, writeback_pending=True).order_by("pk")
        batch = list(pending[:WRITEBACK_BATCH])
        if not batch:
            return
        if enabled and task.writeback_action:
            batch = _skip_already_written(batch, gateway)
            _reserve_action_numbers(batch, gateway)
        if enabled and batch:
            gateway.write_back(
                [writeback_record(d) for d in batch], action=task.writeback_action,
                nbrel=task.writeback_nbrel, relances=task.writeback_relances,
            )
        _mark_written(batch)


def _skip_already_written(batch, gateway):
    """Mark written the sends whose reserved action Gestimum holds; return the others."""
    reserved = [d for d in batch if d.writeback_ref]
    if not reserved:
        return batch
    found = gateway.existing_actions(d.writeback_ref for d in reserved)
    done = [d for d in reserved if d.writeback_ref in found]
    _mark_written(done)
    return [d for d in batch if d not in done]


def _reserve_action_numbers(batch, gateway):
    fresh = [d for d in batch if not d.writeback_ref]
    if not fresh:
        return
    for dispatch, number in zip(fresh, gateway.allocate_actions(len(fresh)), strict=True):
        dispatch.writeback_ref = number
    Dispatch.objects.bulk_update(fresh, ["writeback_ref"])


def _mark_written(dispatches):
    if dispatches:
        Dispatch.objects.filter(pk__in=[d.pk for d in dispatches]).update(
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
        act_numero=dispatch.writeback_ref,
    )
