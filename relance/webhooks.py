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
        self.check_topic(request)
        if settings.AMAZON_SES_VERIFY_SNS_SIGNATURE:
            self.verify_signature(request)

    def check_topic(self, request):
        """Only our own SNS topics, when AMAZON_SES_SNS_TOPIC_ARNS names them (checked before
        the signature, so a foreign topic never makes us download a certificate)."""
        allowed = settings.AMAZON_SES_SNS_TOPIC_ARNS
        topic = self._parse_sns_message(request).get("TopicArn", "")
        if allowed and topic not in allowed:
            raise AnymailWebhookValidationFailure(f"Amazon SNS : sujet {topic or '(absent)'} non autorisé "
                                                  "(AMAZON_SES_SNS_TOPIC_ARNS).")

    def verify_signature(self, request):
        try:
            sns.verify(self._parse_sns_message(request))
        except sns.SignatureError as exc:
            raise AnymailWebhookValidationFailure(f"Amazon SNS : {exc}") from exc
