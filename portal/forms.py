"""Portal forms: login by e-mail with throttling, the history filters, the admin's invitation, pauses."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from relance.models import Dispatch, ReminderPause
from relance.models.pauses import normalize_code

from . import throttle
from .models import PortalUser
from .selectors import DEFAULT_SORT, GROUPS, SORTS


class EmailLoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Adresse e-mail",
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    error_messages = {
        "invalid_login": "Adresse e-mail ou mot de passe incorrect.",
        "inactive": "Ce compte est désactivé.",
        "locked": throttle.LOCKED_MESSAGE,
    }

    def clean(self):
        email = self.cleaned_data.get("username") or ""
        ip = throttle.client_ip(self.request)
        if email and throttle.is_locked(email, ip):
            # Checked before the password so a locked account gives no hint about it.
            raise forms.ValidationError(self.error_messages["locked"], code="locked")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if email and throttle.record_failure(email, ip) >= throttle.MAX_FAILURES:
                raise forms.ValidationError(self.error_messages["locked"], code="locked") from None
            raise
        throttle.reset(email, ip)
        return cleaned


class HistoryFilterForm(forms.Form):
    """The history and CSV export filters; an invalid value is ignored, never an error page."""

    date_from = forms.DateField(label="Du", required=False,
                                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    date_to = forms.DateField(label="Au", required=False,
                              widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    status = forms.ChoiceField(label="Statut", required=False)
    task = forms.TypedChoiceField(label="Tâche", required=False, coerce=int, empty_value=None)
    level = forms.TypedChoiceField(label="Niveau", required=False, coerce=int, empty_value=None)
    debtor = forms.CharField(label="Débiteur (code ou nom)", required=False, max_length=100)
    piece = forms.CharField(label="N° de pièce", required=False, max_length=30)
    sort = forms.ChoiceField(label="Tri", required=False, initial=DEFAULT_SORT)

    def __init__(self, data=None, *, customer, **kwargs):
        super().__init__(data, **kwargs)
        groups = [(key, label.capitalize()) for key, (label, _) in GROUPS.items()]
        self.fields["status"].choices = [
            ("", "Tous"), ("Groupes", groups), ("Statut exact", list(Dispatch.Status.choices)),
        ]
        # Only this customer's tasks are offered, and only they validate.
        tasks = customer.tasks.order_by("level", "name").values_list("pk", "name", "level")
        self.fields["task"].choices = [("", "Toutes")] + [
            (pk, f"{name} (niveau {level})") for pk, name, level in tasks
        ]
        levels = sorted({level for _, _, level in tasks})
        self.fields["level"].choices = [("", "Tous")] + [(lv, f"Niveau {lv}") for lv in levels]
        sorts = []
        labels = {"date": "date d'envoi", "piece": "n° de pièce", "tiers": "débiteur", "niveau": "niveau",
                  "statut": "statut", "echeance": "échéance", "reste": "reste dû"}
        for key in SORTS:
            sorts += [(f"-{key}", f"{labels[key].capitalize()} (décroissant)"),
                      (key, f"{labels[key].capitalize()} (croissant)")]
        self.fields["sort"].choices = sorts

    def filters(self):
        """Keyword arguments for ``selectors.filter_history``; invalid fields are dropped."""
        self.is_valid()
        data = {name: value for name, value in getattr(self, "cleaned_data", {}).items()
                if name not in self.errors}
        data["sort"] = data.get("sort") or DEFAULT_SORT
        data["debtor"] = (data.get("debtor") or "").strip()
        data["piece"] = (data.get("piece") or "").strip()
        return data


class PortalUserInvitationForm(forms.ModelForm):
    """Adding a portal user in the admin: the account is created from these and invited by e-mail."""

    email = forms.EmailField(label="Adresse e-mail", help_text="Sert d'identifiant de connexion.")
    first_name = forms.CharField(label="Prénom", max_length=150, required=False)
    last_name = forms.CharField(label="Nom", max_length=150)

    class Meta:
        model = PortalUser
        fields = ["customer"]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        # Login is by e-mail address: two accounts sharing one would be ambiguous.
        if get_user_model()._default_manager.filter(email__iexact=email).exists():
            raise forms.ValidationError("Un compte existe déjà avec cette adresse e-mail.")
        return email


class PauseForm(forms.ModelForm):
    """A customer suspends reminders for one debtor or one of its invoices."""

    class Meta:
        model = ReminderPause
        fields = ["pcf_code", "doc_piece", "reason", "until"]
        labels = {"pcf_code": "Code tiers du débiteur", "doc_piece": "N° de facture (facultatif)"}
        help_texts = {
            "pcf_code": "Le code du client dans Gestimum (PCF_CODE), par exemple « CL0042 ».",
            "doc_piece": "Vide : aucune facture de ce débiteur n'est relancée.",
            "until": "Vide : jusqu'à ce que vous leviez la pause.",
        }
        widgets = {"until": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.customer = customer

    def clean(self):
        cleaned = super().clean()
        code = normalize_code(cleaned.get("pcf_code"))
        piece = normalize_code(cleaned.get("doc_piece"))
        if code:
            in_force = ReminderPause.objects.filter(customer=self.instance.customer, pcf_code=code).active(
                timezone.localdate())
            if in_force.filter(doc_piece="").exists():
                raise forms.ValidationError(f"Le débiteur {code} est déjà en pause pour toutes ses factures.")
            if piece and in_force.filter(doc_piece=piece).exists():
                raise forms.ValidationError(f"La facture {piece} du débiteur {code} est déjà en pause.")
        return cleaned
