"""Customer companies and their reminder tasks: what to remind, to whom, when, and each run."""

import zoneinfo

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from ..fields import EncryptedTextField


def validate_timezone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"Fuseau horaire inconnu : « {value} » (exemple : Europe/Paris).") from None


def validate_cron(value):
    if not croniter.is_valid(value):
        raise ValidationError(
            f"Expression cron invalide : « {value} ». Format : minute heure jour mois "
            "jour-de-semaine, par exemple « 0 20 * * * » pour tous les jours à 20:00."
        )


class Customer(models.Model):
    """A company using Gestimum that subscribed to EasyRelance."""

    name = models.CharField("raison sociale", max_length=120)
    slug = models.SlugField(
        "identifiant", unique=True,
        help_text="Sert à l'adresse d'envoi de la plateforme : <identifiant>@e-doc-erp.fr.",
    )
    active = models.BooleanField("actif", default=True)
    gestimum_url = EncryptedTextField(
        "connexion Gestimum", blank=True,
        help_text="URL de la base Gestimum, chiffrée au repos. Ex. "
        "mssql://utilisateur:motdepasse@serveur:1433/GESTIMUM ou sqlite:////chemin/base.sqlite3.",
    )
    timezone = models.CharField(
        "fuseau horaire", max_length=64, default="Europe/Paris", validators=[validate_timezone]
    )
    # Sender identity.
    own_sender_email = models.EmailField(
        "adresse d'envoi propre", blank=True,
        help_text="Utilisée seulement quand le domaine est vérifié (SPF modifié chez le client).",
    )
    own_domain_verified = models.BooleanField("domaine propre vérifié (SPF)", default=False)
    sender_name = models.CharField("nom affiché de l'expéditeur", max_length=120, blank=True)
    reply_to = models.EmailField("adresse de réponse (Reply-To)", blank=True)
    notification_email = models.EmailField(
        "adresse des avis de non-remise", blank=True,
        help_text="Boîte du client qui reçoit les avis de non-délivrance (bounces).",
    )
    # Company details printed on invoices and available as {{ signature }}.
    signature = models.TextField(
        "signature des e-mails", blank=True,
        help_text="Texte ajouté par la variable {{ signature }} des modèles d'e-mail.",
    )
    address = models.TextField("adresse postale", blank=True)
    siret = models.CharField("SIRET", max_length=14, blank=True)
    vat_number = models.CharField("n° TVA intracommunautaire", max_length=20, blank=True)
    legal_form = models.CharField(
        "forme juridique et capital", max_length=120, blank=True, help_text="Ex. SAS au capital de 10 000 €"
    )
    rcs = models.CharField("RCS", max_length=80, blank=True, help_text="Ex. RCS Lyon 123 456 789")
    phone = models.CharField("téléphone", max_length=30, blank=True)
    iban = models.CharField("IBAN", max_length=40, blank=True)
    created_at = models.DateTimeField("créé le", auto_now_add=True)
    # Scheduling: empty = the central cluster, which must reach the customer's Gestimum.
    worker_cluster = models.CharField(
        "worker sur site (nom du cluster)", max_length=100, blank=True,
        help_text="Vide : les tâches tournent sur le serveur central. Sinon, nom du cluster "
        "django-q2 (Q_CLUSTER_NAME) du worker installé chez le client : ses tâches ne tournent "
        "que là.",
    )

    class Meta:
        verbose_name = "client"
        verbose_name_plural = "clients"
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def platform_sender_email(self):
        return f"{self.slug}@{settings.PLATFORM_MAIL_DOMAIN}"

    @property
    def sender_email(self):
        if self.own_domain_verified and self.own_sender_email:
            return self.own_sender_email
        return self.platform_sender_email

    @property
    def from_header(self):
        from email.utils import formataddr

        return formataddr((self.sender_name or self.name, self.sender_email))

    @property
    def divert_root(self):
        return settings.DIVERT_ROOT / self.slug


class InvoiceTemplate(models.Model):
    """An invoice print model: HTML + CSS rendered by xhtml2pdf."""

    customer = models.ForeignKey(
        Customer, models.CASCADE, null=True, blank=True, related_name="invoice_templates",
        verbose_name="client", help_text="Vide : modèle partagé par tous les clients.",
    )
    name = models.CharField("nom", max_length=120)
    html = models.TextField(
        "HTML", help_text="Gabarit Django ; variables : voir la documentation du modèle par défaut."
    )
    css = models.TextField("CSS", blank=True)
    updated_at = models.DateTimeField("modifié le", auto_now=True)

    class Meta:
        verbose_name = "modèle d'impression"
        verbose_name_plural = "modèles d'impression"

    def __str__(self):
        return self.name

    def clean(self):
        from ..rendering import validate_invoice_template

        validate_invoice_template(self.html)


class ReminderTask(models.Model):
    class Trigger(models.TextChoices):
        DUE_DATE = "due_date", "jours après l'échéance"
        DOCUMENT_DATE = "document_date", "jours après la date du document"

    class PrintModel(models.TextChoices):
        TEMPLATE = "template", "modèle HTML (rendu PDF)"
        ARCHIVE = "archive", "PDF existant dans un dossier d'archive"

    class SkippedDayRule(models.TextChoices):
        POSTPONE = "postpone", "reporter au jour ouvré suivant"
        SKIP = "skip", "ne pas exécuter"

    customer = models.ForeignKey(Customer, models.CASCADE, related_name="tasks", verbose_name="client")
    name = models.CharField("nom", max_length=120)
    active = models.BooleanField("active", default=True)
    level = models.PositiveSmallIntegerField(
        "niveau de relance", default=1,
        help_text="1 = première relance, 2 = deuxième, 3 = mise en demeure… 0 = envoi de facture.",
    )
    require_previous_level = models.BooleanField(
        "exiger le niveau précédent", default=True,
        help_text="Pour un niveau N > 1, ne relancer que les échéances déjà relancées au niveau N−1.",
    )
    min_days_since_previous = models.PositiveSmallIntegerField(
        "délai depuis le niveau précédent (jours)", default=10,
        help_text="Pour un niveau N > 1 : nombre minimum de jours écoulés depuis l'envoi du niveau N−1.",
    )
    group_by_debtor = models.BooleanField(
        "un seul e-mail par débiteur", default=False,
        help_text="Les factures du débiteur retenues par cette exécution partent dans un seul e-mail "
        "(une pièce jointe PDF par facture) ; le message les liste avec {% for facture in factures %}. "
        "Les factures adressées à des destinataires différents partent séparément.",
    )
    min_days_between_debtor_reminders = models.PositiveSmallIntegerField(
        "écart minimum entre deux relances d'un débiteur (jours)", default=0,
        help_text="Ne pas relancer un débiteur qui a reçu une relance (e-mail ou courrier, toutes tâches "
        "confondues) depuis moins de N jours. Ses factures d'une même exécution partent ensemble. "
        "0 = pas d'écart minimum.",
    )
    trigger = models.CharField("déclencheur", max_length=20, choices=Trigger.choices,
                               default=Trigger.DUE_DATE)
    days = models.IntegerField(
        "nombre de jours", default=5,
        help_text="Échéance dépassée d'au moins N jours. Négatif : relance de courtoisie N jours "
        "avant l'échéance.",
    )
    max_days = models.PositiveIntegerField(
        "ancienneté maximale (jours)", null=True, blank=True,
        help_text="Ignorer ce qui est dépassé depuis plus de N jours (utile à la mise en service).",
    )
    schedule = models.CharField(
        "planification (cron)", max_length=100, default="0 20 * * *", validators=[validate_cron],
        help_text="Heure locale du client. « 0 20 * * * » = tous les jours à 20:00 ; "
        "« 0 21 * * 1-5 » = du lundi au vendredi à 21:00.",
    )
    # Selection criteria. Code lists are separated by commas.
    doc_stypes = models.CharField(
        "types de pièces (DOC_STYPE)", max_length=50, default="F", blank=True,
        help_text="Codes séparés par des virgules. F = facture. Les avoirs ne sont jamais relancés.",
    )
    families = models.CharField("familles de tiers", max_length=500, blank=True)
    subfamilies = models.CharField("sous-familles de tiers", max_length=500, blank=True)
    representatives = models.CharField("représentants", max_length=500, blank=True)
    payment_modes = models.CharField("modes de règlement", max_length=500, blank=True)
    min_remaining = models.DecimalField(
        "reste dû minimum (€)", max_digits=12, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(0)],
    )
    tiers_include = models.TextField("tiers inclus uniquement", blank=True,
                                     help_text="Codes tiers séparés par des virgules.")
    tiers_exclude = models.TextField("tiers exclus", blank=True,
                                     help_text="Codes tiers séparés par des virgules.")
    # Message.
    subject_template = models.CharField(
        "objet de l'e-mail", max_length=300,
        default="Relance : facture {{ document_numero }} échue le {{ echeance_date }}",
    )
    body_template = models.TextField("corps de l'e-mail", default="")
    print_model = models.CharField("modèle d'impression", max_length=20,
                                   choices=PrintModel.choices, default=PrintModel.TEMPLATE)
    invoice_template = models.ForeignKey(
        InvoiceTemplate, models.PROTECT, null=True, blank=True, verbose_name="modèle HTML",
        help_text="Vide : modèle de facture EasyRelance par défaut.",
    )
    archive_folder = models.CharField(
        "dossier d'archive", max_length=300, blank=True,
        help_text="Sous-dossier de la racine des archives où trouver les PDF existants.",
    )
    archive_pattern = models.CharField(
        "nom du fichier d'archive", max_length=200, default="{DOC_PIECE}.pdf", blank=True,
        help_text="Variables : {DOC_PIECE}, {DOC_NUMERO}, {PCF_CODE}. Jokers * et ? permis.",
    )
    divert_folder = models.CharField(
        "dossier de réacheminement", max_length=300, default="courrier", blank=True,
        help_text="Sous-dossier (dans le dossier du client) où sont déposés les documents sans "
        "adresse e-mail valide, avec un manifeste CSV.",
    )
    # Write-back into Gestimum.
    writeback_action = models.BooleanField(
        "écrire une action (ACTIONS) dans Gestimum", default=True)
    writeback_nbrel = models.BooleanField(
        "incrémenter le compteur de relances (ECH_NBREL)", default=True)
    writeback_relances = models.BooleanField(
        "écrire une relance Gestimum (RELANCES, REL_ECH, REL_TIERS)", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Business calendar and catch-up (see relance/scheduling.py).
    skip_weekends = models.BooleanField("pas le week-end", default=False)
    skip_holidays = models.BooleanField("pas les jours fériés (France)", default=False)
    alsace_moselle = models.BooleanField(
        "jours fériés d'Alsace-Moselle", default=False,
        help_text="Ajoute le Vendredi saint et le 26 décembre aux jours fériés.",
    )
    skipped_day_rule = models.CharField(
        "si le jour est exclu", max_length=10, choices=SkippedDayRule.choices,
        default=SkippedDayRule.POSTPONE, blank=True, help_text="Vide : reporter.",
    )
    grace_hours = models.PositiveSmallIntegerField(
        "rattrapage (heures)", null=True, blank=True,
        help_text="Après une panne, une exécution manquée est faite une seule fois si le retard "
        "ne dépasse pas ce nombre d'heures. Vide : jusqu'à la fin du jour prévu.",
    )
    next_run_at = models.DateTimeField("prochaine exécution", null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField("dernier lancement", null=True, blank=True, editable=False)
    # Set by the run that holds the task; expires with the worker timeout so a
    # crashed worker does not block the task forever.
    claimed_until = models.DateTimeField("réservée jusqu'au", null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "tâche de relance"
        verbose_name_plural = "tâches de relance"
        ordering = ["customer__name", "level", "name"]

    def __str__(self):
        return f"{self.customer} — {self.name} (niveau {self.level})"

    def clean(self):
        from ..templating import validate_message_template

        errors = {}
        for field in ("subject_template", "body_template"):
            try:
                validate_message_template(getattr(self, field))
            except ValidationError as exc:
                errors[field] = exc.messages
        body = (self.body_template or "").strip()
        if self.group_by_debtor and body and "factures" not in body:
            errors.setdefault("body_template", []).append(
                "Un seul e-mail par débiteur : le message doit lister les factures, par exemple "
                "« {% for facture in factures %}- {{ facture.numero }} : {{ facture.montant_restant }}"
                "{% endfor %} ». Le message standard, laissé tel quel, est remplacé par celui de l'option.")
        if self.print_model == self.PrintModel.ARCHIVE and not self.archive_pattern:
            errors["archive_pattern"] = ["Indiquez le nom du fichier PDF à prendre dans l'archive."]
        if self.trigger == self.Trigger.DOCUMENT_DATE and self.days < 0:
            errors["days"] = ["Après la date du document, le nombre de jours ne peut être négatif."]
        from ..paths import PathEscapeError, resolve_inside

        for field, root in (("divert_folder", settings.DIVERT_ROOT),
                            ("archive_folder", settings.ARCHIVE_ROOT)):
            try:
                resolve_inside(root, getattr(self, field))
            except PathEscapeError as exc:
                errors[field] = [str(exc)]
        if errors:
            raise ValidationError(errors)


class Criterion(models.Model):
    """A condition on any TIERS, DOCUMENTS or ECHEANCES column, custom fields included."""

    class Table(models.TextChoices):
        TIERS = "TIERS", "Tiers (TIERS)"
        DOCUMENTS = "DOCUMENTS", "Document (DOCUMENTS)"
        ECHEANCES = "ECHEANCES", "Échéance (ECHEANCES)"

    class Operator(models.TextChoices):
        EQUALS = "eq", "est égal à"
        NOT_EQUALS = "ne", "est différent de"
        CONTAINS = "contains", "contient"
        EMPTY = "empty", "est vide"
        NOT_EMPTY = "not_empty", "n'est pas vide"
        IN_LIST = "in", "est dans la liste"
        LESS = "lt", "est inférieur à / avant le"
        GREATER = "gt", "est supérieur à / après le"

    task = models.ForeignKey(ReminderTask, models.CASCADE, related_name="criteria")
    table = models.CharField("table", max_length=10, choices=Table.choices, default=Table.TIERS)
    column = models.CharField(
        "colonne", max_length=64,
        help_text="Nom exact de la colonne, par exemple FAT_CODE ou XXX_TOUR. Vérifié sur la base.",
    )
    operator = models.CharField("opérateur", max_length=10, choices=Operator.choices,
                                default=Operator.EQUALS)
    value = models.CharField("valeur", max_length=500, blank=True,
                             help_text="Pour « est dans la liste » : valeurs séparées par des ;. "
                             "Dates : jj/mm/aaaa, ou relatives au jour de l'exécution : J, J-30, J+7.")

    class Meta:
        verbose_name = "critère"
        verbose_name_plural = "critères"

    def __str__(self):
        return f"{self.table}.{self.column} {self.get_operator_display()} {self.value}"

    def clean(self):
        from ..gestimum.selection import COLUMN_NAME_RE

        if not COLUMN_NAME_RE.fullmatch(self.column or ""):
            raise ValidationError({"column": "Nom de colonne invalide : lettres, chiffres et _ "
                                             "uniquement (ex. XXX_TOUR)."})
        self.column = self.column.upper()
        needs_value = self.operator not in (self.Operator.EMPTY, self.Operator.NOT_EMPTY)
        if needs_value and self.value == "":
            raise ValidationError({"value": "Cet opérateur demande une valeur."})


class AddressSource(models.Model):
    """Where an address comes from: the recipient chain (ordered fallback), CC or BCC."""

    class Role(models.TextChoices):
        TO = "to", "destinataire (par ordre de priorité)"
        CC = "cc", "copie (CC)"
        BCC = "bcc", "copie cachée (BCC)"

    class Kind(models.TextChoices):
        BILLING_EMAIL = "billing_email", "e-mail de facturation du tiers (PCF_EMAIL)"
        CONTACT_FUNCTION = "contact_function", "contact du tiers, par fonction (CCT_FONCT)"
        CONTACT_QUALIFIER = "contact_qualifier", "contact du tiers, par qualifiant (CCT_QUAL1/2)"
        TIERS_COLUMN = "tiers_column", "colonne du tiers (ex. XXX_EMAILRELANCE)"
        DOCUMENT_COLUMN = "document_column", "colonne du document"
        REPRESENTATIVE = "representative", "e-mail du représentant (REP_EMAIL)"
        STATIC = "static", "adresse(s) fixe(s)"

    task = models.ForeignKey(ReminderTask, models.CASCADE, related_name="address_sources")
    role = models.CharField("rôle", max_length=3, choices=Role.choices, default=Role.TO)
    position = models.PositiveSmallIntegerField("ordre", default=0)
    kind = models.CharField("source", max_length=20, choices=Kind.choices,
                            default=Kind.BILLING_EMAIL)
    value = models.CharField(
        "paramètre", max_length=500, blank=True,
        help_text="Code de fonction/qualifiant, nom de colonne, ou adresses fixes séparées par ;",
    )

    class Meta:
        verbose_name = "source d'adresse"
        verbose_name_plural = "sources d'adresses"
        ordering = ["role", "position", "pk"]

    def __str__(self):
        return f"{self.get_role_display()} : {self.get_kind_display()} {self.value}".strip()

    def clean(self):
        from ..gestimum.selection import COLUMN_NAME_RE
        from ..mailer import split_addresses

        if self.kind in (self.Kind.TIERS_COLUMN, self.Kind.DOCUMENT_COLUMN):
            if not COLUMN_NAME_RE.fullmatch(self.value or ""):
                raise ValidationError({"value": "Indiquez un nom de colonne (ex. XXX_EMAILRELANCE)."})
            self.value = self.value.upper()
        elif self.kind in (self.Kind.CONTACT_FUNCTION, self.Kind.CONTACT_QUALIFIER):
            if not self.value.strip():
                raise ValidationError({"value": "Indiquez le code de fonction ou de qualifiant."})
        elif self.kind == self.Kind.STATIC:
            valid, invalid = split_addresses(self.value)
            if invalid or not valid:
                raise ValidationError({"value": "Adresse(s) invalide(s) : "
                                                f"{', '.join(invalid) or '(vide)'}."})


def attachment_upload_to(instance, filename):
    return f"attachments/{instance.task.customer.slug}/{filename}"


class FixedAttachment(models.Model):
    """A document joined to every e-mail of a task (e.g. terms and conditions)."""

    task = models.ForeignKey(ReminderTask, models.CASCADE, related_name="attachments")
    file = models.FileField("fichier", upload_to=attachment_upload_to)
    name = models.CharField("nom dans l'e-mail", max_length=200, blank=True,
                            help_text="Vide : nom du fichier déposé.")

    class Meta:
        verbose_name = "pièce jointe fixe"
        verbose_name_plural = "pièces jointes fixes"

    def __str__(self):
        return self.display_name

    @property
    def display_name(self):
        import os

        return self.name or os.path.basename(self.file.name)


class TaskRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "en cours"
        SUCCEEDED = "succeeded", "terminée"
        PARTIAL = "partial", "terminée avec des erreurs"
        FAILED = "failed", "échouée"

    class Origin(models.TextChoices):
        SCHEDULE = "schedule", "planification"
        MANUAL = "manual", "manuelle (admin)"
        COMMAND = "command", "ligne de commande"

    task = models.ForeignKey(ReminderTask, models.CASCADE, related_name="runs")
    origin = models.CharField("origine", max_length=10, choices=Origin.choices,
                              default=Origin.COMMAND)
    status = models.CharField("statut", max_length=10, choices=Status.choices,
                              default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField("début", default=timezone.now)
    finished_at = models.DateTimeField("fin", null=True, blank=True)
    selected = models.PositiveIntegerField("échéances sélectionnées", default=0)
    sent = models.PositiveIntegerField("documents envoyés par e-mail", default=0)
    emails = models.PositiveIntegerField(
        "e-mails", default=0, help_text="Nombre de messages : moins que les documents envoyés quand "
        "la tâche envoie un seul e-mail par débiteur.")
    diverted = models.PositiveIntegerField("documents réacheminés", default=0)
    skipped = models.PositiveIntegerField("ignorées", default=0)
    failed = models.PositiveIntegerField("en échec", default=0)
    skip_reasons = models.JSONField("motifs d'exclusion", default=dict, blank=True)
    errors = models.TextField("erreurs", blank=True)

    class Meta:
        verbose_name = "exécution"
        verbose_name_plural = "exécutions"
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.task} — {timezone.localtime(self.started_at):%d/%m/%Y %H:%M}"

    @property
    def duration(self):
        if self.finished_at:
            return self.finished_at - self.started_at
        return None
