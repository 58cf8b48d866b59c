"""Open a customer's Gestimum database as a Django database alias for one run."""

import functools
import uuid
from contextlib import contextmanager

import environ
from django.db import connections
from django.db.utils import load_backend

# mssql-django options used when the URL does not say otherwise.
MSSQL_DEFAULT_OPTIONS = {"driver": "ODBC Driver 18 for SQL Server"}
# URL query parameters that are mssql-django OPTIONS; any other one (Encrypt,
# TrustServerCertificate, HostNameInCertificate, Authentication...) is an ODBC
# connection-string keyword and goes to ``extra_params``.
MSSQL_BACKEND_OPTIONS = {
    "driver", "python_driver", "dsn", "extra_params", "host_is_server", "connection_timeout",
    "connection_retries", "connection_retry_backoff_time", "query_timeout", "isolation_level",
    "unicode_results", "collation", "datefirst", "driver_charset",
}
PYTHON_DRIVER_NAMES = {"mssql-python", "mssql_python", "python"}


def _mssql_options(url_options):
    """mssql-django OPTIONS (and top-level keys) from the URL's query parameters."""
    options = dict(MSSQL_DEFAULT_OPTIONS)
    top_level, extra = {}, []
    for key, value in url_options.items():
        value = str(value)
        if key.lower() == "driver" and value.lower() in PYTHON_DRIVER_NAMES:
            # Microsoft's mssql-python bundles its own driver: no ODBC driver to install.
            options.pop("driver", None)
            options["python_driver"] = "mssql_python"
        elif key.lower() == "trusted_connection":
            # mssql-django reads it at the top level; it applies when the URL has no user.
            top_level["Trusted_Connection"] = value
        elif key in MSSQL_BACKEND_OPTIONS:
            options[key] = value
        else:
            extra.append(f"{key}={value}")
    if extra:
        options["extra_params"] = ";".join(filter(None, [options.get("extra_params"), *extra]))
    for key in ("connection_timeout", "connection_retries", "query_timeout"):
        if key in options:
            options[key] = int(options[key])
    return options, top_level


@functools.cache
def _mssql_wrapper_class():
    """mssql-django's wrapper, writing datetimes as Gestimum does: naive local time.

    Gestimum's ``datetime`` columns hold the server's wall-clock time, but
    mssql-django binds aware datetimes converted to UTC (ignoring the alias'
    TIME_ZONE): ACT_DATE would read as the day before and date windows would
    shift by one or two hours. Other backends already make them naive in the
    alias' time zone; this does the same on SQL Server.
    """
    from django.utils import timezone
    from mssql.base import DatabaseWrapper
    from mssql.operations import DatabaseOperations

    class GestimumOperations(DatabaseOperations):
        def adapt_datetimefield_value(self, value):
            if value is not None and not hasattr(value, "resolve_expression") \
                    and timezone.is_aware(value):
                value = timezone.make_naive(value, self.connection.timezone)
            return super().adapt_datetimefield_value(value)

    class GestimumDatabaseWrapper(DatabaseWrapper):
        ops_class = GestimumOperations

    return GestimumDatabaseWrapper


def wrapper_class(engine):
    return _mssql_wrapper_class() if engine == "mssql" else load_backend(engine).DatabaseWrapper


def database_config(url, *, timezone="Europe/Paris"):
    """Turn a connection URL into a Django DATABASES entry.

    SQL Server and SQLite store naive local datetimes (Gestimum writes the
    server's wall-clock time), so the alias is told the customer's timezone.
    """
    config = environ.Env.db_url_config(url)
    engine = config["ENGINE"]
    if engine == "mssql":
        config["OPTIONS"], top_level = _mssql_options(config.get("OPTIONS", {}))
        config.update(top_level)
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
    connections[alias] = wrapper_class(config["ENGINE"])(config, alias)
    try:
        yield alias
    finally:
        try:
            connections[alias].close()
        finally:
            del connections[alias]
