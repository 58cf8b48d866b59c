"""Contracts, their price history, monthly statements (invoices and credit notes) and numbering.

An issued statement is a French invoice: its number, amounts and lines never
change again. A mistake is corrected by a credit note (a new statement with
negative amounts and its own number), never by editing.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from relance.models import Customer, Dispatch

DEFAULT_VAT_RATE = Decimal("20.00")


class ImmutableStatementError(ValidationError):
    """Raised when code tries to change an issued statement; the message is French."""


class Contract(models.Model):
    """What a customer pays: installation fee once, then a monthly fee and a price per document."""

    customer = models.OneToOneField(Customer, models.PROTECT, related_name="contract",
                                    verbose_name="client")
    start_date = models.DateField("début du service")
    end_date = models.DateField("fin du service", null=True, blank=True,
                                help_text="Vide : contrat en cours. Dernier jour facturé inclus.")
    installation_fee = models.DecimalField(
        "frais d'installation HT (€)", max_digits=12, decimal_places=2, default=Decimal("0.00"),
        validators=[MinValueValidator(0)], help_text="Facturés une fois, sur le relevé du premier mois.",
    )
    vat_rate = models.DecimalField(
        "taux de TVA (%)", max_digits=5, decimal_places=2, default=DEFAULT_VAT_RATE,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    # Only euros are billed; the field exists so a statement says which currency it is in.
    currency = models.CharField("devise", max_length=3, default="EUR", editable=False)
    payment_days = models.PositiveSmallIntegerField("délai de paiement (jours)", default=30)
    billing_email = models.EmailField("e-mail de facturation", blank=True)
    created_at = models.DateTimeField("créé le", auto_now_add=True)

    class Meta:
        verbose_name = "contrat"
        verbose_name_plural = "contrats"
        ordering = ["customer__name"]

    def __str__(self):
        return f"Contrat {self.customer}"

    def clean(self):
        if self.end_date and self.start_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": "La fin du service précède son début."})

    def price_on(self, day):
        """The ``ContractPrice`` in force on ``day`` (the latest one effective on or before it)."""
        return self.prices.filter(effective_from__lte=day).order_by("-effective_from").first()


class ContractPrice(models.Model):
    """Monthly fee and unit price from a date on; older rows are kept as the price history."""

    contract = models.ForeignKey(Contract, models.CASCADE, related_name="prices", verbose_name="contrat")
    effective_from = models.DateField("applicable à partir du")
    monthly_fee = models.DecimalField("abonnement mensuel HT (€)", max_digits=12, decimal_places=2,
                                      validators=[MinValueValidator(0)])
    unit_price = models.DecimalField(
        "prix unitaire HT par document envoyé (€)", max_digits=12, decimal_places=4,
        validators=[MinValueValidator(0)],
    )
    created_at = models.DateTimeField("créé le", auto_now_add=True)

    class Meta:
        verbose_name = "tarif"
        verbose_name_plural = "tarifs (historique)"
        ordering = ["contract", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "effective_from"], name="one_price_per_date"),
        ]

    def __str__(self):
        return f"Tarif au {self.effective_from:%d/%m/%Y}"


class NumberSequence(models.Model):
    """The last number given in a year. Locked (SELECT ... FOR UPDATE) by the issuing transaction,
    so numbers are consecutive with no gap and no duplicate."""

    year = models.PositiveSmallIntegerField("année", unique=True)
    last_number = models.PositiveIntegerField("dernier numéro", default=0)

    class Meta:
        verbose_name = "compteur de numérotation"
        verbose_name_plural = "compteurs de numérotation"

    def __str__(self):
        return f"{self.year} : {self.last_number}"


class Statement(models.Model):
    """A monthly statement (invoice) or a credit note."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "facture"
        CREDIT_NOTE = "credit_note", "avoir"

    class Status(models.TextChoices):
        DRAFT = "draft", "brouillon"
        ISSUED = "issued", "émise"
        PAID = "paid", "payée"
        PARTIALLY_CREDITED = "part_credited", "partiellement annulée"
        CREDITED = "credited", "annulée par avoir"

    # Once issued, only these may still change: payment follow-up, cancellation by credit
    # note, and the record of the e-mail sending the PDF to the customer.
    MUTABLE_AFTER_ISSUE = frozenset({"status", "paid_at", "payment_note", "updated_at",
                                     "sent_at", "sent_to", "send_error"})
    # A draft can still be regenerated; the others are legal documents.
    FINAL_STATUSES = (Status.ISSUED, Status.PAID, Status.PARTIALLY_CREDITED, Status.CREDITED)
    # Issued and not wholly cancelled by credit notes: what the customer still owes for.
    IN_FORCE_STATUSES = (Status.ISSUED, Status.PAID, Status.PARTIALLY_CREDITED)

    customer = models.ForeignKey(Customer, models.PROTECT, related_name="statements",
                                 verbose_name="client")
    contract = models.ForeignKey(Contract, models.PROTECT, related_name="statements",
                                 verbose_name="contrat")
    kind = models.CharField("type", max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField("statut", max_length=16, choices=Status.choices, default=Status.DRAFT,
                              db_index=True)
    period_start = models.DateField("période du")
    period_end = models.DateField("au")
    credited_statement = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="credit_notes",
        verbose_name="facture d'origine",
    )
    number = models.CharField("numéro", max_length=20, null=True, blank=True, unique=True)
    issue_date = models.DateField("date d'émission", null=True, blank=True)
    due_date = models.DateField("date d'échéance", null=True, blank=True)
    issued_at = models.DateTimeField("émise le", null=True, blank=True)
    billed_units = models.PositiveIntegerField("documents facturés", default=0)
    total_ht = models.DecimalField("total HT", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    vat_rate = models.DecimalField("taux de TVA (%)", max_digits=5, decimal_places=2,
                                   default=DEFAULT_VAT_RATE)
    total_vat = models.DecimalField("TVA", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total_ttc = models.DecimalField("total TTC", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField("devise", max_length=3, default="EUR")
    # Who is billed, copied at issue so a later change of the customer record leaves the invoice as sent.
    buyer = models.JSONField("client facturé (au moment de l'émission)", default=dict, blank=True)
    seller = models.JSONField("émetteur (au moment de l'émission)", default=dict, blank=True)
    reason = models.TextField("motif (avoir)", blank=True)
    pdf = models.FileField("PDF", upload_to="statements/%Y/", blank=True)
    pdf_sha256 = models.CharField("empreinte SHA-256 du PDF", max_length=64, blank=True)
    sent_at = models.DateTimeField("envoyée par e-mail le", null=True, blank=True)
    sent_to = models.CharField("envoyée à", max_length=254, blank=True)
    send_error = models.TextField("erreur du dernier envoi", blank=True)
    paid_at = models.DateField("payée le", null=True, blank=True)
    payment_note = models.CharField("note de paiement", max_length=300, blank=True)
    created_at = models.DateTimeField("créé le", auto_now_add=True)
    updated_at = models.DateTimeField("mis à jour le", auto_now=True)

    class Meta:
        verbose_name = "relevé"
        verbose_name_plural = "relevés"
        ordering = ["-period_start", "-pk"]
        constraints = [
            # One live invoice per customer and month; a credited one makes room for its correction.
            models.UniqueConstraint(
                fields=["customer", "period_start"],
                condition=Q(kind="invoice") & ~Q(status="credited"),
                name="one_live_invoice_per_month",
            ),
        ]

    def __str__(self):
        label = self.get_kind_display().capitalize()
        return f"{label} {self.number or '(brouillon)'} — {self.customer} {self.period_start:%m/%Y}"

    def save(self, *args, **kwargs):
        if self.pk:
            self._refuse_changes_once_issued()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if Statement.objects.filter(pk=self.pk, status__in=self.FINAL_STATUSES).exists():
            raise ImmutableStatementError(
                f"Le relevé {self.number} est émis : il ne peut pas être supprimé. Établissez un avoir."
            )
        return super().delete(*args, **kwargs)

    @property
    def is_final(self):
        return self.status in self.FINAL_STATUSES

    def _refuse_changes_once_issued(self):
        stored = Statement.objects.filter(pk=self.pk).first()
        if stored is None or not stored.is_final:
            return
        changed = [
            field.verbose_name for field in self._meta.concrete_fields
            if field.name not in self.MUTABLE_AFTER_ISSUE
            and field.value_from_object(self) != field.value_from_object(stored)
        ]
        if changed:
            raise ImmutableStatementError(
                f"Le relevé {stored.number} est émis : il ne peut plus être modifié "
                f"({', '.join(changed)}). Corrigez-le par un avoir."
            )


class StatementLine(models.Model):
    class Kind(models.TextChoices):
        INSTALLATION = "installation", "frais d'installation"
        MONTHLY_FEE = "monthly_fee", "abonnement mensuel"
        USAGE = "usage", "documents envoyés par e-mail"

    statement = models.ForeignKey(Statement, models.CASCADE, related_name="lines", verbose_name="relevé")
    position = models.PositiveSmallIntegerField("ordre", default=0)
    kind = models.CharField("nature", max_length=12, choices=Kind.choices)
    label = models.CharField("désignation", max_length=300)
    quantity = models.DecimalField("quantité", max_digits=12, decimal_places=4)
    unit_price = models.DecimalField("prix unitaire HT", max_digits=12, decimal_places=4)
    amount = models.DecimalField("montant HT", max_digits=14, decimal_places=2)
    # For usage lines: the sends counted are those of these days (the CSV export lists them).
    period_start = models.DateField("du", null=True, blank=True)
    period_end = models.DateField("au", null=True, blank=True)
    # Frozen when the statement is generated, so the audit CSV lists exactly what was billed
    # even if a send's status changes later.
    dispatches = models.ManyToManyField(Dispatch, blank=True, related_name="statement_lines",
                                        verbose_name="envois facturés")
    # On a credit note: the invoice line it cancels, so a line is never credited twice and
    # the invoice knows whether it is cancelled in part or in full.
    credited_line = models.ForeignKey("self", models.PROTECT, null=True, blank=True,
                                      related_name="credit_lines", verbose_name="ligne annulée")

    class Meta:
        verbose_name = "ligne"
        verbose_name_plural = "lignes"
        ordering = ["statement", "position"]

    def __str__(self):
        return self.label

    def save(self, *args, **kwargs):
        self._refuse_if_issued()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._refuse_if_issued()
        return super().delete(*args, **kwargs)

    def _refuse_if_issued(self):
        if Statement.objects.filter(pk=self.statement_id, status__in=Statement.FINAL_STATUSES).exists():
            raise ImmutableStatementError(
                "Ce relevé est émis : ses lignes ne peuvent plus être modifiées. Corrigez-le par un avoir."
            )
