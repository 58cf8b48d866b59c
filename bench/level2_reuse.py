"""Benchmark 2 — level 2 over the same échéances reuses the PDFs printed at level 1.

    .venv/bin/python bench/level2_reuse.py --size 2000

Runs a level-1 task, then a level-2 task (previous level required, no minimum
gap) over the same unchanged invoices; target: level 2 at least 3× faster.
"""

import common


def main(argv=None):
    args = common.parser(__doc__, size=2000).parse_args(argv)
    environment = common.Environment(sqlite=args.sqlite, keep=args.keep)
    try:
        with common.smtp_sink() as port:
            common.setup_django(environment, port)
            common.fill_in_child(environment, args.size)
            from relance import rendering

            renders = {"count": 0}
            original = rendering.render_invoice_pdf

            def counted(**kwargs):
                renders["count"] += 1
                return original(**kwargs)

            rendering.render_invoice_pdf = counted
            customer = common.make_customer(environment.gestimum_url)
            first = common.make_task(customer, level=1)
            second = common.make_task(customer, level=2, require_previous_level=True,
                                      min_days_since_previous=0)
            run1, seconds1, statements1, _ = common.timed_run(first)
            renders1 = renders["count"]
            run2, seconds2, statements2, _ = common.timed_run(second)
            renders2 = renders["count"] - renders1
            rss = common.peak_rss_mb()
    finally:
        environment.close()
    rate1 = (run1.sent + run1.diverted) / seconds1 if seconds1 else 0.0
    rate2 = (run2.sent + run2.diverted) / seconds2 if seconds2 else 0.0
    figures = {
        "bench": "level2_reuse", "size": args.size, "database": "sqlite" if args.sqlite else "postgresql",
        "level1_status": run1.status, "level2_status": run2.status,
        "level1_documents": run1.sent + run1.diverted, "level2_documents": run2.sent + run2.diverted,
        "level1_seconds": round(seconds1, 2), "level2_seconds": round(seconds2, 2),
        "level1_docs_per_second": round(rate1, 2), "level2_docs_per_second": round(rate2, 2),
        "speedup": round(rate2 / rate1, 2) if rate1 else None,
        "level1_renders": renders1, "level2_renders": renders2,
        "level1_gestimum_statements": statements1, "level2_gestimum_statements": statements2,
        "peak_rss_mb": round(rss, 1),
    }
    common.report([
        f"Niveau 2 sur les mêmes échéances — {args.size} échéances, base {figures['database']} "
        f"({common.machine()})",
        f"  niveau 1 : {figures['level1_documents']} documents en {seconds1:.1f} s "
        f"({rate1:.2f}/s), {renders1} PDF imprimés",
        f"  niveau 2 : {figures['level2_documents']} documents en {seconds2:.1f} s "
        f"({rate2:.2f}/s), {renders2} PDF imprimés (les autres réutilisés)",
        f"  accélération : ×{figures['speedup']} (cible ≥ ×3)",
    ], figures)
    return figures


if __name__ == "__main__":
    main()
