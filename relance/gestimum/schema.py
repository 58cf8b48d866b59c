"""Create the Gestimum tables on a demo or test database (never on SQL Server).

Production Gestimum databases already have their tables; this exists so the
demo and the tests run the very same queries against SQLite or PostgreSQL.
"""

from django.db import connections, models

from .models import ALL_MODELS, Tiers

# Custom fields ("champs personnalisés") the demo and test databases carry,
# per table: the shapes seen on real Gestimum databases.
DEMO_CUSTOM_COLUMNS = {
    "TIERS": {
        "XXX_TOUR": models.CharField(max_length=20, null=True),
        "XXX_CLTWEB": models.BooleanField(null=True),
        "XXX_EMAILRELANCE": models.CharField(max_length=120, null=True),
        "XXX_PLAFOND": models.DecimalField(max_digits=20, decimal_places=4, null=True),
    },
    "DOCUMENTS": {
        "XXX_LITIGE": models.BooleanField(null=True),
        "XXX_AFFAIRE": models.CharField(max_length=30, null=True),
        "XXX_PROMESSE": models.DateTimeField(null=True),  # payment promised for that day
    },
    "CONTACTS": {
        "XXX_RELANCE": models.BooleanField(null=True),
    },
}


class GestimumSchemaRefused(Exception):
    pass


def _model_for_table(table):
    for model in ALL_MODELS:
        if model._meta.db_table == table:
            return model
    raise KeyError(table)


def create_tables(alias, *, custom_columns=None):
    """Create every Gestimum table the project uses, plus custom columns."""
    connection = connections[alias]
    if connection.vendor == "microsoft":
        raise GestimumSchemaRefused(
            "Refusé : cette base est un SQL Server. Les tables Gestimum d'un client "
            "ne sont jamais créées ni modifiées par EasyRelance."
        )
    custom_columns = DEMO_CUSTOM_COLUMNS if custom_columns is None else custom_columns
    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in ALL_MODELS:
            if model._meta.db_table in existing:
                continue
            editor.create_model(model)
            for column, field_template in custom_columns.get(model._meta.db_table, {}).items():
                field = field_template.clone()
                field.set_attributes_from_name(column.lower())
                field.column = column
                field.model = model
                editor.add_field(model, field)


def drop_tables(alias):
    connection = connections[alias]
    if connection.vendor == "microsoft":
        raise GestimumSchemaRefused("Refusé : jamais de suppression de tables sur SQL Server.")
    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in reversed(ALL_MODELS):
            if model._meta.db_table in existing:
                editor.delete_model(model)


__all__ = ["DEMO_CUSTOM_COLUMNS", "GestimumSchemaRefused", "Tiers", "create_tables", "drop_tables"]
