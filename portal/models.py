"""Who may log in to the customer portal, and which diverted documents and bounces they handled.

The portal never changes relance's records: whether a diverted document was
posted, or a bounce followed up, is the customer's own bookkeeping, kept here
beside the Dispatch rather than on it.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class PortalUser(models.Model):
    """An auth User of one customer company; the only link the portal trusts for isolation."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="portal_profile", verbose_name="compte"
    )
    customer = models.ForeignKey(
        "relance.Customer", models.CASCADE, related_name="portal_users", verbose_name="client"
    )
    created_at = models.DateTimeField("créé le", auto_now_add=True)

    class Meta:
        verbose_name = "utilisateur de l'espace client"
        verbose_name_plural = "utilisateurs de l'espace client"
        ordering = ["customer__name", "user__email"]

    def __str__(self):
        return f"{self.user.email or self.user.get_username()} ({self.customer})"


class Handling(models.Model):
    """A diverted document posted, or a bounce followed up, by the customer: it leaves the to-do lists."""

    dispatch = models.OneToOneField(
        "relance.Dispatch", models.CASCADE, related_name="portal_handling", verbose_name="envoi"
    )
    handled_at = models.DateTimeField("traité le", default=timezone.now)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="traité par",
    )

    class Meta:
        verbose_name = "suivi traité"
        verbose_name_plural = "suivis traités"

    def __str__(self):
        return f"{self.dispatch} — traité le {timezone.localtime(self.handled_at):%d/%m/%Y}"
