from django.contrib import admin
from django.urls import include, path

from relance.webhooks import VerifiedAmazonSESTrackingWebhookView

admin.site.site_header = "EasyRelance — administration"
admin.site.site_title = "EasyRelance"
admin.site.index_title = "Back-office"

urlpatterns = [
    path("admin/", admin.site.urls),
    # Providers' delivery webhooks: /anymail/<esp>/tracking/, basic auth ANYMAIL_WEBHOOK_SECRET.
    # Amazon SES's is ours (it also verifies the SNS signature), so it must come before anymail's.
    path("anymail/amazon_ses/tracking/", VerifiedAmazonSESTrackingWebhookView.as_view(),
         name="amazon_ses_tracking_webhook"),
    path("anymail/", include("anymail.urls")),
    path("facturation/", include("billing.urls")),
    # Customer portal at the site root (dashboard at "/"); keep it last so it never shadows the others.
    path("", include("portal.urls")),
]
