"""When each reminder task runs, on which cluster, and who holds it while it runs.

django-q2 evaluates CRON schedules with croniter in the server's time zone and
knows nothing of business days. So the django-q2 ``Schedule`` of a task is only
the alarm clock: the decision "is this task due now" is made here, from the
task's own cron read as wall-clock time in the customer's time zone, its
business calendar and its catch-up window. ``ReminderTask.next_run_at`` holds
the next slot (aware, UTC) and the Schedule's ``next_run`` is kept equal to it.

Exactly once rests on two conditional UPDATEs: advancing ``next_run_at`` from
the slot being run (two clusters firing the same slot: one wins) and
``claimed_until`` (a manual run during a scheduled one: one wins). Under those,
the Dispatch unique constraint still guards each échéance.
"""

import logging
import zoneinfo
from datetime import UTC, datetime, time, timedelta

from croniter import croniter
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule

from . import business_calendar
from .models import ReminderTask, TaskRun

logger = logging.getLogger(__name__)

SCHEDULE_FUNC = "relance.tasks.run_scheduled_task"
# How far ahead a slot is looked for; a cron that only matches excluded days
# (e.g. "0 20 25 12 *" without holidays) has no next run.
HORIZON = timedelta(days=2 * 366)
MAX_STEPS = 50_000


class TaskAlreadyRunning(Exception):
    """Another run holds the task; the message is French."""


# -- wall-clock arithmetic ---------------------------------------------------------------

def _exists(naive, tz):
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def wall_clock_to_instant(naive, tz):
    """The instant (UTC) of a local wall-clock time.

    A time that occurs twice (autumn change) is taken at its first occurrence
    (fold=0), so it runs once. A time that does not exist (spring change, e.g.
    02:30 in Paris) is moved to the first wall-clock minute that exists (03:00).
    """
    probe = naive
    while not _exists(probe, tz):
        probe = probe.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return probe.replace(tzinfo=tz, fold=0).astimezone(UTC)


def customer_tz(task):
    return zoneinfo.ZoneInfo(task.customer.timezone)


def next_occurrence(task, *, after):
    """The first slot of ``task`` strictly after ``after`` (aware), or None."""
    tz = customer_tz(task)
    rules = business_calendar.task_rules(task)
    calendar_on = task.skip_weekends or task.skip_holidays
    postpone = task.skipped_day_rule != ReminderTask.SkippedDayRule.SKIP  # empty = postpone
    local_after = after.astimezone(tz).replace(tzinfo=None)
    # croniter on naive local datetimes: 20:00 stays 20:00 whatever the UTC offset.
    occurrences = croniter(task.schedule, local_after)
    best = best_naive = None
    for _ in range(MAX_STEPS):
        natural = occurrences.get_next(datetime)
        if natural > local_after + HORIZON or (best_naive is not None and natural >= best_naive):
            # A postponed slot is never earlier than its natural time: nothing better comes.
            break
        naive = natural
        if calendar_on and not business_calendar.is_business_day(natural.date(), **rules):
            if not postpone:
                continue
            naive = datetime.combine(business_calendar.next_business_day(natural.date(), **rules),
                                     natural.time())
        moment = wall_clock_to_instant(naive, tz)
        if moment <= after:
            # The second pass of an ambiguous hour: that wall-clock time already ran.
            continue
        if best is None or moment < best:
            best, best_naive = moment, naive
    return best


def grace_deadline(task, slot):
    """Until when a missed ``slot`` may still run after an outage."""
    if task.grace_hours is not None:
        return slot + timedelta(hours=task.grace_hours)
    tz = customer_tz(task)
    next_day = slot.astimezone(tz).date() + timedelta(days=1)
    return wall_clock_to_instant(datetime.combine(next_day, time.min), tz)


# -- the django-q2 Schedule of a task -------------------------------------------------------

def schedule_name(task_id):
    return f"relance-tache-{task_id}"


def is_schedulable(task):
    return task.active and task.customer.active


def sync_task_schedule(task, *, now=None):
    """Create, update or remove the django-q2 Schedule of ``task``; return it or None."""
    now = now or timezone.now()
    next_run = next_occurrence(task, after=now) if is_schedulable(task) else None
    # update(): saving the instance would fire post_save again.
    ReminderTask.objects.filter(pk=task.pk).update(next_run_at=next_run)
    task.next_run_at = next_run
    if next_run is None:
        remove_task_schedule(task.pk)
        return None
    schedule, _ = Schedule.objects.update_or_create(
        name=schedule_name(task.pk),
        defaults={
            "func": SCHEDULE_FUNC, "args": repr(task.pk), "kwargs": None,
            "schedule_type": Schedule.CRON, "cron": task.schedule, "repeats": -1,
            "next_run": next_run, "cluster": task.customer.worker_cluster or None,
        },
    )
    return schedule


def remove_task_schedule(task_id):
    Schedule.objects.filter(name=schedule_name(task_id)).delete()


def sync_all_schedules(*, now=None):
    """Repair any drift between tasks and django-q2 Schedules; return (kept, removed)."""
    kept = []
    for task in ReminderTask.objects.select_related("customer"):
        if sync_task_schedule(task, now=now) is not None:
            kept.append(schedule_name(task.pk))
    stray = Schedule.objects.filter(func=SCHEDULE_FUNC).exclude(name__in=kept)
    removed, _ = stray.delete()
    return len(kept), removed


# -- claiming a task for one run ------------------------------------------------------------

def claim_task(task, *, now=None):
    """Hold ``task`` for one run; return the claim, or None if another run holds it.

    One conditional UPDATE: on PostgreSQL a concurrent UPDATE of the same row
    waits, then re-reads ``claimed_until`` and matches nothing. The claim
    expires with the worker timeout, the time after which django-q2 kills a run.
    """
    now = now or timezone.now()
    until = now + timedelta(seconds=settings.Q_CLUSTER["timeout"])
    won = ReminderTask.objects.filter(pk=task.pk).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    ).update(claimed_until=until, last_run_at=now)
    if not won:
        return None
    task.claimed_until, task.last_run_at = until, now
    return until


def renew_claim(task, claim, *, now=None):
    """Extend our claim on ``task``; return the new claim, or None if it is no longer ours.

    A command-line run has no worker timeout to kill it, so it may outlive its
    first claim; it renews it between pages. The UPDATE matches only our own
    ``claimed_until``: once another run has taken an expired claim, renewing fails
    and the caller must stop sending.
    """
    now = now or timezone.now()
    # Never shorter than the claim being renewed, should the clock step back.
    until = max(now + timedelta(seconds=settings.Q_CLUSTER["timeout"]), claim)
    renewed = ReminderTask.objects.filter(pk=task.pk, claimed_until=claim).update(claimed_until=until)
    if not renewed:
        return None
    task.claimed_until = until
    return until


def release_task(task, claim):
    # Only our own claim: an expired one may already belong to another run.
    ReminderTask.objects.filter(pk=task.pk, claimed_until=claim).update(claimed_until=None)
    task.claimed_until = None


# -- a scheduled firing ---------------------------------------------------------------------

def run_due_task(task_id, *, now=None):
    """What a django-q2 Schedule calls: run the task if its slot is due, once. French result."""
    from .engine import run_task, summarize

    now = now or timezone.now()
    task = ReminderTask.objects.select_related("customer").filter(pk=task_id).first()
    if task is None:
        remove_task_schedule(task_id)
        return f"Tâche n° {task_id} supprimée : planification retirée."
    if not is_schedulable(task):
        sync_task_schedule(task, now=now)
        return f"Tâche « {task.name} » inactive : planification retirée."
    slot = task.next_run_at
    if slot is None or slot > now:
        # Fired by django-q2's own cron reading (server time zone, no calendar): not our slot.
        sync_task_schedule(task, now=now)
        upcoming = _local(task, task.next_run_at)
        return f"Tâche « {task.name} » : pas encore due (prochaine exécution {upcoming})."
    following = next_occurrence(task, after=now)
    # Taking the slot: of two clusters firing it, exactly one moves next_run_at on.
    took = ReminderTask.objects.filter(pk=task.pk, next_run_at=slot).update(next_run_at=following)
    task.next_run_at = following
    _set_schedule_next_run(task)
    if not took:
        return f"Tâche « {task.name} » : créneau du {_local(task, slot)} déjà pris par un autre worker."
    if now > grace_deadline(task, slot):
        message = (f"Créneau du {_local(task, slot)} manqué (serveur ou worker arrêté) et délai de "
                   f"rattrapage dépassé : rien n'a été envoyé. Prochaine exécution : "
                   f"{_local(task, following)}.")
        TaskRun.objects.create(task=task, origin=TaskRun.Origin.SCHEDULE, status=TaskRun.Status.FAILED,
                               started_at=now, finished_at=now, errors=message)
        logger.warning("Tâche %s : %s", task.pk, message)
        return message
    try:
        run = run_task(task.pk, origin=TaskRun.Origin.SCHEDULE)
    except TaskAlreadyRunning as exc:
        return str(exc)
    return summarize(run)


def _set_schedule_next_run(task):
    if task.next_run_at is None:
        remove_task_schedule(task.pk)
    else:
        Schedule.objects.filter(name=schedule_name(task.pk)).update(next_run=task.next_run_at)


def _local(task, moment):
    if moment is None:
        return "aucune"
    return f"{moment.astimezone(customer_tz(task)):%d/%m/%Y %H:%M}"
