"""Read-only billing queries: what is billable, and what a month costs so far.

The billable unit: one document in an e-mail the mail provider accepted
(statuses sent, delivered, deferred, bounced, complained: the provider took
it), counted on the local (Europe/Paris) day it was sent. Diverted documents
(postal), failed, rejected, pending or interrupted sends are not billed, and
previews never create a send at all. An e-mail carrying several documents
counts once per document; the same document twice in one e-mail (two
échéances of one invoice) counts once.
"""

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models.functions import Coalesce
from django.utils import timezone

from relance.models import Dispatch

from .models import Statement, StatementLine

CENT = Decimal("0.01")


def round_cent(value):
    """Half-up to the cent: the commercial rule (0.005 -> 0.01), not banker's rounding."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def month_bounds(month):
    """First and last day of the month containing ``month`` (a date)."""
    first = month.replace(day=1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _local_midnight(day):
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def billable_dispatches(customer, start, end):
    """E-mail dispatches of ``customer`` accepted by the provider on local days ``start``..``end``
    (inclusive), ordered by send time, annotated with ``billed_at``."""
    return (
        Dispatch.objects.filter(customer=customer, channel=Dispatch.Channel.EMAIL,
                                status__in=Dispatch.ACCEPTED_STATUSES)
        # A send accepted before the provider's webhook filled sent_at still has its creation time.
        .annotate(billed_at=Coalesce("sent_at", "created_at"))
        .filter(billed_at__gte=_local_midnight(start), billed_at__lt=_local_midnight(end + timedelta(days=1)))
        .order_by("billed_at", "pk")
    )


def billable_units(customer, start, end):
    """One dispatch per billed unit (document × e-mail), in send order."""
    seen = set()
    units = []
    for dispatch in billable_dispatches(customer, start, end):
        key = _unit_key(dispatch)
        if key in seen:
            continue
        seen.add(key)
        units.append(dispatch)
    return units


def _unit_key(dispatch):
    return (dispatch.message_id or f"dispatch-{dispatch.pk}",
            dispatch.doc_numero or dispatch.doc_piece or f"ech-{dispatch.ech_numero}")


def late_units(contract, before):
    """Billable sends of months already invoiced that no invoice carries.

    A send recorded after its month's statement was computed — an interrupted
    send confirmed later by staff, say — belongs to a closed month; it is billed
    once, by the next statement (« régularisation »). Sends of months without an
    issued invoice are left to that month's own statement; sends an invoice
    carries, or that a credit note cancelled, are never billed again.
    """
    customer = contract.customer
    closed = set(Statement.objects.filter(
        customer=customer, kind=Statement.Kind.INVOICE, period_start__lt=before,
        status__in=Statement.IN_FORCE_STATUSES,
    ).values_list("period_start", flat=True))
    if not closed:
        return []
    carried = StatementLine.dispatches.through.objects.filter(
        statementline__statement__customer=customer,
        statementline__statement__kind=Statement.Kind.INVOICE,
    ).exclude(statementline__statement__status=Statement.Status.CREDITED).values("dispatch_id")
    first_closed = min(closed)
    candidates = [
        dispatch for dispatch in billable_dispatches(customer, max(first_closed, contract.start_date),
                                                      before - timedelta(days=1)).exclude(pk__in=carried)
        if timezone.localdate(dispatch.billed_at).replace(day=1) in closed
    ]
    if not candidates:
        return []
    # The same document twice in one e-mail is one unit: skip it if its twin was billed.
    billed_keys = {_unit_key(d) for d in Dispatch.objects.filter(
        customer=customer, pk__in=carried, message_id__in={d.message_id for d in candidates if d.message_id})}
    units = []
    for dispatch in candidates:
        key = _unit_key(dispatch)
        if key not in billed_keys:
            billed_keys.add(key)
            units.append(dispatch)
    return units


def service_days(contract, period_start, period_end):
    """The days of ``period_start``..``period_end`` covered by the contract, as (first, last), or None."""
    first = max(period_start, contract.start_date)
    last = min(period_end, contract.end_date) if contract.end_date else period_end
    if first > last:
        return None
    return first, last


def price_periods(contract, first, last):
    """Split ``first``..``last`` where the price changes: [(start, end, ContractPrice)]."""
    changes = list(contract.prices.filter(effective_from__gt=first, effective_from__lte=last)
                   .order_by("effective_from"))
    current = contract.price_on(first)
    periods = []
    start = first
    for change in changes:
        if current is not None:
            periods.append((start, change.effective_from - timedelta(days=1), current))
        start, current = change.effective_from, change
    if current is not None:
        periods.append((start, last, current))
    return periods


@dataclass
class Line:
    kind: str
    label: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    period_start: date | None = None
    period_end: date | None = None
    units: list = field(default_factory=list)  # the billed dispatches of a usage line


@dataclass
class Computation:
    """The lines and totals of a month, before anything is stored."""

    period_start: date
    period_end: date
    vat_rate: Decimal
    lines: list = field(default_factory=list)
    billed_units: int = 0

    @property
    def total_ht(self):
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def total_vat(self):
        # VAT is computed once on the total HT, not per line, as on the invoice.
        return round_cent(self.total_ht * self.vat_rate / 100)

    @property
    def total_ttc(self):
        return self.total_ht + self.total_vat


class BillingError(Exception):
    """A statement cannot be computed; the message is French and says what to fix."""


def compute_month(contract, month, *, usage_until=None):
    """Lines of the statement of ``contract`` for the month containing ``month``.

    ``usage_until`` stops counting sends at that day (the portal's estimate of
    the running month); the fees are the month's full ones. Returns None when
    the contract does not cover any day of the month.
    """
    from .texts import installation_label, late_usage_label, monthly_fee_label, usage_label

    period_start, period_end = month_bounds(month)
    covered = service_days(contract, period_start, period_end)
    if covered is None:
        return None
    first, last = covered
    result = Computation(period_start, period_end, contract.vat_rate)
    if period_start <= contract.start_date <= period_end and contract.installation_fee:
        result.lines.append(Line(StatementLine.Kind.INSTALLATION, installation_label(), Decimal(1),
                                 contract.installation_fee, round_cent(contract.installation_fee)))
    fee_price = contract.price_on(first)
    if fee_price is None:
        raise BillingError(f"{contract} : aucun tarif n'est applicable au {first:%d/%m/%Y}. "
                           "Ajoutez un tarif applicable à partir de cette date.")
    days_in_month = (period_end - period_start).days + 1
    days = (last - first).days + 1
    ratio = Decimal(days) / Decimal(days_in_month)
    result.lines.append(Line(
        StatementLine.Kind.MONTHLY_FEE, monthly_fee_label(first, last, days, days_in_month),
        Decimal(1) if days == days_in_month else ratio.quantize(Decimal("0.0001"), ROUND_HALF_UP),
        fee_price.monthly_fee,
        # Computed from the exact fraction, not from the rounded quantity shown.
        round_cent(fee_price.monthly_fee * days / days_in_month),
        first, last,
    ))
    usage_last = min(last, usage_until) if usage_until else last
    units = billable_units(contract.customer, first, usage_last) if first <= usage_last else []
    # The unit price applied to a send is the one in force on the day it was sent.
    dated = [(timezone.localdate(unit.billed_at), unit) for unit in units]
    for start, end, price in price_periods(contract, first, last):
        if usage_until and start > usage_last:
            break
        end = min(end, usage_last)
        counted = [unit for day, unit in dated if start <= day <= end]
        result.billed_units += len(counted)
        result.lines.append(Line(StatementLine.Kind.USAGE, usage_label(start, end), Decimal(len(counted)),
                                 price.unit_price, round_cent(len(counted) * price.unit_price), start, end,
                                 counted))
    if not usage_until:  # the statement itself, not the portal's running estimate
        for line in late_usage_lines(contract, period_start, late_usage_label):
            result.billed_units += len(line.units)
            result.lines.append(line)
    return result


def late_usage_lines(contract, before, label):
    """Régularisation lines for ``late_units``, one per unit price (the price of their send day)."""
    by_price = {}
    for unit in late_units(contract, before):
        price = contract.price_on(timezone.localdate(unit.billed_at))
        if price is not None:
            by_price.setdefault(price.unit_price, []).append(unit)
    lines = []
    for unit_price, units in by_price.items():
        days = [timezone.localdate(u.billed_at) for u in units]
        lines.append(Line(StatementLine.Kind.USAGE, label(min(days), max(days)), Decimal(len(units)),
                          unit_price, round_cent(len(units) * unit_price), min(days), max(days), units))
    return lines
