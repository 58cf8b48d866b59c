"""Benchmark 3 — two workers at once against one worker: total throughput.

    .venv/bin/python bench/two_workers.py --size 600

The échéances are split in two halves by due date (two tasks: 5 to 34 days
late, 35 days and more). One worker process runs one half alone; then two
worker processes run both halves at the same time (another customer on the
same Gestimum, so nothing is "already sent"). Target: ≥ 1.7× one worker.
The SMTP server and the databases run on the same machine.
"""

import json
import subprocess
import sys
import time

import common

HALVES = ({"days": 5, "max_days": 34}, {"days": 35})


def run_one_task(task_id):
    """Child process: run one task, print one JSON line."""
    common.django_for_child()
    from relance.models import ReminderTask

    started = time.time()
    run, seconds, _, _ = common.timed_run(ReminderTask.objects.get(pk=task_id))
    print(json.dumps({"documents": run.sent + run.diverted, "status": run.status,
                      "started": started, "finished": started + seconds}))


def workers(environment, port, task_ids):
    env = {**environment.env(), "EMAIL_PORT": str(port)}
    processes = [subprocess.Popen([sys.executable, __file__, "--run-task", str(pk)], env=env,
                                  stdout=subprocess.PIPE, text=True) for pk in task_ids]
    results = []
    for process in processes:
        out, _ = process.communicate()
        results.append(json.loads(out.strip().splitlines()[-1]))
    documents = sum(r["documents"] for r in results)
    seconds = max(r["finished"] for r in results) - min(r["started"] for r in results)
    return documents, seconds, [r["status"] for r in results]


def main(argv=None):
    args = common.parser(__doc__, size=600).parse_args(argv)
    environment = common.Environment(sqlite=args.sqlite, keep=args.keep)
    try:
        with common.smtp_sink() as port:
            common.setup_django(environment, port)
            common.fill_in_child(environment, args.size)
            solo = common.make_customer(environment.gestimum_url, slug="solo")
            duo = common.make_customer(environment.gestimum_url, slug="duo")
            solo_task = common.make_task(solo, **HALVES[0])
            duo_tasks = [common.make_task(duo, name=f"Moitié {n}", **half)
                         for n, half in enumerate(HALVES, 1)]
            from django.db import connections

            connections.close_all()  # the children use the databases now
            docs1, seconds1, status1 = workers(environment, port, [solo_task.pk])
            docs2, seconds2, status2 = workers(environment, port, [t.pk for t in duo_tasks])
    finally:
        environment.close()
    rate1 = docs1 / seconds1 if seconds1 else 0.0
    rate2 = docs2 / seconds2 if seconds2 else 0.0
    figures = {
        "bench": "two_workers", "size": args.size, "database": "sqlite" if args.sqlite else "postgresql",
        "one_worker_documents": docs1, "one_worker_seconds": round(seconds1, 2),
        "one_worker_docs_per_second": round(rate1, 2), "two_workers_documents": docs2,
        "two_workers_seconds": round(seconds2, 2), "two_workers_docs_per_second": round(rate2, 2),
        "scaling": round(rate2 / rate1, 2) if rate1 else None, "statuses": status1 + status2,
    }
    common.report([
        f"Deux workers — {args.size} échéances, base {figures['database']} ({common.machine()})",
        f"  un worker : {docs1} documents en {seconds1:.1f} s ({rate1:.2f}/s)",
        f"  deux workers : {docs2} documents en {seconds2:.1f} s ({rate2:.2f}/s)",
        f"  rapport : ×{figures['scaling']} (cible ≥ ×1,7)",
    ], figures)
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--run-task":
        run_one_task(int(sys.argv[2]))
    else:
        main()
