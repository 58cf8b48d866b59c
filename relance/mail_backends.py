"""Write each outgoing message to its own .eml file (demo and local development).

Django's file backend appends every message of a connection to one .log file;
one standard .eml per message opens directly in any mail client.
"""

import smtplib
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address
from django.utils import timezone


class EmlFileBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        folder = Path(settings.EMAIL_FILE_PATH)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        for index, message in enumerate(email_messages):
            message_id = message.extra_headers.get("Message-ID", "").strip("<>").split("@")[0]
            name = f"{stamp}-{message_id or index}.eml"
            (folder / name).write_bytes(message.message().as_bytes(linesep="\r\n"))
        return len(email_messages)


class VerpSMTPBackend(SMTPBackend):
    """SMTP with a per-message envelope sender (signed VERP, see relance.dsn).

    Django always uses From as the envelope sender; bounces must instead come
    back to the address that names the Dispatch, so ``message.return_path``
    (set by mailer.build_message) takes its place in MAIL FROM when present.
    """

    def _send(self, email_message):
        return_path = getattr(email_message, "return_path", None)
        if not return_path:
            return super()._send(email_message)
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        recipients = [sanitize_address(addr, encoding) for addr in email_message.recipients()]
        message = email_message.message()
        try:
            self.connection.sendmail(sanitize_address(return_path, encoding), recipients,
                                     message.as_bytes(linesep="\r\n"))
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True
