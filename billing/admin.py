"""Back-office: contracts with their price history, statements and their life cycle.

Issued statements are shown read-only: the model refuses changes anyway,
the admin just does not offer them.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from relance.formatting import money
from relance.rendering import RenderError

from .emails import send_statement
from .models import Contract, ContractPrice, Statement, StatementLine
from .selectors import BillingError
from .services import (
    create_credit_note,
    creditable_lines,
    generate_statement,
    issue_statement,
    mark_paid,
    previous_month,
)

# Errors an action reports to the user instead of crashing the page.
ACTION_ERRORS = (BillingError, ValidationError, ImproperlyConfigured, RenderError)


def _report(modeladmin, request, errors, done, what):
    if done:
        modeladmin.message_user(request, f"{done} {what}.", messages.SUCCESS)
    for error in errors:
        text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        modeladmin.message_user(request, text, messages.ERROR)


class ContractPriceInline(admin.TabularInline):
    model = ContractPrice
    extra = 1
    fields = ("effective_from", "monthly_fee", "unit_price", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ("customer", "start_date", "end_date", "installation_fee", "vat_rate")
    search_fields = ("customer__name", "customer__slug")
    inlines = [ContractPriceInline]
    actions = ["generate_last_month"]

    @admin.action(description="Générer le relevé du mois dernier (brouillon)")
    def generate_last_month(self, request, queryset):
        month, done, errors = previous_month(), 0, []
        for contract in queryset.select_related("customer"):
            try:
                if generate_statement(contract.customer, month) is not None:
                    done += 1
            except ACTION_ERRORS as exc:
                errors.append(exc)
        _report(self, request, errors, done, f"relevé(s) de {month:%m/%Y} générés ou mis à jour")


class CreditNoteForm(forms.Form):
    """The intermediate page of « Créer un avoir »: a reason, and for one invoice its lines."""

    reason = forms.CharField(label="Motif de l'avoir", widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
                             help_text="Imprimé sur l'avoir envoyé au client.")
    lines = forms.ModelMultipleChoiceField(
        label="Lignes à annuler", queryset=StatementLine.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Toutes cochées : avoir total. Décochez les lignes à conserver pour un avoir partiel.")

    def __init__(self, *args, statement=None, **kwargs):
        super().__init__(*args, **kwargs)
        if statement is None:
            # Several invoices at once: each is credited in full, with the same reason.
            del self.fields["lines"]
            return
        field = self.fields["lines"]
        field.queryset = creditable_lines(statement)
        field.required = True
        field.error_messages["required"] = "Cochez au moins une ligne à annuler."
        field.label_from_instance = lambda line: f"{line.label} — {money(line.amount)} HT"
        field.initial = list(field.queryset)


class StatementLineInline(admin.TabularInline):
    model = StatementLine
    extra = 0
    fields = ("position", "kind", "label", "quantity", "unit_price", "amount", "period_start", "period_end")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        # Lines come from the computation only; a draft is corrected by regenerating it.
        return False


@admin.register(Statement)
class StatementAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "status", "period_start", "issue_date", "total_ht_display",
                    "total_ttc_display", "billed_units", "sent_at")
    list_filter = ("kind", "status", "period_start")
    search_fields = ("number", "customer__name", "customer__slug")
    date_hierarchy = "period_start"
    inlines = [StatementLineInline]
    actions = ["issue", "mark_as_paid", "credit", "resend", "regenerate"]
    # Only the payment follow-up remains editable, and only on an issued invoice.
    editable_after_issue = ("payment_note",)

    @admin.display(description="total HT")
    def total_ht_display(self, obj):
        return money(obj.total_ht)

    @admin.display(description="total TTC")
    def total_ttc_display(self, obj):
        return money(obj.total_ttc)

    @admin.display(description="documents")
    def downloads(self, obj):
        if not obj.pk or not obj.is_final:
            return "—"
        query = f"?customer={obj.customer.slug}"
        return format_html(
            '<a href="{}">PDF</a> · <a href="{}">envois facturés (CSV)</a>',
            reverse("billing:statement_pdf", args=[obj.pk]) + query,
            reverse("billing:statement_csv", args=[obj.pk]) + query,
        )

    def get_readonly_fields(self, request, obj=None):
        names = [f.name for f in self.model._meta.concrete_fields if f.name != "id"]
        names.append("downloads")
        if obj is not None and obj.status == Statement.Status.ISSUED:
            return [name for name in names if name not in self.editable_after_issue]
        return names

    def has_add_permission(self, request):
        # Statements are generated from a contract (action on contracts, command, schedule).
        return False

    def has_delete_permission(self, request, obj=None):
        return obj is not None and obj.status == Statement.Status.DRAFT

    def _each(self, request, queryset, action, what):
        done, errors = 0, []
        for statement in queryset.order_by("period_start", "pk"):
            try:
                action(statement)
                done += 1
            except ACTION_ERRORS as exc:
                errors.append(exc)
        _report(self, request, errors, done, what)

    def _report_sending(self, request, statements):
        for statement in statements:
            if statement.send_error:
                self.message_user(request, f"{statement.number} : {statement.send_error}", messages.WARNING)
            elif statement.sent_to:
                self.message_user(request, f"{statement.number} envoyé à {statement.sent_to}.",
                                  messages.SUCCESS)

    @admin.action(description="Émettre (numéroter, figer, produire le PDF, l'envoyer au client)")
    def issue(self, request, queryset):
        issued = []
        self._each(request, queryset, lambda s: issued.append(issue_statement(s)), "relevé(s) émis")
        self._report_sending(request, issued)

    @admin.action(description="Marquer comme payé (aujourd'hui)")
    def mark_as_paid(self, request, queryset):
        self._each(request, queryset, mark_paid, "relevé(s) marqué(s) payé(s)")

    @admin.action(description="Créer un avoir (total ou partiel)")
    def credit(self, request, queryset):
        invoices = list(queryset.select_related("customer").order_by("period_start", "pk"))
        single = invoices[0] if len(invoices) == 1 else None
        if "apply" in request.POST:
            form = CreditNoteForm(request.POST, statement=single)
            if form.is_valid():
                reason, lines = form.cleaned_data["reason"], form.cleaned_data.get("lines")
                credits = []
                self._each(request, queryset, lambda s: credits.append(
                    create_credit_note(s, reason=reason, lines=lines)), "avoir(s) établi(s)")
                self._report_sending(request, credits)
                return None
        else:
            form = CreditNoteForm(statement=single)
        return TemplateResponse(request, "billing/admin/credit_note.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": "Créer un avoir",
            "form": form, "invoices": invoices, "single": single,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        })

    @admin.action(description="Renvoyer par e-mail")
    def resend(self, request, queryset):
        sent = []
        for statement in queryset.order_by("period_start", "pk"):
            if not statement.is_final:
                self.message_user(request, f"{statement} : un brouillon ne s'envoie pas, émettez-le.",
                                  messages.ERROR)
                continue
            sent.append(send_statement(statement))
        self._report_sending(request, sent)

    @admin.action(description="Recalculer le brouillon")
    def regenerate(self, request, queryset):
        def redo(statement):
            if statement.status != Statement.Status.DRAFT or statement.kind != Statement.Kind.INVOICE:
                raise BillingError(f"{statement} : seul un brouillon de facture se recalcule.")
            generate_statement(statement.customer, statement.period_start)

        self._each(request, queryset, redo, "brouillon(s) recalculé(s)")
