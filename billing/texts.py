"""What the statement says: line labels, the issuer's identity and the French legal mentions."""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from relance.formatting import date_fr, money, percent

# The issuer (EasyRelance's own company) printed on every statement. Read from
# BILLING_SELLER in settings when defined, else from BILLING_SELLER_* variables.
SELLER_FIELDS = {
    "name": "raison sociale",
    "legal_form": "forme juridique et capital",
    "address": "adresse",
    "siret": "SIRET",
    "vat_number": "n° TVA intracommunautaire",
    "rcs": "RCS",
    "iban": "IBAN",
    "email": "e-mail",
}
REQUIRED_SELLER_FIELDS = ("name", "legal_form", "address", "siret", "vat_number", "rcs")
_DEMO_SELLER = {
    "name": "EasyRelance (démonstration)",
    "legal_form": "SAS au capital de 1 000 €",
    "address": "1 rue de la Démonstration\n69000 Lyon",
    "siret": "00000000000000",
    "vat_number": "FR00000000000",
    "rcs": "RCS Lyon 000 000 000",
    "iban": "",
    "email": "facturation@e-doc-erp.fr",
}
NUMBER_PREFIX = "ER"

PAYMENT_TERMS = (
    "Pas d'escompte pour paiement anticipé. En cas de retard de paiement, pénalités au taux "
    "de {rate} (taux BCE majoré de {margin} points), exigibles sans rappel, et indemnité "
    "forfaitaire pour frais de recouvrement de {indemnity} (articles L441-10 et D441-5 du "
    "Code de commerce)."
)
BILLABLE_UNIT = (
    "Unité facturée : chaque document (facture jointe) contenu dans un e-mail accepté par "
    "notre prestataire d'envoi (statut envoyé, délivré, différé, rejeté par le destinataire "
    "ou signalé comme indésirable). Un e-mail qui porte plusieurs documents compte pour "
    "autant de documents. Les documents réacheminés par courrier, les envois en échec et "
    "les prévisualisations ne sont pas facturés."
)


def seller():
    """The issuer's identity; in production every legal field must be configured."""
    configured = getattr(settings, "BILLING_SELLER", None)
    if configured is None:
        configured = {key: os.environ.get(f"BILLING_SELLER_{key.upper()}", "") for key in SELLER_FIELDS}
        if getattr(settings, "DEV_MODE", False) and not any(configured.values()):
            configured = dict(_DEMO_SELLER)
    missing = [SELLER_FIELDS[key] for key in REQUIRED_SELLER_FIELDS if not configured.get(key)]
    if missing:
        raise ImproperlyConfigured(
            "Mentions légales de l'émetteur incomplètes : " + ", ".join(missing)
            + ". Renseignez les variables BILLING_SELLER_NAME, BILLING_SELLER_LEGAL_FORM, "
            "BILLING_SELLER_ADDRESS, BILLING_SELLER_SIRET, BILLING_SELLER_VAT_NUMBER, BILLING_SELLER_RCS."
        )
    return {key: configured.get(key, "") for key in SELLER_FIELDS}


def payment_terms():
    rate = settings.LATE_PAYMENT_ECB_RATE + settings.LATE_PAYMENT_MARGIN_POINTS
    return PAYMENT_TERMS.format(rate=percent(rate), margin=percent(settings.LATE_PAYMENT_MARGIN_POINTS)
                                .replace("\u00a0%", ""), indemnity=money(settings.RECOVERY_INDEMNITY))


def buyer(customer):
    return {
        "name": customer.name, "address": customer.address, "siret": customer.siret,
        "vat_number": customer.vat_number, "legal_form": customer.legal_form, "slug": customer.slug,
    }


def installation_label():
    return "Frais d'installation et de mise en service"


def monthly_fee_label(first, last, days, days_in_month):
    if days == days_in_month:
        return f"Abonnement mensuel du {date_fr(first)} au {date_fr(last)}"
    return (f"Abonnement mensuel du {date_fr(first)} au {date_fr(last)} "
            f"(prorata {days}/{days_in_month} jours)")


def usage_label(start, end):
    return f"Documents envoyés par e-mail du {date_fr(start)} au {date_fr(end)}"


def late_usage_label(start, end):
    return (f"Régularisation : documents envoyés par e-mail du {date_fr(start)} au {date_fr(end)}, "
            "enregistrés après l'établissement de leur relevé")
