"""Indexes for the portal over large histories.

(customer, status, id) lets the dashboard count what is left to handle from the index alone.

The history's debtor filter is ``UPPER(pcf_code) = UPPER(x) OR UPPER(tiers_name)
LIKE UPPER('%x%')``: no plain B-tree serves either side, so at a million sends it
read the whole table (~1 s). An expression index on the code and a trigram index
on the name let PostgreSQL answer with a BitmapOr in a few milliseconds. SQLite
(development, tests) has neither operator class; its tables stay small.
"""

from django.db import migrations, models

INDEXES = [
    "CREATE INDEX IF NOT EXISTS dispatch_customer_tiers_upper "
    "ON relance_dispatch (customer_id, UPPER(pcf_code::text))",
    "CREATE INDEX IF NOT EXISTS dispatch_tiers_name_trgm "
    "ON relance_dispatch USING gin (UPPER(tiers_name::text) gin_trgm_ops)",
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for sql in INDEXES:
        schema_editor.execute(sql)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in ("dispatch_customer_tiers_upper", "dispatch_tiers_name_trgm"):
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("relance", "0005_dispatch_history_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="dispatch",
            index=models.Index(fields=["customer", "status", "id"], name="dispatch_customer_status_id"),
        ),
        migrations.RunPython(create, drop),
    ]
