"""Reminders suspended for one debtor, or for one of its invoices (a dispute, a payment plan)."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .tasks import Customer


def normalize_code(value):
    """Gestimum codes are compared trimmed and upper-case, as the gateway reads them."""
    return (value or "").strip().upper()


class PauseQuerySet(models.QuerySet):
    def active(self, on_date):
        """Pauses in force on ``on_date`` (the customer's local date): not lifted, not over."""
        return self.filter(lifted_at__isnull=True).filter(Q(until__isnull=True) | Q(until__gte=on_date))


class ReminderPause(models.Model):
    """No reminder goes to this debtor (or for this invoice) while the pause is in force.

    Set by EasyRelance staff in the admin or by the customer in the portal; lifting
    it keeps the row, so the history of who paused what, and why, stays.
    """

    customer = models.ForeignKey(Customer, models.CASCADE, related_name="pauses", verbose_name="client")
    pcf_code = models.CharField("code tiers (débiteur)", max_length=20,
                                help_text="Code du tiers dans Gestimum (PCF_CODE).")
    doc_piece = models.CharField(
        "n° de pièce", max_length=30, blank=True,
        help_text="Vide : toutes les factures du débiteur sont suspendues.")
    reason = models.CharField("motif", max_length=200,
                              help_text="Par exemple « Litige sur la livraison du 12/03 ».")
    until = models.DateField("jusqu'au (inclus)", null=True, blank=True,
                             help_text="Vide : jusqu'à ce que la pause soit levée.")
    created_at = models.DateTimeField("créée le", default=timezone.now)
    created_by = models.CharField("créée par", max_length=254, blank=True)
    lifted_at = models.DateTimeField("levée le", null=True, blank=True)
    lifted_by = models.CharField("levée par", max_length=254, blank=True)

    objects = PauseQuerySet.as_manager()

    class Meta:
        verbose_name = "pause de relance"
        verbose_name_plural = "pauses de relance"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["customer", "lifted_at"], name="pause_customer_lifted")]

    def __str__(self):
        what = f"facture {self.doc_piece}" if self.doc_piece else "toutes les factures"
        return f"{self.pcf_code} — {what} : {self.reason}"

    def in_force(self, on_date):
        """Same rule as ``ReminderPause.objects.active(on_date)``, for one loaded row."""
        return self.lifted_at is None and (self.until is None or self.until >= on_date)

    @property
    def scope_label(self):
        return f"facture {self.doc_piece}" if self.doc_piece else "tout le débiteur"

    def clean(self):
        self.pcf_code = normalize_code(self.pcf_code)
        self.doc_piece = normalize_code(self.doc_piece)
        self.reason = (self.reason or "").strip()
        if not self.pcf_code:
            raise ValidationError({"pcf_code": "Indiquez le code tiers du débiteur (PCF_CODE de Gestimum)."})
        if self.until and self.lifted_at is None and self.until < timezone.localdate():
            raise ValidationError({"until": "Cette date est déjà passée : choisissez aujourd'hui ou une "
                                            "date à venir, ou laissez vide pour une pause sans fin."})

    def lift(self, by):
        self.lifted_at = timezone.now()
        self.lifted_by = by
        self.save(update_fields=["lifted_at", "lifted_by"])


class PauseIndex:
    """The customer's pauses in force on one date, loaded once per run (one query)."""

    def __init__(self, pauses):
        self.debtors = {}
        self.invoices = {}
        for pause in pauses:
            code = normalize_code(pause.pcf_code)
            if pause.doc_piece:
                self.invoices[(code, normalize_code(pause.doc_piece))] = pause
            else:
                self.debtors[code] = pause

    @classmethod
    def load(cls, customer, on_date):
        return cls(ReminderPause.objects.filter(customer=customer).active(on_date))

    def __bool__(self):
        return bool(self.debtors or self.invoices)

    def pause_for(self, pcf_code, doc_piece):
        code = normalize_code(pcf_code)
        return self.debtors.get(code) or self.invoices.get((code, normalize_code(doc_piece)))
