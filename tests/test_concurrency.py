"""Real worker processes racing on PostgreSQL: every échéance gets exactly one e-mail.

Each test starts two Python processes that load Django against the test
database, wait for the same instant, then fire. Data is committed
(transaction=True) so the processes see it. SQLite serialises every writer,
so the race only means something on PostgreSQL.
"""

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from relance.models import Dispatch, ReminderTask, TaskRun

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="course réelle entre processus : PostgreSQL seulement (CI)"),
]

ROOT = Path(__file__).resolve().parent.parent

# Loads Django, waits for the common start instant, calls one worker entry point.
WORKER = """
import os, sys, time
import django
django.setup()
from relance import tasks
func, task_id, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
args = (task_id, "schedule") if func == "run_reminder_task" else (task_id,)
print(getattr(tasks, func)(*args))
"""


def database_url():
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (f"postgres://{db.get('USER') or 'postgres'}{password}@{db.get('HOST') or '127.0.0.1'}:"
            f"{db.get('PORT') or 5432}/{db['NAME']}")


def race(settings, tmp_path, *calls):
    """Run each (function name, task id) in its own process, all at the same instant."""
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "easyrelance.settings",
        "DATABASE_URL": database_url(), "EMAIL_BACKEND": "smtp", "EMAIL_HOST": settings.EMAIL_HOST,
        "EMAIL_PORT": str(settings.EMAIL_PORT), "SEND_RETRY_BASE_DELAY": "0",
        "MEDIA_ROOT": str(tmp_path / "media"), "DIVERT_ROOT": str(tmp_path / "divert"),
        "ARCHIVE_ROOT": str(tmp_path / "archive"), "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    start = time.time() + 6  # time for both interpreters to load Django
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, func, str(task_id), str(start)],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for func, task_id in calls]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out)
    return outputs


@pytest.fixture
def ten_overdue_invoices(gestimum):
    for index in range(10):
        code = f"CL{index:03}"
        gestimum.tiers(code, email=f"compta{index}@client{index}.example")
        gestimum.invoice(code, piece=f"FA{index:04}", days_late=10)


def assert_one_email_per_invoice(smtp_server):
    subjects = Counter(m.message["Subject"] for m in smtp_server.messages)
    assert len(subjects) == 10
    assert set(subjects.values()) == {1}
    assert Dispatch.objects.count() == 10


def test_two_workers_running_the_same_task_send_each_reminder_once(
        ten_overdue_invoices, smtp_server, make_task, settings, tmp_path):
    task = make_task()

    outputs = race(settings, tmp_path, ("run_reminder_task", task.pk), ("run_reminder_task", task.pk))

    assert_one_email_per_invoice(smtp_server)
    assert TaskRun.objects.count() == 1
    assert sum("déjà en cours" in out for out in outputs) == 1


def test_two_tasks_of_the_same_level_racing_never_send_an_echeance_twice(
        ten_overdue_invoices, smtp_server, make_task, settings, tmp_path):
    # Different tasks, so both hold their own claim: only the Dispatch constraint separates them.
    first, second = make_task(name="Relance A"), make_task(name="Relance B")

    race(settings, tmp_path, ("run_reminder_task", first.pk), ("run_reminder_task", second.pk))

    assert_one_email_per_invoice(smtp_server)
    assert sum(TaskRun.objects.values_list("sent", flat=True)) == 10


def test_two_clusters_firing_the_same_slot_run_it_once(
        ten_overdue_invoices, smtp_server, make_task, settings, tmp_path):
    task = make_task(schedule="0 * * * *", grace_hours=2)
    ReminderTask.objects.filter(pk=task.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))

    race(settings, tmp_path, ("run_scheduled_task", task.pk), ("run_scheduled_task", task.pk))

    assert_one_email_per_invoice(smtp_server)
    assert TaskRun.objects.filter(origin=TaskRun.Origin.SCHEDULE).count() == 1
    task.refresh_from_db()
    assert task.next_run_at > timezone.now()
