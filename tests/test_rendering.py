"""The invoice PDF, the archive print model and the French formatting helpers."""

import dataclasses
import io
import os
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pypdf
import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template

from relance import formatting, rendering
from relance.models import InvoiceTemplate, ReminderTask
from relance.rendering import RenderError

NBSP = "\u00a0"
TODAY = date(2026, 3, 3)


def pdf_pages(pdf):
    """Text of each page, with no-break spaces as plain spaces (extractors differ on them)."""
    assert pdf.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [page.extract_text().replace(NBSP, " ") for page in reader.pages]


def render(candidate=None, **kwargs):
    return rendering.render_invoice_pdf(
        customer=kwargs.pop("customer", rendering.sample_customer()),
        candidate=candidate or rendering.sample_candidate(), today=TODAY, **kwargs,
    )


# --- Formatting -------------------------------------------------------------

def test_money_rounds_half_up_with_no_break_spaces():
    assert formatting.money(Decimal("1234.565")) == f"1{NBSP}234,57{NBSP}€"
    assert formatting.money(Decimal("0.005")) == f"0,01{NBSP}€"
    assert formatting.money(Decimal("1234567.8")) == f"1{NBSP}234{NBSP}567,80{NBSP}€"
    assert formatting.money(12) == f"12,00{NBSP}€"


def test_money_formats_negative_amounts():
    assert formatting.money(Decimal("-1234.565")) == f"-1{NBSP}234,57{NBSP}€"
    assert formatting.money(Decimal("-0.001")) == f"0,00{NBSP}€"


def test_money_takes_floats_without_binary_noise():
    assert formatting.money(0.1 + 0.2) == f"0,30{NBSP}€"
    assert formatting.money(2.675) == f"2,68{NBSP}€"


def test_formatting_leaves_none_empty_and_refuses_garbage():
    for func in (formatting.money, formatting.number, formatting.percent,
                 formatting.date_fr, formatting.date_long_fr):
        assert func(None) == ""
    with pytest.raises(ValueError):
        formatting.money("abc")


def test_number_places_and_significant_decimals():
    assert formatting.number(Decimal("1234.5")) == f"1{NBSP}234,50"
    assert formatting.number(Decimal("1234.5"), 0) == f"1{NBSP}235"
    assert formatting.number(Decimal("3.14159"), 3) == "3,142"
    assert formatting.quantity(Decimal("2.000")) == "2"
    assert formatting.quantity(Decimal("1.500")) == "1,5"
    assert formatting.unit_price(Decimal("12.3456")) == "12,3456"
    assert formatting.unit_price(Decimal("12.3000")) == "12,30"


def test_percent_drops_useless_decimals():
    assert formatting.percent(Decimal("20.00")) == f"20{NBSP}%"
    assert formatting.percent(Decimal("5.50")) == f"5,5{NBSP}%"
    assert formatting.percent(Decimal("2.1")) == f"2,1{NBSP}%"


def test_dates_in_french():
    assert formatting.date_fr(date(2026, 12, 3)) == "03/12/2026"
    assert formatting.date_long_fr(date(2026, 12, 3)) == "3 décembre 2026"
    assert formatting.date_long_fr(date(2026, 8, 1)) == "1er août 2026"


def test_aware_datetimes_are_shown_in_paris_time():
    late_evening_utc = datetime(2026, 12, 31, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert formatting.date_fr(late_evening_utc) == "01/01/2027"


def test_template_filters_format_and_never_break_the_page():
    template = Template(
        "{% load relance_fr %}{{ a|money }}|{{ a|number:1 }}|{{ r|percent }}|{{ d|date_fr }}|"
        "{{ d|date_long_fr }}|{{ bad|money }}"
    )
    text = template.render(Context({"a": Decimal("1234.56"), "r": Decimal("5.5"),
                                    "d": date(2026, 12, 3), "bad": "n/a"}))
    assert text == (f"1{NBSP}234,56{NBSP}€|1{NBSP}234,6|5,5{NBSP}%|03/12/2026|3 décembre 2026|n/a")


# --- Default invoice --------------------------------------------------------

def test_default_invoice_shows_document_parties_and_amounts():
    text = "\n".join(pdf_pages(render()))
    assert "FACTURE" in text
    assert "FA000123" in text
    assert "Boulangerie Martin & Fils" in text  # the debtor, escaped correctly
    assert "Atelier Durand SAS" in text  # the sender company
    assert "SIRET 12345678900017" in text
    assert "FR32123456789" in text
    assert "RCS Lyon 123 456 789" in text
    assert "Service comptabilité" in text  # the document's billing address snapshot
    assert "15/01/2026" in text and "14/02/2026" in text
    assert "BC-2026-017" in text  # the debtor's reference
    assert "1 234,56 €" in text  # remaining due on the échéance
    assert "3 872,11 €" in text  # total TTC
    assert "Net à payer" in text and "3 172,11 €" in text
    assert "FR76 3000 6000 0112 3456 7890 189" in text


def test_default_invoice_lists_vat_by_rate():
    text = "\n".join(pdf_pages(render()))
    assert "5,5 %" in text and "3,55 €" in text
    assert "3 170,00 €" in text and "634,00 €" in text


def test_default_invoice_carries_the_legal_mentions(settings):
    settings.LATE_PAYMENT_ECB_RATE = Decimal("2.15")
    settings.LATE_PAYMENT_MARGIN_POINTS = Decimal("10")
    settings.RECOVERY_INDEMNITY = Decimal("40.00")
    text = " ".join(" ".join(pdf_pages(render())).split())
    assert "Date d'échéance du règlement : 14 février 2026" in text
    assert "Pas d'escompte pour paiement anticipé" in text
    assert "Pénalités de retard : taux BCE majoré de 10 points, soit 12,15 % l'an" in text
    assert "Indemnité forfaitaire pour frais de recouvrement : 40,00 €" in text
    assert "L441-10 et D441-5 du Code de commerce" in text


def test_late_penalty_rate_follows_the_settings(settings):
    settings.LATE_PAYMENT_ECB_RATE = Decimal("3.5")
    text = " ".join(" ".join(pdf_pages(render())).split())
    assert "soit 13,5 % l'an" in text


def test_long_invoice_runs_over_pages_with_every_line_and_the_header_repeated():
    candidate = rendering.sample_candidate(line_count=60)
    pages = pdf_pages(render(candidate))
    assert len(pages) >= 2
    text = "\n".join(pages)
    for n in range(6, 61):
        assert f"ART-{n:04d}" in text
        assert f"Article de démonstration n° {n}\n" in text
    assert all("Désignation" in page for page in pages if "ART-00" in page)
    assert f"FA000123 · Page {len(pages)}" in pages[-1]


def test_totals_and_legal_mentions_are_never_split_from_each_other():
    for line_count in (26, 30, 34):
        pages = pdf_pages(render(rendering.sample_candidate(line_count=line_count)))
        with_totals = [i for i, page in enumerate(pages) if "Total TTC" in page]
        with_legal = [i for i, page in enumerate(pages) if "Indemnité forfaitaire" in page]
        assert with_totals == with_legal, line_count


def test_echeance_without_its_document_still_prints():
    candidate = dataclasses.replace(rendering.sample_candidate(), document=None)
    text = "\n".join(pdf_pages(render(candidate)))
    assert "FA000123" in text
    assert "1 234,56 €" in text
    assert "Boulangerie Martin & Fils" in text  # the tiers' postal address stands in


def test_render_time_of_the_default_invoice_stays_reasonable():
    import time

    render()  # warm-up: first import of fonts and CSS
    start = time.perf_counter()
    render()
    assert time.perf_counter() - start < 3


# --- Custom print models ----------------------------------------------------

def test_custom_template_renders_with_its_css_and_the_french_filters():
    template = InvoiceTemplate(
        name="Maison",
        html="<html><head></head><body><p class='shout'>facture {{ piece }}</p>"
             "<p>reste {{ remaining|money }}</p></body></html>",
        css=".shout { text-transform: uppercase; }",
    )
    text = "\n".join(pdf_pages(render(invoice_template=template)))
    assert "FACTURE FA000123" in text
    assert "reste 1 234,56 €" in text


def test_custom_template_can_extend_the_default_one():
    template = InvoiceTemplate(
        name="Mentions maison",
        html='{% extends "relance/invoice_default.html" %}'
             "{% block legal %}<p>Conditions maison pour {{ tiers.code }}.</p>{% endblock %}",
    )
    text = "\n".join(pdf_pages(render(invoice_template=template)))
    assert "Conditions maison pour C00042." in text
    assert "Total TTC" in text


def test_edited_template_is_not_served_from_the_cache():
    template = InvoiceTemplate(name="v", html="<p>version un</p>")
    assert "version un" in pdf_pages(render(invoice_template=template))[0]
    template.html = "<p>version deux</p>"
    assert "version deux" in pdf_pages(render(invoice_template=template))[0]


def test_template_failing_at_render_time_raises_a_french_render_error():
    template = InvoiceTemplate(name="Cassé", html="{% include 'relance/introuvable.html' %}")
    with pytest.raises(RenderError, match="FA000123") as exc_info:
        render(invoice_template=template)
    assert "modèle d'impression" in str(exc_info.value)


def test_broken_template_is_refused_with_a_french_message_and_its_line():
    with pytest.raises(ValidationError) as exc_info:
        rendering.validate_invoice_template("<p>{{ piece }}</p>\n<p>{% if tiers.name %}</p>\n")
    message = exc_info.value.messages[0]
    assert "Erreur de syntaxe dans le modèle, ligne 2" in message
    assert "non fermée" in message


def test_unknown_filter_is_named_in_the_validation_message():
    with pytest.raises(ValidationError, match="filtre inconnu « euros »"):
        rendering.validate_invoice_template("{{ remaining|euros }}")


def test_model_clean_validates_the_template():
    with pytest.raises(ValidationError, match="balise inconnue"):
        InvoiceTemplate(name="x", html="{% tableau %}").clean()
    InvoiceTemplate(name="ok", html="<p>{{ piece }} {{ remaining|money }}</p>").clean()


def test_template_the_pdf_engine_rejects_is_refused():
    with pytest.raises(ValidationError, match="PDF d'essai"):
        rendering.validate_invoice_template('<pdf:nexttemplate name="inexistant"/><p>x</p>')


def test_remote_resources_are_never_fetched():
    assert rendering._link_callback("https://tracker.example.com/pixel.png", "") == "data:,"
    assert rendering._link_callback("//cdn.example.com/a.css", "") == "data:,"
    assert rendering._RESOURCE_POLICY.allow_remote is False
    template = InvoiceTemplate(name="img", html='<img src="http://127.0.0.1:9/x.png"><p>ok {{ piece }}</p>')
    assert "ok FA000123" in pdf_pages(render(invoice_template=template))[0]


def test_sample_candidate_is_consistent():
    candidate = rendering.sample_candidate()
    doc = candidate.document
    assert doc.total_ttc == doc.total_ht + doc.total_vat
    assert sum(row["vat"] for row in rendering.vat_breakdown(doc.lines)) == doc.total_vat
    assert sum(line.total for line in doc.lines) == doc.total_ht
    assert candidate.echeance.remaining == Decimal("1234.56")


# --- Archive print model ----------------------------------------------------

@pytest.fixture
def archive(settings, tmp_path):
    root = tmp_path / "archive"
    folder = root / "atelier" / "factures"
    folder.mkdir(parents=True)
    settings.ARCHIVE_ROOT = root
    return folder


def find(pattern="{DOC_PIECE}.pdf", folder="atelier/factures", candidate=None):
    return rendering.find_archived_pdf(archive_folder=folder, pattern=pattern,
                                       candidate=candidate or rendering.sample_candidate())


def test_archive_lookup_finds_the_document_by_its_number(archive):
    (archive / "FA000123.pdf").write_bytes(b"%PDF-1.4 archived")
    (archive / "FA000124.pdf").write_bytes(b"%PDF-1.4 other")
    assert find() == archive / "FA000123.pdf"


def test_archive_lookup_ignores_case_like_windows(archive):
    (archive / "fa000123.PDF").write_bytes(b"%PDF-1.4")
    assert find() == archive / "fa000123.PDF"


def test_archive_lookup_takes_the_newest_wildcard_match(archive):
    old, new = archive / "C00042_FA000123_v1.pdf", archive / "C00042_FA000123_v2.pdf"
    old.write_bytes(b"%PDF-1.4 old")
    new.write_bytes(b"%PDF-1.4 new")
    os.utime(old, (2_000_000_000, 2_000_000_000))
    os.utime(new, (1_000_000_000, 1_000_000_000))
    assert find("{PCF_CODE}_{DOC_PIECE}_v?.pdf") == old


def test_archive_values_cannot_traverse_or_glob(archive):
    (archive / "FA_123.pdf").write_bytes(b"%PDF-1.4")
    candidate = rendering.sample_candidate()
    candidate.document.piece = "FA/123"
    assert find(candidate=candidate) == archive / "FA_123.pdf"
    candidate.document.piece = "*"
    with pytest.raises(RenderError):  # a "*" in a Gestimum value is not a wildcard
        find(candidate=candidate)


def test_archive_lookup_refuses_escapes(archive):
    (archive.parent.parent.parent / "secret.pdf").write_bytes(b"%PDF-1.4")
    for pattern in ("../secret.pdf", "../../{DOC_PIECE}.pdf", "sub/{DOC_PIECE}.pdf", "..\\x.pdf"):
        with pytest.raises(RenderError, match="refusé"):
            find(pattern)
    with pytest.raises(RenderError, match="refusé"):
        find(folder="../..")


def test_archive_lookup_refuses_symlinks_leaving_the_archive(archive, tmp_path):
    outside = tmp_path / "FA000123.pdf"
    outside.write_bytes(b"%PDF-1.4 secret")
    (archive / "FA000123.pdf").symlink_to(outside)
    with pytest.raises(RenderError, match="Aucun PDF d'archive"):
        find()


def test_missing_archive_raises_a_french_error_naming_the_file(archive):
    with pytest.raises(RenderError, match="Aucun PDF d'archive ne correspond à FA000123.pdf"):
        find()
    with pytest.raises(RenderError, match="n'existe pas"):
        find(folder="atelier/ailleurs")


# --- Dispatch and naming ----------------------------------------------------

def test_document_pdf_reads_the_archive_for_archive_tasks(archive):
    (archive / "FA000123.pdf").write_bytes(b"%PDF-1.4 archived")
    task = ReminderTask(print_model="archive", archive_folder="atelier/factures",
                        archive_pattern="{DOC_PIECE}.pdf")
    pdf = rendering.document_pdf(task=task, customer=rendering.sample_customer(),
                                 candidate=rendering.sample_candidate())
    assert pdf == b"%PDF-1.4 archived"


def test_document_pdf_refuses_an_archive_that_is_not_a_pdf(archive):
    (archive / "FA000123.pdf").write_bytes(b"<html>oops</html>")
    task = ReminderTask(print_model="archive", archive_folder="atelier/factures")
    with pytest.raises(RenderError, match="n'est pas un PDF"):
        rendering.document_pdf(task=task, customer=rendering.sample_customer(),
                               candidate=rendering.sample_candidate())


def test_document_pdf_renders_the_default_model_for_template_tasks():
    task = ReminderTask(print_model="template")
    pdf = rendering.document_pdf(task=task, customer=rendering.sample_customer(),
                                 candidate=rendering.sample_candidate(), today=TODAY)
    assert "FA000123" in pdf_pages(pdf)[0]


def test_pdf_filename_is_safe():
    candidate = rendering.sample_candidate()
    assert rendering.pdf_filename(candidate) == "Facture_FA000123.pdf"
    candidate.document.piece = "FA 12/3é"
    assert rendering.pdf_filename(candidate) == "Facture_FA_12_3.pdf"
    candidate.document.stype = "A"
    assert rendering.pdf_filename(candidate).startswith("Avoir_")


def test_every_context_variable_is_documented_in_the_default_template():
    from django.conf import settings

    source = (settings.BASE_DIR / "templates" / rendering.DEFAULT_INVOICE_TEMPLATE).read_text()
    documentation = source.split("{% endcomment %}")[0]
    context = rendering.invoice_context(customer=rendering.sample_customer(),
                                        candidate=rendering.sample_candidate())
    undocumented = [name for name in context if name not in documentation]
    assert undocumented == []
