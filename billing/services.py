"""Billing write operations: generate a month's statement, issue it, record payment, credit it.

Numbering: a statement gets its number only when it is issued, inside the
transaction that issues it, from the year's ``NumberSequence`` row locked
with SELECT ... FOR UPDATE. Anything that fails during the issue (PDF
included) rolls the counter back with it, so numbers have no gap, and two
concurrent issues wait for each other, so they have no duplicate.
"""

import hashlib
import logging
from datetime import timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import texts
from .emails import send_statement
from .models import Contract, NumberSequence, Statement, StatementLine
from .selectors import BillingError, compute_month, month_bounds, round_cent

log = logging.getLogger(__name__)

SCHEDULE_NAME = "Facturation : relevés mensuels"
SCHEDULE_FUNC = "billing.tasks.generate_monthly_statements"
SCHEDULE_CRON = "0 6 1 * *"


def previous_month(today=None):
    today = today or timezone.localdate()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def generate_statement(customer, month):
    """Create (or refresh, while still a draft) the invoice of ``customer`` for ``month``.

    Returns the statement, or None when the contract covers no day of the
    month. An issued statement of that month is returned untouched: it can
    only be corrected by a credit note, after which a new draft is generated.
    """
    try:
        contract = customer.contract
    except Contract.DoesNotExist:
        raise BillingError(f"Le client {customer} n'a pas de contrat.") from None
    computation = compute_month(contract, month)
    if computation is None:
        return None
    try:
        with transaction.atomic():
            statement = (Statement.objects.select_for_update()
                         .filter(customer=customer, kind=Statement.Kind.INVOICE,
                                 period_start=computation.period_start)
                         .exclude(status=Statement.Status.CREDITED).first())
            if statement is not None and statement.is_final:
                return statement
            if statement is None:
                statement = Statement(customer=customer, contract=contract,
                                      period_start=computation.period_start)
            else:
                statement.lines.all().delete()
            statement.period_end = computation.period_end
            statement.vat_rate = computation.vat_rate
            statement.currency = contract.currency
            statement.billed_units = computation.billed_units
            statement.total_ht = computation.total_ht
            statement.total_vat = computation.total_vat
            statement.total_ttc = computation.total_ttc
            statement.save()
            for index, line in enumerate(computation.lines, 1):
                stored = StatementLine.objects.create(
                    statement=statement, position=index, kind=line.kind, label=line.label,
                    quantity=line.quantity, unit_price=line.unit_price, amount=line.amount,
                    period_start=line.period_start, period_end=line.period_end)
                if line.units:
                    stored.dispatches.set(line.units)
    except IntegrityError:
        # Another process created this month's draft at the same moment: use theirs.
        return Statement.objects.filter(customer=customer, kind=Statement.Kind.INVOICE,
                                        period_start=computation.period_start).exclude(
            status=Statement.Status.CREDITED).get()
    return statement


def _next_number(year):
    # The row may not exist yet for a new year; two first issues may race to create it,
    # so insert-if-absent, then lock the one row both will use.
    NumberSequence.objects.bulk_create([NumberSequence(year=year)], ignore_conflicts=True)
    sequence = NumberSequence.objects.select_for_update().get(year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return f"{texts.NUMBER_PREFIX}-{year}-{sequence.last_number:05d}"


def issue_statement(statement, *, today=None, send_email=True):
    """Number, freeze and print a draft; returns the issued statement (a fresh instance).

    Once the issue is committed, the PDF is e-mailed to the customer (unless
    ``send_email`` is false); a failed send is recorded on the statement and
    never undoes the issue.
    """
    from .pdf import render_statement_pdf

    seller = texts.seller()  # refuse before taking a number if the legal mentions are missing
    with transaction.atomic():
        statement = Statement.objects.select_for_update().select_related("customer", "contract").get(
            pk=statement.pk)
        if statement.status != Statement.Status.DRAFT:
            raise BillingError(f"Le relevé {statement.number} est déjà émis.")
        issue_date = today or timezone.localdate()
        statement.number = _next_number(issue_date.year)
        statement.issue_date = issue_date
        statement.due_date = issue_date + timedelta(days=statement.contract.payment_days)
        statement.issued_at = timezone.now()
        statement.seller = seller
        statement.buyer = texts.buyer(statement.customer)
        content = render_statement_pdf(statement)
        statement.pdf.save(f"{statement.number}.pdf", ContentFile(content), save=False)
        statement.pdf_sha256 = hashlib.sha256(content).hexdigest()
        statement.status = Statement.Status.ISSUED
        statement.save()
    log.info("Relevé %s émis pour %s", statement.number, statement.customer)
    if send_email:
        statement = send_statement(statement)
    return statement


def mark_paid(statement, *, paid_on=None, note=""):
    with transaction.atomic():
        statement = Statement.objects.select_for_update().get(pk=statement.pk)
        # A partly credited invoice still has its remaining lines to pay.
        if statement.kind != Statement.Kind.INVOICE or statement.status not in (
                Statement.Status.ISSUED, Statement.Status.PARTIALLY_CREDITED):
            raise BillingError(f"Seule une facture émise et non payée peut être marquée payée "
                               f"({statement.number or 'brouillon'} : {statement.get_status_display()}).")
        statement.status = Statement.Status.PAID
        statement.paid_at = paid_on or timezone.localdate()
        statement.payment_note = note
        statement.save()
    return statement


CREDITABLE_STATUSES = Statement.IN_FORCE_STATUSES


def creditable_lines(statement):
    """The lines of an issued invoice that no credit note has cancelled yet, in order."""
    return statement.lines.filter(credit_lines__isnull=True).order_by("position")


def create_credit_note(statement, *, reason, lines=None, today=None, send_email=True):
    """Cancel an issued invoice, in full or in part, with a credit note of its own number.

    ``lines`` (invoice lines or their ids) limits the credit note to those
    lines; by default every line not yet credited is. The credit note carries
    them with negative amounts and its VAT is recomputed on its own total. The
    invoice becomes "partiellement annulée" while some line is still
    uncredited, and "annulée par avoir" once every line is, which lets a
    corrected invoice be generated for the same month.
    """
    if not reason.strip():
        raise BillingError("Indiquez le motif de l'avoir.")
    with transaction.atomic():
        original = Statement.objects.select_for_update().get(pk=statement.pk)
        if original.kind != Statement.Kind.INVOICE or original.status not in CREDITABLE_STATUSES:
            raise BillingError(f"Seule une facture émise peut être annulée par un avoir "
                               f"({original.number or 'brouillon'} : {original.get_status_display()}).")
        available = list(creditable_lines(original))
        if lines is not None:
            wanted = {getattr(line, "pk", line) for line in lines}
            chosen = [line for line in available if line.pk in wanted]
            if not chosen or len(chosen) != len(wanted):
                raise BillingError(f"Choisissez au moins une ligne de la facture {original.number} "
                                   "qui n'a pas déjà fait l'objet d'un avoir.")
        else:
            chosen = available
        if not chosen:
            raise BillingError(f"Toutes les lignes de la facture {original.number} ont déjà un avoir.")
        total_ht = -sum((line.amount for line in chosen), Decimal("0.00"))
        total_vat = round_cent(total_ht * original.vat_rate / 100)
        units = sum(int(line.quantity) for line in chosen if line.kind == StatementLine.Kind.USAGE)
        credit = Statement.objects.create(
            customer=original.customer, contract=original.contract, kind=Statement.Kind.CREDIT_NOTE,
            period_start=original.period_start, period_end=original.period_end,
            credited_statement=original, vat_rate=original.vat_rate, currency=original.currency,
            billed_units=units, total_ht=total_ht, total_vat=total_vat, total_ttc=total_ht + total_vat,
            reason=reason.strip(),
        )
        for position, line in enumerate(chosen, 1):
            credit_line = StatementLine.objects.create(
                statement=credit, position=position, kind=line.kind, label=line.label,
                quantity=-line.quantity, unit_price=line.unit_price, amount=-line.amount,
                period_start=line.period_start, period_end=line.period_end, credited_line=line)
            # The credit note cancels exactly these sends: its CSV lists them.
            credit_line.dispatches.set(line.dispatches.all())
        credit = issue_statement(credit, today=today, send_email=False)
        fully = len(chosen) == len(available)
        original.status = Statement.Status.CREDITED if fully else Statement.Status.PARTIALLY_CREDITED
        original.save()
    if send_email:
        credit = send_statement(credit)
    return credit


def generate_month(month, *, issue=False):
    """Statements of every contract covering ``month``; returns (statements, errors)."""
    first, last = month_bounds(month)
    contracts = (Contract.objects.select_related("customer").filter(start_date__lte=last)
                 .exclude(end_date__lt=first).order_by("customer__name"))
    statements, errors = [], []
    for contract in contracts:
        try:
            statement = generate_statement(contract.customer, month)
            if statement is not None and issue and statement.status == Statement.Status.DRAFT:
                statement = issue_statement(statement)
        except BillingError as exc:
            log.warning("Relevé de %s non produit : %s", contract.customer, exc)
            errors.append(str(exc))
            continue
        if statement is not None:
            statements.append(statement)
    return statements, errors


def ensure_monthly_schedule():
    """Create or update the django-q2 schedule generating last month's statements on the 1st."""
    from django_q.models import Schedule

    schedule, _created = Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": SCHEDULE_FUNC, "schedule_type": Schedule.CRON, "cron": SCHEDULE_CRON,
                  "repeats": -1},
    )
    return schedule
