"""Portal pages with data: dashboard, history and its CSV, send detail, diverted documents, isolation."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from portal.models import Handling
from portal.selectors import mark_handled
from relance.models import Dispatch, ReminderTask

from .portal_support import (
    make_dispatch,
    make_portal_user,
    pdf_bytes,
    write_divert,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("portal_settings")]
Status = Dispatch.Status


def text(response):
    return response.content.decode()


def export_rows(response):
    content = b"".join(response.streaming_content).decode("utf-8")
    assert content.startswith("\ufeff")
    return list(csv.reader(io.StringIO(content[1:]), delimiter=";"))


def make_task(customer, level=1, name=None):
    return ReminderTask.objects.create(customer=customer, name=name or f"Relance niveau {level}", level=level)


# -- dashboard -------------------------------------------------------------------------

def test_the_dashboard_counts_this_months_sends_by_outcome(portal_client, acme, other):
    for status in (Status.SENT, Status.DELIVERED, Status.DELIVERED, Status.BOUNCED, Status.DIVERTED,
                   Status.FAILED):
        make_dispatch(acme, status=status)
    make_dispatch(acme, status=Status.DELIVERED, created_at=timezone.now() - timedelta(days=70))
    make_dispatch(other, status=Status.DELIVERED)

    response = portal_client.get(reverse("portal:dashboard"))

    assert response.context["figures"] == {"sent": 4, "delivered": 2, "bounced": 1, "diverted": 1,
                                           "failed": 1}


def test_the_dashboard_charts_twelve_months_by_status_and_level(portal_client, acme):
    make_dispatch(acme, status=Status.DELIVERED, level=1)
    make_dispatch(acme, status=Status.BOUNCED, level=2)
    make_dispatch(acme, status=Status.DELIVERED, level=2, created_at=timezone.now() - timedelta(days=400))

    response = portal_client.get(reverse("portal:dashboard"))

    status_chart, level_chart = response.context["status_chart"], response.context["level_chart"]
    assert len(status_chart.bars) == 12
    assert status_chart.rows[-1][2] == 2 and sum(row[2] for row in status_chart.rows) == 2
    assert [label for label, _ in level_chart.legend] == ["Niveau 1", "Niveau 2"]
    assert level_chart.rows[-1][1] == [1, 1]
    assert text(response).count("<svg") == 2
    assert "<rect" in text(response)
    # French number formatting must never reach SVG coordinates ("12,5" is not a number there).
    assert not re.search(r'(x|y|width|height)="-?\d+,\d', text(response))


def test_the_dashboard_lists_bounces_to_follow_up_until_marked_handled(portal_client, acme):
    bounced = make_dispatch(acme, status=Status.BOUNCED, doc_piece="FA777", to="faux@martin.example")
    make_dispatch(acme, status=Status.DIVERTED)

    page = text(portal_client.get(reverse("portal:dashboard")))
    assert "FA777" in page and "faux@martin.example" in page
    assert "1 document à envoyer par courrier" in page

    portal_client.post(reverse("portal:mark_handled"),
                       {"dispatch": [bounced.pk], "next": reverse("portal:dashboard")})

    assert "FA777" not in text(portal_client.get(reverse("portal:dashboard")))


# -- history ---------------------------------------------------------------------------

def test_the_history_filters_by_status_level_task_debtor_piece_and_period(portal_client, acme):
    task1, task2 = make_task(acme, 1), make_task(acme, 2)
    old = make_dispatch(acme, task=task1, doc_piece="FA100", created_at=timezone.now() - timedelta(days=40))
    bounced = make_dispatch(acme, task=task2, level=2, status=Status.BOUNCED, doc_piece="FA200",
                            pcf_code="CL002", tiers_name="Garage Dubois")
    delivered = make_dispatch(acme, task=task1, status=Status.DELIVERED, doc_piece="AV300")
    url = reverse("portal:history")

    def shown(**params):
        return {d.pk for d in portal_client.get(url, params).context["page"].object_list}

    assert shown() == {old.pk, bounced.pk, delivered.pk}
    assert shown(status="bounced") == {bounced.pk}
    assert shown(status="delivered") == {delivered.pk}
    assert shown(level=2) == {bounced.pk}
    assert shown(task=task1.pk) == {old.pk, delivered.pk}
    assert shown(debtor="dubois") == {bounced.pk}
    assert shown(debtor="cl002") == {bounced.pk}
    assert shown(piece="fa") == {old.pk, bounced.pk}
    start = (timezone.localdate() - timedelta(days=7)).isoformat()
    assert shown(date_from=start) == {bounced.pk, delivered.pk}
    assert shown(date_to=(timezone.localdate() - timedelta(days=30)).isoformat()) == {old.pk}


def test_the_dashboard_chart_keeps_past_months_cached_and_the_current_month_live(portal_client, acme):
    make_dispatch(acme, status=Status.DELIVERED, created_at=timezone.now() - timedelta(days=45))
    url = reverse("portal:dashboard")
    portal_client.get(url)
    make_dispatch(acme, status=Status.DELIVERED, created_at=timezone.now() - timedelta(days=45))
    make_dispatch(acme, status=Status.DELIVERED)

    rows = portal_client.get(url).context["status_chart"].rows

    # Past months may lag up to CLOSED_MONTHS_SECONDS; this month never does.
    assert rows[-1][2] == 1 and sum(row[2] for row in rows) == 2
    cache.clear()
    assert sum(row[2] for row in portal_client.get(url).context["status_chart"].rows) == 3


def test_the_history_count_stops_at_the_cap_and_says_so(portal_client, acme, monkeypatch):
    monkeypatch.setattr("portal.views.HISTORY_COUNT_CAP", 5)
    monkeypatch.setattr("portal.views.PAGE_SIZE", 2)
    for _ in range(7):
        make_dispatch(acme)
    url = reverse("portal:history")

    response = portal_client.get(url)

    assert "Plus de 5 envois : affinez la période ou les filtres" in text(response)
    assert "Page 1 sur plus de 3" in text(response)
    # A page past the cap shows the last reachable page rather than an error.
    assert portal_client.get(url, {"page": 99}).context["page"].number == 3


def test_the_history_count_is_exact_below_the_cap(portal_client, acme):
    for _ in range(3):
        make_dispatch(acme)

    page = text(portal_client.get(reverse("portal:history")))

    assert "3 envois" in page and "Plus de" not in page


def test_the_history_sorts_and_paginates(portal_client, acme):
    for i in range(60):
        make_dispatch(acme, doc_piece=f"FA{i:03d}", remaining=Decimal(i))
    url = reverse("portal:history")

    first = portal_client.get(url, {"sort": "piece"}).context["page"]
    second = portal_client.get(url, {"sort": "piece", "page": 2}).context["page"]

    assert [d.doc_piece for d in first.object_list][:2] == ["FA000", "FA001"]
    assert len(first.object_list) == 50 and len(second.object_list) == 10
    assert portal_client.get(url, {"sort": "-reste"}).context["page"][0].doc_piece == "FA059"
    # An unknown sort key falls back to the newest first instead of an error.
    assert portal_client.get(url, {"sort": "customer_id"}).status_code == 200


def test_the_csv_export_streams_the_filtered_history_with_french_headers(portal_client, acme, other):
    make_dispatch(acme, status=Status.BOUNCED, doc_piece="FA001", remaining=Decimal("1234.5"))
    make_dispatch(acme, status=Status.DELIVERED, doc_piece="FA002")
    make_dispatch(other, status=Status.BOUNCED, doc_piece="FA999")

    response = portal_client.get(reverse("portal:export_csv"), {"status": "bounced"})

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    header, *rows = export_rows(response)
    assert header[:5] == ["Date", "Heure", "Niveau", "Tâche", "Statut"]
    assert [row[8] for row in rows] == ["FA001"]
    assert rows[0][4] == "non délivré (rejet)"
    assert rows[0][11] == "1234,50"


def bulk_dispatches(customer, count):
    """``count`` sends for ``customer`` in seconds: 1,000 through the ORM, the rest copied in SQL.

    The ORM spends ~0.4 ms of Python per row; copying rows at other levels
    (unique key: customer, échéance, level) lets the database do the work.
    """
    from django.db import connection

    now = timezone.now()
    Dispatch.objects.bulk_create(
        [Dispatch(customer=customer, level=1, status=Status.DELIVERED, ech_numero=f"{i:010d}",
                  doc_piece=f"FA{i:07d}", created_at=now) for i in range(1000)], batch_size=500)
    columns = [f.column for f in Dispatch._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    table = quote(Dispatch._meta.db_table)
    selected = ", ".join("%s" if c == "level" else quote(c) for c in columns)
    sql = (f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
           f"SELECT {selected} FROM {table} WHERE {quote('customer_id')} = %s AND {quote('level')} = 1")
    with connection.cursor() as cursor:
        for level in range(2, count // 1000 + 1):
            cursor.execute(sql, [level, customer.pk])


@pytest.mark.slow
def test_the_csv_export_handles_100000_rows(portal_client, acme):
    bulk_dispatches(acme, 100_000)
    assert Dispatch.objects.filter(customer=acme).count() == 100_000

    response = portal_client.get(reverse("portal:export_csv"))

    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    assert lines == 100_001


# -- send detail and PDF ---------------------------------------------------------------

def test_the_detail_shows_the_email_as_sent_its_timeline_and_gestimum_references(portal_client, acme):
    dispatch = make_dispatch(acme, status=Status.BOUNCED, to="a@martin.example\nb@martin.example",
                             cc="adv@acme.example", subject="Relance FA123", body="Bonjour Martin",
                             doc_piece="FA123", doc_numero="0000000042", ech_numero="0000000099")
    from django.apps import apps

    try:
        DeliveryEvent = apps.get_model("relance", "DeliveryEvent")
    except LookupError:
        DeliveryEvent = None
    if DeliveryEvent is not None:
        DeliveryEvent.objects.create(dispatch=dispatch, kind="bounced", occurred_at=timezone.now(),
                                     reason="550 5.1.1 boîte inconnue", fingerprint="x")

    page = text(portal_client.get(reverse("portal:detail", args=[dispatch.pk])))

    for expected in ("a@martin.example", "b@martin.example", "adv@acme.example", "Relance FA123",
                     "Bonjour Martin", "0000000042", "0000000099", "Envoi préparé"):
        assert expected in page
    if DeliveryEvent is not None:
        assert "550 5.1.1 boîte inconnue" in page


def test_the_pdf_as_sent_downloads_as_an_attachment(portal_client, acme):
    content = pdf_bytes()
    dispatch = make_dispatch(acme, pdf=content, doc_piece="FA123", level=2)

    response = portal_client.get(reverse("portal:pdf", args=[dispatch.pk]))

    assert response["Content-Type"] == "application/pdf"
    assert 'attachment; filename="FA123-niveau2.pdf"' == response["Content-Disposition"]
    assert b"".join(response.streaming_content) == content


def test_the_proof_of_a_send_bundles_summary_message_events_and_the_pdf_with_its_hash(portal_client, acme):
    import hashlib
    import json
    import zipfile

    from relance.models import DeliveryEvent

    content = pdf_bytes()
    dispatch = make_dispatch(acme, pdf=content, doc_piece="FA123", level=2, to="a@martin.example",
                             subject="Relance FA123", body="Bonjour Martin,\nla facture FA123 reste due.",
                             message_id="<42.1@e-doc-erp.fr>", status=Status.DELIVERED)
    Dispatch.objects.filter(pk=dispatch.pk).update(pdf_sha256=hashlib.sha256(content).hexdigest())
    DeliveryEvent.objects.create(dispatch=dispatch, kind="delivered", occurred_at=timezone.now(),
                                 recipient="a@martin.example", provider="brevo", event_id="ev-1",
                                 fingerprint="f1", raw={"event": "delivered", "id": 1})

    response = portal_client.get(reverse("portal:proof", args=[dispatch.pk]))

    assert response["Content-Type"] == "application/zip"
    assert f'filename="preuve-envoi-FA123-niveau2-{dispatch.pk}.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["FA123-niveau2.pdf", "evenements.json", "message.txt", "preuve.txt"]
    summary = archive.read("preuve.txt").decode()
    for expected in ("Relance de niveau 2", "À : a@martin.example", "Message-ID : <42.1@e-doc-erp.fr>",
                     f"SHA-256 {hashlib.sha256(content).hexdigest()} (identique", "heure de Paris",
                     "Délivré", "[source : brevo]"):
        assert expected in summary, expected
    assert archive.read("FA123-niveau2.pdf") == content
    assert "la facture FA123 reste due." in archive.read("message.txt").decode()
    assert json.loads(archive.read("evenements.json"))[0]["payload"] == {"event": "delivered", "id": 1}


def test_the_proof_of_a_diverted_letter_says_so_and_when_the_pdf_no_longer_matches(portal_client, acme):
    import zipfile

    dispatch = make_dispatch(acme, pdf=pdf_bytes(), doc_piece="FA124", status=Status.DIVERTED)
    Dispatch.objects.filter(pk=dispatch.pk).update(pdf_sha256="0" * 64)

    response = portal_client.get(reverse("portal:proof", args=[dispatch.pk]))
    archive = zipfile.ZipFile(io.BytesIO(response.content))

    summary = archive.read("preuve.txt").decode()
    assert "DIFFÉRENT de l'empreinte enregistrée" in summary
    assert "Document réacheminé vers le courrier : aucune adresse e-mail" in summary
    assert "message.txt" not in archive.namelist()


def test_a_send_without_pdf_gives_404(portal_client, acme):
    dispatch = make_dispatch(acme)

    assert portal_client.get(reverse("portal:pdf", args=[dispatch.pk])).status_code == 404


# -- diverted documents ----------------------------------------------------------------

def test_diverted_documents_show_postal_address_and_reason(portal_client, acme):
    dispatch = make_dispatch(acme, status=Status.DIVERTED, divert_reason="aucune adresse e-mail valide")
    write_divert(acme, dispatch, "Boulangerie Martin / 12 rue des Lilas / 69003 Lyon")

    page = text(portal_client.get(reverse("portal:diverted")))

    assert "12 rue des Lilas / 69003 Lyon" in page
    assert "aucune adresse e-mail valide" in page


def test_all_pending_diverted_documents_download_as_one_pdf(portal_client, acme):
    make_dispatch(acme, status=Status.DIVERTED, pdf=pdf_bytes(2))
    make_dispatch(acme, status=Status.DIVERTED, pdf=pdf_bytes(1))
    handled = make_dispatch(acme, status=Status.DIVERTED, pdf=pdf_bytes(5))
    mark_handled(acme, ids=[handled.pk], user=None)

    response = portal_client.get(reverse("portal:diverted_pdf"))

    assert response["Content-Type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(response.content)).pages) == 3


def test_marking_diverted_documents_handled_removes_them_from_the_list(portal_client, acme):
    first = make_dispatch(acme, status=Status.DIVERTED, doc_piece="FA001")
    make_dispatch(acme, status=Status.DIVERTED, doc_piece="FA002")

    response = portal_client.post(reverse("portal:mark_handled"), {"dispatch": [first.pk]}, follow=True)

    assert "1 document(s) marqué(s) comme traité(s)." in text(response)
    assert [d.doc_piece for d in response.context["pending"]] == ["FA002"]
    handling = Handling.objects.get()
    assert handling.dispatch == first and handling.handled_by.email == "adv@acme.example"


def test_mark_handled_refuses_get(portal_client):
    assert portal_client.get(reverse("portal:mark_handled")).status_code == 405


def test_mark_handled_never_redirects_off_site(portal_client, acme):
    dispatch = make_dispatch(acme, status=Status.DIVERTED)

    response = portal_client.post(reverse("portal:mark_handled"),
                                  {"dispatch": [dispatch.pk], "next": "https://evil.example/"})

    assert response["Location"] == reverse("portal:diverted")


# -- isolation: customer A never reaches customer B's data ----------------------------

@pytest.mark.parametrize("name", ["detail", "pdf", "proof"])
def test_another_customers_send_is_a_404(portal_client, other, name):
    theirs = make_dispatch(other, status=Status.DIVERTED, pdf=pdf_bytes())

    assert portal_client.get(reverse(f"portal:{name}", args=[theirs.pk])).status_code == 404


def test_another_customers_sends_never_appear_in_lists_exports_or_charts(portal_client, acme, other):
    their_task = make_task(other)
    theirs = make_dispatch(other, status=Status.BOUNCED, doc_piece="SECRET1", task=their_task)
    make_dispatch(other, status=Status.DIVERTED, doc_piece="SECRET2", pdf=pdf_bytes(4))
    make_dispatch(acme, status=Status.DIVERTED, doc_piece="MINE", pdf=pdf_bytes(1))

    for url, params in [("portal:dashboard", {}), ("portal:history", {}),
                        ("portal:history", {"task": their_task.pk}), ("portal:diverted", {}),
                        ("portal:history", {"piece": "SECR"})]:
        page = text(portal_client.get(reverse(url), params))
        assert "SECRET1" not in page and "SECRET2" not in page, url
    rows = export_rows(portal_client.get(reverse("portal:export_csv"), {"task": their_task.pk}))
    assert [row[8] for row in rows[1:]] == ["MINE"]
    merged = portal_client.get(reverse("portal:diverted_pdf"))
    assert len(PdfReader(io.BytesIO(merged.content)).pages) == 1
    figures = portal_client.get(reverse("portal:dashboard")).context["figures"]
    assert figures["bounced"] == 0
    assert theirs.pk not in {d.pk for d in portal_client.get(reverse("portal:history")).context["page"]}


def test_another_customers_send_cannot_be_marked_handled(portal_client, other):
    theirs = make_dispatch(other, status=Status.DIVERTED)

    portal_client.post(reverse("portal:mark_handled"), {"dispatch": [theirs.pk]})

    assert not Handling.objects.exists()


def test_another_customers_user_sees_only_their_own(client, acme, other):
    mine = make_dispatch(acme, pdf=pdf_bytes())
    theirs = make_dispatch(other, pdf=pdf_bytes())
    client.force_login(make_portal_user(other))

    assert client.get(reverse("portal:detail", args=[mine.pk])).status_code == 404
    assert client.get(reverse("portal:pdf", args=[mine.pk])).status_code == 404
    assert client.get(reverse("portal:detail", args=[theirs.pk])).status_code == 200


def test_no_diverted_pdf_when_nothing_is_pending(portal_client, other):
    make_dispatch(other, status=Status.DIVERTED, pdf=pdf_bytes())

    assert portal_client.get(reverse("portal:diverted_pdf")).status_code == 404


def test_every_portal_url_is_covered_by_the_isolation_tests():
    # A new URL taking an id must be added to the isolation tests above: this fails until it is.
    from portal.urls import urlpatterns

    with_ids = sorted(p.name for p in urlpatterns if "<int:pk>" in str(p.pattern))
    # lift_pause: tests/test_pauses.py, another customer's pause gives a 404.
    assert with_ids == ["detail", "lift_pause", "pdf", "proof"]


def test_pages_are_french_and_use_only_local_static_files(portal_client, acme):
    make_dispatch(acme)
    for name in ("portal:dashboard", "portal:history", "portal:diverted", "portal:pauses"):
        page = text(portal_client.get(reverse(name)))
        assert '<html lang="fr">' in page
        assert "/static/portal/portal.css" in page
        assert "<script" not in page and "https://" not in page
        assert 'name="viewport"' in page


