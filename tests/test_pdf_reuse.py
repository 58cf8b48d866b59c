"""A later reminder level reuses the PDF of an unchanged document instead of printing it again."""

import pytest

from relance import rendering
from relance.engine import run_task
from relance.gestimum import models as g
from relance.models import Dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def renders(monkeypatch):
    calls = []
    original = rendering.render_invoice_pdf

    def counting(**kwargs):
        calls.append(kwargs["candidate"].echeance.numero)
        return original(**kwargs)

    monkeypatch.setattr(rendering, "render_invoice_pdf", counting)
    return calls


@pytest.fixture
def two_levels(make_task):
    first = make_task(level=1, days=5)
    second = make_task(level=2, days=5, require_previous_level=True, min_days_since_previous=0)
    return first, second


def attached_pdf(message):
    return next(p for p in message.iter_attachments()
                if p.get_content_type() == "application/pdf").get_content()


def test_level_two_reuses_the_pdf_of_an_unchanged_document(gestimum, smtp_server, two_levels, renders):
    gestimum.tiers("CL001")
    ech = gestimum.invoice("CL001", piece="FA1", days_late=20)
    first, second = two_levels

    run_task(first.pk)
    assert renders == [ech]
    run = run_task(second.pk)

    assert run.sent == 1
    assert renders == [ech]  # not rendered again
    level1, level2 = (attached_pdf(m.message) for m in smtp_server.messages)
    assert level2 == level1
    one, two = Dispatch.objects.order_by("level")
    assert one.pdf_data_hash and two.pdf_data_hash == one.pdf_data_hash
    assert two.pdf_sha256 == one.pdf_sha256


def test_a_changed_line_is_printed_again(gestimum, smtp_server, two_levels, renders):
    gestimum.tiers("CL001")
    ech = gestimum.invoice("CL001", piece="FA1", days_late=20)
    first, second = two_levels
    run_task(first.pk)

    doc = gestimum.echeance(ech).document_id
    g.DocumentLine.objects.using(gestimum.alias).filter(document_id=doc).update(lig_lib="Libellé corrigé")
    run_task(second.pk)

    assert renders == [ech, ech]
    one, two = Dispatch.objects.order_by("level")
    assert two.pdf_data_hash != one.pdf_data_hash
    assert "Libellé corrigé" in rendering_text(two)


def test_a_partial_payment_is_printed_again_with_the_new_remaining(gestimum, smtp_server, two_levels,
                                                                    renders):
    gestimum.tiers("CL001")
    ech = gestimum.invoice("CL001", piece="FA1", days_late=20, amount="1000.00")
    first, second = two_levels
    run_task(first.pk)

    gestimum.pay(ech, "400")
    run_task(second.pk)

    assert renders == [ech, ech]
    two = Dispatch.objects.get(level=2)
    assert two.remaining == 600
    assert "600,00" in rendering_text(two)


def rendering_text(dispatch):
    from .conftest import pdf_text

    dispatch.pdf.open("rb")
    try:
        return pdf_text(dispatch.pdf.read())
    finally:
        dispatch.pdf.close()
