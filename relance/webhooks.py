"""Providers' webhook views that check more than anymail does on its own."""

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from django.conf import settings

from . import sns


class VerifiedAmazonSESTrackingWebhookView(AmazonSESTrackingWebhookView):
    """Amazon SES tracking webhook that also verifies the SNS message signature.

    A wrong signature or a certificate URL outside Amazon SNS answers 400 (SNS
    does not retry it) and changes nothing; a certificate that cannot be
    fetched right now answers 500, so SNS retries later.
    """

    def run_validators(self, request):
        # anymail calls every validate_request of the class chain in MRO order, so a
        # validate_request here would run before basic auth: an anonymous post could
        # make us download certificates. The signature is checked last instead, once
        # the credentials and the SNS headers have been accepted.
        super().run_validators(request)
        if settings.AMAZON_SES_VERIFY_SNS_SIGNATURE:
            self.verify_signature(request)

    def verify_signature(self, request):
        try:
            sns.verify(self._parse_sns_message(request))
        except sns.SignatureError as exc:
            raise AnymailWebhookValidationFailure(f"Amazon SNS : {exc}") from exc
