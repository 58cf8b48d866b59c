"""Statements issued at the same moment get consecutive numbers: no gap, no duplicate.

Threads each hold their own database connection, so the issuing
transactions really run side by side on the server.
"""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections

from billing.models import Contract, ContractPrice, NumberSequence, Statement
from billing.services import generate_statement, issue_statement
from relance.models import Customer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="course réelle entre transactions : PostgreSQL seulement (SQLite sérialise toutes "
        "les écritures ; lancer avec DATABASE_URL=postgres://…)",
    ),
]

THREADS = 8


@pytest.fixture(autouse=True)
def seller(settings):
    settings.BILLING_SELLER = {
        "name": "EasyRelance SAS", "legal_form": "SAS au capital de 5 000 €", "address": "Lyon",
        "siret": "98765432100019", "vat_number": "FR55987654321", "rcs": "RCS Lyon 987 654 321",
    }


def drafts(count):
    result = []
    for index in range(count):
        customer = Customer.objects.create(name=f"Client {index}", slug=f"client-{index}")
        contract = Contract.objects.create(customer=customer, start_date=date(2026, 1, 1))
        ContractPrice.objects.create(contract=contract, effective_from=date(2026, 1, 1),
                                     monthly_fee=Decimal("100.00"), unit_price=Decimal("0.25"))
        result.append(generate_statement(customer, date(2026, 3, 1)))
    return result


def issue_all_at_once(statements):
    barrier = threading.Barrier(len(statements))
    errors = []

    def work(statement):
        try:
            barrier.wait(timeout=30)
            issue_statement(statement, today=date(2026, 4, 1))
        except Exception as exc:  # reported below: a thread must not die silently
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(s,)) for s in statements]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_concurrent_issues_get_consecutive_numbers_even_for_a_new_year():
    statements = drafts(THREADS)
    assert not NumberSequence.objects.exists()  # every thread races to create the year's counter too

    errors = issue_all_at_once(statements)

    assert errors == []
    numbers = sorted(Statement.objects.values_list("number", flat=True))
    assert numbers == [f"ER-2026-{n:05d}" for n in range(1, THREADS + 1)]
    assert NumberSequence.objects.get(year=2026).last_number == THREADS
    assert connection.vendor == "postgresql"


def test_concurrent_issues_continue_an_existing_sequence():
    NumberSequence.objects.create(year=2026, last_number=41)
    statements = drafts(THREADS)

    errors = issue_all_at_once(statements)

    assert errors == []
    numbers = sorted(Statement.objects.values_list("number", flat=True))
    assert numbers == [f"ER-2026-{n:05d}" for n in range(42, 42 + THREADS)]
