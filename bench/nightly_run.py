"""Benchmark 1 — the nightly run: one level-1 task over N overdue échéances, end to end.

    .venv/bin/python bench/nightly_run.py --size 10000        # Gestimum + app on PostgreSQL
    .venv/bin/python bench/nightly_run.py --size 20 --sqlite  # smoke size, SQLite

Measures documents per second, SQL statements sent to Gestimum per 1,000
échéances, peak RSS, and (same process, same invoices, same template) the
raw xhtml2pdf render rate, which is the ceiling of the pipeline: timed on the
run's own renders (drift-free) and, as before, alone after the run.
"""

import common


def main(argv=None):
    args = common.parser(__doc__, size=10000).parse_args(argv)
    environment = common.Environment(sqlite=args.sqlite, keep=args.keep)
    try:
        with common.smtp_sink() as port:
            common.setup_django(environment, port)
            common.fill_in_child(environment, args.size)
            customer = common.make_customer(environment.gestimum_url)
            task = common.make_task(customer)
            clock = {}
            run, seconds, statements, gateway_queries = common.timed_run(task, clock)
            rss = common.peak_rss_mb()
            raw_rate, rendered = common.raw_render_rate(customer, task, count=min(args.size, 300))
    finally:
        environment.close()
    documents = run.sent + run.diverted
    rate = documents / seconds if seconds else 0.0
    # The same process's xhtml2pdf rate, measured on the renders of this very run.
    in_run = clock["renders"] / clock["seconds"] if clock["seconds"] else 0.0
    figures = {
        "bench": "nightly_run", "size": args.size, "database": "sqlite" if args.sqlite else "postgresql",
        "status": run.status, "selected": run.selected, "sent": run.sent, "diverted": run.diverted,
        "failed": run.failed, "skipped": run.skipped, "seconds": round(seconds, 2),
        "docs_per_second": round(rate, 2), "raw_render_per_second": round(raw_rate, 2),
        "raw_render_sample": rendered,
        "pipeline_vs_raw": round(rate / raw_rate, 3) if raw_rate else None,
        "in_run_renders": clock["renders"], "in_run_render_seconds": round(clock["seconds"], 2),
        "in_run_render_per_second": round(in_run, 2),
        "pipeline_vs_in_run_render": round(rate / in_run, 3) if in_run else None,
        "gestimum_statements": statements,
        "gestimum_statements_per_1000": common.per_thousand(statements, args.size),
        "gateway_queries": gateway_queries,
        "gateway_queries_per_1000": common.per_thousand(gateway_queries, args.size),
        "peak_rss_mb": round(rss, 1),
    }
    common.report([
        f"Exécution nocturne — {args.size} échéances, base {figures['database']} ({common.machine()})",
        f"  statut {run.status} : {run.sent} e-mails, {run.diverted} réacheminés, "
        f"{run.failed} en échec, {run.skipped} ignorées, en {seconds:.1f} s",
        f"  débit : {rate:.2f} documents/s ; rendu xhtml2pdf pendant l'exécution : {in_run:.2f} documents/s "
        f"({clock['renders']} rendus, {clock['seconds']:.0f} s) → rapport "
        f"{figures['pipeline_vs_in_run_render']} (cible ≥ 0,85)",
        f"  rendu xhtml2pdf seul, mesuré après l'exécution : {raw_rate:.2f} documents/s "
        f"(rapport {figures['pipeline_vs_raw']} ; sensible à la dérive d'une machine partagée)",
        f"  requêtes Gestimum : {statements} instructions SQL "
        f"({figures['gestimum_statements_per_1000']} / 1 000 échéances, cible ≤ 5) ; "
        f"compteur Gateway.queries : {gateway_queries}",
        f"  mémoire maximale (RSS) : {rss:.0f} Mo (cible < 300 Mo)",
    ], figures)
    return figures


if __name__ == "__main__":
    main()
