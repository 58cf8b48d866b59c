"""What the portal tests share: customers, portal users, sends, diverted letters.

The fixtures are registered in ``tests/conftest.py``; portal test modules add
``pytest.mark.usefixtures("portal_settings")``.
"""

import io
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils import timezone

from portal.models import PortalUser
from relance.divert import append_manifest_line
from relance.models import Customer, Dispatch

PASSWORD = "Relance-2026-secret"
_numbers = itertools.count(1)
Status = Dispatch.Status


def pdf_bytes(pages=1, text_marker=""):
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if text_marker:
        writer.add_metadata({"/Title": text_marker})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_customer(slug, name=None):
    return Customer.objects.create(name=name or f"Société {slug}", slug=slug)


def make_portal_user(customer, email=None, password=PASSWORD, **fields):
    email = email or f"adv@{customer.slug}.example"
    user = get_user_model().objects.create_user(username=email, email=email, password=password, **fields)
    PortalUser.objects.create(user=user, customer=customer)
    return user


def make_dispatch(customer, *, status=Status.SENT, level=1, task=None, pdf=None, created_at=None, **fields):
    number = next(_numbers)
    fields.setdefault("ech_numero", f"{number:010d}")
    fields.setdefault("doc_piece", f"FA{number:06d}")
    fields.setdefault("pcf_code", "CL001")
    fields.setdefault("tiers_name", "Boulangerie Martin")
    fields.setdefault("amount", Decimal("1200.00"))
    fields.setdefault("remaining", Decimal("1200.00"))
    fields.setdefault("due_date", timezone.localdate() - timedelta(days=10))
    if status == Status.DIVERTED:
        fields.setdefault("channel", Dispatch.Channel.POSTAL)
        fields.setdefault("divert_reason", "aucune adresse e-mail")
    else:
        fields.setdefault("to", "compta@martin.example")
        fields.setdefault("subject", f"Relance facture {fields['doc_piece']}")
        fields.setdefault("body", "Bonjour,\nLa facture reste due.")
    dispatch = Dispatch.objects.create(
        customer=customer, status=status, level=level, task=task,
        created_at=created_at or timezone.now(), sent_at=timezone.now(), **fields)
    if pdf is not None:
        dispatch.pdf.save(f"{dispatch.doc_piece}.pdf", ContentFile(pdf), save=True)
    return dispatch


def write_divert(customer, dispatch, address):
    """Put the PDF and its manifest line where the engine does (relance.divert)."""
    folder = customer.divert_root / "courrier" / "niveau1"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dispatch.doc_piece}_N1_{dispatch.ech_numero}.pdf"
    path.write_bytes(b"%PDF-1.4")
    append_manifest_line(folder, ["01/03/2026 20:00", 1, dispatch.tiers_name, dispatch.pcf_code,
                                  dispatch.doc_piece, "01/02/2026", "1 200,00", address,
                                  dispatch.divert_reason, path.name])
    dispatch.divert_path = str(path)
    dispatch.save(update_fields=["divert_path"])


def fast_passwords_and_fresh_cache(settings):
    # The production hasher takes ~0.3 s per login on purpose; tests log in dozens of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Login throttling counts in the cache: no test inherits another's failures.
    cache.clear()


@pytest.fixture
def portal_settings(settings):
    fast_passwords_and_fresh_cache(settings)
    yield
    cache.clear()


@pytest.fixture
def acme(db):
    return make_customer("acme", "Acme Distribution")


@pytest.fixture
def other(db):
    return make_customer("rival", "Rival Négoce")


@pytest.fixture
def portal_client(client, acme):
    client.force_login(make_portal_user(acme))
    return client
