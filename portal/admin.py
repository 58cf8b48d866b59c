"""Back-office: staff create portal accounts and attach each to one customer company."""

from django.contrib import admin

from .models import Handling, PortalUser


@admin.register(PortalUser)
class PortalUserAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "customer", "active", "last_login", "created_at"]
    list_filter = ["customer", "user__is_active"]
    search_fields = ["user__email", "user__username", "customer__name"]
    autocomplete_fields = ["user"]
    list_select_related = ["user", "customer"]

    @admin.display(description="e-mail de connexion", ordering="user__email")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="actif", boolean=True)
    def active(self, obj):
        return obj.user.is_active

    @admin.display(description="dernière connexion", ordering="user__last_login")
    def last_login(self, obj):
        return obj.user.last_login


@admin.register(Handling)
class HandlingAdmin(admin.ModelAdmin):
    list_display = ["dispatch", "handled_at", "handled_by"]
    list_select_related = ["dispatch", "handled_by"]
    raw_id_fields = ["dispatch", "handled_by"]
    search_fields = ["dispatch__doc_piece", "dispatch__tiers_name"]
