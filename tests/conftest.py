"""Shared fixtures: a Gestimum database, a real SMTP server, a configured customer.

The Gestimum database is a fresh SQLite file per test, or, when the app
database is PostgreSQL (CI), a dedicated PostgreSQL database whose tables are
emptied between tests, so the gateway's SQL runs on both engines.
"""

import email
import os
import socket
from datetime import datetime, time, timedelta
from decimal import Decimal
from email import policy
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.utils import timezone

from relance.gestimum import models as g
from relance.gestimum import schema
from relance.gestimum.connection import gestimum_alias

# The portal tests' fixtures (acme, other, portal_client, portal_settings).
from .portal_support import acme, other, portal_client, portal_settings  # noqa: F401

PARIS = timezone.get_default_timezone()


# Several developers (and CI) may run the suite at once against one PostgreSQL
# server: outside CI each run gets its own test database names.
RUN_SUFFIX = "" if os.environ.get("CI") else f"p{os.getpid()}"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    from pytest_django.fixtures import _set_suffix_to_test_databases

    if RUN_SUFFIX:
        _set_suffix_to_test_databases(suffix=RUN_SUFFIX)


# -- Gestimum database ----------------------------------------------------------------

def _postgres_gestimum_url():
    default = django_settings.DATABASES["default"]
    if default["ENGINE"] != "django.db.backends.postgresql":
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"easyrelance_test_gestimum_{worker}{RUN_SUFFIX}"
    user = default.get("USER") or "postgres"
    password = f":{default['PASSWORD']}" if default.get("PASSWORD") else ""
    host = default.get("HOST") or "127.0.0.1"
    port = default.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{name}", name


@pytest.fixture(scope="session")
def _postgres_gestimum(django_db_blocker):
    found = _postgres_gestimum_url()
    if found is None:
        yield None
        return
    url, name = found
    import psycopg

    default = django_settings.DATABASES["default"]
    admin_dsn = (f"host={default.get('HOST') or '127.0.0.1'} port={default.get('PORT') or 5432} "
                 f"user={default.get('USER') or 'postgres'} dbname=postgres")
    if default.get("PASSWORD"):
        admin_dsn += f" password={default['PASSWORD']}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    with django_db_blocker.unblock(), gestimum_alias(url) as alias:
        schema.create_tables(alias)
    yield url
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def gestimum_url(tmp_path, _postgres_gestimum, django_db_blocker):
    """URL of an empty Gestimum database (tables and demo custom columns created)."""
    if _postgres_gestimum:
        with django_db_blocker.unblock(), gestimum_alias(_postgres_gestimum) as alias:
            tables = ", ".join(connections[alias].ops.quote_name(m._meta.db_table) for m in g.ALL_MODELS)
            with connections[alias].cursor() as cursor:
                cursor.execute(f"TRUNCATE {tables}")
        return _postgres_gestimum
    url = f"sqlite:///{tmp_path / 'gestimum.sqlite3'}"
    with django_db_blocker.unblock(), gestimum_alias(url) as alias:
        schema.create_tables(alias)
    return url


class GestimumBuilder:
    """Insert realistic Gestimum rows in a few words."""

    def __init__(self, alias, today):
        self.alias = alias
        self.today = today
        self._next = 0

    def number(self):
        self._next += 1
        return str(self._next).zfill(10)

    def at(self, day):
        return timezone.make_aware(datetime.combine(day, time.min), PARIS)

    def tiers(self, code, *, name=None, email="compta@client.example", **fields):
        fields.setdefault("pcf_type", "C")
        fields.setdefault("pcf_rue", "12 rue des Lilas")
        fields.setdefault("pcf_cp", "69003")
        fields.setdefault("pcf_ville", "Lyon")
        custom = {k: fields.pop(k) for k in list(fields) if k.startswith("XXX_")}
        tiers = g.Tiers.objects.using(self.alias).create(
            pcf_code=code, pcf_rs=name or f"Société {code}", pcf_email=email, **fields)
        for column, value in custom.items():
            self.set_column("TIERS", "PCF_CODE", code, column, value)
        return tiers

    def contact(self, tiers_code, *, email, function="", qual1="", **fields):
        return g.Contact.objects.using(self.alias).create(
            cct_numero=self.number(), cct_table="PCF", cct_origin=tiers_code, cct_email=email,
            cct_fonct=function, cct_qual1=qual1, cct_nom=fields.pop("nom", "Martin"),
            cct_prenom=fields.pop("prenom", "Claire"), **fields)

    def invoice(self, tiers_code, *, piece=None, days_late=10, amount="1200.00", received="0",
                stype="F", settled=None, issued_days_ago=None, lines=None, **doc_fields):
        """A document with its lines and one échéance due ``days_late`` days ago."""
        amount, received = Decimal(amount), Decimal(received)
        doc_numero = self.number()
        piece = piece or f"FA{doc_numero[-6:]}"
        due = self.today - timedelta(days=days_late)
        issued = self.today - timedelta(days=issued_days_ago if issued_days_ago is not None
                                        else days_late + 30)
        custom = {k: doc_fields.pop(k) for k in list(doc_fields) if k.startswith("XXX_")}
        ht = (amount / Decimal("1.2")).quantize(Decimal("0.01"))
        g.Document.objects.using(self.alias).create(
            doc_numero=doc_numero, doc_piece=piece, doc_type="V", doc_stype=stype, doc_etat="E",
            doc_date=self.at(issued), tiers_id=tiers_code, doc_mt_ht=ht, doc_mt_tva=amount - ht,
            doc_mt_ttc=amount, doc_mt_net=amount, doc_f_rs=f"Société {tiers_code}",
            doc_f_rue="12 rue des Lilas", doc_f_cp="69003", doc_f_vill="Lyon", **doc_fields)
        for column, value in custom.items():
            self.set_column("DOCUMENTS", "DOC_NUMERO", doc_numero, column, value)
        for index, (label, qty, price) in enumerate(lines or [("Prestation de conseil", 1, ht)], 1):
            price = Decimal(str(price))
            g.DocumentLine.objects.using(self.alias).create(
                document_id=doc_numero, lig_numero=index, art_code=f"ART{index:03}", lig_lib=label,
                lig_qte=qty, lig_p_brut=price, lig_p_net=price, lig_total=price * Decimal(str(qty)),
                nat_tvatx=Decimal("20"))
        echeance = g.Echeance.objects.using(self.alias).create(
            ech_numero=self.number(), document_id=doc_numero, ech_piece=piece, tiers_id=tiers_code,
            pcf_rs=f"Société {tiers_code}", ech_dtemis=self.at(issued), ech_date=self.at(due),
            reg_code="VIR", ech_arecev=amount if stype != "A" else Decimal("0"),
            ech_apayer=amount if stype == "A" else Decimal("0"), ech_recu=received,
            ech_solder=settled, ech_nbrel=0)
        return echeance.ech_numero

    def pay(self, ech_numero, amount=None):
        """Record a payment: the whole remaining amount unless ``amount`` is given."""
        ech = g.Echeance.objects.using(self.alias).get(pk=ech_numero)
        paid = ech.ech_arecev if amount is None else (ech.ech_recu or 0) + Decimal(amount)
        g.Echeance.objects.using(self.alias).filter(pk=ech_numero).update(
            ech_recu=paid, ech_solder=paid >= ech.ech_arecev)

    def set_column(self, table, key_column, key, column, value):
        connection = connections[self.alias]
        quote = connection.ops.quote_name
        if isinstance(value, datetime):  # stored the way the ORM stores datetimes on this engine
            value = connection.ops.adapt_datetimefield_value(value)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE {quote(key_column)} = %s",
                           [value, key])

    def rows(self, model, **filters):
        return list(model.objects.using(self.alias).filter(**filters))

    def echeance(self, ech_numero):
        return g.Echeance.objects.using(self.alias).get(pk=ech_numero)


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def gestimum(gestimum_url, today, django_db_blocker):
    with django_db_blocker.unblock(), gestimum_alias(gestimum_url) as alias:
        yield GestimumBuilder(alias, today)


# -- files and settings -------------------------------------------------------------

@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DIVERT_ROOT = tmp_path / "divert"
    settings.ARCHIVE_ROOT = tmp_path / "archive"
    settings.EMAIL_FILE_PATH = tmp_path / "mail"
    settings.SEND_RETRY_BASE_DELAY = 0
    (tmp_path / "archive").mkdir()


# -- a real SMTP server ---------------------------------------------------------------

class RecordingHandler:
    """aiosmtpd handler keeping every accepted message; can refuse on demand."""

    def __init__(self):
        self.messages = []
        self.rcpt_replies = {}  # address -> SMTP reply, e.g. "550 5.1.1 Unknown user"
        self.data_replies = []  # replies returned to the next DATA commands, in order

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append(SimpleNamespace(
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
            message=email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    from aiosmtpd.controller import Controller

    handler = RecordingHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    try:
        yield handler
    finally:
        controller.stop()


# -- the app side -----------------------------------------------------------------------

@pytest.fixture
def customer(db, gestimum_url):
    from relance.models import Customer

    return Customer.objects.create(
        name="Dupont Industrie", slug="dupont", gestimum_url=gestimum_url,
        signature="Service comptabilité\nDupont Industrie", address="3 quai Perrache\n69002 Lyon",
        siret="12345678900011", vat_number="FR12123456789", notification_email="adv@dupont.example",
        reply_to="compta@dupont.example",
    )


@pytest.fixture
def make_task(customer):
    from relance.models import ReminderTask

    def make(**fields):
        fields.setdefault("name", f"Relance niveau {fields.get('level', 1)}")
        fields.setdefault("days", 5)
        fields.setdefault("body_template",
                          "Bonjour {{ tiers_nom }},\nLa facture {{ document_numero }} du {{ document_date }} "
                          "reste due : {{ montant_restant }} ({{ jours_retard }} jours de retard).\n"
                          "{{ signature }}")
        return ReminderTask.objects.create(customer=fields.pop("customer", customer), **fields)

    return make


def pdf_text(content):
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
