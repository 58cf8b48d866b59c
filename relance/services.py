"""Write operations called by the admin, commands and workers."""

from django_q.tasks import async_task

from .models import TaskRun


def enqueue_run(task, *, origin=TaskRun.Origin.MANUAL):
    """Queue a run of ``task`` on the django-q2 cluster; return the queue task id."""
    return async_task("relance.tasks.run_reminder_task", task.pk, origin,
                      task_name=f"relance-{task.pk}-{origin}", group=f"customer-{task.customer_id}")
