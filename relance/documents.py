"""Where a run's invoice PDFs come from, and where the PDFs as sent are kept.

A PDF is rendered once per document state: a level-2 reminder of a document
that has not changed since level 1 reuses the stored PDF (same data
fingerprint), which makes later levels several times cheaper than the first.
"""

import hashlib
import logging
import re

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from . import rendering
from .models import Dispatch, ReminderTask

logger = logging.getLogger(__name__)

# A print model using these variables prints something that changes every day:
# its PDFs are not reused from one day to the next (comments do not count).
DATED_VARIABLES = re.compile(r"\b(today|days_overdue|reminders_sent)\b")
TEMPLATE_COMMENTS = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}", re.DOTALL)


class DocumentPdfs:
    def __init__(self, *, task, customer, today):
        self.task = task
        self.customer = customer
        self.today = today
        self._last = (None, None)  # one-entry render cache: memory stays flat
        self._print_identity = None  # what every PDF of this run shares

    def render(self, candidate):
        key = (candidate.document_data_key, candidate.echeance.numero, candidate.echeance.received)
        if self._last[0] != key:
            pdf = rendering.document_pdf(task=self.task, customer=self.customer, candidate=candidate,
                                         today=self.today)
            self._last = (key, pdf)
        return self._last[1]

    def data_hash(self, candidate):
        """Fingerprint of everything the PDF prints: same fingerprint, same PDF.

        Empty for archived PDFs, which are read, not rendered. Covers the document,
        the tiers, the échéance as it stands (a partial payment changes the remaining
        printed), the sender's details, the print model and the late-payment figures.
        """
        if self.task.print_model == ReminderTask.PrintModel.ARCHIVE:
            return ""
        if self._print_identity is None:
            template = self.task.invoice_template
            source = (template.html + (template.css or "")) if template else getattr(
                rendering._default_template(), "source", rendering.DEFAULT_INVOICE_TEMPLATE)
            customer = [str(f.value_from_object(self.customer)) for f in self.customer._meta.concrete_fields]
            dated = DATED_VARIABLES.search(TEMPLATE_COMMENTS.sub("", source)) is not None
            self._print_identity = (repr((source, customer, settings.LATE_PAYMENT_ECB_RATE,
                                          settings.LATE_PAYMENT_MARGIN_POINTS,
                                          settings.RECOVERY_INDEMNITY, self.today if dated else None)),
                                    dated)
        identity, dated = self._print_identity
        ech = candidate.echeance
        printed = (identity, candidate.document_data_key, repr(candidate.document),
                   repr(candidate.tiers), ech.numero, ech.doc_numero, ech.piece, ech.pcf_code, ech.label,
                   ech.issued, ech.due_date, ech.payment_mode, ech.amount, ech.received,
                   ech.reminders_sent if dated else None)
        return hashlib.sha256(repr(printed).encode()).hexdigest()

    def stored_for(self, hashes):
        """{fingerprint: stored PDF name} of identical documents already sent (one query)."""
        wanted = {h for h in hashes if h}
        if not wanted:
            return {}
        return dict(Dispatch.objects.filter(customer=self.customer, pdf_data_hash__in=wanted)
                    .exclude(pdf="").values_list("pdf_data_hash", "pdf"))

    def get(self, candidate, data_hash, stored):
        """The PDF stored for an identical document if there is one, else a fresh render."""
        name = stored.get(data_hash) if data_hash else None
        if name:
            try:
                with default_storage.open(name, "rb") as handle:
                    return handle.read()
            except OSError:
                logger.warning("PDF %s introuvable : le document est imprimé à nouveau", name)
        return self.render(candidate)


def store_pdf(pdf):
    """Keep the PDF as sent, content-addressed: an unchanged document is stored once.

    Returns the Dispatch fields that point to it.
    """
    digest = hashlib.sha256(pdf).hexdigest()
    name = f"dispatches/{digest[:2]}/{digest}.pdf"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(pdf))
    return {"pdf": name, "pdf_sha256": digest}


def stored_pdf_response(dispatch, *, filename, as_attachment=False):
    """The PDF as sent, for a view that has already checked who may see this Dispatch.

    Invoices are never served from MEDIA_URL: they are not public files.
    """
    if not dispatch.pdf:
        raise Http404("Aucun PDF n'est enregistré pour cet envoi.")
    try:
        handle = dispatch.pdf.open("rb")
    except FileNotFoundError:
        raise Http404("Le fichier PDF de cet envoi est introuvable sur le serveur.") from None
    return FileResponse(handle, content_type="application/pdf", as_attachment=as_attachment,
                        filename=filename)
