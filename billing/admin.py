"""Back-office: contracts with their price history, statements and their life cycle.

Issued statements are shown read-only: the model refuses changes anyway,
the admin just does not offer them.
"""

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.urls import reverse
from django.utils.html import format_html

from relance.formatting import money
from relance.rendering import RenderError

from .models import Contract, ContractPrice, Statement, StatementLine
from .selectors import BillingError
from .services import create_credit_note, generate_statement, issue_statement, mark_paid, previous_month

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
                    "total_ttc_display", "billed_units")
    list_filter = ("kind", "status", "period_start")
    search_fields = ("number", "customer__name", "customer__slug")
    date_hierarchy = "period_start"
    inlines = [StatementLineInline]
    actions = ["issue", "mark_as_paid", "credit", "regenerate"]
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

    @admin.action(description="Émettre (numéroter, figer, produire le PDF)")
    def issue(self, request, queryset):
        self._each(request, queryset, issue_statement, "relevé(s) émis")

    @admin.action(description="Marquer comme payé (aujourd'hui)")
    def mark_as_paid(self, request, queryset):
        self._each(request, queryset, mark_paid, "relevé(s) marqué(s) payé(s)")

    @admin.action(description="Établir un avoir (annule la facture)")
    def credit(self, request, queryset):
        reason = f"Annulation demandée par {request.user.get_username()} depuis l'administration."
        self._each(request, queryset, lambda s: create_credit_note(s, reason=reason), "avoir(s) établi(s)")

    @admin.action(description="Recalculer le brouillon")
    def regenerate(self, request, queryset):
        def redo(statement):
            if statement.status != Statement.Status.DRAFT or statement.kind != Statement.Kind.INVOICE:
                raise BillingError(f"{statement} : seul un brouillon de facture se recalcule.")
            generate_statement(statement.customer, statement.period_start)

        self._each(request, queryset, redo, "brouillon(s) recalculé(s)")
