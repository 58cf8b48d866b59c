"""The back-office of customers, reminder tasks and their runs.

The admin stays thin: previews come from ``relance.engine.preview_task``,
manual runs from ``relance.services.enqueue_run`` and column checks from the
Gestimum gateway; those modules are imported when used so that a broken
Gestimum driver never keeps the back-office from loading.
"""

import logging
import zoneinfo

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header

from ..formatting import date_fr, money
from ..models import (
    AddressSource,
    Criterion,
    Customer,
    FixedAttachment,
    InvoiceTemplate,
    ReminderTask,
    TaskRun,
)
from .common import badge, format_duration, truncate
from .forms import (
    AddressSourceFormSet,
    CriterionFormSet,
    CustomerForm,
    ReminderTaskForm,
    mask_url,
    variables_help_html,
)

logger = logging.getLogger(__name__)

ACTION_LABELS = {"email": "e-mail", "divert": "réacheminement (courrier)", "skip": "ignorée"}
PREVIEW_MAX_ROWS = 500


def _addresses(value):
    return value if isinstance(value, str) else ", ".join(value or ())


def _sample_headers(sample):
    """Header lines of the sample message; empty optional headers are left out."""
    if sample is None:
        return []
    headers = [("De", sample.from_email), ("Répondre à", _addresses(sample.reply_to)),
               ("À", _addresses(sample.to)), ("Cc", _addresses(sample.cc)),
               ("Cci", _addresses(sample.bcc))]
    return [(label, value) for label, value in headers if value or label in ("De", "À")]



# --- Customers ---------------------------------------------------------------------------------


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = ["name", "slug", "active", "sender_address", "task_count"]
    list_filter = ["active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ["masked_gestimum_url", "sender_address", "created_at"]
    fieldsets = [
        ("Identité", {"fields": ["name", "slug", "active", "timezone", "created_at"]}),
        ("Worker", {"fields": ["worker_cluster"]}),
        ("Connexion Gestimum", {
            "fields": ["masked_gestimum_url", "new_gestimum_url"],
            "description": "Le mot de passe n'est jamais réaffiché. Pour changer la connexion, "
                           "saisissez l'URL complète dans « nouvelle URL de connexion ».",
        }),
        ("Expéditeur", {"fields": ["sender_address", "own_sender_email", "own_domain_verified",
                                   "sender_name", "reply_to", "notification_email"]}),
        ("Mentions légales et facture", {"fields": ["signature", "address", "siret", "vat_number",
                                                    "legal_form", "rcs", "phone", "iban"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(task_total=Count("tasks"))

    @admin.display(description="connexion Gestimum actuelle")
    def masked_gestimum_url(self, obj):
        return mask_url(obj.gestimum_url) or "(aucune)"

    @admin.display(description="adresse d'envoi effective")
    def sender_address(self, obj):
        return obj.sender_email if obj.slug else "—"

    @admin.display(description="tâches", ordering="task_total")
    def task_count(self, obj):
        return obj.task_total


@admin.register(InvoiceTemplate)
class InvoiceTemplateAdmin(admin.ModelAdmin):
    # Validation (syntax and a trial PDF) runs in InvoiceTemplate.clean.
    list_display = ["name", "customer", "updated_at"]
    list_filter = ["customer"]
    search_fields = ["name", "customer__name"]
    autocomplete_fields = ["customer"]


# --- Reminder tasks -----------------------------------------------------------------------------


class CriterionInline(admin.TabularInline):
    model = Criterion
    formset = CriterionFormSet
    extra = 0


class AddressSourceInline(admin.TabularInline):
    model = AddressSource
    formset = AddressSourceFormSet
    extra = 0


class FixedAttachmentInline(admin.TabularInline):
    model = FixedAttachment
    extra = 0


class RecentRunFormSet(BaseInlineFormSet):
    def get_queryset(self):
        # Sliced here, not in the inline's get_queryset: the formset filters by task after that.
        return super().get_queryset()[:10]


class RecentRunInline(admin.TabularInline):
    """The last runs of the task, read-only."""

    model = TaskRun
    verbose_name_plural = "dernières exécutions"
    fields = ["started_at", "origin", "status_badge", "duration_display", "selected", "sent", "emails",
              "diverted", "skipped", "failed", "short_errors"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    formset = RecentRunFormSet

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="statut")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="durée")
    def duration_display(self, obj):
        return format_duration(obj.duration)

    @admin.display(description="erreurs")
    def short_errors(self, obj):
        return truncate(obj.errors) or "—"


@admin.register(ReminderTask)
class ReminderTaskAdmin(admin.ModelAdmin):
    form = ReminderTaskForm
    change_form_template = "admin/relance/remindertask/change_form.html"
    list_display = ["name", "customer", "level", "active", "trigger_summary", "schedule",
                    "next_run_at", "last_run_at", "last_run_status"]
    readonly_fields = ["next_run_at", "last_run_at"]
    list_filter = ["customer", "active", "level"]
    list_select_related = ["customer"]
    search_fields = ["name", "customer__name"]
    autocomplete_fields = ["customer"]
    inlines = [CriterionInline, AddressSourceInline, FixedAttachmentInline, RecentRunInline]
    actions = ["preview", "run_now"]
    fieldsets = [
        ("Général", {"fields": ["customer", "name", "active", "level", "require_previous_level",
                                "min_days_since_previous", "min_days_between_debtor_reminders"]}),
        ("Déclenchement et planification", {"fields": ["trigger", "days", "max_days", "schedule"]}),
        ("Calendrier et rattrapage", {
            "fields": ["skip_weekends", "skip_holidays", "alsace_moselle", "skipped_day_rule",
                       "grace_hours", "next_run_at", "last_run_at"],
            "description": "Heures locales du client, changements d'heure compris. Un jour exclu "
                           "(week-end, férié) est reporté au jour ouvré suivant ou sauté.",
        }),
        ("Sélection", {
            "fields": ["doc_stypes", "families", "subfamilies", "representatives", "payment_modes",
                       "min_remaining", "tiers_include", "tiers_exclude"],
            "description": "Critères supplémentaires sur n'importe quelle colonne Gestimum "
                           "(champs personnalisés compris) : voir « critères » plus bas.",
        }),
        ("Message", {"fields": ["group_by_debtor", "subject_template", "body_template"]}),
        ("Impression", {"fields": ["print_model", "invoice_template", "archive_folder",
                                   "archive_pattern"]}),
        ("Réacheminement", {"fields": ["divert_folder"]}),
        ("Écriture dans Gestimum", {"fields": ["writeback_action", "writeback_nbrel",
                                               "writeback_relances"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        # Built per request: the variable list is HTML generated from templating.VARIABLES.
        fieldsets = [(name, dict(options)) for name, options in super().get_fieldsets(request, obj)]
        for name, options in fieldsets:
            if name == "Message":
                options["description"] = variables_help_html()
        return fieldsets

    def get_queryset(self, request):
        last_run = TaskRun.objects.filter(task=OuterRef("pk")).order_by("-started_at")
        return super().get_queryset(request).annotate(
            last_status=Subquery(last_run.values("status")[:1])
        )

    @admin.display(description="déclenchement", ordering="days")
    def trigger_summary(self, obj):
        if obj.trigger == ReminderTask.Trigger.DUE_DATE and obj.days < 0:
            return f"{-obj.days} j avant l'échéance"
        return f"{obj.days} {obj.get_trigger_display()}"

    @admin.display(description="dernière exécution", ordering="last_status")
    def last_run_status(self, obj):
        status = getattr(obj, "last_status", None)
        if not status:
            return "jamais"
        return badge(status, TaskRun.Status(status).label)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        warnings = {getattr(formset, "gestimum_warning", "") for formset in formsets}
        for warning in sorted(filter(None, warnings)):
            messages.warning(request, warning)

    # -- URLs: preview page and sample PDF --

    def get_urls(self):
        custom = [
            path("<path:object_id>/apercu/", self.admin_site.admin_view(self.preview_view),
                 name="relance_remindertask_preview"),
            path("<path:object_id>/apercu.pdf", self.admin_site.admin_view(self.preview_pdf_view),
                 name="relance_remindertask_preview_pdf"),
        ]
        return custom + super().get_urls()

    def _task_or_404(self, request, object_id):
        task = get_object_or_404(ReminderTask.objects.select_related("customer"), pk=object_id)
        if not self.has_view_or_change_permission(request, task):
            raise Http404("Tâche introuvable.")
        return task

    def preview_view(self, request, object_id):
        return self._preview_response(request, self._task_or_404(request, object_id))

    def preview_pdf_view(self, request, object_id):
        task = self._task_or_404(request, object_id)
        from ..engine import TaskError, preview_task
        from ..gestimum.gateway import GestimumUnavailable

        try:
            preview = preview_task(task, limit=1)
        except (TaskError, GestimumUnavailable) as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("admin:relance_remindertask_changelist"))
        sample = preview.sample
        if sample is None or not sample.pdf:
            raise Http404("Aucun document à prévisualiser : la tâche ne sélectionne aucune échéance "
                          "à envoyer aujourd'hui.")
        response = HttpResponse(sample.pdf, content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(False, sample.pdf_filename
                                                                     or "apercu.pdf")
        return response

    def _preview_response(self, request, task):
        """Render what the task would send now. Never sends nor records anything."""
        from ..engine import TaskError, preview_task
        from ..gestimum.gateway import GestimumUnavailable

        try:
            preview = preview_task(task)
        except (TaskError, GestimumUnavailable) as exc:
            messages.error(request, f"Prévisualisation impossible de « {task.name} » : {exc}")
            return HttpResponseRedirect(reverse("admin:relance_remindertask_changelist"))
        items = list(preview.items)
        today = timezone.localdate(timezone=zoneinfo.ZoneInfo(task.customer.timezone))
        action_counts = {ACTION_LABELS.get(key, key): sum(1 for item in items if item.action == key)
                         for key in ACTION_LABELS}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Prévisualisation : {task.name}",
            "task": task,
            "preview": preview,
            "action_counts": action_counts,
            "rows": [self._preview_row(item, today) for item in items[:PREVIEW_MAX_ROWS]],
            # The engine plans a first page only; more may be selected than listed.
            "truncated": max(len(items), preview.selected or 0) > min(len(items), PREVIEW_MAX_ROWS),
            "sample": preview.sample,
            "sample_headers": _sample_headers(preview.sample),
            "pdf_url": reverse("admin:relance_remindertask_preview_pdf", args=[task.pk]),
        }
        return TemplateResponse(request, "admin/relance/remindertask/preview.html", context)

    @staticmethod
    def _preview_row(item, today):
        candidate = item.candidate
        echeance = candidate.echeance
        piece = (candidate.document.piece if candidate.document else "") or echeance.piece
        recipients = [f"{label} : {', '.join(addresses)}"
                      for label, addresses in (("À", item.to), ("Cc", item.cc), ("Cci", item.bcc))
                      if addresses]
        return {
            "piece": piece,
            "tiers": f"{candidate.tiers.name} ({candidate.tiers.code})",
            "due_date": date_fr(echeance.due_date),
            "remaining": money(echeance.remaining),
            "days_late": (today - echeance.due_date).days if echeance.due_date else "",
            "action": item.action,
            "action_label": ACTION_LABELS.get(item.action, item.action),
            "recipients": " · ".join(recipients),
            "reason": item.reason,
        }

    # -- Actions --

    @admin.action(description="Prévisualiser (sans rien envoyer)")
    def preview(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, "Sélectionnez exactement une tâche à prévisualiser.")
            return None
        return self._preview_response(request, queryset.select_related("customer").get())

    @admin.action(description="Exécuter maintenant")
    def run_now(self, request, queryset):
        from ..services import enqueue_run

        for task in queryset:
            try:
                enqueue_run(task, origin="manual")
            except Exception as exc:  # the queue being down must not hide the other tasks
                logger.exception("Mise en file d'attente impossible pour la tâche %s", task.pk)
                messages.error(request, f"La tâche « {task.name} » n'a pas pu être mise en file "
                                        f"d'attente : {exc}")
            else:
                messages.success(request, f"La tâche « {task.name} » a été mise en file d'attente.")


# --- Runs and sends (read-only records) -----------------------------------------------------------


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ["task", "origin", "status_badge", "started_at", "duration_display", "selected",
                    "sent", "emails", "diverted", "skipped", "failed"]
    list_filter = ["status", "origin", ("task__customer", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["task__customer"]
    search_fields = ["task__name", "task__customer__name", "errors"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="statut", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="durée")
    def duration_display(self, obj):
        return format_duration(obj.duration)
