"""A due schedule goes through the broker and runs: the ORM broker, and Redis when reachable."""

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage

from relance.models import ReminderTask, TaskRun
from relance.scheduling import schedule_name

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def redis_reachable():
    import redis

    try:
        return redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture(params=["orm", "redis"])
def broker(request, monkeypatch):
    # The scheduler closes "old" connections, which on PostgreSQL includes the one holding
    # the test transaction; a real cluster runs it in its own process.
    monkeypatch.setattr("django_q.scheduler.close_old_django_connections", lambda: None)
    list_key = f"test-{uuid.uuid4().hex[:8]}"
    if request.param == "orm":
        from django_q.brokers.orm import ORM

        monkeypatch.setattr(Conf, "ORM", "default")
        monkeypatch.setattr(Conf, "REDIS", None)
        yield ORM(list_key=list_key)
        return
    if not redis_reachable():
        pytest.skip(f"Redis injoignable à {REDIS_TEST_URL} (REDIS_TEST_URL)")
    from django_q.brokers.redis_broker import Redis

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", REDIS_TEST_URL)
    broker = Redis(list_key=list_key)
    yield broker
    broker.delete_queue()


def work_one(broker):
    """What a django-q2 worker does with one queued task, minus the process pool."""
    [(ack_id, payload)] = broker.dequeue()
    task = SignedPackage.loads(payload)
    module, name = task["func"].rsplit(".", 1)
    result = getattr(__import__(module, fromlist=[name]), name)(*task["args"], **task["kwargs"])
    broker.acknowledge(ack_id)
    return result


def test_a_due_schedule_is_queued_and_run_once(broker, gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.invoice("CL001", days_late=10)
    task = make_task(schedule="0 * * * *", grace_hours=2)
    due = timezone.now() - timedelta(minutes=1)
    ReminderTask.objects.filter(pk=task.pk).update(next_run_at=due)
    Schedule.objects.filter(name=schedule_name(task.pk)).update(next_run=due)

    scheduler(broker=broker)
    result = work_one(broker)

    assert "e-mails envoyés         : 1" in result
    assert len(smtp_server.messages) == 1
    assert TaskRun.objects.get().origin == TaskRun.Origin.SCHEDULE
    assert not broker.dequeue()
    task.refresh_from_db()
    assert Schedule.objects.get(name=schedule_name(task.pk)).next_run == task.next_run_at > timezone.now()


def test_a_schedule_of_an_on_premise_worker_is_not_taken_by_the_central_cluster(broker, customer, make_task):
    customer.worker_cluster = "dupont-site"
    customer.save()
    task = make_task()
    due = timezone.now() - timedelta(minutes=1)
    Schedule.objects.filter(name=schedule_name(task.pk)).update(next_run=due)

    scheduler(broker=broker)

    assert not broker.dequeue()


@pytest.mark.parametrize(("redis_url", "expected"), [("", "ORM"), ("redis://127.0.0.1:6379/15", "Redis")])
def test_the_broker_is_the_orm_unless_redis_url_is_set(redis_url, expected, tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "easyrelance.settings", "REDIS_URL": redis_url,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}"}
    code = ("import django; django.setup(); from django_q.brokers import get_broker; "
            "print(type(get_broker()).__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == expected
