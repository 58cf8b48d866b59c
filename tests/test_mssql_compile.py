"""Every statement the gateway sends to Gestimum, as SQL Server would receive it.

No SQL Server runs here: the gateway runs against mssql-django's real
connection wrapper whose driver connection is replaced by a recorder. Each
statement goes through mssql-django's compiler and its cursor wrapper (which
turns ``%s`` into pyodbc's ``?``), so what is recorded is exactly the text and
parameters pyodbc would hand to the server. sqlglot's T-SQL parser gives a
second opinion on each statement.
"""

import re
import uuid
import zoneinfo
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlglot
from django.db import connections
from sqlglot.errors import ErrorLevel

from relance.gestimum import models as g
from relance.gestimum import numbering
from relance.gestimum.connection import database_config, wrapper_class
from relance.gestimum.gateway import Gateway, WriteBack
from relance.gestimum.selection import CriterionSpec, Selection
from relance.gestimum.types import DocumentInfo, EcheanceInfo, TiersInfo

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
TODAY = date(2025, 3, 10)

# What introspection of a typical Gestimum database returns for the columns the tests use.
LIVE_COLUMNS = {
    "TIERS": {
        "PCF_EMAIL": ("PCF_EMAIL", "CharField"), "XXX_TOUR": ("XXX_TOUR", "CharField"),
        "XXX_CLTWEB": ("XXX_CLTWEB", "BooleanField"), "XXX_EMAILRELANCE": ("XXX_EMAILRELANCE", "CharField"),
        "XXX_PLAFOND": ("XXX_PLAFOND", "DecimalField"), "XXX_RANG": ("XXX_RANG", "IntegerField"),
        "PCF_DTCREE": ("PCF_DTCREE", "DateTimeField"),
    },
    "DOCUMENTS": {"XXX_LITIGE": ("XXX_LITIGE", "BooleanField"), "XXX_AFFAIRE": ("XXX_AFFAIRE", "CharField")},
    "ECHEANCES": {"ECH_IMPAYE": ("ECH_IMPAYE", "CharField")},
}

IDENTIFIERS = {m._meta.db_table for m in g.ALL_MODELS} | {
    f.column for m in g.ALL_MODELS for f in m._meta.local_fields
} | {name for table in LIVE_COLUMNS.values() for name in table}


class RecordingCursor:
    """Stands for a pyodbc cursor: records what it is given, answers from a script."""

    rowcount = 1
    description = None

    def __init__(self, recorder):
        self.recorder = recorder
        self.rows = []

    def execute(self, sql, params=()):
        self.recorder.statements.append((sql, tuple(params)))
        self.rows = list(self.recorder.answer(sql))
        return self

    def executemany(self, sql, params_list):
        for params in params_list:
            self.execute(sql, params)

    def fetchone(self):
        return self.rows.pop(0) if self.rows else None

    def fetchmany(self, size):
        rows, self.rows = self.rows[:size], self.rows[size:]
        return rows

    def fetchall(self):
        rows, self.rows = self.rows, []
        return rows

    def nextset(self):
        return False

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RecordingConnection:
    """Stands for a pyodbc connection; transaction boundaries are recorded too."""

    def __init__(self):
        self._autocommit = True
        self.statements = []
        self.pages = []  # rows returned to the next SELECT TOP statements, in order
        self.last_number = 41

    def answer(self, sql):
        if "@@TRANCOUNT" in sql:
            return [(0,)]
        if "G2GETNEWNUMERO" in sql:
            self.last_number += 1
            return [(self.last_number,)]
        if sql.startswith("SELECT TOP") and self.pages:
            return self.pages.pop(0)
        return []

    def cursor(self):
        return RecordingCursor(self)

    @property
    def autocommit(self):
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value):
        # pyodbc opens a transaction implicitly once autocommit is off.
        self.statements.append(("AUTOCOMMIT ON" if value else "AUTOCOMMIT OFF", ()))
        self._autocommit = value

    def commit(self):
        self.statements.append(("COMMIT", ()))

    def rollback(self):
        self.statements.append(("ROLLBACK", ()))

    def close(self):
        pass

    def sql(self, contains=""):
        return [(sql, params) for sql, params in self.statements if contains in sql]


@pytest.fixture
def sql_server(django_db_blocker):
    """A Gateway on an 'mssql' alias whose statements are recorded, never sent."""
    alias = f"mssql_{uuid.uuid4().hex[:8]}"
    config = database_config("mssql://easyrel:secret@gestimum.example:1433/GESTIMUM")
    wrapper = wrapper_class("mssql")(config, alias)
    # What mssql-django would otherwise ask the server on first use.
    wrapper.sql_server_version = 2019
    wrapper.to_azure_sql_db = False
    recorder = RecordingConnection()
    wrapper.connection = recorder
    wrapper.autocommit = True
    connections[alias] = wrapper
    gateway = Gateway(alias, PARIS)
    gateway._columns = {table: dict(columns) for table, columns in LIVE_COLUMNS.items()}
    with django_db_blocker.unblock():
        yield gateway, recorder
    del connections[alias]


# -- what every statement must satisfy ------------------------------------------------------

def assert_valid_tsql(sql, params):
    """Bracket-quoted names, values only as parameters, and a T-SQL parser accepts it."""
    without_names = re.sub(r"\[[^\]]*\]", "[]", sql)
    bare = {word for word in re.findall(r"\b[A-Z][A-Z0-9_]+\b", without_names) if word in IDENTIFIERS}
    assert not bare, f"unquoted identifiers {bare} in {sql}"
    assert without_names.count("?") == len(params), sql
    # The only literals are the LIKE escape character and wildcards mssql-django writes itself.
    literals = set(re.findall(r"'[^']*'", without_names))
    assert literals <= {"'\\'", "'%'"}, f"literal values {literals} in {sql}"
    assert not re.search(r"(?<![\w@\[])\d{2,}", without_names.replace("TOP 1000", "")), sql
    for value in params:
        if isinstance(value, str) and len(value) > 1:
            assert value not in without_names, f"{value!r} is written into the statement"
    statements = sqlglot.parse(sql, read="tsql", error_level=ErrorLevel.RAISE)
    assert statements and all(s is not None for s in statements)
    return statements


def one(recorder, contains):
    [(sql, params)] = recorder.sql(contains)
    assert_valid_tsql(sql, params)
    return sql, params


# -- selection ---------------------------------------------------------------------------

def test_a_selection_page_is_one_bracket_quoted_top_query_ordered_by_echeance(sql_server):
    gateway, recorder = sql_server
    selection = Selection(days=5, address_columns=(("TIERS", "PCF_EMAIL"), ("TIERS", "XXX_EMAILRELANCE")))

    list(gateway.candidate_pages(selection, today=TODAY, page_size=1000))

    sql, params = one(recorder, "FROM [ECHEANCES]")
    assert sql.startswith("SELECT TOP 1000 ")
    assert sql.endswith("ORDER BY [ECHEANCES].[ECH_NUMERO] ASC")
    assert "LEFT OUTER JOIN [DOCUMENTS] ON ([ECHEANCES].[DOC_NUMERO] = [DOCUMENTS].[DOC_NUMERO])" in sql
    assert "LEFT OUTER JOIN [TIERS] ON ([ECHEANCES].[PCF_CODE] = [TIERS].[PCF_CODE])" in sql
    assert "[TIERS].[XXX_EMAILRELANCE] AS [addr_tiers_xxx_emailrelance]" in sql
    assert "LIMIT" not in sql and "OFFSET" not in sql


def test_the_next_page_starts_after_the_last_echeance_read(sql_server):
    gateway, recorder = sql_server
    # Two full pages of one row, then an empty one: three queries, keyset paging.
    recorder.pages = [[("0000000007",) + (None,) * 120], [("0000000009",) + (None,) * 120], []]

    pages = list(gateway.candidate_pages(Selection(days=5), today=TODAY, page_size=1))

    assert [[c.echeance.numero for c in page] for page in pages] == [["0000000007"], ["0000000009"]]
    selects = recorder.sql("FROM [ECHEANCES]")
    assert len(selects) == 3
    for sql, params in selects:
        assert_valid_tsql(sql, params)
        assert sql.startswith("SELECT TOP 1 ")
    assert "[ECHEANCES].[ECH_NUMERO] > ?" not in selects[0][0]
    assert "[ECHEANCES].[ECH_NUMERO] > ?" in selects[1][0]
    assert selects[1][1][-1] == "0000000007"
    assert selects[2][1][-1] == "0000000009"


def test_one_email_per_debtor_pages_by_debtor_then_echeance_with_a_two_column_keyset(sql_server):
    from relance.gestimum.models import Echeance

    gateway, recorder = sql_server
    fields = [f.attname for f in Echeance._meta.concrete_fields]
    row = [None] * 121
    row[fields.index("ech_numero")], row[fields.index("tiers_id")] = "0000000007", "CL001"
    recorder.pages = [[tuple(row)], []]

    pages = list(gateway.candidate_pages(Selection(days=5), today=TODAY, page_size=1, by_debtor=True))

    assert [[c.echeance.numero for c in page] for page in pages] == [["0000000007"]]
    first, second = recorder.sql("FROM [ECHEANCES]")
    for sql, params in (first, second):
        assert_valid_tsql(sql, params)
        assert sql.endswith("ORDER BY [ECHEANCES].[PCF_CODE] ASC, [ECHEANCES].[ECH_NUMERO] ASC")
        assert "[ECHEANCES].[PCF_CODE] IS NOT NULL" in sql
    assert ("([ECHEANCES].[PCF_CODE] > ? OR ([ECHEANCES].[ECH_NUMERO] > ? AND [ECHEANCES].[PCF_CODE] = ?))"
            in second[0])
    assert second[1][-3:] == ("CL001", "0000000007", "CL001")


def test_open_echeances_are_found_with_null_bits_and_amounts_read_through_coalesce(sql_server):
    gateway, recorder = sql_server

    list(gateway.candidate_pages(Selection(days=5), today=TODAY))

    sql, params = one(recorder, "FROM [ECHEANCES]")
    assert "COALESCE([ECHEANCES].[ECH_SOLDER], ?) = ?" in sql
    assert "(COALESCE([ECHEANCES].[ECH_ARECEV], ?) - COALESCE([ECHEANCES].[ECH_RECU], ?)) > ?" in sql
    assert "NOT (LTRIM(RTRIM([DOCUMENTS].[DOC_STYPE])) = ?)" in sql
    assert params[:6] == (0, 0, Decimal("0"), Decimal("0"), Decimal("0"), "A")


def test_the_date_window_is_bound_as_paris_wall_clock_midnight(sql_server):
    gateway, recorder = sql_server

    list(gateway.candidate_pages(Selection(days=5, max_days=60), today=TODAY))

    sql, params = one(recorder, "FROM [ECHEANCES]")
    assert "[ECHEANCES].[ECH_DATE] < ? AND [ECHEANCES].[ECH_DATE] >= ?" in sql
    # Gestimum's datetime columns hold naive local time: the bounds must be too.
    assert datetime(2025, 3, 6) in params
    assert datetime(2025, 1, 9) in params
    assert not any(isinstance(p, datetime) and p.tzinfo for p in params)


def test_task_codes_are_compared_trimmed(sql_server):
    gateway, recorder = sql_server
    selection = Selection(
        days=5, doc_stypes=("F",), families=("GROS",), subfamilies=("NORD",), representatives=("JD",),
        payment_modes=("VIR", "CHQ"), tiers_include=("CL001",), tiers_exclude=("CL999",),
        min_remaining=Decimal("50"),
    )

    list(gateway.candidate_pages(selection, today=TODAY))

    sql, params = one(recorder, "FROM [ECHEANCES]")
    assert "LTRIM(RTRIM([DOCUMENTS].[DOC_STYPE])) IN (?)" in sql
    assert "LTRIM(RTRIM([TIERS].[FAT_CODE])) IN (?)" in sql
    assert "LTRIM(RTRIM([TIERS].[SFT_CODE])) IN (?)" in sql
    assert "LTRIM(RTRIM([ECHEANCES].[REG_CODE])) IN (?, ?)" in sql
    assert "LTRIM(RTRIM(COALESCE([DOCUMENTS].[REP_CODE], [TIERS].[REP_CODE]))) IN (?)" in sql
    assert "LTRIM(RTRIM([ECHEANCES].[PCF_CODE])) IN (?)" in sql
    assert "NOT (LTRIM(RTRIM([ECHEANCES].[PCF_CODE])) IN (?))" in sql
    for value in ("GROS", "NORD", "JD", "VIR", "CHQ", "CL001", "CL999", Decimal("50")):
        assert value in params


CRITERIA = [
    (CriterionSpec("TIERS", "XXX_TOUR", "eq", "T1"), "LTRIM(RTRIM([TIERS].[XXX_TOUR])) = ?", "T1"),
    (CriterionSpec("TIERS", "XXX_TOUR", "ne", "T1"), "NOT (LTRIM(RTRIM([TIERS].[XXX_TOUR])) = ?", "T1"),
    (CriterionSpec("TIERS", "XXX_TOUR", "in", "T1;T2"), "LTRIM(RTRIM([TIERS].[XXX_TOUR])) IN (?, ?)", "T2"),
    (CriterionSpec("TIERS", "XXX_TOUR", "contains", "nord"), "LTRIM(RTRIM([TIERS].[XXX_TOUR]))", "%nord%"),
    (CriterionSpec("TIERS", "XXX_TOUR", "empty"), "LTRIM(RTRIM([TIERS].[XXX_TOUR])) IS NULL", ""),
    (CriterionSpec("TIERS", "XXX_TOUR", "not_empty"), "LTRIM(RTRIM([TIERS].[XXX_TOUR])) IS NOT NULL", ""),
    (CriterionSpec("TIERS", "XXX_CLTWEB", "eq", "oui"), "COALESCE([TIERS].[XXX_CLTWEB], ?) = ?", None),
    (CriterionSpec("DOCUMENTS", "XXX_LITIGE", "eq", "0"), "COALESCE([DOCUMENTS].[XXX_LITIGE], ?) = ?", None),
    (CriterionSpec("TIERS", "XXX_RANG", "eq", "3"), "[TIERS].[XXX_RANG] = ?", 3),
    (CriterionSpec("TIERS", "XXX_PLAFOND", "eq", "1 500,50"), "[TIERS].[XXX_PLAFOND] = ?",
     Decimal("1500.50")),
    (CriterionSpec("TIERS", "PCF_DTCREE", "empty"), "[TIERS].[PCF_DTCREE] IS NULL", ""),
    (CriterionSpec("ECHEANCES", "ECH_IMPAYE", "not_empty"), "[ECHEANCES].[ECH_IMPAYE]", ""),
    (CriterionSpec("TIERS", "XXX_PLAFOND", "gt", "1000"), "[TIERS].[XXX_PLAFOND] > ?", Decimal("1000")),
    # Relative to the run's day (10 March 2025), bound as Paris wall-clock midnight like Gestimum's.
    (CriterionSpec("TIERS", "PCF_DTCREE", "lt", "J-30"), "[TIERS].[PCF_DTCREE] < ?", datetime(2025, 2, 8)),
    (CriterionSpec("TIERS", "PCF_DTCREE", "gt", "31/12/2024"), "[TIERS].[PCF_DTCREE] >= ?",
     datetime(2025, 1, 1)),
]


@pytest.mark.parametrize(("spec", "fragment", "value"), CRITERIA,
                         ids=[f"{c[0].column}-{c[0].operator}" for c in CRITERIA])
def test_each_criterion_type_compiles_to_quoted_columns_and_bound_values(sql_server, spec, fragment, value):
    gateway, recorder = sql_server

    list(gateway.candidate_pages(Selection(days=5, criteria=(spec,)), today=TODAY))

    sql, params = one(recorder, "FROM [ECHEANCES]")
    assert fragment in sql
    if value:
        assert value in params
    if spec.operator == "contains":
        # The user's text is a parameter and its LIKE wildcards are escaped, not interpreted.
        assert re.search(r"LIKE UPPER\(\?\) ESCAPE '\\'", sql)


def test_a_bit_criterion_binds_true_as_one(sql_server):
    gateway, recorder = sql_server
    spec = CriterionSpec("TIERS", "XXX_CLTWEB", "eq", "oui")

    list(gateway.candidate_pages(Selection(days=5, criteria=(spec,)), today=TODAY))

    sql, params = one(recorder, "FROM [ECHEANCES]")
    position = sql[: sql.index("COALESCE([TIERS].[XXX_CLTWEB], ?) = ?")].count("?")
    assert params[position: position + 2] == (0, 1)


def test_counting_candidates_is_a_single_count_query(sql_server):
    gateway, recorder = sql_server

    gateway.count_candidates(Selection(days=5, families=("GROS",)), today=TODAY)

    sql, _ = one(recorder, "FROM [ECHEANCES]")
    assert sql.startswith("SELECT COUNT_BIG(*)")


# -- the rest of a page, and the re-check before sending ---------------------------------

def candidate(numero, tiers_code, doc_numero):
    from relance.gestimum.types import Candidate

    return Candidate(
        echeance=EcheanceInfo(numero=numero, doc_numero=doc_numero, piece="FA1", pcf_code=tiers_code,
                              label="", issued=TODAY, due_date=TODAY, payment_mode="VIR",
                              amount=Decimal("10"), received=Decimal("0"), reminders_sent=0),
        tiers=TiersInfo(code=tiers_code, name="Société"),
        document=DocumentInfo(numero=doc_numero, piece="FA1", stype="F", date=TODAY, reference="",
                              payment_mode="VIR", representative="", total_ht=Decimal("0"),
                              total_vat=Decimal("0"), total_ttc=Decimal("0"), deposit=Decimal("0")),
    )


def test_contacts_representatives_and_lines_are_one_query_each(sql_server):
    gateway, recorder = sql_server
    candidates = [candidate("0000000001", "CL001", "0000000010"),
                  candidate("0000000002", "CL002", "0000000011")]

    gateway._attach_contacts(candidates)
    gateway._attach_representatives(candidates)
    gateway.attach_lines(candidates)

    contacts, params = one(recorder, "FROM [CONTACTS]")
    assert "LTRIM(RTRIM([CONTACTS].[CCT_TABLE])) = ?" in contacts
    assert "LTRIM(RTRIM([CONTACTS].[CCT_ORIGIN])) IN (?, ?)" in contacts
    assert "COALESCE([CONTACTS].[CCT_DORT], ?) = ?" in contacts
    assert {"PCF", "CL001", "CL002"} <= set(params)
    one(recorder, "FROM [REPRESENTANTS]")
    lines, params = one(recorder, "FROM [LIGNES]")
    assert "[LIGNES].[DOC_NUMERO] IN (?, ?)" in lines
    assert "ORDER BY [LIGNES].[DOC_NUMERO] ASC, [LIGNES].[LIG_NUMERO] ASC" in lines


def test_the_recheck_before_sending_stays_under_the_sql_server_parameter_limit(sql_server):
    gateway, recorder = sql_server
    numbers = [str(n).zfill(10) for n in range(1, 1501)]

    gateway.still_unpaid(numbers)

    rechecks = recorder.sql("FROM [ECHEANCES]")
    assert len(rechecks) == 2
    for sql, params in rechecks:
        assert_valid_tsql(sql, params)
        assert len(params) < 2100
        assert "COALESCE([ECHEANCES].[ECH_SOLDER], ?) = ?" in sql
        assert "[ECHEANCES].[ECH_NUMERO] IN (?" in sql
    assert rechecks[0][1][-1] == numbers[999] and rechecks[1][1][-1] == numbers[-1]


# -- write-back and numbering ---------------------------------------------------------------

def record(numero="0000000001", emailed=True):
    return WriteBack(ech_numero=numero, doc_numero="0000000010", pcf_code="CL001", piece="FA000123",
                     level=2, emailed=emailed, summary="Relance niveau 2 envoyée",
                     details="Envoyée à compta@client.example", amount=Decimal("1234.56"),
                     file_name="FA000123.pdf")


def test_the_write_back_is_one_transaction_of_parameterised_statements(sql_server):
    gateway, recorder = sql_server

    gateway.write_back([record(), record("0000000002", emailed=False)], action=True, nbrel=True,
                       relances=True)

    texts = [sql for sql, _ in recorder.statements if sql != "SELECT @@TRANCOUNT"]
    assert texts[0] == "AUTOCOMMIT OFF" and texts[-1] == "COMMIT"
    assert "ROLLBACK" not in texts and "SAVE TRANSACTION" not in " ".join(texts)
    for sql, params in recorder.statements:
        if not sql.startswith(("COMMIT", "AUTOCOMMIT")):
            assert_valid_tsql(sql, params)
    action, params = one(recorder, "INSERT INTO [ACTIONS]")
    assert action.count("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") == 2
    assert "FA000123.pdf" in params and "RELANCE" in params
    update, params = one(recorder, "UPDATE [ECHEANCES]")
    assert "[ECH_NBREL] = (COALESCE([ECHEANCES].[ECH_NBREL], ?) + ?)" in update
    assert "[ECH_NUMMAJ] = (COALESCE([ECHEANCES].[ECH_NUMMAJ], ?) + ?)" in update
    assert update.endswith("WHERE [ECHEANCES].[ECH_NUMERO] IN (?)")
    assert params[-1] == "0000000001"  # only the e-mailed one counts as a reminder
    for table in ("RELANCES", "REL_ECH", "REL_TIERS"):
        one(recorder, f"INSERT INTO [{table}]")


def test_written_dates_are_paris_wall_clock_like_gestimum_writes_them(sql_server, settings):
    gateway, recorder = sql_server

    gateway.write_back([record()], action=True, nbrel=False)

    _, params = one(recorder, "INSERT INTO [ACTIONS]")
    dates = [p for p in params if isinstance(p, datetime)]
    assert len(dates) == 2 and not any(d.tzinfo for d in dates)
    act_date, act_dtcre = dates
    assert (act_date.hour, act_date.minute) == (0, 0)
    assert act_date.date() == act_dtcre.date()


def test_identifiers_come_from_g2getnewnumero_with_the_configured_counters(sql_server, settings):
    gateway, recorder = sql_server
    settings.GESTIMUM = {**settings.GESTIMUM, "COUNTER_ACTIONS": "N_ACTCRM", "COUNTER_RELANCES": "N_RELCLI"}

    gateway.write_back([record(), record("0000000002")], action=True, nbrel=False, relances=True)

    calls = recorder.sql("G2GETNEWNUMERO")
    assert [params for _, params in calls] == [("N_ACTCRM", 2), ("N_RELCLI", 2)]
    for sql, _ in calls:
        assert sql == "SET NOCOUNT ON; DECLARE @n int; EXEC G2GETNEWNUMERO ?, ?, @n OUTPUT; SELECT @n"
        assert len(sqlglot.parse(sql, read="tsql")) == 4
    # The procedure returns the last number reserved: 42 for two means 41 and 42.
    _, params = one(recorder, "INSERT INTO [ACTIONS]")
    assert params[0] == "0000000041" and params[14] == "0000000042"


def test_action_numbers_reserved_beforehand_are_used_by_the_write_back(sql_server):
    gateway, recorder = sql_server

    numbers = gateway.allocate_actions(2)
    assert recorder.sql("AUTOCOMMIT OFF") == []  # reserved on its own, outside the write-back
    recorder.statements.clear()
    gateway.write_back([replace(record(), act_numero=numbers[0]),
                        replace(record("0000000002"), act_numero=numbers[1])], action=True, nbrel=False)
    assert recorder.sql("G2GETNEWNUMERO") == []
    _, params = one(recorder, "INSERT INTO [ACTIONS]")
    assert params[0] == numbers[0] and params[14] == numbers[1]


def test_after_a_crash_reserved_action_numbers_are_looked_up_in_one_query(sql_server):
    gateway, recorder = sql_server
    numbers = ["0000000041", "0000000042"]

    gateway.existing_actions(numbers)

    sql, params = one(recorder, "FROM [ACTIONS]")
    assert sql.endswith("WHERE [ACTIONS].[ACT_NUMERO] IN (?, ?)") and list(params) == numbers


def test_allocating_nothing_asks_nothing(sql_server):
    gateway, recorder = sql_server

    assert numbering.allocate(gateway.alias, "N_ACT", 0) == []
    assert recorder.statements == []


# -- connection URLs -------------------------------------------------------------------------

def connection_string(url):
    config = database_config(url)
    wrapper = wrapper_class("mssql")(config, "url_check")
    options = config["OPTIONS"]
    return config, wrapper._build_connection_string(config, options.get("driver", ""))


def test_a_sql_server_login_url_uses_odbc_driver_18_with_tls_options():
    config, cstr = connection_string(
        "mssql://easyrel:s3cret@srv-erp:1433/GESTIMUM?Encrypt=yes&TrustServerCertificate=yes")

    assert config["OPTIONS"]["driver"] == "ODBC Driver 18 for SQL Server"
    assert config["OPTIONS"]["extra_params"] == "Encrypt=yes;TrustServerCertificate=yes"
    assert cstr == ("DRIVER=ODBC Driver 18 for SQL Server;SERVER=srv-erp,1433;UID=easyrel;PWD=s3cret;"
                    "DATABASE=GESTIMUM;Encrypt=yes;TrustServerCertificate=yes")


def test_a_url_without_user_uses_windows_authentication():
    _, cstr = connection_string("mssql://srv-erp/GESTIMUM?trusted_connection=yes")

    assert "Trusted_Connection=yes" in cstr
    assert "UID=" not in cstr and "PWD=" not in cstr


def test_the_mssql_python_driver_needs_no_odbc_driver_name():
    config, cstr = connection_string("mssql://easyrel:pw@srv-erp:1433/GESTIMUM?driver=mssql-python&Encrypt=yes")

    assert config["OPTIONS"]["python_driver"] == "mssql_python"
    assert "driver" not in config["OPTIONS"]
    assert not cstr.startswith("DRIVER=")
    assert "SERVER=srv-erp,1433" in cstr and "Encrypt=yes" in cstr


def test_a_password_with_a_semicolon_stays_one_value():
    _, cstr = connection_string("mssql://easyrel:a%3Bb@srv-erp/GESTIMUM")

    assert "PWD={a;b}" in cstr


def test_backend_options_in_the_url_are_typed():
    config, _ = connection_string("mssql://u:p@srv-erp/GESTIMUM?connection_timeout=10&query_timeout=60")

    assert config["OPTIONS"]["connection_timeout"] == 10
    assert config["OPTIONS"]["query_timeout"] == 60
    assert "extra_params" not in config["OPTIONS"]
