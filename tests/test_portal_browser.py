"""The portal in a real browser: Debian's Chromium driven by Playwright (no browser download)."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from portal.models import Handling
from relance.models import Dispatch, ReminderPause

from .portal_support import (
    PASSWORD,
    make_dispatch,
    make_portal_user,
    pdf_bytes,
    write_divert,
)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("portal_settings"),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium absent : apt-get install chromium"),
]
# Playwright's sync API keeps an event loop in this thread; Django's ORM calls in the
# test body then look "async" to Django although nothing runs concurrently.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True, scope="module")
def _close_live_server_connections(django_db_blocker):
    """The live server's request threads keep their PostgreSQL sessions open, which
    stops the test database from being dropped at the end of the run."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run"],
        )
        context = browser.new_context(accept_downloads=True, locale="fr-FR",
                                      viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture
def data(acme, other):
    make_portal_user(acme, email="claire@acme.example")
    for status in (Dispatch.Status.DELIVERED, Dispatch.Status.DELIVERED, Dispatch.Status.SENT):
        make_dispatch(acme, status=status, pdf=pdf_bytes())
    bounced = make_dispatch(acme, status=Dispatch.Status.BOUNCED, doc_piece="FA424242", level=2,
                            tiers_name="Garage Dubois", to="faux@dubois.example", pdf=pdf_bytes(),
                            subject="Relance facture FA424242", body="Bonjour,\nmerci de régler FA424242.")
    diverted = make_dispatch(acme, status=Dispatch.Status.DIVERTED, doc_piece="FA515151", pdf=pdf_bytes())
    write_divert(acme, diverted, "Garage Dubois / 1 place Bellecour / 69002 Lyon")
    make_dispatch(other, status=Dispatch.Status.BOUNCED, doc_piece="SECRET99")
    return {"bounced": bounced}


def log_in(page, live_server):
    page.goto(f"{live_server.url}/connexion/")
    page.get_by_label("Adresse e-mail").fill("claire@acme.example")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{live_server.url}/")


def test_a_customer_logs_in_filters_opens_a_send_and_downloads_its_pdf_and_the_csv(page, live_server, data):
    log_in(page, live_server)
    assert page.get_by_role("heading", name="Tableau de bord").is_visible()
    assert page.locator("svg rect").count() > 0
    # The stylesheet is served locally and applied (the nav is laid out as a flex row).
    assert page.locator(".top nav ul").evaluate("e => getComputedStyle(e).display") == "flex"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    page.get_by_role("link", name="Historique").click()
    page.get_by_label("Statut").select_option("bounced")
    page.get_by_role("button", name="Filtrer").click()
    rows = page.locator("table.history tbody tr")
    assert rows.count() == 1
    assert "SECRET99" not in page.content()

    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Exporter en CSV").click()
    content = Path(csv_download.value.path()).read_text(encoding="utf-8-sig")
    assert content.splitlines()[0].startswith("Date;Heure;Niveau")
    assert len(content.splitlines()) == 2 and "FA424242" in content

    rows.first.get_by_role("link", name="FA424242").click()
    assert page.get_by_role("heading", name="FA424242 — niveau 2").is_visible()
    assert page.get_by_text("faux@dubois.example").is_visible()
    with page.expect_download() as pdf_download:
        page.get_by_role("link", name="Télécharger le PDF").click()
    assert pdf_download.value.suggested_filename == "FA424242-niveau2.pdf"
    assert Path(pdf_download.value.path()).read_bytes()[:4] == b"%PDF"


def test_the_diverted_documents_page_works_with_the_keyboard_on_a_phone(page, live_server, data):
    page.set_viewport_size({"width": 375, "height": 740})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/courrier/")
    assert page.get_by_text("1 place Bellecour").is_visible()
    # No horizontal scrolling of the page itself on a phone: wide tables scroll inside their box.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    page.get_by_label("Marquer FA515151 comme traité").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Marquer la sélection comme traitée").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_text("1 document(s) marqué(s) comme traité(s).").is_visible()
    assert page.get_by_text("Aucun document en attente").is_visible()
    assert Handling.objects.filter(dispatch__doc_piece="FA515151").exists()


def test_a_disputed_invoice_is_paused_from_its_send_page_and_the_pause_lifted(page, live_server, data):
    log_in(page, live_server)
    page.goto(f"{live_server.url}/envois/{data['bounced'].pk}/")
    page.get_by_role("link", name="Suspendre les relances de cette facture (litige…)").click()

    assert page.get_by_label("Code tiers du débiteur").input_value() == "CL001"
    assert page.get_by_label("N° de facture (facultatif)").input_value() == "FA424242"
    page.get_by_label("Motif").fill("Litige : livraison incomplète")
    page.get_by_label("Jusqu'au (inclus)").fill("2020-01-31")
    page.get_by_role("button", name="Suspendre les relances").click()
    assert page.get_by_text("Cette date est déjà passée").is_visible()  # nothing saved, input kept
    assert page.get_by_label("Motif").input_value() == "Litige : livraison incomplète"

    page.get_by_label("Jusqu'au (inclus)").fill("")
    page.get_by_role("button", name="Suspendre les relances").click()
    assert page.get_by_text("Relances suspendues pour CL001 (facture FA424242)").is_visible()
    pause = ReminderPause.objects.get()
    assert (pause.pcf_code, pause.doc_piece, pause.until) == ("CL001", "FA424242", None)

    page.get_by_role("button", name="Lever la pause de CL001 (facture FA424242)").click()
    assert page.get_by_text("Pause levée pour CL001").is_visible()
    assert page.get_by_text("Aucune pause en vigueur").is_visible()
    pause.refresh_from_db()
    assert pause.lifted_by == "claire@acme.example"
