"""A real ``manage.py qcluster``: its scheduler fires a due task, its worker sends the e-mail once.

Each test starts the cluster as a subprocess against the test database (data
committed, transaction=True) and the test's SMTP server, on the ORM broker and
on Redis. ``Q_GUARD_CYCLE=30`` makes the cluster's first guard check call the
scheduler, so nobody waits 30 s for it. A subprocess cannot reach SQLite's
in-memory test database: PostgreSQL only, like tests/test_concurrency.py.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from relance import scheduling
from relance.models import Customer, ReminderTask, TaskRun
from tests.test_brokers import REDIS_TEST_URL, redis_reachable
from tests.test_concurrency import database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="qcluster réel dans un sous-processus : PostgreSQL seulement (CI)"),
]

ROOT = Path(__file__).resolve().parent.parent
MAIL_WAIT = 60  # seconds for a started cluster to deliver a due task's e-mail
QUIET_WAIT = 5  # seconds during which a cluster must NOT deliver what is not its own
CENTRAL = "easyrelance"  # Q_CLUSTER["name"]: the central cluster and its queue
ON_SITE = "autre-site"
# Daily: no second slot falls due while a test runs (an hourly one could at the top of the hour).
DAILY = "17 3 * * *"


class Clusters:
    """Starts ``manage.py qcluster`` processes and always stops them."""

    def __init__(self, settings, tmp_path, redis_url):
        self.settings, self.tmp_path, self.redis_url = settings, tmp_path, redis_url
        self.running = []

    def start(self, cluster_name=None):
        env = {
            **os.environ, "DJANGO_SETTINGS_MODULE": "easyrelance.settings",
            "DATABASE_URL": database_url(), "EMAIL_BACKEND": "smtp",
            "EMAIL_HOST": self.settings.EMAIL_HOST, "EMAIL_PORT": str(self.settings.EMAIL_PORT),
            "SEND_RETRY_BASE_DELAY": "0", "MEDIA_ROOT": str(self.tmp_path / "media"),
            "DIVERT_ROOT": str(self.tmp_path / "divert"), "ARCHIVE_ROOT": str(self.tmp_path / "archive"),
            "Q_WORKERS": "1", "Q_GUARD_CYCLE": "30", "LOG_LEVEL": "INFO",
        }
        for name in ("REDIS_URL", "Q_CLUSTER_NAME", "Q_SYNC"):
            env.pop(name, None)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        if cluster_name:
            env["Q_CLUSTER_NAME"] = cluster_name
        log_path = self.tmp_path / f"qcluster-{cluster_name or CENTRAL}.log"
        with open(log_path, "w") as log:
            # Own session: stopping it never signals pytest, and a stuck pool can be killed as a group.
            process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        process.log_path = log_path
        self.running.append(process)
        return process

    def stop(self, process):
        """SIGTERM, as a service manager does; SIGKILL the group if it does not exit."""
        if process in self.running:
            self.running.remove(process)
        if process.poll() is not None:
            return process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        raise AssertionError(f"qcluster ne s'arrête pas sur SIGTERM :\n{log_tail(process)}")

    def stop_all(self):
        for process in list(self.running):
            try:
                self.stop(process)
            except AssertionError:
                pass


def log_tail(process, lines=30):
    return "\n".join(process.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(params=["orm", "redis"])
def clusters(request, settings, tmp_path):
    redis_url = ""
    if request.param == "redis":
        if not redis_reachable():
            pytest.skip(f"Redis injoignable à {REDIS_TEST_URL} (REDIS_TEST_URL)")
        import redis

        redis_url = REDIS_TEST_URL
        queues = redis.from_url(redis_url)
        # A queue left by an interrupted run would hand this cluster tasks of another database.
        queues.delete(CENTRAL, ON_SITE)
    manager = Clusters(settings, tmp_path, redis_url)
    yield manager
    manager.stop_all()
    if redis_url:
        queues.delete(CENTRAL, ON_SITE)


def make_due(task):
    """Put the task's slot, and its django-q2 Schedule, in the past, as after an outage."""
    # The first daily slot after "25 hours ago" is already past: due, within the grace window.
    scheduling.sync_task_schedule(task, now=timezone.now() - timedelta(hours=25))
    task.refresh_from_db()
    assert task.next_run_at <= timezone.now()
    assert Schedule.objects.get(name=scheduling.schedule_name(task.pk)).next_run == task.next_run_at


def mails_to(smtp_server, address):
    return [m for m in smtp_server.messages if address in m.rcpt_tos]


def wait_for_mail(smtp_server, address, process, *, seconds=MAIL_WAIT):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if mails_to(smtp_server, address):
            return
        if process.poll() is not None:
            pytest.fail(f"qcluster s'est arrêté (code {process.returncode}) :\n{log_tail(process)}")
        time.sleep(0.25)
    pytest.fail(f"aucun e-mail pour {address} après {seconds} s de qcluster :\n{log_tail(process)}")


def wait_for_finished_run(task, *, seconds=30):
    """The worker records the run after the send: wait for it, then nothing else may be sent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = TaskRun.objects.filter(task=task).exclude(status=TaskRun.Status.RUNNING).first()
        if run is not None:
            return run
        time.sleep(0.25)
    pytest.fail(f"l'exécution de la tâche {task.pk} n'est pas terminée après {seconds} s")


@pytest.fixture
def overdue(gestimum):
    gestimum.tiers("CL001", email="compta@central.example")
    gestimum.invoice("CL001", piece="FA0001", days_late=10)
    gestimum.tiers("CL002", email="compta@site.example")
    gestimum.invoice("CL002", piece="FA0002", days_late=10)


@pytest.fixture
def central_task(overdue, make_task):
    return make_task(name="Relance centrale", schedule=DAILY, grace_hours=48, tiers_include="CL001")


def test_the_cluster_scheduler_fires_a_due_task_and_its_worker_sends_the_email_once(
        clusters, central_task, smtp_server):
    make_due(central_task)

    cluster = clusters.start()
    wait_for_mail(smtp_server, "compta@central.example", cluster)
    run = wait_for_finished_run(central_task)
    time.sleep(1)  # a second firing would have been queued by now

    assert clusters.stop(cluster) == 0, log_tail(cluster)
    [message] = smtp_server.messages
    assert "FA0001" in message.message["Subject"]
    assert run.origin == TaskRun.Origin.SCHEDULE and run.status == TaskRun.Status.SUCCEEDED
    assert run.sent == 1 and TaskRun.objects.count() == 1
    central_task.refresh_from_db()
    assert central_task.next_run_at > timezone.now()
    assert central_task.claimed_until is None
    schedule = Schedule.objects.get(name=scheduling.schedule_name(central_task.pk))
    assert schedule.next_run == central_task.next_run_at


def test_an_on_site_cluster_runs_only_its_customer_tasks_and_the_central_one_the_others(
        clusters, central_task, customer, make_task, smtp_server):
    site_customer = Customer.objects.create(name="Martin SA", slug="martin",
                                            gestimum_url=customer.gestimum_url, worker_cluster=ON_SITE)
    site_task = make_task(customer=site_customer, name="Relance sur site", schedule=DAILY,
                          grace_hours=48, tiers_include="CL002")
    make_due(central_task)
    make_due(site_task)
    central_slot = central_task.next_run_at

    on_site = clusters.start(ON_SITE)
    wait_for_mail(smtp_server, "compta@site.example", on_site)
    time.sleep(QUIET_WAIT)

    assert mails_to(smtp_server, "compta@central.example") == [], "le cluster sur site a pris la tâche"
    assert ReminderTask.objects.get(pk=central_task.pk).next_run_at == central_slot
    assert Schedule.objects.get(name=scheduling.schedule_name(central_task.pk)).next_run == central_slot

    central = clusters.start()
    wait_for_mail(smtp_server, "compta@central.example", central)
    wait_for_finished_run(central_task)

    assert clusters.stop(central) == 0, log_tail(central)
    assert clusters.stop(on_site) == 0, log_tail(on_site)
    assert len(mails_to(smtp_server, "compta@central.example")) == 1
    assert len(mails_to(smtp_server, "compta@site.example")) == 1
    assert TaskRun.objects.filter(task=site_task, origin=TaskRun.Origin.SCHEDULE).count() == 1
