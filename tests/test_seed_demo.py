"""The demo Gestimum database: ``manage.py seed_demo`` and ``relance.demo``."""

from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.core.validators import validate_email
from django.db import connections
from django.utils import timezone

from relance.demo import PARIS, fill_demo_database
from relance.gestimum import schema
from relance.gestimum.connection import gestimum_alias
from relance.gestimum.models import Contact, Counter, Document, Echeance, Tiers

RESERVED_DOMAINS = ("example.com", "example.net", "example.org")


@pytest.fixture(autouse=True)
def gestimum_access(django_db_blocker):
    # These tests only reach throw-away Gestimum files, never the application database,
    # but pytest-django blocks every connection unless told otherwise.
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory, django_db_blocker):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'small.sqlite3'}"
    out = StringIO()
    with django_db_blocker.unblock():
        call_command("seed_demo", gestimum_url=url, size="small", stdout=out)
    return url, out.getvalue()


@pytest.fixture(scope="module")
def normal_demo(tmp_path_factory, django_db_blocker):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'normal.sqlite3'}"
    with django_db_blocker.unblock():
        call_command("seed_demo", gestimum_url=url, stdout=StringIO())
    return url


@contextmanager
def opened(url):
    with gestimum_alias(url) as alias:
        yield alias


def rows(alias, sql, params=()):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def is_valid_email(value):
    try:
        validate_email((value or "").strip())
    except ValidationError:
        return False
    return True


def days_overdue(echeance, today):
    return (today - timezone.localtime(echeance.ech_date, PARIS).date()).days


def remaining(echeance):
    return echeance.ech_arecev - (echeance.ech_recu or Decimal("0"))


def level_one_candidates(alias, today):
    """Unsettled invoice échéances still owed and due for 5 days or more."""
    return [
        e for e in Echeance.objects.using(alias).select_related("document", "tiers")
        if e.document.doc_type == "V" and e.document.doc_stype.strip() == "F"
        and not e.ech_solder and remaining(e) > 0 and days_overdue(e, today) >= 5
    ]


def test_it_fills_every_table_and_prints_a_french_summary(small_demo):
    url, output = small_demo
    assert "Base Gestimum de démonstration remplie" in output
    assert "échéances :" in output
    with opened(url) as alias:
        for table in ("TIERS_FAM", "REPRESENTANTS", "MODE_REG", "TIERS", "CONTACTS", "DOCUMENTS",
                      "LIGNES", "ECHEANCES", "EASYREL_COMPTEURS"):
            assert rows(alias, f'SELECT COUNT(*) FROM "{table}"')[0][0] > 0, table
        assert 9 <= Tiers.objects.using(alias).filter(pcf_type="C").count() <= 12
        assert 25 <= Document.objects.using(alias).filter(doc_stype__startswith="F").count() <= 35


def test_some_tiers_have_no_email_and_some_an_invalid_one(small_demo):
    with opened(small_demo[0]) as alias:
        emails = list(Tiers.objects.using(alias).filter(pcf_type="C").values_list("pcf_email", flat=True))
    assert any(not email for email in emails)
    assert any(email and not is_valid_email(email) and ";" not in email for email in emails)
    assert sum(is_valid_email(email) for email in emails) >= len(emails) // 2


def test_every_address_uses_a_domain_reserved_for_examples(normal_demo):
    with opened(normal_demo) as alias:
        addresses = [
            *Tiers.objects.using(alias).values_list("pcf_email", flat=True),
            *Contact.objects.using(alias).values_list("cct_email", flat=True),
            *(row[0] for row in rows(alias, 'SELECT "XXX_EMAILRELANCE" FROM "TIERS"')),
            *(row[0] for row in rows(alias, 'SELECT "REP_EMAIL" FROM "REPRESENTANTS"')),
        ]
    for field in addresses:
        for address in (field or "").split(";"):
            if is_valid_email(address):
                assert address.strip().endswith(RESERVED_DOMAINS), address


def test_contacts_hang_off_their_tiers_with_function_codes(small_demo):
    with opened(small_demo[0]) as alias:
        codes = set(Tiers.objects.using(alias).values_list("pcf_code", flat=True))
        contacts = list(Contact.objects.using(alias).all())
        flagged = rows(alias, 'SELECT COUNT(*) FROM "CONTACTS" WHERE "XXX_RELANCE" = %s', [True])[0][0]
    assert all(c.cct_table == "PCF" and c.cct_origin in codes for c in contacts)
    assert {"COMPTA", "DIRECTION"} <= {c.cct_fonct for c in contacts}
    assert any(c.cct_qual1 == "RELANCE" for c in contacts)
    assert flagged > 0
    assert all(len(c.cct_numero) == 10 and c.cct_numero.isdigit() for c in contacts)


def test_credit_notes_carry_an_amount_to_pay_back(small_demo):
    with opened(small_demo[0]) as alias:
        credit_notes = list(Echeance.objects.using(alias).filter(document__doc_stype__startswith="A"))
    assert credit_notes
    assert all(e.ech_piece.startswith("AV") for e in credit_notes)
    assert all(e.ech_apayer > 0 and e.ech_arecev == 0 for e in credit_notes)


def test_some_echeances_are_partly_paid(small_demo):
    with opened(small_demo[0]) as alias:
        echeances = list(Echeance.objects.using(alias).filter(ech_arecev__gt=0))
    partial = [e for e in echeances if e.ech_recu and 0 < e.ech_recu < e.ech_arecev]
    assert partial
    assert all(not e.ech_solder for e in partial)
    assert all(e.ech_solder for e in echeances if e.ech_recu == e.ech_arecev)
    assert any(e.ech_solder is None for e in echeances), "nullable bit: some unsettled rows are NULL"


def test_overdue_echeances_fall_in_every_bucket_relative_to_today(small_demo):
    today = timezone.localdate()
    with opened(small_demo[0]) as alias:
        owed = [e for e in Echeance.objects.using(alias).filter(ech_arecev__gt=0)
                if not e.ech_solder and remaining(e) > 0]
    buckets = {"not yet due": (-999, 0), "1-4": (1, 4), "5-14": (5, 14), "15-60": (15, 60), "60+": (61, 999)}
    for name, (low, high) in buckets.items():
        assert any(low <= days_overdue(e, today) <= high for e in owed), name


def test_document_totals_match_their_lines(small_demo):
    with opened(small_demo[0]) as alias:
        for document in Document.objects.using(alias).prefetch_related("lines", "echeances"):
            lines = list(document.lines.all())
            assert 1 <= len(lines) <= 6
            for line in lines:
                expected = (Decimal(str(line.lig_qte)) * line.lig_p_net).quantize(Decimal("0.01"))
                assert line.lig_total == expected
            assert document.doc_mt_ht == sum(line.lig_total for line in lines)
            assert document.doc_mt_ttc == document.doc_mt_ht + document.doc_mt_tva
            echeances = list(document.echeances.all())
            if document.doc_stype.strip() == "F":
                assert sum(e.ech_arecev for e in echeances) == document.doc_mt_ttc
                assert all(e.ech_piece == document.doc_piece for e in echeances)
                assert all(e.ech_dtemis == document.doc_date for e in echeances)


def test_dates_are_local_midnights(small_demo):
    with opened(small_demo[0]) as alias:
        for echeance in Echeance.objects.using(alias).all():
            local = timezone.localtime(echeance.ech_date, PARIS)
            assert (local.hour, local.minute) == (0, 0)


def test_custom_columns_are_filled(small_demo):
    with opened(small_demo[0]) as alias:
        tours = {row[0] for row in rows(alias, 'SELECT "XXX_TOUR" FROM "TIERS"')}
        web = rows(alias, 'SELECT COUNT(*) FROM "TIERS" WHERE "XXX_CLTWEB" = %s', [True])[0][0]
        dedicated = rows(alias, 'SELECT COUNT(*) FROM "TIERS" WHERE "XXX_EMAILRELANCE" IS NOT NULL')[0][0]
        ceiling = rows(alias, 'SELECT COUNT(*) FROM "TIERS" WHERE "XXX_PLAFOND" > 0')[0][0]
        disputed = rows(alias, 'SELECT COUNT(*) FROM "DOCUMENTS" WHERE "XXX_LITIGE" = %s', [True])[0][0]
        business = rows(alias, 'SELECT COUNT(*) FROM "DOCUMENTS" WHERE "XXX_AFFAIRE" LIKE %s', ["AFF-%"])
    assert tours & {"NORD", "SUD", "EST", "OUEST", "IDF"}
    assert web and dedicated and ceiling and disputed
    assert business[0][0] > 0


def test_some_codes_carry_trailing_spaces_like_real_gestimum_data(normal_demo):
    with opened(normal_demo) as alias:
        stypes = set(Document.objects.using(alias).values_list("doc_stype", flat=True))
        families = set(Tiers.objects.using(alias).values_list("fat_code", flat=True))
        tiers_codes = list(Tiers.objects.using(alias).values_list("pcf_code", flat=True))
    assert "F " in stypes and "F" in stypes
    assert any(code.endswith(" ") for code in families)
    assert all(code == code.strip() for code in tiers_codes)


def test_counters_are_above_every_identifier_used(small_demo):
    with opened(small_demo[0]) as alias:
        counters = dict(Counter.objects.using(alias).values_list("name", "value"))
        used = [int(n) for n in Echeance.objects.using(alias).values_list("ech_numero", flat=True)]
        used += [int(n) for n in Document.objects.using(alias).values_list("doc_numero", flat=True)]
        used += [int(n) for n in Contact.objects.using(alias).values_list("cct_numero", flat=True)]
    assert counters["N_ACT"] > max(used)
    assert counters["N_REL"] > max(used)


def test_a_level_one_task_finds_40_to_80_candidates_some_without_a_valid_email(normal_demo):
    with opened(normal_demo) as alias:
        candidates = level_one_candidates(alias, timezone.localdate())
    assert 40 <= len(candidates) <= 80
    assert sum(not is_valid_email(e.tiers.pcf_email) for e in candidates) >= 3


def test_the_same_seed_and_day_give_the_same_data(tmp_path):
    today = date(2026, 3, 10)
    snapshots = []
    for name in ("a", "b"):
        with opened(f"sqlite:///{tmp_path / name}.sqlite3") as alias:
            schema.create_tables(alias)
            fill_demo_database(alias, today=today, size="small")
            snapshots.append(rows(alias, 'SELECT * FROM "ECHEANCES" ORDER BY "ECH_NUMERO"')
                             + rows(alias, 'SELECT * FROM "TIERS" ORDER BY "PCF_CODE"'))
    assert snapshots[0] == snapshots[1]


def test_due_dates_follow_the_given_day(tmp_path):
    today = date(2031, 7, 14)
    with opened(f"sqlite:///{tmp_path / 'later'}.sqlite3") as alias:
        schema.create_tables(alias)
        fill_demo_database(alias, today=today, size="small")
        candidates = level_one_candidates(alias, today)
        documents = list(Document.objects.using(alias).values_list("doc_date", flat=True))
    assert candidates
    assert all(today - timedelta(days=140) <= d.date() <= today for d in documents)


def test_it_refuses_to_fill_twice_without_reset(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    call_command("seed_demo", gestimum_url=url, size="small", stdout=StringIO())
    with pytest.raises(CommandError, match="contient déjà des données.*--reset"):
        call_command("seed_demo", gestimum_url=url, size="small", stdout=StringIO())
    with opened(url) as alias:
        assert Tiers.objects.using(alias).count() == 11, "the refused run changed nothing"


def test_reset_recreates_the_demo(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    call_command("seed_demo", gestimum_url=url, size="small", stdout=StringIO())
    call_command("seed_demo", gestimum_url=url, reset=True, stdout=StringIO())
    with opened(url) as alias:
        assert Tiers.objects.using(alias).count() == 42


def test_it_creates_the_folders_of_a_fresh_sqlite_path(tmp_path):
    path = tmp_path / "deep" / "er" / "demo.sqlite3"
    call_command("seed_demo", gestimum_url=f"sqlite:///{path}", size="small", stdout=StringIO())
    assert path.exists()


def test_it_refuses_sql_server(tmp_path):
    with pytest.raises(CommandError, match="Refusé.*SQL Server") as refused:
        call_command("seed_demo", gestimum_url="mssql://sa:secret@gestimum.example.com/GESTIMUM")
    assert "secret" not in str(refused.value)


def test_it_refuses_an_engine_other_than_sqlite_or_postgresql():
    with pytest.raises(CommandError, match="non prise en charge"):
        call_command("seed_demo", gestimum_url="mysql://user@db.example.com/demo")


def test_the_fill_itself_refuses_sql_server(monkeypatch, tmp_path):
    with opened(f"sqlite:///{tmp_path / 'x.sqlite3'}") as alias:
        monkeypatch.setattr(connections[alias], "vendor", "microsoft")
        with pytest.raises(schema.GestimumSchemaRefused):
            fill_demo_database(alias)
