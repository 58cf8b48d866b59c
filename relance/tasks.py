"""Entry points for django-q2 workers: take ids, load, call the engine."""

from .engine import run_task, summarize
from .scheduling import TaskAlreadyRunning, run_due_task


def run_reminder_task(task_id, origin="schedule"):
    try:
        run = run_task(task_id, origin=origin)
    except TaskAlreadyRunning as exc:
        return str(exc)
    return summarize(run)


def run_scheduled_task(task_id):
    """Called by the task's django-q2 Schedule; runs it only if its slot is due."""
    return run_due_task(task_id)
