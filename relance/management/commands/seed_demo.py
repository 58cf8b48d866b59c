"""Create and fill a demo Gestimum database (SQLite or PostgreSQL, never SQL Server)."""

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections

from relance.demo import SIZES, fill_demo_database
from relance.gestimum import schema
from relance.gestimum.connection import database_config, gestimum_alias
from relance.gestimum.models import Document, Echeance, Tiers

# URL schemes and engines that reach SQL Server: a customer's real Gestimum.
SQL_SERVER_SCHEMES = {"mssql", "pyodbc", "sqlserver"}
SQL_SERVER_ENGINES = {"mssql", "sql_server.pyodbc"}
DEMO_ENGINES = {"django.db.backends.sqlite3", "django.db.backends.postgresql"}
SQL_SERVER_REFUSAL = (
    "Refusé : {url} désigne un SQL Server. La démonstration ne crée ni ne remplit jamais "
    "de tables dans une base SQL Server (c'est là que vivent les vraies bases Gestimum des clients). "
    "Indiquez une URL sqlite:// ou postgres://."
)
TABLE_LABELS = {
    "TIERS_FAM": "familles de tiers",
    "REPRESENTANTS": "représentants",
    "MODE_REG": "modes de règlement",
    "TIERS": "tiers",
    "CONTACTS": "contacts",
    "DOCUMENTS": "documents",
    "LIGNES": "lignes de documents",
    "ECHEANCES": "échéances",
    "EASYREL_COMPTEURS": "compteurs",
}


def default_url():
    return f"sqlite:///{Path(settings.VAR_DIR) / 'demo-gestimum.sqlite3'}"


def describe(url):
    """The URL as it may be printed: without its password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


class Command(BaseCommand):
    help = (
        "Crée une base Gestimum de démonstration (SQLite ou PostgreSQL) et la remplit de données "
        "réalistes : tiers, contacts, factures, avoirs, échéances en retard ou non."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--gestimum-url", default=None,
            help="URL de la base de démonstration (défaut : sqlite:///<VAR_DIR>/demo-gestimum.sqlite3).",
        )
        parser.add_argument(
            "--reset", action="store_true",
            help="Supprime puis recrée les tables Gestimum avant de les remplir.",
        )
        parser.add_argument("--size", choices=sorted(SIZES), default="normal",
                            help="small : environ 10 tiers et 30 factures, pour les tests.")

    def handle(self, *args, gestimum_url=None, reset=False, size="normal", **options):
        url = gestimum_url or default_url()
        shown = describe(url)
        config = self._parse(url, shown)
        if config["ENGINE"] == "django.db.backends.sqlite3" and config["NAME"] not in ("", ":memory:"):
            # SQLite creates the file itself, but not the folders above it.
            Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)

        with gestimum_alias(url) as alias:
            try:
                if reset:
                    schema.drop_tables(alias)
                self._refuse_if_filled(alias, shown)
                schema.create_tables(alias)
                summary = fill_demo_database(alias, size=size)
            except schema.GestimumSchemaRefused as exc:
                raise CommandError(SQL_SERVER_REFUSAL.format(url=shown)) from exc
            except DatabaseError as exc:
                raise CommandError(f"Échec sur la base {shown} : {exc}") from exc

        self.stdout.write(self.style.SUCCESS(f"Base Gestimum de démonstration remplie : {shown}"))
        for table, count in summary.items():
            self.stdout.write(f"  {TABLE_LABELS.get(table, table)} : {count}")

    def _parse(self, url, shown):
        # Refuse SQL Server before any connection is even attempted.
        if urlsplit(url).scheme.lower() in SQL_SERVER_SCHEMES:
            raise CommandError(SQL_SERVER_REFUSAL.format(url=shown))
        try:
            config = database_config(url)
        except (ImproperlyConfigured, KeyError, ValueError) as exc:  # KeyError: no engine for the scheme
            raise CommandError(f"URL de base de données non reconnue : {shown} ({exc}).") from exc
        if config["ENGINE"] in SQL_SERVER_ENGINES:
            raise CommandError(SQL_SERVER_REFUSAL.format(url=shown))
        if config["ENGINE"] not in DEMO_ENGINES:
            raise CommandError(
                f"URL non prise en charge : {shown}. La base de démonstration est une base SQLite "
                "(sqlite:///chemin/fichier.sqlite3) ou PostgreSQL (postgres://...)."
            )
        return config

    def _refuse_if_filled(self, alias, shown):
        existing = set(connections[alias].introspection.table_names())
        counts = {
            model._meta.db_table: model.objects.using(alias).count()
            for model in (Echeance, Document, Tiers) if model._meta.db_table in existing
        }
        if any(counts.values()):
            raise CommandError(
                f"La base {shown} contient déjà des données Gestimum "
                f"({counts.get('ECHEANCES', 0)} échéances, {counts.get('TIERS', 0)} tiers) : "
                "rien n'a été modifié. Relancez avec --reset pour l'effacer et la recréer."
            )
