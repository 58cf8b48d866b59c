"""New Gestimum identifiers (ACT_NUMERO, REL_NUMERO ...).

On SQL Server they come from Gestimum's own stored procedure
``G2GETNEWNUMERO '<counter>', <count>, @n OUTPUT`` so that Gestimum and
EasyRelance never hand out the same number. Other engines (demo, tests) use
the EASYREL_COMPTEURS table.
"""

from django.db import connections, transaction

from .models import Counter

WIDTH = 10


def format_number(value):
    return str(value).zfill(WIDTH)


def allocate(alias, counter, count):
    """Reserve ``count`` consecutive identifiers of ``counter``; return them as strings."""
    if count <= 0:
        return []
    connection = connections[alias]
    if connection.vendor == "microsoft":
        last = _allocate_sql_server(connection, counter, count)
    else:
        last = _allocate_counter_table(alias, counter, count)
    return [format_number(n) for n in range(last - count + 1, last + 1)]


def _allocate_sql_server(connection, counter, count):
    # The procedure moves the counter by @count and returns the last value reserved.
    with connection.cursor() as cursor:
        cursor.execute(
            "SET NOCOUNT ON; DECLARE @n int; EXEC G2GETNEWNUMERO %s, %s, @n OUTPUT; SELECT @n",
            [counter, count],
        )
        return int(cursor.fetchone()[0])


def _allocate_counter_table(alias, counter, count):
    """One statement in the common case: the UPDATE locks the row and returns the new value."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    table, name, value = quote(Counter._meta.db_table), quote("CPT_NOM"), quote("CPT_VALEUR")
    # No savepoint when the write-back's transaction is already open: the row lock
    # is held until that transaction ends either way.
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {value} = {value} + %s WHERE {name} = %s RETURNING {value}",
            [count, counter],
        )
        row = cursor.fetchone()
        if row is not None:
            return int(row[0])
        Counter.objects.using(alias).create(name=counter, value=count)
        return count
