import io
import secrets
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import BaseCommand
from xhtml2pdf import pisa

from relance.models import AddressSource, Customer, FixedAttachment, ReminderTask
from relance.templating import DEFAULT_BODY

DEMO_GESTIMUM = "demo-gestimum.sqlite3"

LEVEL2_BODY = """Bonjour,

Malgré notre précédente relance, la facture {{ document_numero }} du {{ document_date }}, échue le \
{{ echeance_date }}, reste impayée à ce jour : {{ montant_restant }} ({{ jours_retard }} jours de retard).

Sans règlement de votre part sous 8 jours, nous serons contraints d'appliquer les pénalités de retard \
au taux de {{ penalites_taux }} ({{ penalites_montant }} à ce jour) ainsi que l'indemnité forfaitaire \
pour frais de recouvrement de {{ indemnite_recouvrement }} prévues par le Code de commerce.

Si votre règlement est parti entre-temps, merci de ne pas tenir compte de ce message.

{{ signature }}"""


class Command(BaseCommand):
    help = ("Prépare la démonstration : base Gestimum de démo, client « demo » avec deux tâches "
            "(niveau 1 à J+5 20:00, niveau 2 à J+15 21:00) et un compte administrateur.")

    def handle(self, *args, **options):
        path = settings.VAR_DIR / DEMO_GESTIMUM
        url = f"sqlite:///{path}"
        if not path.exists():
            call_command("seed_demo", gestimum_url=url, stdout=self.stdout)
        customer, _ = Customer.objects.update_or_create(
            slug="demo",
            defaults={
                "name": "Démo Négoce SAS", "gestimum_url": url, "sender_name": "Démo Négoce — Comptabilité",
                "reply_to": "comptabilite@demo-negoce.example.com",
                "notification_email": "adv@demo-negoce.example.com",
                "signature": "Le service comptabilité\nDémo Négoce SAS — 04 72 00 00 00",
                "address": "12 rue de la République\n69002 Lyon", "siret": "12345678900017",
                "vat_number": "FR32123456789", "legal_form": "SAS au capital de 50 000 €",
                "rcs": "RCS Lyon 123 456 789", "phone": "04 72 00 00 00",
                "iban": "FR7630001007941234567890185",
            },
        )
        level1 = self.task(customer, level=1, days=5, schedule="0 20 * * *",
                           name="Relance niveau 1 (J+5, 20:00)", body=DEFAULT_BODY,
                           subject="Rappel : facture {{ document_numero }} échue le {{ echeance_date }}")
        level2 = self.task(customer, level=2, days=15, schedule="0 21 * * *",
                           name="Relance niveau 2 (J+15, 21:00)", body=LEVEL2_BODY,
                           subject="Deuxième relance : facture {{ document_numero }} impayée")
        for task in (level1, level2):
            if not task.address_sources.exists():
                AddressSource.objects.bulk_create([
                    AddressSource(task=task, role="to", position=1, kind="tiers_column",
                                  value="XXX_EMAILRELANCE"),
                    AddressSource(task=task, role="to", position=2, kind="billing_email"),
                    AddressSource(task=task, role="to", position=3, kind="contact_function",
                                  value="COMPTA"),
                    AddressSource(task=task, role="bcc", position=1, kind="static",
                                  value="archives@demo-negoce.example.com"),
                ])
            if not task.attachments.exists():
                attachment = FixedAttachment(task=task, name="Conditions_generales_de_vente.pdf")
                attachment.file.save("cgv-demo.pdf", ContentFile(terms_pdf()), save=True)
        self.contract(customer)
        self.pause(customer, level1)
        password = self.admin_password()
        portal_email = self.portal_user(customer, password)
        self.stdout.write(self.style.SUCCESS(
            f"Client de démonstration prêt : « {customer.name} », tâches n° {level1.pk} et {level2.pk}."))
        self.stdout.write(f"Administration : utilisateur « admin », mot de passe « {password} »")
        self.stdout.write(f"Espace client : e-mail « {portal_email} », même mot de passe")

    def contract(self, customer):
        from billing.models import Contract, ContractPrice

        contract, created = Contract.objects.get_or_create(
            customer=customer,
            defaults={"start_date": date.today().replace(day=1), "installation_fee": Decimal("490.00"),
                      "billing_email": "comptabilite@demo-negoce.example.com"},
        )
        if created:
            ContractPrice.objects.create(contract=contract, effective_from=contract.start_date,
                                         monthly_fee=Decimal("49.00"), unit_price=Decimal("0.35"))

    def pause(self, customer, task):
        """A debtor in dispute: the demo's level-1 run leaves all its invoices alone (« en pause »)."""
        from collections import Counter

        from relance.engine import task_selection, task_sources
        from relance.gestimum.gateway import open_gateway
        from relance.models import ReminderPause

        if customer.pauses.exists():
            return
        with open_gateway(customer) as gateway:
            page = next(gateway.candidate_pages(task_selection(task, task_sources(task)),
                                                today=date.today()), [])
        invoices = Counter(candidate.tiers.code for candidate in page)
        disputed = next((code for code, count in sorted(invoices.items()) if count >= 2), None)
        if disputed:
            ReminderPause.objects.create(customer=customer, pcf_code=disputed, created_by="démonstration",
                                         reason="Litige sur la dernière livraison (démonstration)")

    def portal_user(self, customer, password):
        from portal.models import PortalUser

        email = "adv@demo-negoce.example.com"
        user, _ = get_user_model().objects.get_or_create(
            username="adv-demo", defaults={"email": email, "first_name": "Claire", "last_name": "Martin"})
        user.set_password(password)
        user.save()
        PortalUser.objects.get_or_create(user=user, defaults={"customer": customer})
        return email

    def task(self, customer, *, level, days, schedule, name, body, subject):
        task, _ = ReminderTask.objects.get_or_create(
            customer=customer, level=level,
            defaults={"name": name, "days": days, "schedule": schedule, "body_template": body,
                      "subject_template": subject, "divert_folder": f"courrier/niveau{level}",
                      "max_days": 365, "writeback_relances": True},
        )
        return task

    def admin_password(self):
        user, created = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True,
                                        "email": "admin@easyrelance.example.com"})
        password_file = settings.VAR_DIR / "demo-admin-password.txt"
        if created or not password_file.exists():
            password = secrets.token_urlsafe(9)
            user.set_password(password)
            user.save()
            password_file.write_text(password)
        return password_file.read_text().strip()


def terms_pdf():
    html = """<h1>Conditions générales de vente</h1>
    <p>Nos factures sont payables à 30 jours date de facture, sans escompte.</p>
    <p>Tout retard de paiement entraîne de plein droit des pénalités au taux BCE majoré de 10 points
    et une indemnité forfaitaire pour frais de recouvrement de 40 € (art. L441-10 et D441-5 du
    Code de commerce).</p>"""
    out = io.BytesIO()
    pisa.CreatePDF(html, dest=out, encoding="utf-8")
    return out.getvalue()
