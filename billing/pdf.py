"""The statement PDF: a Django template turned into a PDF by xhtml2pdf, as the invoices are."""

from django.conf import settings
from django.template.loader import render_to_string

from relance.rendering import _html_to_pdf

from . import texts

TEMPLATE = "billing/statement_pdf.html"


def statement_context(statement):
    seller = statement.seller or {}
    buyer = statement.buyer or {}
    return {
        "statement": statement,
        "title": "Avoir" if statement.kind == statement.Kind.CREDIT_NOTE else "Facture",
        "lines": list(statement.lines.all()),
        "seller": seller,
        "seller_address_lines": [line for line in (seller.get("address") or "").splitlines() if line.strip()],
        "buyer": buyer,
        "buyer_address_lines": [line for line in (buyer.get("address") or "").splitlines() if line.strip()],
        "original": statement.credited_statement,
        # A credit note cancelling only some lines of its invoice says so.
        "partial": bool(statement.credited_statement_id) and statement.lines.count()
        < statement.credited_statement.lines.count(),
        "payment_terms": texts.payment_terms(),
        "billable_unit": texts.BILLABLE_UNIT,
        "recovery_indemnity": settings.RECOVERY_INDEMNITY,
    }


def render_statement_pdf(statement):
    """PDF bytes of ``statement``; raises ``relance.rendering.RenderError`` on a layout error."""
    html = render_to_string(TEMPLATE, statement_context(statement))
    return _html_to_pdf(html, what=f"le relevé {statement.number or '(brouillon)'}")
