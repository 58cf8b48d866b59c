"""The document PDF joined to each reminder.

Two print models (``ReminderTask.print_model``):

* ``template``: an HTML print model (``InvoiceTemplate`` or the default
  ``templates/relance/invoice_default.html``) rendered with Django's template
  engine and turned into a PDF by xhtml2pdf;
* ``archive``: the PDF Gestimum already printed, found in an archive folder.

Everything that can go wrong here raises ``RenderError`` with a French
message naming the document, so the engine can record it on the dispatch and
carry on with the next échéance.

The nightly run renders thousands of invoices in one process, so the default
template is compiled once, custom ones are cached by source, and the
xhtml2pdf resource policy is built once.
"""

import fnmatch
import functools
import glob
import io
import logging
import os
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateDoesNotExist, TemplateSyntaxError
from django.utils import timezone
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

from .gestimum.types import Candidate, DocumentInfo, DocumentLineInfo, EcheanceInfo, TiersInfo
from .paths import PathEscapeError, resolve_inside

log = logging.getLogger(__name__)

DEFAULT_INVOICE_TEMPLATE = "relance/invoice_default.html"
FORMAT_LIBRARY = "relance.templatetags.relance_fr"
DOCUMENT_TITLES = {"F": "Facture", "A": "Avoir"}
ARCHIVE_PLACEHOLDERS = ("DOC_PIECE", "DOC_NUMERO", "PCF_CODE")
CENT = Decimal("0.01")


class RenderError(Exception):
    """The document PDF could not be produced; the message is French and names the document."""

    def __init__(self, message, detail=""):
        super().__init__(message)
        self.detail = detail  # the cause alone, without the document's name


# --- Template engine --------------------------------------------------------

@functools.cache
def _engine(debug=False):
    """A Django engine for print models, with the French filters always loaded.

    Separate from the site's engine so print models need no ``{% load %}`` and
    never see the request context processors. Built from the site engine's
    directories so ``{% extends "relance/invoice_default.html" %}`` works in a
    custom model. ``debug=True`` is only used to validate a model: it records
    the line of a syntax error.
    """
    from django.template import engines

    site = engines["django"].engine
    return Engine(
        dirs=site.dirs,
        app_dirs=site.app_dirs,
        libraries=site.libraries,
        builtins=[FORMAT_LIBRARY],
        autoescape=True,
        debug=debug,
    )


@functools.cache
def _default_template():
    return _engine().get_template(DEFAULT_INVOICE_TEMPLATE)


@functools.lru_cache(maxsize=64)
def _compiled(html):
    # Keyed on the source, so an edited InvoiceTemplate is recompiled without any invalidation.
    return _engine().from_string(html)


# --- xhtml2pdf --------------------------------------------------------------

# No network, no local files: a print model is self-contained HTML + CSS with the
# standard PDF fonts. Refusing at the fetcher covers every path (images, @import,
# @font-face, pdf: tags), which link_callback alone does not.
_RESOURCE_POLICY = ResourceAccessPolicy.server(
    base_dir=None, allow_remote=False, max_render_seconds=300, max_fetch_seconds=1,
)


def _link_callback(uri, rel):
    """Belt and braces with the policy: never hand a remote URL to the fetcher."""
    if re.match(r"\s*(https?:)?//", uri or "", re.IGNORECASE):
        # A falsy return would keep the original URI: point it at an empty inline resource.
        return "data:,"
    return uri


def _html_to_pdf(html, *, what):
    buffer = io.BytesIO()
    try:
        status = pisa.CreatePDF(
            html, dest=buffer, encoding="utf-8", link_callback=_link_callback,
            resource_policy=_RESOURCE_POLICY,
        )
    except Exception as exc:  # xhtml2pdf raises a wide variety of errors on bad markup
        log.warning("xhtml2pdf failed on %s", what, exc_info=True)
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise RenderError(f"Le PDF de {what} n'a pas pu être produit : {detail}", detail) from exc
    if status.err:
        errors = [msg for mode, _line, msg, _frag in getattr(status, "log", []) if mode == "error"]
        detail = errors[0] if errors else "erreur de mise en page"
        raise RenderError(f"Le PDF de {what} n'a pas pu être produit : {detail}", detail)
    return buffer.getvalue()


# --- Context ----------------------------------------------------------------

_ARTICLES = {"Facture": "la facture", "Avoir": "l'avoir"}


def _title(candidate):
    doc = candidate.document
    return DOCUMENT_TITLES.get(doc.stype if doc else "F", "Document")


def _piece(candidate):
    doc = candidate.document
    return (doc.piece if doc else "") or candidate.echeance.piece or candidate.echeance.numero


def _describe(candidate):
    """How messages name the document: « la facture FA000123 »."""
    return f"{_ARTICLES.get(_title(candidate), 'le document')} {_piece(candidate)}"


def vat_breakdown(lines):
    """VAT base and amount per rate, from the document lines, rates ascending.

    The ERP's own total VAT stays the reference on the invoice; this is the
    legally required split by rate (CGI art. 242 nonies A), rounded per rate.
    """
    bases = {}
    for line in lines:
        rate = line.vat_rate if line.vat_rate is not None else Decimal("0")
        bases[rate] = bases.get(rate, Decimal("0")) + (line.total or Decimal("0"))
    return [
        {"rate": rate, "base": base.quantize(CENT, ROUND_HALF_UP),
         "vat": (base * rate / 100).quantize(CENT, ROUND_HALF_UP)}
        for rate, base in sorted(bases.items())
        if base or rate
    ]


def _format_iban(iban):
    compact = re.sub(r"\s+", "", iban or "").upper()
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


def invoice_context(*, customer, candidate, today=None):
    """The variables a print model sees. Documented at the top of invoice_default.html."""
    doc = candidate.document
    ech = candidate.echeance
    tiers = candidate.tiers
    lines = list(doc.lines) if doc else []
    today = today or timezone.localdate()
    if doc:
        total_ht, total_vat, total_ttc, deposit = doc.total_ht, doc.total_vat, doc.total_ttc, doc.deposit
    else:
        # Échéance without its document (purged, or a manual entry): print what we know.
        total_ht = total_vat = None
        total_ttc, deposit = ech.amount, Decimal("0")
    deposit = deposit or Decimal("0")
    ecb = Decimal(str(settings.LATE_PAYMENT_ECB_RATE))
    margin = Decimal(str(settings.LATE_PAYMENT_MARGIN_POINTS))
    due_date = ech.due_date
    return {
        "company": customer,
        "customer": customer,
        "company_address_lines": [ln.strip() for ln in (customer.address or "").splitlines() if ln.strip()],
        "company_iban": _format_iban(customer.iban),
        "tiers": tiers,
        "document": doc,
        "echeance": ech,
        "lines": lines,
        "billing_lines": (doc.billing_lines if doc else []) or tiers.postal_lines,
        "document_title": _title(candidate),
        "piece": _piece(candidate),
        "document_date": (doc.date if doc else None) or ech.issued,
        "customer_reference": doc.reference if doc else "",
        "payment_mode": ech.payment_mode or (doc.payment_mode if doc else ""),
        "total_ht": total_ht,
        "total_vat": total_vat,
        "total_ttc": total_ttc,
        "deposit": deposit,
        "net_to_pay": total_ttc - deposit if total_ttc is not None else None,
        "vat_breakdown": vat_breakdown(lines),
        "amount": ech.amount,
        "received": ech.received,
        "remaining": ech.remaining,
        "due_date": due_date,
        "days_overdue": max((today - due_date).days, 0) if due_date else 0,
        "today": today,
        "ecb_rate": ecb,
        "margin_points": margin,
        "late_penalty_rate": ecb + margin,
        "recovery_indemnity": Decimal(str(settings.RECOVERY_INDEMNITY)),
    }


# --- Template print model ---------------------------------------------------

def _inject_css(html, css):
    """Put the model's CSS in a <style> after the template's own, so it wins the cascade."""
    if not css or not css.strip():
        return html
    # A stray "</style" in the CSS would close the element early and spill into the page.
    block = "<style>\n" + re.sub(r"</(style)", r"<\\/\1", css, flags=re.IGNORECASE) + "\n</style>\n"
    match = re.search(r"</head\s*>", html, re.IGNORECASE)
    if match:
        return html[:match.start()] + block + html[match.start():]
    return block + html


def render_invoice_html(*, customer, candidate, invoice_template=None, today=None):
    """The HTML given to xhtml2pdf (also useful for an HTML preview)."""
    what = _describe(candidate)
    context = Context(invoice_context(customer=customer, candidate=candidate, today=today))
    try:
        if invoice_template is None:
            template = _default_template()
        else:
            template = _compiled(invoice_template.html)
        html = template.render(context)
    except (TemplateSyntaxError, TemplateDoesNotExist) as exc:
        name = f"« {invoice_template} »" if invoice_template is not None else "par défaut"
        raise RenderError(f"Le modèle d'impression {name} est invalide ({exc}) : "
                          f"impossible d'imprimer {what}.") from exc
    except Exception as exc:  # a filter or attribute raising: never a traceback for the user
        log.warning("Template rendering failed for %s", what, exc_info=True)
        raise RenderError(f"Erreur dans le modèle d'impression en imprimant {what} : {exc}") from exc
    if invoice_template is not None:
        html = _inject_css(html, invoice_template.css)
    return html


def render_invoice_pdf(*, customer, candidate, invoice_template=None, today=None) -> bytes:
    """Render the invoice of ``candidate`` as a PDF, with ``invoice_template`` or the default model."""
    html = render_invoice_html(customer=customer, candidate=candidate,
                               invoice_template=invoice_template, today=today)
    return _html_to_pdf(html, what=_describe(candidate))


# --- Validation and sample data ---------------------------------------------

def sample_customer():
    """An unsaved sender company with every field filled, for previews and validation."""
    from .models import Customer

    return Customer(
        name="Atelier Durand SAS", slug="atelier-durand",
        address="12 rue des Tanneurs\nZA des Prés\n69003 Lyon",
        siret="12345678900017", vat_number="FR32123456789",
        legal_form="SAS au capital de 50 000 €", rcs="RCS Lyon 123 456 789",
        phone="04 78 00 00 00", iban="FR7630006000011234567890189",
    )


def sample_candidate(line_count=None):
    """A realistic échéance with its invoice and French data, for previews, validation and tests.

    Remaining due is 1 234,56 € (1 937,55 € paid of a 3 172,11 € échéance, after a 700 € deposit).
    ``line_count`` pads the invoice with extra lines (to exercise page breaks).
    """
    d = Decimal
    lines = [
        DocumentLineInfo(1, "PREST-INST", "Installation et paramétrage du logiciel",
                         d("1"), d("850.00"), d("850.00"), d("20")),
        DocumentLineInfo(2, "LIC-ANN", "Licence annuelle — 5 postes\nDu 01/01/2026 au 31/12/2026",
                         d("5"), d("320.00"), d("1600.00"), d("20")),
        DocumentLineInfo(3, "FORM-J", "Formation sur site (journée)",
                         d("1.5"), d("480.00"), d("720.00"), d("20")),
        DocumentLineInfo(4, "DOC-PAP", "Documentation imprimée",
                         d("2"), d("32.28"), d("64.56"), d("5.5")),
        DocumentLineInfo(5, "", "Livraison offerte", d("0"), d("0"), d("0"), d("0")),
    ]
    if line_count:
        for n in range(len(lines) + 1, line_count + 1):
            lines.append(DocumentLineInfo(n, f"ART-{n:04d}", f"Article de démonstration n° {n}",
                                          d("1"), d("0"), d("0"), d("20")))
    # 850 + 1600 + 720 = 3170 at 20 % (634,00) ; 64,56 at 5,5 % (3,55).
    total_ht, total_vat = d("3234.56"), d("637.55")
    document = DocumentInfo(
        numero="0000004521", piece="FA000123", stype="F", date=date(2026, 1, 15),
        reference="BC-2026-017", payment_mode="Virement 30 jours", representative="JD",
        total_ht=total_ht, total_vat=total_vat, total_ttc=total_ht + total_vat, deposit=d("700.00"),
        billing_name="Boulangerie Martin & Fils", billing_street="8 place du Marché",
        billing_complement="Service comptabilité", billing_postcode="38000", billing_city="Grenoble",
        lines=lines,
    )
    echeance = EcheanceInfo(
        numero="0000009876", doc_numero=document.numero, piece=document.piece, pcf_code="C00042",
        label="Facture FA000123", issued=document.date, due_date=date(2026, 2, 14),
        payment_mode="Virement", amount=document.total_ttc - document.deposit,
        received=d("1937.55"), reminders_sent=1,
    )
    tiers = TiersInfo(
        code="C00042", name="Boulangerie Martin & Fils", street="8 place du Marché",
        postcode="38000", city="Grenoble", country="FR", email="compta@boulangerie-martin.fr",
        family="BOUL", siret="98765432100012",
    )
    return Candidate(echeance=echeance, tiers=tiers, document=document)


# Django's template errors are in English; the common ones are said again in French.
_SYNTAX_ERRORS_FR = (
    (re.compile(r"Invalid block tag on line \d+: '([^']+)'"), "balise inconnue « {{% {0} %}} »"),
    (re.compile(r"Unclosed tag on line \d+: '([^']+)'. Looking for one of: (.*)\."),
     "balise « {{% {0} %}} » non fermée (attendu : {1})"),
    (re.compile(r"Invalid filter: '([^']+)'"), "filtre inconnu « {0} »"),
    (re.compile(r"Could not parse the remainder: '([^']*)' from '([^']*)'"),
     "expression illisible « {1} »"),
    (re.compile(r"Empty variable tag"), "variable vide « {{{{ }}}} »"),
)


def _syntax_error_message(exc):
    debug = getattr(exc, "template_debug", None)
    where = f", ligne {debug['line']}" if debug and debug.get("line") else ""
    detail = str(exc)
    for regex, french in _SYNTAX_ERRORS_FR:
        match = regex.search(detail)
        if match:
            detail = french.format(*match.groups())
            break
    return f"Erreur de syntaxe dans le modèle{where} : {detail}."


def validate_invoice_template(html, css=""):
    """Raise ValidationError (French) if ``html`` does not compile or does not render to a PDF.

    Renders against ``sample_candidate()``, so a model that only fails with real data
    (e.g. a filter on a missing value) may still pass; the preview shows the result.
    """
    try:
        template = _engine(debug=True).from_string(html or "")
    except TemplateSyntaxError as exc:
        raise ValidationError(_syntax_error_message(exc), code="syntax") from exc

    candidate = sample_candidate()
    customer = sample_customer()
    try:
        rendered = template.render(Context(invoice_context(customer=customer, candidate=candidate)))
    except TemplateDoesNotExist as exc:
        raise ValidationError(f"Modèle introuvable : « {exc} » ({{% extends %}} ou {{% include %}}).",
                              code="missing") from exc
    except TemplateSyntaxError as exc:  # in an included or extended template
        raise ValidationError(_syntax_error_message(exc), code="syntax") from exc
    except Exception as exc:
        raise ValidationError(f"Le modèle ne s'affiche pas avec les données d'exemple : {exc}",
                              code="render") from exc
    try:
        _html_to_pdf(_inject_css(rendered, css), what=_describe(candidate))
    except RenderError as exc:
        raise ValidationError(f"Le PDF d'essai (données d'exemple) n'a pas pu être produit : {exc.detail}",
                              code="pdf") from exc


# --- Archive print model ----------------------------------------------------

_UNSAFE_VALUE_CHARS = re.compile(r"[\\/:\x00-\x1f]")


def _sanitize_value(value):
    """A Gestimum value as a file-name fragment: no path separator, never "." or ".."."""
    value = _UNSAFE_VALUE_CHARS.sub("_", str(value or "").strip())
    return "_" * len(value) if value in (".", "..") else value


def archive_file_name(pattern, candidate, *, as_glob=False):
    """``{DOC_PIECE}.pdf`` -> ``FA000123.pdf`` for ``candidate``.

    With ``as_glob``, the substituted values are escaped so that a "[" or "*" in
    a Gestimum value matches literally; only the pattern's own * and ? are wildcards.
    """
    doc = candidate.document
    values = {
        "DOC_PIECE": (doc.piece if doc else "") or candidate.echeance.piece,
        "DOC_NUMERO": (doc.numero if doc else "") or candidate.echeance.doc_numero,
        "PCF_CODE": candidate.tiers.code or candidate.echeance.pcf_code,
    }
    result = pattern or ""
    for name in ARCHIVE_PLACEHOLDERS:
        value = _sanitize_value(values[name])
        result = result.replace("{" + name + "}", glob.escape(value) if as_glob else value)
    return result


def find_archived_pdf(*, archive_folder, pattern, candidate) -> Path:
    """The newest file of ``ARCHIVE_ROOT/archive_folder`` whose name matches ``pattern``.

    Matching is case-insensitive: archives are usually written by Gestimum on a
    Windows server, where FA000123.PDF and fa000123.pdf are the same file.
    """
    what = _describe(candidate)
    raw = (pattern or "").strip()
    if not raw:
        raise RenderError(f"Aucun nom de fichier d'archive n'est configuré ({what}).")
    if "/" in raw or "\\" in raw or ".." in raw:
        raise RenderError(f"Nom de fichier d'archive refusé : « {raw} » (ni / ni \\ ni ..).")
    try:
        folder = resolve_inside(settings.ARCHIVE_ROOT, archive_folder)
    except PathEscapeError as exc:
        raise RenderError(f"Dossier d'archive refusé ({what}) : {exc}") from exc
    name = archive_file_name(raw, candidate)
    where = f"« {archive_folder or '.'} »"
    if not folder.is_dir():
        raise RenderError(f"Le dossier d'archive {where} n'existe pas ({what}).")

    matches = []
    if not glob.has_magic(raw) and (folder / name).is_file():
        # Fast path: thousands of lookups per night in folders of thousands of PDFs.
        matches.append(folder / name)
    else:
        regex = re.compile(fnmatch.translate(archive_file_name(raw, candidate, as_glob=True)),
                           re.IGNORECASE)
        with os.scandir(folder) as entries:
            matches = [Path(e.path) for e in entries if regex.match(e.name) and e.is_file()]
    root = Path(settings.ARCHIVE_ROOT).resolve()
    # A symbolic link in the archive must not lead outside it.
    matches = [p for p in matches if root in p.resolve().parents]
    if not matches:
        raise RenderError(f"Aucun PDF d'archive ne correspond à {name} dans {where} ({what}).")
    return max(matches, key=lambda p: (p.stat().st_mtime, p.name))


# --- Dispatch ---------------------------------------------------------------

def document_pdf(*, task, customer, candidate, today=None) -> bytes:
    """The PDF to attach for ``candidate``, following the task's print model."""
    if task.print_model == "archive":
        path = find_archived_pdf(archive_folder=task.archive_folder, pattern=task.archive_pattern,
                                 candidate=candidate)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RenderError(f"Lecture impossible de l'archive {path.name} "
                              f"({_describe(candidate)}) : {exc.strerror or exc}") from exc
        if not data.startswith(b"%PDF-"):
            raise RenderError(f"Le fichier d'archive {path.name} n'est pas un PDF ({_describe(candidate)}).")
        return data
    return render_invoice_pdf(customer=customer, candidate=candidate,
                              invoice_template=task.invoice_template, today=today)


def pdf_filename(candidate) -> str:
    """Attachment name, e.g. ``Facture_FA000123.pdf``: ASCII letters, digits, - and _ only."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", _piece(candidate) or "").strip("_") or "document"
    return f"{_title(candidate)}_{safe}.pdf"
