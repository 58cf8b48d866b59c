"""Write each outgoing message to its own .eml file (demo and local development).

Django's file backend appends every message of a connection to one .log file;
one standard .eml per message opens directly in any mail client.
"""

from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
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
