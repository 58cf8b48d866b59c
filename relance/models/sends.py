"""The record of every send: the outbox row, its delivery events, and suppressed addresses."""

from django.db import models
from django.utils import timezone

from .tasks import Customer, ReminderTask, TaskRun


class Dispatch(models.Model):
    """One reminder of one échéance at one level: the outbox row and the proof of sending.

    The row exists before anything leaves, and moves through explicit states,
    so a crashed run never leaves a send unrecorded nor re-sends blindly.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "e-mail"
        POSTAL = "postal", "courrier (réacheminé)"

    class Status(models.TextChoices):
        PENDING = "pending", "à envoyer"
        SENDING = "sending", "envoi en cours"
        SENT = "sent", "envoyé"
        DELIVERED = "delivered", "délivré"
        DEFERRED = "deferred", "différé"
        BOUNCED = "bounced", "non délivré (rejet)"
        REJECTED = "rejected", "refusé par le fournisseur"
        COMPLAINED = "complained", "signalé comme indésirable"
        FAILED = "failed", "échec d'envoi"
        DIVERTED = "diverted", "réacheminé (courrier)"
        NEEDS_REVIEW = "needs_review", "à vérifier (envoi interrompu)"

    # States in which the provider took the message: it counts as sent.
    ACCEPTED_STATUSES = (Status.SENT, Status.DELIVERED, Status.DEFERRED, Status.BOUNCED,
                         Status.COMPLAINED)
    # A level N reminder needs one of these at level N-1.
    PREVIOUS_LEVEL_DONE = ACCEPTED_STATUSES + (Status.DIVERTED,)

    customer = models.ForeignKey(Customer, models.PROTECT, related_name="dispatches")
    task = models.ForeignKey(ReminderTask, models.SET_NULL, null=True, related_name="dispatches")
    run = models.ForeignKey(TaskRun, models.SET_NULL, null=True, related_name="dispatches")
    level = models.PositiveSmallIntegerField("niveau")
    channel = models.CharField("canal", max_length=10, choices=Channel.choices,
                               default=Channel.EMAIL)
    status = models.CharField("statut", max_length=20, choices=Status.choices,
                              default=Status.PENDING)
    # Gestimum references, copied so the record stands on its own.
    ech_numero = models.CharField("n° d'échéance (ECH_NUMERO)", max_length=10)
    doc_numero = models.CharField("n° interne du document", max_length=10, blank=True)
    doc_piece = models.CharField("n° de pièce", max_length=30, blank=True)
    pcf_code = models.CharField("code tiers", max_length=20, blank=True)
    tiers_name = models.CharField("tiers", max_length=200, blank=True)
    due_date = models.DateField("échéance", null=True)
    amount = models.DecimalField("montant de l'échéance", max_digits=20, decimal_places=2, null=True)
    remaining = models.DecimalField("reste dû", max_digits=20, decimal_places=2, null=True)
    # The message as sent.
    from_email = models.CharField("expéditeur", max_length=300, blank=True)
    to = models.TextField("destinataires", blank=True)
    cc = models.TextField("copie", blank=True)
    bcc = models.TextField("copie cachée", blank=True)
    subject = models.CharField("objet", max_length=500, blank=True)
    body = models.TextField("corps", blank=True)
    message_id = models.CharField("Message-ID", max_length=300, blank=True, db_index=True)
    provider_message_id = models.CharField("identifiant fournisseur", max_length=300, blank=True,
                                           db_index=True)
    pdf = models.FileField("PDF", upload_to="dispatches/%Y/%m/", blank=True)
    pdf_sha256 = models.CharField("empreinte SHA-256 du PDF", max_length=64, blank=True)
    divert_path = models.CharField("fichier réacheminé", max_length=500, blank=True)
    divert_reason = models.CharField("motif du réacheminement", max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField("tentatives", default=0)
    error = models.TextField("erreur", blank=True)
    # Gestimum write-back is done after the send, in bulk; this flag survives a crash.
    writeback_pending = models.BooleanField("écriture Gestimum en attente", default=False,
                                            db_index=True)
    writeback_at = models.DateTimeField("écrit dans Gestimum le", null=True, blank=True)
    writeback_ref = models.CharField(
        "n° d'action Gestimum (ACT_NUMERO)", max_length=10, blank=True,
        help_text="Réservé avant l'écriture : après un arrêt brutal, la présence de cette action dans "
        "Gestimum dit si l'écriture a eu lieu, et elle n'est jamais faite deux fois.")
    created_at = models.DateTimeField("créé le", default=timezone.now, db_index=True)
    sent_at = models.DateTimeField("envoyé le", null=True, blank=True)
    updated_at = models.DateTimeField("mis à jour le", auto_now=True)
    # Fingerprint of the data printed on the PDF: a later level reuses the stored PDF.
    pdf_data_hash = models.CharField("empreinte des données du PDF", max_length=64, blank=True,
                                     db_index=True)
    # Set when the customer marks a diverted document posted or a bounce followed up
    # (portal); who did it is kept in portal.Handling.
    handled_at = models.DateTimeField("suivi traité le", null=True, blank=True)

    class Meta:
        verbose_name = "envoi"
        verbose_name_plural = "envois"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "ech_numero", "level"], name="one_dispatch_per_echeance_level"
            ),
        ]
        # The portal's history filters: newest first within a customer, by status,
        # level or task, and a prefix search on the document number.
        indexes = [
            models.Index(fields=["customer", "status", "created_at"], name="dispatch_customer_status"),
            models.Index(fields=["customer", "created_at"], name="dispatch_customer_created"),
            models.Index(fields=["customer", "level", "created_at"], name="dispatch_customer_level"),
            models.Index(fields=["customer", "task", "created_at"], name="dispatch_customer_task"),
            models.Index(fields=["customer", "pcf_code"], name="dispatch_customer_tiers"),
            models.Index(fields=["customer", "doc_piece"], name="dispatch_customer_piece",
                         opclasses=["", "varchar_pattern_ops"]),
            # The portal's "to handle" counts: ids by status without reading the table.
            models.Index(fields=["customer", "status", "id"], name="dispatch_customer_status_id"),
            # The portal's to-do lists read only what still needs the customer's action.
            models.Index(fields=["customer", "created_at"], name="dispatch_to_handle",
                         condition=models.Q(handled_at__isnull=True,
                                            status__in=["diverted", "bounced", "rejected", "complained"])),
        ]

    def __str__(self):
        return f"{self.doc_piece or self.ech_numero} niveau {self.level} — {self.get_status_display()}"

    def same_email(self):
        """The other sends of the e-mail that carried this one (one e-mail per debtor)."""
        if not self.message_id:
            return Dispatch.objects.none()
        return (Dispatch.objects.filter(customer_id=self.customer_id, message_id=self.message_id)
                .exclude(pk=self.pk).order_by("pk"))


class DeliveryEvent(models.Model):
    """One thing a provider (webhook) or a returned DSN said about a Dispatch: its timeline."""

    class Kind(models.TextChoices):
        SENT = "sent", "accepté par le fournisseur"
        DELIVERED = "delivered", "délivré"
        DEFERRED = "deferred", "différé"
        BOUNCED = "bounced", "non délivré (rejet)"
        REJECTED = "rejected", "refusé par le fournisseur"
        COMPLAINED = "complained", "signalé comme indésirable"
        OTHER = "other", "autre (ouverture, clic…)"

    class BounceType(models.TextChoices):
        HARD = "hard", "définitif"
        SOFT = "soft", "temporaire"

    dispatch = models.ForeignKey(Dispatch, models.CASCADE, related_name="events",
                                 verbose_name="envoi")
    kind = models.CharField("événement", max_length=12, choices=Kind.choices)
    bounce_type = models.CharField("type de rejet", max_length=4, choices=BounceType.choices,
                                   blank=True)
    occurred_at = models.DateTimeField("survenu le")
    recipient = models.CharField("destinataire", max_length=320, blank=True)
    reason = models.TextField("motif", blank=True)
    provider = models.CharField("source", max_length=40, blank=True)
    event_id = models.CharField("identifiant de l'événement", max_length=200, blank=True)
    # The provider's id when it gives one, else a hash of the payload: the same
    # event delivered twice has the same fingerprint and is stored once.
    fingerprint = models.CharField("empreinte", max_length=64)
    raw = models.JSONField("données brutes", default=dict, blank=True)
    received_at = models.DateTimeField("reçu le", default=timezone.now)
    # Consequences of a hard bounce, done once each and retried until done.
    notice_sent_at = models.DateTimeField("avis envoyé au client le", null=True, blank=True)
    gestimum_written_at = models.DateTimeField("écrit dans Gestimum le", null=True, blank=True)

    class Meta:
        verbose_name = "événement de délivrance"
        verbose_name_plural = "événements de délivrance"
        ordering = ["occurred_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["dispatch", "fingerprint"], name="one_event_per_fingerprint"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} — {self.recipient}"


class SuppressedAddress(models.Model):
    """An address that hard-bounced: never mailed again for this customer until staff clear it."""

    customer = models.ForeignKey(Customer, models.CASCADE, related_name="suppressed_addresses",
                                 verbose_name="client")
    address = models.CharField("adresse", max_length=320)
    reason = models.TextField("motif", blank=True)
    dispatch = models.ForeignKey(Dispatch, models.SET_NULL, null=True, blank=True,
                                 related_name="+", verbose_name="envoi en cause")
    created_at = models.DateTimeField("depuis le", default=timezone.now)

    class Meta:
        verbose_name = "adresse en échec définitif"
        verbose_name_plural = "adresses en échec définitif"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "address"], name="one_suppression_per_address"),
        ]

    def __str__(self):
        return self.address

    def save(self, *args, **kwargs):
        # Lookups compare lower-case addresses: store them so.
        self.address = self.address.strip().lower()
        super().save(*args, **kwargs)
