"""Check a customer's live Gestimum database before EasyRelance uses it.

Installers run ``manage.py gestimum_check <client>``: every step returns a
:class:`CheckResult` with a French sentence saying what is wrong and what to do,
never a traceback. Nothing is left behind: the write permissions are tried in
transactions that are always rolled back, and every read is short.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F

from .connection import gestimum_alias
from .gateway import describe_connection_error, live_columns
from .models import ALL_MODELS, Action, Counter, Echeance, Relance, RelanceEcheance, RelanceTiers
from .selection import base_annotations, unpaid_filter

OK, WARNING, ERROR = "ok", "avertissement", "erreur"

# Tables only needed when a task turns on the RELANCES write-back option.
OPTIONAL_TABLES = {"RELANCES", "REL_ECH", "REL_TIERS"}
CUSTOM_FIELD_TABLES = ("TIERS", "DOCUMENTS", "CONTACTS")
# Introspected types that can hold what a model field reads or writes.
TYPE_FAMILIES = {
    "text": {"CharField", "TextField"},
    "bool": {"BooleanField", "NullBooleanField"},
    "int": {"IntegerField", "SmallIntegerField", "BigIntegerField", "PositiveIntegerField",
            "PositiveSmallIntegerField", "AutoField", "BigAutoField", "SmallAutoField"},
    "number": {"DecimalField", "FloatField"},
    "datetime": {"DateTimeField", "DateField"},
}
# An identifier no Gestimum counter hands out (10 characters, not digits): the
# permission tests insert it and roll back.
PROBE_ID = "EASYRELCHK"
URL_FORMS = ("mssql://UTILISATEUR:MOTDEPASSE@SERVEUR:1433/BASE (authentification SQL Server), "
             "mssql://SERVEUR/BASE?trusted_connection=yes (authentification Windows), "
             "sqlite:////chemin/base.sqlite3 ou postgres://… (démonstration)")


@dataclass(frozen=True)
class CheckResult:
    step: str
    status: str  # OK, WARNING or ERROR
    message: str


@dataclass
class CheckReport:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self):
        return all(r.status != ERROR for r in self.results)

    def add(self, step, status, message):
        self.results.append(CheckResult(step, status, message))


class _Rollback(Exception):
    """Raised inside a permission test so that its transaction is always rolled back."""


def describe_failure(exc):
    """French, actionable sentence for any failure, including mssql-python's wording."""
    lowered = str(exc).lower()
    if "tcp provider" in lowered or "unable to establish connection" in lowered \
            or "network-related" in lowered or "server was not found" in lowered:
        return ("Serveur Gestimum injoignable : vérifiez l'adresse, le port (1433 par défaut), le "
                "pare-feu et que le service SQL Server accepte les connexions TCP/IP.")
    if "permission" in lowered and "denied" in lowered:
        return f"Droit refusé par la base : {exc}"
    if "ssl" in lowered or "certificate" in lowered:
        return ("Connexion chiffrée refusée : le certificat du serveur n'est pas reconnu. Installez un "
                "certificat valide ou ajoutez ?TrustServerCertificate=yes à l'URL (voir README).")
    return describe_connection_error(exc)


def check_gestimum(url, *, timezone="Europe/Paris"):
    """Run every check against the database at ``url``; return a :class:`CheckReport`."""
    report = CheckReport()
    if not url:
        report.add("connexion", ERROR, "Aucune connexion Gestimum n'est configurée (fiche client).")
        return report
    try:
        context = gestimum_alias(url, timezone=timezone, label="check")
        alias = context.__enter__()
    except Exception as exc:
        _report_opening_failure(report, exc)
        return report
    try:
        try:
            connections[alias].ensure_connection()
        except Exception as exc:
            report.add("connexion", ERROR, describe_failure(exc))
            return report
        report.add("connexion", OK, "Connexion établie.")
        _check_all(report, alias)
    finally:
        context.__exit__(None, None, None)
    return report


def _report_opening_failure(report, exc):
    text = str(exc)
    if "libodbc" in text.lower() or "pyodbc" in text.lower():
        report.add("connexion", ERROR, describe_connection_error(exc))
    else:
        report.add("connexion", ERROR, f"URL de connexion Gestimum invalide ({text or type(exc).__name__}). "
                                       f"Formes acceptées : {URL_FORMS}.")


def _check_all(report, alias):
    steps = [_server_version, _tables_and_columns, _custom_columns, _open_echeances,
             _numbering, _write_permissions]
    state = {}
    for step in steps:
        try:
            step(report, alias, state)
        except Exception as exc:  # one broken step must not hide the others
            report.add(step.__name__.strip("_").replace("_", " "), ERROR, describe_failure(exc))


def _server_version(report, alias, state):
    connection = connections[alias]
    queries = {
        "microsoft": "SELECT CAST(SERVERPROPERTY('ProductVersion') AS varchar(30)), "
                     "CAST(SERVERPROPERTY('Edition') AS varchar(100))",
        "postgresql": "SELECT current_setting('server_version'), 'PostgreSQL'",
        "sqlite": "SELECT sqlite_version(), 'SQLite'",
    }
    with connection.cursor() as cursor:
        cursor.execute(queries.get(connection.vendor, "SELECT 1, 1"))
        version, edition = cursor.fetchone()
    if connection.vendor == "microsoft":
        major = int(str(version).split(".")[0])
        if major < 13:
            report.add("version", ERROR, f"SQL Server {version} ({edition}) : EasyRelance demande SQL "
                                         "Server 2016 (13.x) ou plus récent.")
            return
        report.add("version", OK, f"SQL Server {version} ({edition}).")
        return
    report.add("version", WARNING, f"{edition} {version} : base de démonstration ou de test, pas un "
                                   "Gestimum de production.")


def _family(internal_type):
    for name, members in TYPE_FAMILIES.items():
        if internal_type in members:
            return name
    return None


def _tables_and_columns(report, alias, state):
    connection = connections[alias]
    existing = {name.upper() for name in connection.introspection.table_names()}
    state["tables"] = set()
    state["columns"] = {}
    for model in ALL_MODELS:
        table = model._meta.db_table
        if model is Counter and connection.vendor == "microsoft":
            continue  # SQL Server numbers with G2GETNEWNUMERO, checked below
        if table not in existing:
            optional = table in OPTIONAL_TABLES
            report.add("tables", WARNING if optional else ERROR,
                       f"Table {table} absente"
                       + (" : l'option « inscrire dans RELANCES » ne pourra pas être activée."
                          if optional else " : est-ce bien une base Gestimum V7 ou plus récente ?"))
            continue
        columns = live_columns(alias, table)
        state["columns"][table] = columns
        problems = []
        for model_field in model._meta.local_fields:
            if model_field.column is None:
                continue  # a composite primary key is made of columns checked on their own
            live = columns.get(model_field.column.upper())
            if live is None:
                problems.append(f"colonne {model_field.column} absente")
                continue
            typed = model_field.target_field if model_field.is_relation else model_field
            wanted = typed.get_internal_type()
            actual = _family(live[1])
            if actual is not None and actual != _family(wanted):
                problems.append(f"colonne {model_field.column} de type {live[1]} au lieu de {wanted}")
        if problems:
            report.add("tables", WARNING if table in OPTIONAL_TABLES else ERROR,
                       f"Table {table} : {', '.join(problems)}. Cette version de Gestimum diffère de "
                       "celle qu'attend EasyRelance : transmettez ce message à l'équipe EasyRelance.")
        else:
            state["tables"].add(table)
    checked = len(state["tables"])
    report.add("tables", OK, f"{checked} table(s) conformes (noms et types de colonnes).")


def _custom_columns(report, alias, state):
    for table in CUSTOM_FIELD_TABLES:
        columns = state["columns"].get(table)
        if columns is None:
            continue
        custom = sorted((name, kind) for name, (_, kind) in columns.items() if name.startswith("XXX_"))
        listed = ", ".join(f"{name} ({kind})" for name, kind in custom) or "aucun"
        report.add("champs personnalisés", OK, f"{table} : {listed}.")


def _open_echeances(report, alias, state):
    if not {"ECHEANCES", "DOCUMENTS"} <= state["tables"]:
        report.add("échéances", ERROR,
                   "Échéances non comptées : tables ECHEANCES ou DOCUMENTS non conformes.")
        return
    credit = settings.GESTIMUM["CREDIT_NOTE_STYPE"]
    # One short COUNT, in autocommit: no lock is kept on Gestimum afterwards.
    count = (Echeance.objects.using(alias).alias(**base_annotations())
             .filter(unpaid_filter(credit_note_stype=credit)).count())
    report.add("échéances", OK, f"{count} échéance(s) ouvertes (non soldées, reste à payer positif).")


def _numbering(report, alias, state):
    connection = connections[alias]
    if connection.vendor != "microsoft":
        return  # the counter table was checked with the other tables
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM INFORMATION_SCHEMA.ROUTINES WHERE ROUTINE_NAME = %s",
                       ["G2GETNEWNUMERO"])
        found = cursor.fetchone()[0]
    if found:
        report.add("numérotation", OK, "Procédure G2GETNEWNUMERO présente.")
    else:
        report.add("numérotation", ERROR, "Procédure stockée G2GETNEWNUMERO absente ou invisible pour cet "
                                          "utilisateur : accordez-lui EXECUTE sur G2GETNEWNUMERO.")


def _write_probes(alias):
    """(label, table, callable) of every kind of write the write-back does."""
    user = settings.GESTIMUM["USER"]

    def counter():
        from . import numbering

        numbering.allocate(alias, settings.GESTIMUM["COUNTER_ACTIONS"], 1)

    return [
        ("EXECUTE G2GETNEWNUMERO / compteur", None, counter),
        ("INSERT", "ACTIONS", lambda: Action.objects.using(alias).create(
            act_numero=PROBE_ID, act_objet="Test EasyRelance", act_usrcre=user)),
        ("UPDATE", "ECHEANCES", lambda: Echeance.objects.using(alias).filter(ech_numero=PROBE_ID).update(
            ech_nbrel=F("ech_nbrel"), ech_usrmaj=user)),
        ("INSERT", "RELANCES", lambda: Relance.objects.using(alias).create(rel_numero=PROBE_ID)),
        ("INSERT", "REL_ECH", lambda: RelanceEcheance.objects.using(alias).create(
            rel_numero=PROBE_ID, ech_numero=PROBE_ID)),
        ("INSERT", "REL_TIERS", lambda: RelanceTiers.objects.using(alias).create(
            rel_numero=PROBE_ID, pcf_code=PROBE_ID)),
    ]


def _write_permissions(report, alias, state):
    granted = []
    for right, table, probe in _write_probes(alias):
        if table is not None and table not in state["tables"]:
            continue
        target = f"{right} sur {table}" if table else right
        try:
            # Each probe in its own transaction, always rolled back: nothing is
            # written and a refusal does not spoil the next probe.
            with transaction.atomic(using=alias):
                probe()
                raise _Rollback
        except _Rollback:
            granted.append(target)
        except Exception as exc:
            optional = table in OPTIONAL_TABLES
            grant = f"GRANT {right} ON {table} TO <utilisateur>" if table else \
                "GRANT EXECUTE ON G2GETNEWNUMERO TO <utilisateur>"
            report.add("droits d'écriture", WARNING if optional else ERROR,
                       f"{target} refusé ({describe_failure(exc)}). À faire sur le serveur : {grant}.")
    if granted:
        report.add("droits d'écriture", OK,
                   f"Essayés puis annulés (rien n'a été écrit) : {', '.join(granted)}.")
