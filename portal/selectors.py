"""Everything the portal reads about sends, always scoped to one customer.

Isolation rests on one rule: every portal queryset of sends starts from
``dispatches_for(customer)``, and ``customer`` always comes from the logged-in
user's profile, never from the URL or a form.
"""

import csv
from datetime import datetime, time, timedelta
from pathlib import Path

from django.apps import apps
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from relance.models import Dispatch

from .models import Handling

Status = Dispatch.Status

# Status groups the customer reasons in; several internal states read the same to them.
BOUNCE_STATUSES = (Status.BOUNCED, Status.REJECTED, Status.COMPLAINED)
GROUPS = {
    "delivered": ("délivrés", (Status.DELIVERED,)),
    "sent": ("envoyés (sans accusé)", (Status.SENT, Status.DEFERRED, Status.SENDING)),
    "bounced": ("non délivrés", BOUNCE_STATUSES),
    "diverted": ("réacheminés (courrier)", (Status.DIVERTED,)),
    "failed": ("en échec", (Status.FAILED, Status.NEEDS_REVIEW)),
}
STATUS_TO_GROUP = {status: key for key, (_, statuses) in GROUPS.items() for status in statuses}

# Sorting is a whitelist: the query string never names a column directly.
SORTS = {
    "date": "created_at",
    "piece": "doc_piece",
    "tiers": "tiers_name",
    "niveau": "level",
    "statut": "status",
    "echeance": "due_date",
    "reste": "remaining",
}
DEFAULT_SORT = "-date"

# How stale the dashboard chart's past months may be (see monthly_volumes).
CLOSED_MONTHS_SECONDS = 3600


def dispatches_for(customer):
    """The sends of ``customer``: the root of every portal query."""
    return Dispatch.objects.filter(customer=customer)


def dispatch_for(customer, pk):
    """One send of ``customer``, or ``Dispatch.DoesNotExist`` (a 404 for the views)."""
    return dispatches_for(customer).select_related("task").get(pk=pk)


def _local_day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def filter_history(queryset, *, date_from=None, date_to=None, status="", task=None, level=None,
                   debtor="", piece="", sort=DEFAULT_SORT):
    """Apply the history filters; every argument comes from a validated form."""
    if date_from:
        queryset = queryset.filter(created_at__gte=_local_day_start(date_from))
    if date_to:
        # The whole last day counts, in Paris time.
        queryset = queryset.filter(created_at__lt=_local_day_start(date_to + timedelta(days=1)))
    if status in GROUPS:
        queryset = queryset.filter(status__in=GROUPS[status][1])
    elif status:
        queryset = queryset.filter(status=status)
    if task is not None:
        queryset = queryset.filter(task=task)
    if level is not None:
        queryset = queryset.filter(level=level)
    if debtor:
        queryset = queryset.filter(Q(pcf_code__iexact=debtor) | Q(tiers_name__icontains=debtor))
    if piece:
        # A prefix search keeps an index usable on (customer, doc_piece); Gestimum pieces are upper case.
        queryset = queryset.filter(doc_piece__startswith=piece.upper())
    field = SORTS.get(sort.lstrip("-"), "created_at")
    direction = "-" if sort.startswith("-") else ""
    # The primary key breaks ties so that pages never repeat or skip a row.
    return queryset.order_by(f"{direction}{field}", f"{direction}pk")


def month_bounds(today=None):
    today = today or timezone.localdate()
    start = today.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return _local_day_start(start), _local_day_start(following)


def month_figures(customer, today=None):
    """This month's counts: sent (taken by the provider), delivered, bounced, diverted, failed."""
    start, end = month_bounds(today)
    counts = dict(
        dispatches_for(customer).filter(created_at__gte=start, created_at__lt=end)
        .values_list("status").annotate(n=Count("id")).order_by()
    )

    def total(statuses):
        return sum(counts.get(s, 0) for s in statuses)

    return {
        "sent": total(Dispatch.ACCEPTED_STATUSES),
        "delivered": total([Status.DELIVERED]),
        "bounced": total(BOUNCE_STATUSES),
        "diverted": total([Status.DIVERTED]),
        "failed": total([Status.FAILED]),
    }


def last_months(count=12, today=None):
    """The first day of each of the last ``count`` months, oldest first."""
    day = (today or timezone.localdate()).replace(day=1)
    months = [day]
    for _ in range(count - 1):
        day = (day - timedelta(days=1)).replace(day=1)
        months.append(day)
    return months[::-1]


def monthly_volumes(customer, months):
    """Counts per month, by status group and by level, for the dashboard chart.

    One grouped query. Grouping a year of a large customer's sends costs about a
    second, so the months before the current one are cached for
    ``CLOSED_MONTHS_SECONDS``: their statuses still move (late bounces, delivery
    receipts) but the chart can lag that much; the current month is always live.
    """
    current = _local_day_start(months[-1])
    key = f"portal:volumes:{customer.pk}:{months[0]:%Y-%m}:{months[-1]:%Y-%m}"
    closed = cache.get(key)
    if closed is None:
        closed = _volume_rows(customer, _local_day_start(months[0]), current)
        cache.set(key, closed, CLOSED_MONTHS_SECONDS)
    by_status = {key: [0] * len(months) for key in GROUPS}
    by_level = {}
    index = {m: i for i, m in enumerate(months)}
    for when, status, level, n in closed + _volume_rows(customer, current, None):
        position = index.get(_as_date(when))
        if position is None:
            continue
        group = STATUS_TO_GROUP.get(status)
        if group:
            by_status[group][position] += n
        by_level.setdefault(level, [0] * len(months))[position] += n
    return by_status, dict(sorted(by_level.items()))


def _volume_rows(customer, start, end):
    """[(month, status, level, count)] of the sends created in [start, end), pending ones aside."""
    queryset = dispatches_for(customer).filter(created_at__gte=start).exclude(status=Status.PENDING)
    if end is not None:
        queryset = queryset.filter(created_at__lt=end)
    month = TruncMonth("created_at", tzinfo=timezone.get_current_timezone())
    return list(queryset.annotate(month=month).values_list("month", "status", "level")
                .annotate(n=Count("id")).order_by())


def _as_date(value):
    if isinstance(value, datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    return value


def needing_action(customer, statuses):
    """Sends in ``statuses`` the customer has not marked as handled yet, oldest first."""
    return (dispatches_for(customer).filter(status__in=statuses, handled_at__isnull=True)
            .order_by("created_at", "pk"))


def pending_diverted(customer):
    return needing_action(customer, [Status.DIVERTED])


def pending_bounces(customer):
    return needing_action(customer, BOUNCE_STATUSES)


def mark_handled(customer, *, ids, user):
    """Mark the customer's diverted or bounced sends among ``ids`` as handled; return how many."""
    statuses = [Status.DIVERTED, *BOUNCE_STATUSES]
    with transaction.atomic():
        targets = list(needing_action(customer, statuses).filter(pk__in=ids)
                       .select_for_update().values_list("pk", flat=True))
        now = timezone.now()
        Handling.objects.bulk_create(
            [Handling(dispatch_id=pk, handled_by=user, handled_at=now) for pk in targets],
            ignore_conflicts=True,
        )
        # The flag on Dispatch is what the to-do lists filter on (partial index).
        Dispatch.objects.filter(pk__in=targets).update(handled_at=now)
    return len(targets)


def events_of(dispatch):
    """The delivery events of a send, oldest first, when delivery tracking is installed.

    The event model belongs to relance and may not exist yet: the timeline then
    shows only the creation and sending times.
    """
    try:
        model = apps.get_model("relance", "DeliveryEvent")
    except LookupError:
        return []
    order = "occurred_at" if hasattr(model, "occurred_at") else "pk"
    return list(model.objects.filter(dispatch=dispatch).order_by(order))


def postal_addresses(dispatches):
    """{dispatch pk: postal address} read from the divert manifests, each manifest read once.

    Dispatch does not keep the address; the manifest beside the diverted PDF
    does (one line per document, the PDF's file name in the last column).
    A path outside the customer's divert root is ignored, never read.
    """
    from relance.divert import MANIFEST_NAME

    manifests = {}
    found = {}
    for dispatch in dispatches:
        if not dispatch.divert_path:
            continue
        pdf = Path(dispatch.divert_path).resolve()
        if dispatch.customer.divert_root.resolve() not in pdf.parents:
            continue
        folder = pdf.parent
        if folder not in manifests:
            manifests[folder] = _read_manifest(folder / MANIFEST_NAME)
        found[dispatch.pk] = manifests[folder].get(pdf.name, "")
    return found


def _read_manifest(path):
    """{PDF file name: address} of one manifest (columns: ..., address, reason, file)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return {row[-1]: row[-3] for row in csv.reader(handle, delimiter=";") if len(row) >= 3}
    except OSError:
        return {}


def same_email(dispatch):
    """The other documents sent in the same e-mail (tasks sending one e-mail per debtor)."""
    return list(dispatch.same_email().only("pk", "doc_piece", "ech_numero", "remaining"))
