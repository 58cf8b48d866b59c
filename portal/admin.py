"""Back-office: staff invite portal users, each attached to one customer company.

Adding a portal user takes an e-mail address, a name and the customer: the
Django account is created without a password and an invitation with a link
to choose one is e-mailed (``portal.invitations``).
"""

from django.contrib import admin, messages

from .forms import PortalUserInvitationForm
from .invitations import InvitationError, invite, send_invitation
from .models import Handling, PortalUser


def _base_url(request):
    # The invitee opens the link on the host staff are using, e.g. https://app.e-doc-erp.fr.
    return request.build_absolute_uri("/")


@admin.register(PortalUser)
class PortalUserAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "customer", "active", "password_chosen", "last_login", "created_at"]
    list_filter = ["customer", "user__is_active"]
    search_fields = ["user__email", "user__username", "customer__name"]
    autocomplete_fields = ["user"]
    list_select_related = ["user", "customer"]
    actions = ["resend_invitation"]
    add_form = PortalUserInvitationForm
    add_fieldsets = [(None, {"fields": ["email", "first_name", "last_name", "customer"]})]

    @admin.display(description="e-mail de connexion", ordering="user__email")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="actif", boolean=True)
    def active(self, obj):
        return obj.user.is_active

    @admin.display(description="mot de passe choisi", boolean=True)
    def password_chosen(self, obj):
        return obj.user.has_usable_password()

    @admin.display(description="dernière connexion", ordering="user__last_login")
    def last_login(self, obj):
        return obj.user.last_login

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        return super().get_fieldsets(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        try:
            created = invite(email=data["email"], customer=data["customer"], first_name=data["first_name"],
                             last_name=data["last_name"], base_url=_base_url(request))
        except InvitationError as exc:
            self.message_user(request, f"{exc} Utilisez « Renvoyer l'invitation ».", messages.WARNING)
            created = PortalUser.objects.get(user__email__iexact=data["email"])
        else:
            self.message_user(request, f"Invitation envoyée à {created.user.email}.", messages.SUCCESS)
        # The admin logs and redirects to the object it saved: make it the one just created.
        obj.pk, obj.user, obj.created_at = created.pk, created.user, created.created_at

    @admin.action(description="Renvoyer l'invitation")
    def resend_invitation(self, request, queryset):
        sent = 0
        for portal_user in queryset.select_related("user", "customer"):
            if portal_user.user.has_usable_password():
                self.message_user(request, f"{portal_user.user.email} a déjà choisi son mot de passe : "
                                  "il peut utiliser « Mot de passe oublié ».", messages.WARNING)
                continue
            try:
                send_invitation(portal_user, base_url=_base_url(request))
            except InvitationError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                sent += 1
        if sent:
            self.message_user(request, f"{sent} invitation(s) envoyée(s).", messages.SUCCESS)


@admin.register(Handling)
class HandlingAdmin(admin.ModelAdmin):
    list_display = ["dispatch", "handled_at", "handled_by"]
    list_select_related = ["dispatch", "handled_by"]
    raw_id_fields = ["dispatch", "handled_by"]
    search_fields = ["dispatch__doc_piece", "dispatch__tiers_name"]
