"""Open a customer's Gestimum database as a Django database alias for one run."""

import uuid
from contextlib import contextmanager

import environ
from django.db import connections
from django.db.utils import load_backend

# mssql-django options used when the URL does not say otherwise.
MSSQL_DEFAULT_OPTIONS = {"driver": "ODBC Driver 18 for SQL Server"}


def database_config(url, *, timezone="Europe/Paris"):
    """Turn a connection URL into a Django DATABASES entry.

    SQL Server and SQLite store naive local datetimes (Gestimum writes the
    server's wall-clock time), so the alias is told the customer's timezone.
    """
    config = environ.Env.db_url_config(url)
    engine = config["ENGINE"]
    if engine == "mssql":
        options = dict(MSSQL_DEFAULT_OPTIONS)
        options.update(config.get("OPTIONS", {}))
        config["OPTIONS"] = options
    if engine in ("mssql", "django.db.backends.sqlite3"):
        config["TIME_ZONE"] = timezone
    # Same defaults Django fills in for aliases declared in settings.
    for key, default in {
        "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True, "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False, "OPTIONS": {}, "TIME_ZONE": None,
        "NAME": "", "USER": "", "PASSWORD": "", "HOST": "", "PORT": "",
    }.items():
        config.setdefault(key, default)
    config.setdefault("TEST", {"CHARSET": None, "COLLATION": None, "MIGRATE": False,
                               "MIRROR": None, "NAME": None})
    return config


@contextmanager
def gestimum_alias(url, *, timezone="Europe/Paris", label="gestimum"):
    """Register ``url`` under a fresh alias, yield the alias, then close and forget it.

    A fresh alias per opening keeps two runs in one process from sharing a
    connection or closing each other's.
    """
    alias = f"{label}_{uuid.uuid4().hex[:12]}"
    config = database_config(url, timezone=timezone)
    # The wrapper is registered for this thread only and is not added to
    # settings.DATABASES: it is a connection of this run, not of the project.
    connections[alias] = load_backend(config["ENGINE"]).DatabaseWrapper(config, alias)
    try:
        yield alias
    finally:
        try:
            connections[alias].close()
        finally:
            del connections[alias]
