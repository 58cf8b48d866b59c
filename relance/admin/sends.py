"""Sends in the back-office: the proof of every reminder, its delivery timeline, suppressed addresses."""

import os

from django.contrib import admin, messages
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from ..documents import stored_pdf_response
from ..models import DeliveryEvent, Dispatch, SuppressedAddress
from .common import badge


class DeliveryEventInline(admin.TabularInline):
    """The delivery timeline of a send: provider webhooks and returned bounces, read-only."""

    model = DeliveryEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ["occurred_at", "kind", "bounce_type", "recipient", "reason",
                                "provider", "notice_sent_at", "gestimum_written_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Dispatch)
class DispatchAdmin(admin.ModelAdmin):
    inlines = [DeliveryEventInline]
    list_display = ["created_at", "customer", "doc_piece", "tiers_name", "level", "channel",
                    "status_badge", "to", "pdf_link"]
    list_filter = ["status", "channel", "level", "customer"]
    list_select_related = ["customer"]
    search_fields = ["doc_piece", "pcf_code", "tiers_name", "to", "message_id"]
    date_hierarchy = "created_at"
    actions = ["confirm_sent", "allow_resend"]
    readonly_fields = ["pdf_link"]
    fieldsets = [
        ("Relance", {"fields": ["customer", "task", "run", "level", "channel", "status", "attempts",
                                "error"]}),
        ("Gestimum", {"fields": ["ech_numero", "doc_numero", "doc_piece", "pcf_code", "tiers_name",
                                 "due_date", "amount", "remaining", "writeback_pending",
                                 "writeback_at", "writeback_ref"]}),
        ("Message", {"fields": ["from_email", "to", "cc", "bcc", "subject", "body", "message_id",
                                "provider_message_id", "pdf_link", "pdf_sha256"]}),
        ("Réacheminement", {"fields": ["divert_path", "divert_reason"]}),
        ("Dates", {"fields": ["created_at", "sent_at", "updated_at"]}),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # A send record is proof: its page is view-only. Change permission on the
        # list only, so that the two review actions below are offered.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    @admin.display(description="statut", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        if not obj.pdf:
            return "—"
        url = reverse("admin:relance_dispatch_pdf", args=[obj.pk])
        return format_html('<a href="{}">Télécharger</a>', url)

    def get_urls(self):
        custom = [path("<path:object_id>/pdf/", self.admin_site.admin_view(self.pdf_view),
                       name="relance_dispatch_pdf")]
        return custom + super().get_urls()

    def pdf_view(self, request, object_id):
        dispatch = get_object_or_404(Dispatch, pk=object_id)
        if not self.has_view_permission(request, dispatch):
            raise Http404("Envoi introuvable.")
        return stored_pdf_response(dispatch, filename=os.path.basename(dispatch.pdf.name))

    @admin.action(description="Confirmer comme envoyé (ne pas renvoyer)", permissions=["change"])
    def confirm_sent(self, request, queryset):
        # In one UPDATE: sent_at takes the time of the interrupted attempt (updated_at's old value).
        count = queryset.filter(status=Dispatch.Status.NEEDS_REVIEW).update(
            status=Dispatch.Status.SENT, sent_at=Coalesce("sent_at", "updated_at"), writeback_pending=True,
            updated_at=timezone.now(),
        )
        self._report(request, queryset, count, "confirmé(s) comme envoyé(s)")

    @admin.action(description="Autoriser un nouvel envoi (le prochain passage renverra)",
                  permissions=["change"])
    def allow_resend(self, request, queryset):
        count = queryset.filter(status=Dispatch.Status.NEEDS_REVIEW).update(
            status=Dispatch.Status.FAILED, updated_at=timezone.now(),
        )
        self._report(request, queryset, count, "remis en échec : la prochaine exécution de la tâche "
                                               "les renverra")

    @staticmethod
    def _report(request, queryset, count, what):
        messages.success(request, f"{count} envoi(s) {what}.")
        ignored = queryset.count() - count
        if ignored > 0:
            messages.warning(request, f"{ignored} envoi(s) ignoré(s) : seuls les envois « à vérifier "
                                      "(envoi interrompu) » sont concernés.")


@admin.register(SuppressedAddress)
class SuppressedAddressAdmin(admin.ModelAdmin):
    """Addresses no longer mailed after a hard bounce. Deleting one lets the engine use it again."""

    list_display = ["address", "customer", "created_at", "reason"]
    list_filter = ["customer"]
    search_fields = ["address", "reason"]
    list_select_related = ["customer"]
    fields = ["customer", "address", "reason", "dispatch", "created_at"]
    readonly_fields = ["dispatch", "created_at"]
    raw_id_fields = ["customer"]
