"""Customer-facing billing pages: running month, past statements, their PDF and the CSV audit.

Every view is scoped to one customer by ``customer_for``: the portal user's
own company, or, for staff, the one named by ``?customer=<slug>``.
"""

import csv

from django.contrib.auth.decorators import login_required
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import select_template
from django.utils import timezone

from relance.formatting import date_fr
from relance.models import Customer

from . import texts
from .models import Contract, Statement, StatementLine
from .selectors import BillingError, compute_month

# Statuses a customer sees; drafts are internal until issued.
VISIBLE_STATUSES = Statement.FINAL_STATUSES


def customer_for(request):
    """The customer whose billing ``request`` may see, or 404."""
    slug = request.GET.get("customer")
    if slug and request.user.is_staff:
        return get_object_or_404(Customer, slug=slug)
    profile = getattr(request.user, "portal_profile", None)
    customer = getattr(profile, "customer", None)
    if customer is None:
        raise Http404("Aucun client n'est associé à ce compte.")
    return customer


def _base_template():
    # The portal's layout when it exists, else billing's own minimal one.
    return select_template(["portal/base.html", "billing/base.html"]).template.name


@login_required
def billing_home(request):
    customer = customer_for(request)
    today = timezone.localdate()
    estimate, error = None, ""
    try:
        estimate = compute_month(customer.contract, today, usage_until=today)
    except Contract.DoesNotExist:
        error = "Aucun contrat de facturation n'est enregistré pour votre société."
    except BillingError as exc:
        error = str(exc)
    statements = (Statement.objects.filter(customer=customer, status__in=VISIBLE_STATUSES)
                  .select_related("credited_statement").order_by("-period_start", "-issue_date", "-pk"))
    return render(request, "billing/home.html", {
        "base_template": _base_template(), "customer": customer, "today": today,
        "estimate": estimate, "error": error, "statements": statements,
        "billable_unit": texts.BILLABLE_UNIT,
        "staff_query": f"?customer={customer.slug}" if request.user.is_staff else "",
    })


def _visible_statement(request, pk):
    customer = customer_for(request)
    return get_object_or_404(Statement, pk=pk, customer=customer, status__in=VISIBLE_STATUSES)


@login_required
def statement_pdf(request, pk):
    statement = _visible_statement(request, pk)
    if not statement.pdf:
        raise Http404("Ce relevé n'a pas de PDF.")
    return FileResponse(statement.pdf.open("rb"), content_type="application/pdf",
                        filename=f"{statement.number}.pdf")


CSV_HEADER = ["n°", "date d'envoi", "tiers (code)", "tiers", "pièce", "échéance (ECH_NUMERO)", "niveau",
              "destinataires", "statut", "Message-ID"]


@login_required
def statement_csv(request, pk):
    """One row per billed document, so the customer can count them against the statement."""
    statement = _visible_statement(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{statement.number}-envois.csv"'
    # A BOM and semicolons: what Excel in French expects when the customer opens it.
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=";")
    writer.writerow(CSV_HEADER)
    lines = statement.lines.filter(kind=StatementLine.Kind.USAGE).order_by("position")
    if statement.credited_statement_id and not lines.filter(credited_line__isnull=False).exists():
        # Credit notes made before partial credit notes existed did not copy the sends they
        # cancel; they cancelled the whole invoice, so its lines are theirs.
        lines = statement.credited_statement.lines.filter(kind=StatementLine.Kind.USAGE).order_by("position")
    for line in lines:
        units = line.dispatches.annotate(billed_at=Coalesce("sent_at", "created_at")).order_by(
            "billed_at", "pk")
        for index, unit in enumerate(units, 1):
            writer.writerow([
                index, timezone.localtime(unit.billed_at).strftime("%d/%m/%Y %H:%M"), unit.pcf_code,
                unit.tiers_name, unit.doc_piece, unit.ech_numero, unit.level, unit.to,
                unit.get_status_display(), unit.message_id,
            ])
        writer.writerow([])
        writer.writerow([f"Total du {date_fr(line.period_start)} au {date_fr(line.period_end)}",
                         str(line.quantity.normalize().copy_abs())])
    return response
