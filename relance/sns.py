"""Amazon SNS message signatures: proof that a notification really comes from AWS.

Amazon SES reports deliveries and bounces through an SNS topic, which posts
JSON to our webhook. Basic auth proves the post is meant for us; the signature
proves AWS wrote it, so a leaked webhook password alone cannot forge a bounce
(which would suppress a debtor's address and alert the customer).

SNS signs a canonical text built from a fixed list of keys with the private key
of a certificate it publishes at ``SigningCertURL``. That URL is part of the
message, so it is only trusted on an SNS host over HTTPS; certificates are
fetched once per URL and kept in memory.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

import base64
import binascii
import functools
import re
import urllib.request
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CERT_HOST_RE = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
FETCH_TIMEOUT = 10  # seconds; SNS retries a webhook that answers an error

# The keys signed for each message type, in the order SNS signs them.
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}
# SignatureVersion "1" is SHA1withRSA, "2" SHA256withRSA.
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class SignatureError(Exception):
    """The message is not provably from Amazon SNS: refuse it for good."""


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched now: worth a retry (SNS retries on 5xx)."""


def string_to_sign(message):
    """The canonical bytes SNS signed: "Key\\nValue\\n" for each signed key present, in order."""
    keys = SIGNED_KEYS.get(message.get("Type"))
    if keys is None:
        raise SignatureError(f"Type de message SNS inconnu : {message.get('Type')!r}")
    parts = []
    for key in keys:
        value = message.get(key)
        if value is None:
            # Only Subject is optional (absent when the publisher gave none).
            if key == "Subject":
                continue
            raise SignatureError(f"Champ SNS signé manquant : {key}")
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode()


def check_cert_url(url):
    """Refuse a certificate URL that is not HTTPS on an SNS host, before any network access."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        raise SignatureError(f"URL de certificat SNS invalide : {url!r}") from exc
    if parts.scheme != "https" or not CERT_HOST_RE.match(host) or port not in (None, 443):
        raise SignatureError(f"URL de certificat SNS refusée (hôte non Amazon SNS) : {url!r}")
    return url


def download(url):
    """The certificate's PEM bytes; a separate function so tests can stand in for AWS."""
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 (https only)
        return response.read()


@functools.lru_cache(maxsize=32)
def signing_certificate(url):
    """The certificate at ``url`` (already checked), fetched once per URL and process.

    A failed fetch raises and is not cached, so the next notification tries again.
    """
    try:
        return x509.load_pem_x509_certificate(download(url))
    except ValueError as exc:
        raise SignatureError(f"Certificat SNS illisible : {url}") from exc


def verify(message):
    """Raise SignatureError unless ``message`` (the parsed SNS JSON) carries a valid AWS signature."""
    if not isinstance(message, dict):
        raise SignatureError("Message SNS illisible")
    version = message.get("SignatureVersion")
    algorithm = HASHES.get(str(version))
    if algorithm is None:
        raise SignatureError(f"SignatureVersion SNS non prise en charge : {version!r}")
    # Every check that needs no network comes first: a forged post costs us no download.
    signed = string_to_sign(message)
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("Signature SNS mal encodée") from exc
    if not signature:
        raise SignatureError("Signature SNS absente")
    url = check_cert_url(message.get("SigningCertURL"))
    try:
        certificate = signing_certificate(url)
    except OSError as exc:  # urllib's URLError, timeouts, TLS failures
        raise CertificateUnavailable(f"Certificat SNS injoignable ({url}) : {exc}") from exc
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("Le certificat SNS n'a pas de clé RSA")
    try:
        public_key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SignatureError("Signature SNS invalide") from exc
