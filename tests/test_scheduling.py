"""Each active task has its django-q2 Schedule, runs at local wall-clock time, once per slot."""

import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from relance import scheduling
from relance.business_calendar import is_business_day, next_business_day
from relance.engine import TaskRunner, run_task
from relance.models import Dispatch, ReminderTask, TaskRun
from relance.scheduling import (
    TaskAlreadyRunning,
    claim_task,
    next_occurrence,
    release_task,
    renew_claim,
    run_due_task,
    schedule_name,
)
from relance.tasks import run_reminder_task

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
UTC = zoneinfo.ZoneInfo("UTC")


def paris(*args):
    return datetime(*args, tzinfo=PARIS)


def local(moment, tz=PARIS):
    return moment.astimezone(tz).replace(tzinfo=None)


def schedule_of(task):
    return Schedule.objects.get(name=schedule_name(task.pk))


# -- the Schedule follows the task ------------------------------------------------------------

def test_saving_an_active_task_creates_its_schedule_at_the_next_local_slot(make_task):
    task = make_task(schedule="0 20 * * *")

    task.refresh_from_db()
    schedule = schedule_of(task)
    assert schedule.func == "relance.tasks.run_scheduled_task"
    assert schedule.args == repr(task.pk)
    assert schedule.schedule_type == Schedule.CRON and schedule.cron == "0 20 * * *"
    assert schedule.cluster is None
    assert schedule.next_run == task.next_run_at
    assert task.next_run_at > timezone.now()
    assert local(task.next_run_at).time().isoformat() == "20:00:00"


def test_changing_the_cron_moves_the_schedule(make_task):
    task = make_task(schedule="0 20 * * *")

    task.schedule = "15 21 * * *"
    task.save()

    schedule = schedule_of(task)
    assert schedule.cron == "15 21 * * *"
    assert local(schedule.next_run).time().isoformat() == "21:15:00"
    assert Schedule.objects.count() == 1


def test_deactivating_or_deleting_a_task_removes_its_schedule(make_task):
    stopped, deleted = make_task(name="A"), make_task(name="B")
    assert Schedule.objects.count() == 2

    stopped.active = False
    stopped.save()
    deleted.delete()

    assert Schedule.objects.count() == 0
    stopped.refresh_from_db()
    assert stopped.next_run_at is None


def test_an_inactive_customer_has_no_schedules_and_gets_them_back(customer, make_task):
    task = make_task()

    customer.active = False
    customer.save()
    assert not Schedule.objects.exists()

    customer.active = True
    customer.save()
    assert schedule_of(task).next_run is not None


def test_an_on_premise_worker_gets_the_schedules_of_its_customer(customer, make_task):
    task = make_task()

    customer.worker_cluster = "dupont-site"
    customer.save()

    assert schedule_of(task).cluster == "dupont-site"


def test_the_customer_timezone_sets_the_instant(customer, make_task):
    customer.timezone = "Indian/Reunion"  # UTC+4 all year
    customer.save()
    task = make_task(schedule="0 20 * * *")

    task.refresh_from_db()
    assert task.next_run_at.astimezone(UTC).hour == 16


def test_sync_schedules_repairs_missing_and_stray_schedules(make_task, capsys):
    task = make_task()
    Schedule.objects.all().delete()
    Schedule.objects.create(name=schedule_name(9999), func="relance.tasks.run_scheduled_task",
                            args="9999", schedule_type=Schedule.CRON, cron="0 20 * * *")
    Schedule.objects.create(name="autre", func="billing.tasks.monthly", schedule_type=Schedule.DAILY)

    call_command("sync_schedules")

    assert sorted(Schedule.objects.values_list("name", flat=True)) == ["autre", schedule_name(task.pk)]
    assert "1 planification(s) à jour, 1 planification(s) orpheline(s)" in capsys.readouterr().out


def test_the_task_list_shows_next_and_last_run(admin_client, make_task):
    make_task(name="Relance du soir")

    response = admin_client.get(reverse("admin:relance_remindertask_changelist"))

    content = response.content.decode().lower()
    assert "prochaine exécution" in content and "dernier lancement" in content


# -- wall-clock time and daylight saving ------------------------------------------------------

def test_20h_stays_20h_across_the_spring_change(make_task):
    task = make_task(schedule="0 20 * * *")

    before = next_occurrence(task, after=paris(2025, 3, 29, 12))
    after = next_occurrence(task, after=before)

    assert before.astimezone(UTC) == datetime(2025, 3, 29, 19, tzinfo=UTC)  # CET, UTC+1
    assert after.astimezone(UTC) == datetime(2025, 3, 30, 18, tzinfo=UTC)   # CEST, UTC+2
    assert local(before).hour == local(after).hour == 20


def test_a_time_skipped_by_the_spring_change_runs_once_at_3h(make_task):
    task = make_task(schedule="30 2 * * *")

    first = next_occurrence(task, after=paris(2025, 3, 30, 0))
    second = next_occurrence(task, after=first)

    assert local(first) == datetime(2025, 3, 30, 3, 0)
    assert local(second) == datetime(2025, 3, 31, 2, 30)


def test_a_time_repeated_by_the_autumn_change_runs_once(make_task):
    task = make_task(schedule="30 2 * * *")

    first = next_occurrence(task, after=paris(2025, 10, 26, 0))
    second = next_occurrence(task, after=first)

    assert first.astimezone(UTC) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # the first 02:30
    assert local(second) == datetime(2025, 10, 27, 2, 30)


def test_an_hourly_task_runs_once_in_the_repeated_hour(make_task):
    task = make_task(schedule="30 * * * *")
    start = paris(2025, 10, 26, 1, 45)

    slots = [start]
    for _ in range(3):
        slots.append(next_occurrence(task, after=slots[-1]))

    assert [local(s).strftime("%H:%M") for s in slots[1:]] == ["02:30", "03:30", "04:30"]


# -- business calendar ------------------------------------------------------------------------

def test_french_holidays_and_alsace_moselle_days():
    assert not is_business_day(datetime(2025, 5, 8).date())  # Victoire 1945
    assert is_business_day(datetime(2025, 4, 18).date())     # Vendredi saint, outside Alsace-Moselle
    assert not is_business_day(datetime(2025, 4, 18).date(), alsace_moselle=True)
    assert not is_business_day(datetime(2025, 12, 26).date(), alsace_moselle=True)
    assert next_business_day(datetime(2025, 12, 24).date(), alsace_moselle=True).isoformat() == "2025-12-29"


def test_a_weekend_slot_is_postponed_to_monday(make_task):
    task = make_task(schedule="0 20 * * *", skip_weekends=True)

    slot = next_occurrence(task, after=paris(2025, 5, 10, 8))  # a Saturday

    assert local(slot) == datetime(2025, 5, 12, 20, 0)


def test_a_holiday_slot_is_postponed_or_skipped_by_rule(make_task):
    postponed = make_task(name="Jeudi reporté", schedule="0 20 * * 4", skip_holidays=True)
    skipped = make_task(name="Jeudi sauté", schedule="0 20 * * 4", skip_holidays=True,
                        skipped_day_rule=ReminderTask.SkippedDayRule.SKIP)
    kept = make_task(name="Jeudi sans calendrier", schedule="0 20 * * 4")
    wednesday = paris(2025, 5, 7, 12)  # 8 May 2025 is a Thursday and a public holiday

    assert local(next_occurrence(postponed, after=wednesday)) == datetime(2025, 5, 9, 20, 0)
    assert local(next_occurrence(skipped, after=wednesday)) == datetime(2025, 5, 15, 20, 0)
    assert local(next_occurrence(kept, after=wednesday)) == datetime(2025, 5, 8, 20, 0)


def test_alsace_moselle_postpones_good_friday_past_easter_monday(make_task):
    national = make_task(name="National", schedule="0 20 * * 5", skip_holidays=True,
                         skip_weekends=True)
    alsace = make_task(name="Alsace", schedule="0 20 * * 5", skip_holidays=True, skip_weekends=True,
                       alsace_moselle=True)
    thursday = paris(2025, 4, 17, 12)

    assert local(next_occurrence(national, after=thursday)) == datetime(2025, 4, 18, 20, 0)
    assert local(next_occurrence(alsace, after=thursday)) == datetime(2025, 4, 22, 20, 0)


def test_a_cron_that_only_hits_skipped_days_has_no_schedule(make_task):
    task = make_task(schedule="0 20 25 12 *", skip_holidays=True,
                     skipped_day_rule=ReminderTask.SkippedDayRule.SKIP)

    task.refresh_from_db()
    assert task.next_run_at is None
    assert not Schedule.objects.exists()


# -- a scheduled firing: due, once, within the grace window ----------------------------------

def set_slot(task, slot):
    ReminderTask.objects.filter(pk=task.pk).update(next_run_at=slot)


def test_after_an_outage_the_missed_slots_run_once(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    task = make_task(schedule="0 * * * *", grace_hours=6)
    now = timezone.now()
    set_slot(task, now - timedelta(hours=3))  # three hourly slots missed

    first = run_due_task(task.pk, now=now)
    second = run_due_task(task.pk, now=now + timedelta(seconds=5))

    assert "e-mails envoyés         : 1" in first
    assert "pas encore due" in second
    assert TaskRun.objects.filter(task=task).count() == 1
    assert TaskRun.objects.get().origin == TaskRun.Origin.SCHEDULE
    assert len(smtp_server.messages) == 1
    task.refresh_from_db()
    assert now < task.next_run_at <= now + timedelta(hours=1)
    assert schedule_of(task).next_run == task.next_run_at


def test_a_slot_missed_beyond_the_grace_window_is_recorded_not_run(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    task = make_task(schedule="0 20 * * *")  # grace: the same day
    now = timezone.now()
    set_slot(task, now - timedelta(days=2))

    result = run_due_task(task.pk, now=now)

    assert "délai de rattrapage dépassé" in result
    assert smtp_server.messages == []
    [run] = TaskRun.objects.all()
    assert run.status == TaskRun.Status.FAILED and "manqué" in run.errors
    task.refresh_from_db()
    assert task.next_run_at > now


def test_a_scheduled_firing_before_the_local_slot_runs_nothing(make_task):
    # django-q2 reads the cron in the server's time zone: a firing that is not our slot is ignored.
    task = make_task(schedule="0 20 * * *")
    task.refresh_from_db()

    result = run_due_task(task.pk, now=task.next_run_at - timedelta(minutes=1))

    assert "pas encore due" in result
    assert not TaskRun.objects.exists()


def test_the_slot_is_taken_by_one_firing_only(make_task, monkeypatch):
    task = make_task(grace_hours=2)
    now = timezone.now()
    slot = now - timedelta(minutes=1)
    set_slot(task, slot)
    ran = []
    monkeypatch.setattr("relance.engine.run_task", lambda pk, origin: ran.append(pk) or None)
    monkeypatch.setattr("relance.engine.summarize", lambda run: "ok")
    # The other cluster already advanced next_run_at from the same slot when this one loads it.
    real_filter = ReminderTask.objects.filter

    def filter_after_other_cluster(*args, **kwargs):
        if kwargs.get("next_run_at") == slot:
            real_filter(pk=task.pk).update(next_run_at=now + timedelta(days=1))
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(ReminderTask.objects, "filter", filter_after_other_cluster)
    result = run_due_task(task.pk, now=now)

    assert "déjà pris par un autre worker" in result
    assert ran == []


# -- one run at a time per task ---------------------------------------------------------------

def test_a_run_cannot_start_while_another_holds_the_task(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    task = make_task()
    claim = claim_task(task)

    with pytest.raises(TaskAlreadyRunning):
        run_task(task.pk)
    assert "déjà en cours" in run_reminder_task(task.pk, "manual")
    assert not TaskRun.objects.exists() and smtp_server.messages == []

    release_task(task, claim)
    assert run_task(task.pk).sent == 1


def test_a_claim_left_by_a_dead_worker_expires(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    task = make_task()
    ReminderTask.objects.filter(pk=task.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))

    run = run_task(task.pk)

    assert run.sent == 1
    task.refresh_from_db()
    assert task.claimed_until is None and task.last_run_at is not None


def test_a_run_killed_at_the_timeout_is_failed_and_its_sends_not_redone(
        gestimum, smtp_server, make_task, customer, settings):
    gestimum.tiers("CL001", email="a@client.example")
    sent = gestimum.invoice("CL001", piece="FA1", days_late=10)
    sending = gestimum.invoice("CL001", piece="FA2", days_late=10)
    gestimum.invoice("CL001", piece="FA3", days_late=10)
    task = make_task()
    started = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 60)
    killed = TaskRun.objects.create(task=task, origin=TaskRun.Origin.SCHEDULE, started_at=started)
    for ech, status in ((sent, Dispatch.Status.SENT), (sending, Dispatch.Status.SENDING)):
        Dispatch.objects.create(customer=customer, task=task, run=killed, level=1, ech_numero=ech,
                                status=status)
    # django-q2 killed the worker at the timeout: its claim expired at the same moment.
    ReminderTask.objects.filter(pk=task.pk).update(claimed_until=started + timedelta(
        seconds=settings.Q_CLUSTER["timeout"]))

    again = run_task(task.pk)

    killed.refresh_from_db()
    assert killed.status == TaskRun.Status.FAILED and "interrompue" in killed.errors
    assert Dispatch.objects.get(ech_numero=sending).status == Dispatch.Status.NEEDS_REVIEW
    assert again.sent == 1
    [message] = smtp_server.messages
    assert "FA3" in message.message["Subject"]


def test_the_claim_outlives_no_worker_timeout(make_task, settings):
    # The claim must last as long as django-q2 lets a run live, and retry must come after it.
    task = make_task()
    now = timezone.now()

    claim = claim_task(task, now=now)

    assert claim == now + timedelta(seconds=settings.Q_CLUSTER["timeout"])
    assert settings.Q_CLUSTER["retry"] > settings.Q_CLUSTER["timeout"]
    assert claim_task(task, now=now + timedelta(seconds=1)) is None
    assert claim_task(task, now=claim) is not None
    assert scheduling.SCHEDULE_FUNC == "relance.tasks.run_scheduled_task"


# -- a run longer than Q_TIMEOUT (command line: nothing kills it) -----------------------------

def test_a_renewed_claim_outlives_its_first_expiry_until_another_run_takes_it(make_task, settings):
    task = make_task()
    timeout = timedelta(seconds=settings.Q_CLUSTER["timeout"])
    now = timezone.now()
    claim = claim_task(task, now=now)

    renewed = renew_claim(task, claim, now=now + timeout - timedelta(seconds=1))

    assert renewed == now + 2 * timeout - timedelta(seconds=1)
    assert claim_task(task, now=claim) is None
    # Renewed too late: the claim expired and another run took the task.
    theirs = claim_task(task, now=renewed)
    assert theirs is not None
    assert renew_claim(task, renewed, now=renewed) is None
    task.refresh_from_db()
    assert task.claimed_until == theirs


def overdue_invoices(gestimum, count):
    gestimum.tiers("CL001", email="a@client.example")
    for number in range(1, count + 1):
        gestimum.invoice("CL001", piece=f"FA{number}", days_late=10)


def test_a_run_renews_its_claim_after_each_page(gestimum, smtp_server, make_task, settings, monkeypatch):
    settings.GESTIMUM = {**settings.GESTIMUM, "PAGE_SIZE": 1}
    overdue_invoices(gestimum, 2)
    task = make_task()
    held, contenders = [], []
    real_process_page = TaskRunner.process_page

    def process_page(runner, *args):
        held.append(ReminderTask.objects.get(pk=task.pk).claimed_until)
        if len(held) == 2:
            # At the first claim's expiry, another run must still find the task held.
            contenders.append(claim_task(ReminderTask.objects.get(pk=task.pk), now=held[0]))
        return real_process_page(runner, *args)

    monkeypatch.setattr(TaskRunner, "process_page", process_page)
    run = run_task(task.pk)

    assert run.status == TaskRun.Status.SUCCEEDED and run.sent == 2
    assert held[1] > held[0]
    assert contenders == [None]
    task.refresh_from_db()
    assert task.claimed_until is None  # the renewed claim is the one released


def test_a_run_whose_expired_claim_was_taken_stops_before_the_next_page(
        gestimum, smtp_server, make_task, settings, monkeypatch):
    settings.GESTIMUM = {**settings.GESTIMUM, "PAGE_SIZE": 2}
    overdue_invoices(gestimum, 4)
    task = make_task()
    taken = []
    real_process_page = TaskRunner.process_page

    def page_outlasting_the_claim(runner, *args):
        real_process_page(runner, *args)
        if not taken:
            # The page outlasted Q_TIMEOUT: the claim expired and another run took the task.
            expired = ReminderTask.objects.get(pk=task.pk).claimed_until
            taken.append(claim_task(ReminderTask.objects.get(pk=task.pk), now=expired))

    monkeypatch.setattr(TaskRunner, "process_page", page_outlasting_the_claim)
    run = run_task(task.pk)

    assert taken[0] is not None
    assert run.status == TaskRun.Status.FAILED
    assert "une autre exécution a repris la tâche" in run.errors
    assert run.sent == 2
    assert len(smtp_server.messages) == 2
    assert sorted(Dispatch.objects.values_list("doc_piece", flat=True)) == ["FA1", "FA2"]
    # The run holding the task now writes these sends back to Gestimum, not the stopped one.
    assert set(Dispatch.objects.values_list("writeback_pending", flat=True)) == {True}
    task.refresh_from_db()
    assert task.claimed_until == taken[0]
