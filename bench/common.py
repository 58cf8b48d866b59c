"""Shared plumbing of the benchmarks: throwaway databases, bulk Gestimum data, SMTP sink.

Benchmarks are scripts, not tests: each one builds its own app database and
Gestimum database (PostgreSQL by default, SQLite with ``--sqlite``), runs real
code against them, prints a human summary and, as its last line, one JSON
object. Nothing here is imported by the project.
"""

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/easyrelance"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parser(description, size):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--size", type=int, default=size, help="échéances overdue (5 per debtor)")
    p.add_argument("--sqlite", action="store_true",
                   help="SQLite for the app and Gestimum databases instead of PostgreSQL")
    p.add_argument("--keep", action="store_true", help="keep the databases and files afterwards")
    return p


# -- environment ---------------------------------------------------------------------

class Environment:
    """Throwaway app + Gestimum databases and folders for one benchmark process tree."""

    def __init__(self, *, sqlite, keep=False):
        self.sqlite = sqlite
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix="easyrelance-bench-"))
        self.created = []
        tag = f"{os.getpid()}"
        if sqlite:
            self.app_url = f"sqlite:///{self.tmp / 'app.sqlite3'}"
            self.gestimum_url = f"sqlite:///{self.tmp / 'gestimum.sqlite3'}"
        else:
            base = os.environ.get("DATABASE_URL", "")
            base = base if base.startswith("postgres") else DEFAULT_POSTGRES
            parsed = urlparse(base)
            self.server = parsed
            self.app_url = parsed._replace(path=f"/bench_easyrelance_{tag}").geturl()
            self.gestimum_url = parsed._replace(path=f"/bench_gestimum_{tag}").geturl()
            for url in (self.app_url, self.gestimum_url):
                self._admin(f'DROP DATABASE IF EXISTS "{urlparse(url).path[1:]}"')
                self._admin(f'CREATE DATABASE "{urlparse(url).path[1:]}"')
                self.created.append(urlparse(url).path[1:])

    def _admin(self, sql):
        import psycopg

        p = self.server
        dsn = (f"host={p.hostname or '127.0.0.1'} port={p.port or 5432} "
               f"user={p.username or 'postgres'} dbname=postgres")
        if p.password:
            dsn += f" password={p.password}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)

    def env(self):
        """Environment variables for this process and the benchmark's child processes."""
        return {
            **os.environ,
            "DATABASE_URL": self.app_url,
            "DJANGO_SETTINGS_MODULE": "easyrelance.settings",
            "MEDIA_ROOT": str(self.tmp / "media"),
            "DIVERT_ROOT": str(self.tmp / "divert"),
            "ARCHIVE_ROOT": str(self.tmp / "archive"),
            "EMAIL_BACKEND": "smtp",
            "EMAIL_HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "SEND_RETRY_BASE_DELAY": "0",
        }

    def close(self):
        if self.keep:
            print(f"(kept: {self.tmp}, {self.app_url}, {self.gestimum_url})", file=sys.stderr)
            return
        from django.db import connections

        connections.close_all()
        for name in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)


def setup_django(environment, smtp_port=None):
    """Point this process at the benchmark databases, then django.setup() and migrate."""
    os.environ.update(environment.env())
    if smtp_port:
        os.environ["EMAIL_PORT"] = str(smtp_port)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def django_for_child():
    """In a child process started with Environment.env(): just set Django up."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easyrelance.settings")
    django.setup()


# -- the SMTP server -------------------------------------------------------------------

@contextmanager
def smtp_sink():
    """A real SMTP server (aiosmtpd) in its own process; yields its port."""
    process = subprocess.Popen([sys.executable, str(BENCH / "smtp_sink.py")],
                               stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline().strip())
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- Gestimum data, in bulk --------------------------------------------------------------

LABELS = ["Prestation de conseil", "Licence annuelle 5 postes", "Formation sur site (journée)",
          "Maintenance trimestrielle", "Frais de déplacement", "Palette Europe 1200 x 800",
          "Câble réseau cat. 6 touret 305 m", "Main-d'œuvre technicien (heure)"]
CITIES = [("69003", "Lyon"), ("75011", "Paris"), ("33000", "Bordeaux"), ("59000", "Lille"),
          ("13001", "Marseille"), ("44000", "Nantes"), ("31000", "Toulouse")]


def fill_gestimum(url, size, *, today=None, seed=1, per_debtor=5):
    """``size`` overdue invoices (one échéance each, 2-4 lines) across size/5 debtors.

    Plain bulk inserts (no Faker per row): 10,000 échéances take a few seconds.
    Every debtor has a valid address on example.com and one accounting contact.
    """
    from django.utils import timezone

    from relance.gestimum import models as g
    from relance.gestimum import schema
    from relance.gestimum.connection import gestimum_alias

    rng = random.Random(seed)
    today = today or timezone.localdate()
    paris = timezone.get_default_timezone()
    debtors = max(1, size // per_debtor)

    def at(day):
        return timezone.make_aware(datetime.combine(day, dtime.min), paris)

    with gestimum_alias(url) as alias:
        schema.create_tables(alias)
        db = g.Tiers.objects.using(alias)
        tiers, contacts = [], []
        for n in range(1, debtors + 1):
            code = f"C{n:06d}"
            postcode, city = CITIES[n % len(CITIES)]
            tiers.append(g.Tiers(pcf_code=code, pcf_type="C", pcf_rs=f"Société {n} SARL",
                                 pcf_rue=f"{n % 90 + 1} rue de la République", pcf_cp=postcode,
                                 pcf_ville=city, pay_code="FR", pcf_email=f"compta{n}@example.com",
                                 fat_code="GROS", reg_code="VIR"))
            contacts.append(g.Contact(cct_numero=f"{n:010d}", cct_table="PCF", cct_origin=code,
                                      cct_prenom="Claire", cct_nom=f"Martin{n}",
                                      cct_email=f"claire{n}@example.com", cct_fonct="COMPTA"))
        db.bulk_create(tiers, batch_size=500)
        g.Contact.objects.using(alias).bulk_create(contacts, batch_size=500)
        documents, lines, echeances = [], [], []
        for n in range(1, size + 1):
            code = f"C{(n - 1) % debtors + 1:06d}"
            numero = f"{n:010d}"
            piece = f"FA{n:08d}"
            # Odd and even invoices fall in two due-date halves (two_workers.py splits on them).
            days_late = 10 + (n % 2) * 25 + (n // 2) % 25
            due = today - timedelta(days=days_late)
            issued = due - timedelta(days=30)
            doc_lines = []
            for index in range(1, rng.randint(2, 4) + 1):
                qty = rng.randint(1, 5)
                price = Decimal(rng.randint(2000, 90000)) / 100
                doc_lines.append(g.DocumentLine(
                    document_id=numero, lig_numero=index, art_code=f"ART{index:03}",
                    lig_lib=rng.choice(LABELS), lig_qte=qty, lig_p_brut=price, lig_p_net=price,
                    lig_total=price * qty, nat_tvatx=Decimal("20")))
            ht = sum(line.lig_total for line in doc_lines)
            vat = (ht * Decimal("0.2")).quantize(Decimal("0.01"))
            ttc = ht + vat
            lines.extend(doc_lines)
            documents.append(g.Document(
                doc_numero=numero, doc_piece=piece, doc_type="V", doc_stype="F", doc_etat="E",
                doc_date=at(issued), tiers_id=code, doc_mt_ht=ht, doc_mt_tva=vat, doc_mt_ttc=ttc,
                doc_mt_net=ttc, reg_code="VIR", doc_f_rs=f"Société {code}",
                doc_f_rue="12 rue des Lilas", doc_f_cp="69003", doc_f_vill="Lyon"))
            echeances.append(g.Echeance(
                ech_numero=numero, document_id=numero, ech_piece=piece, tiers_id=code,
                pcf_rs=f"Société {code}", ech_dtemis=at(issued), ech_date=at(due), reg_code="VIR",
                ech_arecev=ttc, ech_apayer=Decimal("0"), ech_recu=Decimal("0"), ech_solder=False,
                ech_nbrel=0))
            if len(documents) >= 2000:
                _flush(alias, documents, lines, echeances)
        _flush(alias, documents, lines, echeances)


def _flush(alias, documents, lines, echeances):
    from relance.gestimum import models as g

    g.Document.objects.using(alias).bulk_create(documents, batch_size=500)
    g.DocumentLine.objects.using(alias).bulk_create(lines, batch_size=500)
    g.Echeance.objects.using(alias).bulk_create(echeances, batch_size=500)
    documents.clear()
    lines.clear()
    echeances.clear()


def fill_in_child(environment, size):
    """Fill Gestimum in a child process so its memory does not count in our peak RSS."""
    subprocess.run([sys.executable, str(BENCH / "common.py"), "fill", environment.gestimum_url,
                    str(size)], env=environment.env(), check=True)


# -- the app side ------------------------------------------------------------------------

def make_customer(gestimum_url, slug="bench"):
    from relance.models import Customer

    return Customer.objects.create(
        name=f"Dupont Industrie ({slug})", slug=slug, gestimum_url=gestimum_url,
        signature="Service comptabilité\nDupont Industrie", address="3 quai Perrache\n69002 Lyon",
        siret="12345678900011", vat_number="FR12123456789", reply_to="compta@dupont.example.com",
        iban="FR7630006000011234567890189", phone="04 78 00 00 00")


def make_task(customer, **fields):
    from relance.models import ReminderTask

    fields.setdefault("name", f"Relance niveau {fields.get('level', 1)}")
    fields.setdefault("days", 5)
    return ReminderTask.objects.create(customer=customer, **fields)


@contextmanager
def counting_gestimum_statements(counter):
    """Count every SQL statement sent on the Gestimum alias of each run (execute wrapper)."""
    from django.db import connections

    from relance import engine

    original = engine.open_gateway

    def wrapper(execute, sql, params, many, context):
        counter["statements"] += 1
        return execute(sql, params, many, context)

    @contextmanager
    def open_counted(customer):
        with original(customer) as gateway:
            with connections[gateway.alias].execute_wrapper(wrapper):
                yield gateway

    engine.open_gateway = open_counted
    try:
        yield counter
    finally:
        engine.open_gateway = original


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_render_rate(customer, task, *, count, seconds=30.0):
    """Documents per second of xhtml2pdf alone on the same invoices, same template."""
    from relance import rendering
    from relance.engine import TaskRunner
    from relance.gestimum.gateway import open_gateway

    runner = TaskRunner(task)
    with open_gateway(customer) as gateway:
        page = next(gateway.candidate_pages(runner.selection, today=runner.today,
                                            page_size=min(count, 1000)), [])
        gateway.attach_lines(page)
    if not page:
        return 0.0, 0
    started = time.perf_counter()
    done = 0
    while done < count and time.perf_counter() - started < seconds:
        rendering.render_invoice_pdf(customer=customer, candidate=page[done % len(page)],
                                     invoice_template=task.invoice_template, today=runner.today)
        done += 1
    return done / (time.perf_counter() - started), done


def report(summary_lines, figures):
    """The human summary, then the one JSON line machines read."""
    for line in summary_lines:
        print(line)
    print(json.dumps(figures, sort_keys=True))


def machine():
    import platform

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cœurs, Python {platform.python_version()}"


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "fill":
    django_for_child()
    fill_gestimum(sys.argv[2], int(sys.argv[3]))


@contextlib.contextmanager
def render_clock(clock):
    """Time every xhtml2pdf render made inside the block: ``clock`` gets renders and seconds.

    The render rate measured this way comes from the very run it is compared
    with, so a machine whose speed drifts (a shared host) moves both alike.
    """
    from relance import rendering

    original = rendering.render_invoice_pdf

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            clock["renders"] += 1
            clock["seconds"] += time.perf_counter() - started

    clock.update(renders=0, seconds=0.0)
    rendering.render_invoice_pdf = timed
    try:
        yield clock
    finally:
        rendering.render_invoice_pdf = original


def timed_run(task, clock=None):
    """Run ``task`` end to end; return (TaskRun, seconds, Gestimum statements, gateway count).

    With ``clock`` (a dict), the renders of the run and their time are put in it."""
    from relance.engine import TaskRunner

    counter = {"statements": 0}
    runner = TaskRunner(task)
    with counting_gestimum_statements(counter), render_clock(clock if clock is not None else {}):
        started = time.perf_counter()
        run = runner.execute()
        seconds = time.perf_counter() - started
    return run, seconds, counter["statements"], getattr(runner, "gestimum_queries", None)


def per_thousand(count, size):
    return round(count * 1000 / size, 2) if size and count is not None else None
