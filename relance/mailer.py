"""Building and sending e-mails: the only place that talks to the mail transport.

Errors are classified once, here: a permanent failure (5xx, address refused by
the provider) is recorded and not retried; a temporary one (4xx, connection)
is retried with backoff.
"""

import logging
import smtplib
import socket
import time
from email.utils import make_msgid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email

logger = logging.getLogger(__name__)


class SendError(Exception):
    def __init__(self, message, *, permanent):
        super().__init__(message)
        self.permanent = permanent


def split_addresses(text):
    """'a@x.fr; b@y.fr , bad' -> (['a@x.fr', 'b@y.fr'], ['bad']), duplicates removed."""
    valid, invalid, seen = [], [], set()
    for part in (text or "").replace(",", ";").replace("\n", ";").split(";"):
        address = part.strip()
        if not address or address.lower() in seen:
            continue
        seen.add(address.lower())
        try:
            validate_email(address)
        except ValidationError:
            invalid.append(address)
        else:
            valid.append(address)
    return valid, invalid


def new_message_id():
    return make_msgid(idstring="relance", domain=settings.PLATFORM_MAIL_DOMAIN)


def build_message(*, from_email, to, subject, body, cc=(), bcc=(), reply_to=(), attachments=(),
                  message_id=None, metadata=None, tags=(), return_path=None):
    """An EmailMessage; metadata and tags reach the provider through anymail.

    ``return_path``: envelope sender for plain SMTP (signed VERP address, see
    relance.dsn); used by relance.mail_backends.VerpSMTPBackend, ignored by
    providers, which report bounces through their webhooks.
    """
    headers = {"Message-ID": message_id or new_message_id()}
    message = EmailMessage(subject=subject, body=body, from_email=from_email, to=list(to),
                           cc=list(cc), bcc=list(bcc), reply_to=list(reply_to), headers=headers)
    for name, content, mimetype in attachments:
        message.attach(name, content, mimetype)
    # Ignored by the SMTP backend; anymail sends them as the provider's metadata/tags.
    message.metadata = dict(metadata or {})
    message.tags = list(tags)
    message.return_path = return_path
    return message


def _text(value):
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def classify(exc):
    """Turn a transport exception into a SendError saying whether a retry makes sense."""
    try:
        from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover - anymail is a requirement
        AnymailAPIError = AnymailError = AnymailRecipientsRefused = ()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = all(code >= 500 for code in codes)
        detail = "; ".join(f"{addr} : {code} {_text(msg)}" for addr, (code, msg) in exc.recipients.items())
        return SendError(f"Destinataire(s) refusé(s) par le serveur SMTP : {detail}", permanent=permanent)
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendError(f"Le serveur SMTP a répondu {exc.smtp_code} : {_text(exc.smtp_error)}",
                         permanent=exc.smtp_code >= 500)
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout, TimeoutError)):
        return SendError(f"Connexion au serveur d'envoi perdue : {exc}", permanent=False)
    if AnymailRecipientsRefused and isinstance(exc, AnymailRecipientsRefused):
        return SendError(f"Destinataire(s) refusé(s) par le fournisseur : {exc}", permanent=True)
    if AnymailAPIError and isinstance(exc, AnymailAPIError):
        status = getattr(exc, "status_code", None)
        temporary = status is None or status == 429 or status >= 500
        return SendError(f"Le fournisseur d'envoi a refusé le message ({status}) : {exc}",
                         permanent=not temporary)
    if AnymailError and isinstance(exc, AnymailError):
        return SendError(f"Erreur du fournisseur d'envoi : {exc}", permanent=True)
    if isinstance(exc, OSError):
        return SendError(f"Serveur d'envoi injoignable : {exc}", permanent=False)
    return SendError(f"Erreur d'envoi inattendue : {exc!r}", permanent=True)


class Mailer:
    """One open transport connection for a whole run, with retries."""

    def __init__(self, *, attempts=None, base_delay=None, sleep=time.sleep):
        self.attempts = settings.SEND_RETRY_ATTEMPTS if attempts is None else attempts
        self.base_delay = settings.SEND_RETRY_BASE_DELAY if base_delay is None else base_delay
        self.sleep = sleep
        self.connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # closing a broken connection must not hide the real error
                logger.warning("Fermeture de la connexion d'envoi impossible", exc_info=True)
            self.connection = None

    def _connection(self):
        if self.connection is None:
            self.connection = get_connection(fail_silently=False)
            self.connection.open()
        return self.connection

    def send(self, message):
        """Send, retrying temporary failures; return (attempts, provider message id)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                connection = self._connection()
                message.connection = connection
                if connection.send_messages([message]) != 1:
                    raise SendError("Le serveur d'envoi n'a pas accepté le message.", permanent=False)
                return attempt, provider_message_id(message)
            except Exception as exc:
                error = exc if isinstance(exc, SendError) else classify(exc)
                # A broken connection is reopened on the next attempt.
                self.close()
                if error.permanent or attempt >= max(self.attempts, 1):
                    error.attempts = attempt
                    raise error from exc
                delay = self.base_delay * (4 ** (attempt - 1))
                logger.warning("Envoi en échec temporaire (%s), nouvel essai dans %.1f s", error, delay)
                self.sleep(delay)


def provider_message_id(message):
    status = getattr(message, "anymail_status", None)
    if status is not None and status.message_id:
        return str(status.message_id)
    return message.extra_headers.get("Message-ID", "")
