"""Entry points for django-q2 workers: take ids, load, call the engine."""

from .engine import run_task, summarize


def run_reminder_task(task_id, origin="schedule"):
    run = run_task(task_id, origin=origin)
    return summarize(run)
