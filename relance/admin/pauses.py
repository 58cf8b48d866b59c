"""Pauses in the back-office: staff suspend reminders for a debtor or an invoice, and lift them."""

from django.contrib import admin, messages
from django.utils import timezone

from ..models import ReminderPause


class InForceFilter(admin.SimpleListFilter):
    title = "état"
    parameter_name = "etat"

    def lookups(self, request, model_admin):
        return [("active", "en vigueur"), ("ended", "levée ou terminée")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "active":
            return queryset.active(today)
        if self.value() == "ended":
            return queryset.exclude(pk__in=ReminderPause.objects.active(today).values("pk"))
        return queryset


@admin.register(ReminderPause)
class ReminderPauseAdmin(admin.ModelAdmin):
    list_display = ["customer", "pcf_code", "scope_label", "reason", "until", "in_force", "created_at",
                    "created_by", "lifted_at"]
    list_filter = [InForceFilter, "customer"]
    list_select_related = ["customer"]
    search_fields = ["pcf_code", "doc_piece", "reason", "customer__name"]
    autocomplete_fields = ["customer"]
    fields = ["customer", "pcf_code", "doc_piece", "reason", "until", "created_at", "created_by",
              "lifted_at", "lifted_by"]
    readonly_fields = ["created_at", "created_by", "lifted_at", "lifted_by"]
    actions = ["lift"]

    @admin.display(description="portée")
    def scope_label(self, obj):
        return obj.scope_label

    @admin.display(description="en vigueur", boolean=True)
    def in_force(self, obj):
        return obj.in_force(timezone.localdate())

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    @admin.action(description="Lever la pause (les relances reprennent à la prochaine exécution)")
    def lift(self, request, queryset):
        count = 0
        for pause in queryset.filter(lifted_at__isnull=True):
            pause.lift(by=request.user.get_username())
            count += 1
        messages.success(request, f"{count} pause(s) levée(s).")
