"""Benchmark 4 — portal pages over 1,000,000 sends: history (filtered or not) and dashboard.

    .venv/bin/python bench/portal_pages.py --size 1000000 --requests 200

Fills the app database in bulk (PostgreSQL COPY; plain executemany with
``--sqlite``) with ``size`` sends spread over 13 months, 90 % of them for the
measured customer and the rest for another one so that the customer filter
has to work, then times ``requests`` requests of each page through
django.test.Client, logged in as the measured customer's portal user, and
counts the SQL queries of each page. Targets: history p95 < 150 ms,
dashboard p95 < 300 ms.
"""

import math
import random
import time
import warnings
from datetime import timedelta
from decimal import Decimal

import common

# Share of each status, as a nightly run leaves them after delivery tracking.
STATUSES = [("delivered", 70), ("sent", 12), ("deferred", 1), ("bounced", 3), ("rejected", 0.5),
            ("complained", 0.2), ("diverted", 8), ("failed", 1), ("needs_review", 0.3),
            ("pending", 4)]
LEVELS = [(1, 60), (2, 28), (3, 12)]
DEBTORS = 5000
MEASURED_SHARE = 0.9


def main(argv=None):
    p = common.parser(__doc__, size=1_000_000)
    p.add_argument("--requests", type=int, default=200, help="requests per page")
    args = p.parse_args(argv)
    # WhiteNoise warns that collectstatic never ran: irrelevant to these pages.
    warnings.filterwarnings("ignore", message="No directory at")
    environment = common.Environment(sqlite=args.sqlite, keep=args.keep)
    try:
        common.setup_django(environment)
        started = time.perf_counter()
        customer, user, month = fill_portal(args.size, sqlite=args.sqlite)
        fill_seconds = time.perf_counter() - started
        pages = measure(user, month, requests=args.requests)
    finally:
        environment.close()
    figures = {
        "bench": "portal_pages", "size": args.size, "requests": args.requests,
        "database": "sqlite" if args.sqlite else "postgresql",
        "measured_customer_sends": customer["sends"], "fill_seconds": round(fill_seconds, 1),
        "pages": pages,
        "history_p95_ms": max(v["p95_ms"] for k, v in pages.items() if k.startswith("history")),
        "dashboard_p95_ms": pages["dashboard"]["p95_ms"],
    }
    summary = [
        f"Portail — {args.size} envois ({customer['sends']} pour le client mesuré), base "
        f"{figures['database']}, {args.requests} requêtes par page ({common.machine()})",
        f"  remplissage : {fill_seconds:.1f} s",
        f"  {'page':<28} {'p50':>8} {'p95':>8} {'max':>8} {'requêtes':>9}",
    ]
    for name, page in pages.items():
        summary.append(f"  {name:<28} {page['p50_ms']:>6.1f}ms {page['p95_ms']:>6.1f}ms "
                       f"{page['max_ms']:>6.1f}ms {page['queries']:>9}")
    summary.append(f"  historique p95 max {figures['history_p95_ms']} ms (cible < 150), "
                   f"tableau de bord p95 {figures['dashboard_p95_ms']} ms (cible < 300)")
    common.report(summary, figures)
    return figures


# -- data ----------------------------------------------------------------------------------

def fill_portal(size, *, sqlite):
    """Two customers, a portal user, tasks for levels 1-3 each, then ``size`` sends in bulk."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from portal.models import Handling, PortalUser
    from relance.models import Customer, Dispatch, ReminderTask

    measured = Customer.objects.create(name="Dupont Industrie", slug="dupont")
    other = Customer.objects.create(name="Martin Négoce", slug="martin")
    tasks = {(c.pk, level): ReminderTask.objects.create(customer=c, name=f"Relance niveau {level}",
                                                       level=level).pk
             for c in (measured, other) for level in (1, 2, 3)}
    email = "adv@dupont.example"
    user = get_user_model().objects.create_user(username=email, email=email, password="x")
    PortalUser.objects.create(user=user, customer=measured)

    rng = random.Random(4)
    now = timezone.now()
    start = now - timedelta(days=396)
    span = (now - start).total_seconds()
    statuses, status_weights = zip(*STATUSES, strict=True)
    levels, level_weights = zip(*LEVELS, strict=True)
    columns = [f.column for f in Dispatch._meta.concrete_fields if not f.primary_key]
    fixed = {"run_id": None, "doc_numero": "", "from_email": "dupont@relance.example", "cc": "",
             "bcc": "", "message_id": "", "provider_message_id": "", "pdf": "", "pdf_sha256": "",
             "divert_path": "", "error": "", "writeback_pending": False, "writeback_at": None,
             "pdf_data_hash": "", "handled_at": None, "writeback_ref": ""}
    measured_sends = 0

    def rows():
        nonlocal measured_sends
        for n in range(1, size + 1):
            # Rows arrive in time order, as nightly runs write them.
            created = start + timedelta(seconds=span * n / (size + 1))
            customer_id = measured.pk if rng.random() < MEASURED_SHARE else other.pk
            measured_sends += customer_id == measured.pk
            status = rng.choices(statuses, status_weights)[0]
            level = rng.choices(levels, level_weights)[0]
            debtor = rng.randint(1, DEBTORS)
            amount = Decimal(rng.randint(5000, 900000)) / 100
            piece = f"FA{n:07d}"
            diverted = status == "diverted"
            values = {
                **fixed, "customer_id": customer_id, "task_id": tasks[(customer_id, level)],
                "level": level, "channel": "postal" if diverted else "email", "status": status,
                "ech_numero": f"{n:010d}", "doc_piece": piece, "pcf_code": f"C{debtor:05d}",
                "tiers_name": f"Société {debtor} SARL", "due_date": (created - timedelta(days=20)).date(),
                "amount": amount, "remaining": amount,
                "to": "" if diverted else f"compta{debtor}@example.com",
                "subject": f"Relance : facture {piece}", "body": "Bonjour,\nLa facture reste due.",
                "divert_reason": "aucune adresse e-mail valide" if diverted else "",
                "attempts": 0 if status == "pending" else 1, "created_at": created,
                "sent_at": None if status == "pending" else created, "updated_at": created,
            }
            yield tuple(values[c] for c in columns)

    table = connection.ops.quote_name(Dispatch._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if sqlite:
            marks = ", ".join(["%s"] * len(columns))
            batch = []
            for row in rows():
                batch.append(row)
                if len(batch) == 10_000:
                    cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
                    batch.clear()
            if batch:
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
        else:
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
    # The customer follows bounces up and posts diverted letters as they come: only the
    # last two months' are still to handle.
    handled = (Dispatch.objects.filter(status__in=["bounced", "rejected", "complained", "diverted"],
                                       created_at__lt=now - timedelta(days=60))
               .values_list("pk", flat=True))
    Handling.objects.bulk_create([Handling(dispatch_id=pk, handled_by=user) for pk in handled],
                                 batch_size=5000)
    Dispatch.objects.filter(status__in=["bounced", "rejected", "complained", "diverted"],
                            created_at__lt=now - timedelta(days=60)).update(handled_at=now)
    with connection.cursor() as cursor:
        # Autovacuum would have done it on a live database: statistics and the visibility map.
        cursor.execute("ANALYZE" if sqlite else "VACUUM (ANALYZE)")
    local = timezone.localdate(now)
    month_start = (local.replace(day=1) - timedelta(days=70)).replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return {"sends": measured_sends}, user, (month_start, month_end)


# -- measurement ---------------------------------------------------------------------------

def measure(user, month, *, requests):
    from django.conf import settings
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    # Timed as in production: no debug query log behind every statement.
    settings.DEBUG = False
    client = Client()
    client.force_login(user)
    history = reverse("portal:history")
    pages = {
        "history": (history, {}),
        "history_page_500": (history, {"page": 500}),
        "history_bounced_month": (history, {"status": "bounced", "date_from": month[0].isoformat(),
                                            "date_to": month[1].isoformat()}),
        "history_level_2": (history, {"level": 2}),
        "history_debtor_code": (history, {"debtor": "C00042"}),
        "history_piece_prefix": (history, {"piece": "FA00123"}),
        "dashboard": (reverse("portal:dashboard"), {}),
    }
    results = {}
    for name, (url, params) in pages.items():
        # Each request empties the query log (request_started): start the capture from empty.
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url, params)  # warm-up, and the page's query count
        assert response.status_code == 200, (name, response.status_code)
        # Read now: captured_queries is a view on the log that the next requests empty.
        queries = len(captured.captured_queries)
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        timings.sort()
        results[name] = {
            "p50_ms": round(percentile(timings, 50), 1), "p95_ms": round(percentile(timings, 95), 1),
            "max_ms": round(timings[-1], 1), "queries": queries,
        }
    return results


def percentile(ordered, rank):
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(rank / 100 * len(ordered)) - 1)]


if __name__ == "__main__":
    main()
