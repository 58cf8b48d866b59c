"""``manage.py gestimum_check``: a healthy demo database passes, broken ones fail in French."""

import pyodbc
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from relance.demo import fill_demo_database
from relance.gestimum import models as g
from relance.gestimum import schema
from relance.gestimum.checks import ERROR, OK, WARNING, check_gestimum
from relance.gestimum.connection import gestimum_alias
from relance.models import Customer

pytestmark = pytest.mark.django_db

UNREACHABLE = ("Serveur Gestimum injoignable",)
NO_DRIVER = "Pilote ODBC introuvable"


def run_check(slug):
    """(exit code, output) of the command, as an installer would see them."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("gestimum_check", slug, stdout=out)
    except CommandError as exc:
        return 1, out.getvalue() + str(exc)
    return 0, out.getvalue()


def customer_with(url, slug="broken"):
    return Customer.objects.create(name="Client cassé", slug=slug, gestimum_url=url)


def sqlite_gestimum(tmp_path, django_db_blocker, *statements):
    """A demo-shaped SQLite Gestimum, then broken by ``statements``."""
    url = f"sqlite:///{tmp_path / 'broken.sqlite3'}"
    with django_db_blocker.unblock(), gestimum_alias(url) as alias:
        schema.create_tables(alias)
        with connections[alias].cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    return url


def messages(report, status):
    return [r.message for r in report.results if r.status == status]


# -- a healthy database -----------------------------------------------------------------------

def test_the_demo_database_passes_every_check(gestimum, customer):
    fill_demo_database(gestimum.alias, size="small")
    counter_before = g.Counter.objects.using(gestimum.alias).get(name="N_ACT").value
    open_count = sum(1 for e in g.Echeance.objects.using(gestimum.alias).select_related("document")
                     if not e.ech_solder and (e.ech_arecev or 0) - (e.ech_recu or 0) > 0
                     and (e.document is None or (e.document.doc_stype or "").strip() != "A"))

    code, output = run_check("dupont")

    assert code == 0, output
    assert "La base Gestimum est prête pour EasyRelance." in output
    assert "ERREUR" not in output
    assert f"{open_count} échéance(s) ouvertes" in output
    assert "TIERS : XXX_CLTWEB (BooleanField), XXX_EMAILRELANCE (CharField)" in output
    assert "DOCUMENTS : XXX_AFFAIRE (CharField), XXX_LITIGE (BooleanField)" in output
    assert "CONTACTS : XXX_RELANCE (BooleanField)" in output
    assert "INSERT sur ACTIONS" in output and "UPDATE sur ECHEANCES" in output
    # The write permissions were tried and rolled back: nothing is left in Gestimum.
    assert not g.Action.objects.using(gestimum.alias).exists()
    assert not g.Relance.objects.using(gestimum.alias).exists()
    assert g.Counter.objects.using(gestimum.alias).get(name="N_ACT").value == counter_before


def test_a_demo_engine_is_reported_as_not_a_production_gestimum(gestimum_url):
    report = check_gestimum(gestimum_url)

    [version] = [r for r in report.results if r.step == "version"]
    assert version.status == WARNING
    assert "pas un Gestimum de production" in version.message
    assert report.ok


# -- broken databases -------------------------------------------------------------------------

def test_a_missing_table_fails_with_its_name(tmp_path, django_db_blocker):
    customer_with(sqlite_gestimum(tmp_path, django_db_blocker, 'DROP TABLE "ECHEANCES"'))

    code, output = run_check("broken")

    assert code == 1
    assert "Table ECHEANCES absente : est-ce bien une base Gestimum V7 ou plus récente ?" in output
    assert "Échéances non comptées" in output
    assert "Traceback" not in output


def test_a_missing_column_fails_with_table_and_column(tmp_path, django_db_blocker):
    customer_with(sqlite_gestimum(tmp_path, django_db_blocker,
                                  'ALTER TABLE "CONTACTS" DROP COLUMN "CCT_EMAIL"'))

    code, output = run_check("broken")

    assert code == 1
    assert "Table CONTACTS : colonne CCT_EMAIL absente." in output


def test_a_column_of_the_wrong_type_fails(tmp_path, django_db_blocker):
    customer_with(sqlite_gestimum(
        tmp_path, django_db_blocker,
        'ALTER TABLE "ECHEANCES" DROP COLUMN "ECH_NBREL"',
        'ALTER TABLE "ECHEANCES" ADD COLUMN "ECH_NBREL" datetime NULL',
    ))

    code, output = run_check("broken")

    assert code == 1
    assert "colonne ECH_NBREL de type DateTimeField au lieu de IntegerField" in output


def test_missing_relances_tables_only_warn(tmp_path, django_db_blocker):
    url = sqlite_gestimum(tmp_path, django_db_blocker, 'DROP TABLE "REL_TIERS"')

    report = check_gestimum(url)

    assert report.ok
    assert any("Table REL_TIERS absente" in m for m in messages(report, WARNING))


def test_a_refused_write_names_the_grant_to_give_and_the_others_still_run(tmp_path, django_db_blocker):
    # SQLite has no permissions: a trigger refuses the insert the way SQL Server would.
    url = sqlite_gestimum(tmp_path, django_db_blocker, (
        'CREATE TRIGGER refuse BEFORE INSERT ON "ACTIONS" BEGIN '
        "SELECT RAISE(ABORT, 'The INSERT permission was denied on the object ACTIONS'); END"))

    report = check_gestimum(url)

    assert not report.ok
    [refused] = messages(report, ERROR)
    assert refused.startswith("INSERT sur ACTIONS refusé")
    assert "GRANT INSERT ON ACTIONS TO <utilisateur>" in refused
    [granted] = [m for m in messages(report, OK) if m.startswith("Essayés puis annulés")]
    assert "UPDATE sur ECHEANCES" in granted and "INSERT sur RELANCES" in granted


def test_an_unreachable_postgres_server_is_a_french_message(db):
    customer_with("postgres://postgres@127.0.0.1:1/gestimum")

    code, output = run_check("broken")

    assert code == 1
    assert "Serveur Gestimum injoignable" in output
    assert "Traceback" not in output


def test_a_malformed_url_says_which_forms_are_accepted(db):
    customer_with("gestimum://serveur/base")

    code, output = run_check("broken")

    assert code == 1
    assert "URL de connexion Gestimum invalide" in output
    assert "mssql://UTILISATEUR:MOTDEPASSE@SERVEUR:1433/BASE" in output


def test_sql_server_without_its_odbc_driver_or_server_is_a_french_message(db):
    customer_with("mssql://easyrel:secret@127.0.0.1:1/GESTIMUM")

    code, output = run_check("broken")

    assert code == 1
    if "ODBC Driver 18 for SQL Server" in pyodbc.drivers():
        assert UNREACHABLE[0] in output
    else:
        assert NO_DRIVER in output
    assert "Traceback" not in output


def test_sql_server_through_mssql_python_refused_is_unreachable(db):
    customer_with("mssql://easyrel:secret@127.0.0.1:1/GESTIMUM?driver=mssql-python&connection_timeout=2")

    code, output = run_check("broken")

    assert code == 1
    assert UNREACHABLE[0] in output


def test_an_unknown_customer_is_a_french_error(db):
    code, output = run_check("inconnu")

    assert code == 1
    assert "Aucun client « inconnu »" in output


def test_a_customer_without_connection_is_told_where_to_set_it(db):
    customer_with("", slug="vide")

    code, output = run_check("vide")

    assert code == 1
    assert "Aucune connexion Gestimum n'est configurée" in output
