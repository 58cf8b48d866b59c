"""Forms and formsets behind the back-office (``relance.admin``)."""

import re
import warnings
from urllib.parse import parse_qsl, quote, urlsplit

from django import forms
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join

from ..models import AddressSource, Customer, ReminderTask
from ..templating import DEFAULT_BODY, DEFAULT_GROUP_BODY, DEFAULT_GROUP_SUBJECT, DEFAULT_SUBJECT, VARIABLES

MASK = "••••"
# Query parameters that may carry a secret (ODBC strings put PWD=... there).
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"(pwd|password)\s*=", re.IGNORECASE)
# Database engines a Gestimum URL may name: SQL Server in production, SQLite or
# PostgreSQL for the demo and the tests.
GESTIMUM_ENGINES = {"mssql", "django.db.backends.sqlite3", "django.db.backends.postgresql"}


def mask_url(url):
    """The connection URL with every secret replaced by ••••, safe to show on screen."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{MASK} (format non reconnu)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{user}@{host}"
    query = "&".join(
        f"{quote(key)}={MASK if _SECRET_KEY.search(key) or _SECRET_VALUE.search(value) else quote(value)}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    # Rebuilt by hand: urlunsplit would turn sqlite:////path into sqlite://path.
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


class CustomerForm(forms.ModelForm):
    """The Gestimum URL is write-only: it holds a database password and is never sent back."""

    new_gestimum_url = forms.CharField(
        label="nouvelle URL de connexion", required=False, strip=True,
        # A plain text input with autocomplete off: a password input would invite
        # the browser to autofill the admin's own password here.
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 80}),
        help_text="Laisser vide pour conserver la connexion actuelle. Ex. "
        "mssql://utilisateur:motdepasse@serveur:1433/GESTIMUM ou sqlite:////chemin/base.sqlite3. "
        "Elle est chiffrée en base et n'est jamais réaffichée.",
    )

    class Meta:
        model = Customer
        # Listed one by one (gestimum_url left out on purpose) so that a secret
        # field added to the model later is never put on screen by default.
        fields = ["name", "slug", "active", "timezone", "own_sender_email", "own_domain_verified",
                  "sender_name", "reply_to", "notification_email", "signature", "address", "siret",
                  "vat_number", "legal_form", "rcs", "phone", "iban"]

    def clean_new_gestimum_url(self):
        url = self.cleaned_data["new_gestimum_url"]
        if not url:
            return ""
        if MASK in url:
            raise ValidationError("Cette adresse est la version masquée : saisissez l'URL complète, "
                                  "avec le vrai mot de passe.")
        from ..gestimum.connection import database_config

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # django-environ warns before failing
                engine = database_config(url)["ENGINE"]
        except Exception:
            engine = None
        if engine not in GESTIMUM_ENGINES:
            raise ValidationError("URL de connexion non reconnue. Formats acceptés : "
                                  "mssql://utilisateur:motdepasse@serveur:1433/BASE ou "
                                  "sqlite:////chemin/base.sqlite3.")
        return url

    def save(self, commit=True):
        url = self.cleaned_data.get("new_gestimum_url")
        if url:
            self.instance.gestimum_url = url
        return super().save(commit=commit)


class ReminderTaskForm(forms.ModelForm):
    class Meta:
        model = ReminderTask
        fields = ["customer", "name", "active", "level", "require_previous_level",
                  "min_days_since_previous", "min_days_between_debtor_reminders", "trigger", "days",
                  "max_days", "schedule", "doc_stypes", "families", "subfamilies", "representatives",
                  "payment_modes", "min_remaining", "tiers_include", "tiers_exclude",
                  "group_by_debtor", "subject_template", "body_template", "print_model", "invoice_template",
                  "archive_folder", "archive_pattern", "divert_folder", "writeback_action",
                  "writeback_nbrel", "writeback_relances"]
        widgets = {
            "subject_template": forms.TextInput(attrs={"size": 100}),
            "body_template": forms.Textarea(attrs={"rows": 22, "cols": 100,
                                                   "style": "font-family: monospace"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The model's default body is empty (a migration should not carry a
        # page of French prose): new tasks start from the standard text instead.
        if self.instance.pk is None and not self.initial.get("body_template"):
            self.initial["body_template"] = DEFAULT_BODY

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("group_by_debtor"):
            # The single-invoice defaults left as they were become the per-debtor ones.
            if " ".join((cleaned.get("body_template") or "").split()) == " ".join(DEFAULT_BODY.split()):
                cleaned["body_template"] = DEFAULT_GROUP_BODY
            if (cleaned.get("subject_template") or "").strip() == DEFAULT_SUBJECT:
                cleaned["subject_template"] = DEFAULT_GROUP_SUBJECT
        return cleaned


def variables_help_html():
    """HTML list of the message variables, for the admin's « Message » fieldset."""
    items = format_html_join(
        "", "<li><code>{{{{ {} }}}}</code> — {}</li>", VARIABLES.items()
    )
    return format_html(
        "<p>Syntaxe des gabarits Django : <code>{}</code>, "
        "<code>{}</code>. Montants et dates sont déjà mis en forme à la française ; "
        "<code>jours_retard</code> et <code>niveau</code> sont des nombres. "
        "Balises permises : if, for, with, comment, now, spaceless, firstof, cycle, ifchanged, "
        "filter.</p><p>Variables disponibles :</p><ul>{}</ul>",
        "{{ montant_restant }}", "{% if jours_retard > 30 %}…{% endif %}", items,
    )


class ColumnCheckedFormSet(BaseInlineFormSet):
    """Check the Gestimum columns the rows name against the customer's live database.

    A typo in a column only shows up at run time otherwise, in the middle of the
    night. When the database cannot be reached the rows are saved anyway and
    ``gestimum_warning`` tells the admin to say so (the formset has no request).
    """

    gestimum_warning = ""

    def column_of(self, data):
        """(TABLE, COLUMN) named by one row's cleaned data, or None."""
        raise NotImplementedError

    def criteria_specs(self):
        """Criteria whose operator and value are checked against their column's type."""
        return []

    def _customer(self):
        try:
            return self.instance.customer
        except ObjectDoesNotExist:
            return None

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        pairs = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or self._should_delete_form(form):
                continue
            pair = self.column_of(data)
            if pair:
                pairs.add(pair)
        customer = self._customer()
        if not pairs or customer is None:
            return
        from ..gestimum.gateway import GestimumUnavailable, check_columns

        try:
            errors = check_columns(customer, sorted(pairs), self.criteria_specs())
        except GestimumUnavailable as exc:
            self.gestimum_warning = (f"Les colonnes Gestimum n'ont pas pu être vérifiées : {exc} "
                                     "La tâche est enregistrée ; vérifiez-les dès que la base est joignable.")
            return
        if errors:
            raise ValidationError(errors)


class CriterionFormSet(ColumnCheckedFormSet):
    def column_of(self, data):
        if data.get("table") and data.get("column"):
            return (data["table"], data["column"].upper())
        return None

    def criteria_specs(self):
        from ..gestimum.selection import CriterionSpec

        specs = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if data and not self._should_delete_form(form) and self.column_of(data):
                specs.append(CriterionSpec(data["table"], data["column"].upper(), data.get("operator", ""),
                                           data.get("value", "")))
        return specs


class AddressSourceFormSet(ColumnCheckedFormSet):
    TABLES = {
        AddressSource.Kind.TIERS_COLUMN: "TIERS",
        AddressSource.Kind.DOCUMENT_COLUMN: "DOCUMENTS",
    }

    def column_of(self, data):
        table = self.TABLES.get(data.get("kind"))
        if table and data.get("value"):
            return (table, data["value"].strip().upper())
        return None
