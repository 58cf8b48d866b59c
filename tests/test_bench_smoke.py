"""The benchmarks still run: each command at a tiny size, its last line a JSON report.

Timings are never asserted here (CI machines are noisy); bench/README.md has the figures.
The benchmarks use SQLite unless DATABASE_URL is PostgreSQL, like the rest of the suite.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

EXPECTED = {
    "nightly_run.py": {"docs_per_second", "raw_render_per_second", "pipeline_vs_raw",
                       "gestimum_statements_per_1000", "gateway_queries_per_1000", "peak_rss_mb"},
    "level2_reuse.py": {"level1_docs_per_second", "level2_docs_per_second", "speedup",
                        "level2_renders"},
    "two_workers.py": {"one_worker_docs_per_second", "two_workers_docs_per_second", "scaling"},
}


def test_every_benchmark_runs_at_a_tiny_size_and_reports_json():
    postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    extra = [] if postgres else ["--sqlite"]
    # Started together: the three take the time of the slowest, well under a minute.
    processes = {
        script: subprocess.Popen([sys.executable, str(BENCH / script), "--size", "10", *extra],
                                 cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for script in EXPECTED
    }
    for script, process in processes.items():
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, f"{script}:\n{err[-3000:]}"
        figures = json.loads(out.strip().splitlines()[-1])
        assert EXPECTED[script] <= set(figures), script
        assert figures["size"] == 10
        assert figures["database"] == ("postgresql" if postgres else "sqlite")
        statuses = [v for k, v in figures.items() if k.endswith("status")] + figures.get("statuses", [])
        assert statuses and set(statuses) == {"succeeded"}, (script, figures)


PORTAL_KEYS = {"history_p95_ms", "dashboard_p95_ms", "pages", "measured_customer_sends", "fill_seconds"}
PORTAL_PAGES = {"history", "history_page_500", "history_bounced_month", "history_level_2",
                "history_debtor_code", "history_piece_prefix", "dashboard"}


def test_the_portal_benchmark_runs_at_a_tiny_size_and_reports_json():
    postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    extra = [] if postgres else ["--sqlite"]
    process = subprocess.run(
        [sys.executable, str(BENCH / "portal_pages.py"), "--size", "200", "--requests", "3", *extra],
        cwd=BENCH, capture_output=True, text=True, timeout=180)
    assert process.returncode == 0, process.stderr[-3000:]
    figures = json.loads(process.stdout.strip().splitlines()[-1])
    assert PORTAL_KEYS <= set(figures)
    assert figures["size"] == 200
    assert figures["database"] == ("postgresql" if postgres else "sqlite")
    assert set(figures["pages"]) == PORTAL_PAGES
    for page in figures["pages"].values():
        assert {"p50_ms", "p95_ms", "max_ms", "queries"} <= set(page)
        assert page["queries"] > 0


pytestmark = pytest.mark.slow
