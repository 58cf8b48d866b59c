"""Read delivery reports (RFC 3464) of plain SMTP sends and apply them like webhook events.

    manage.py fetch_bounces --maildir /var/mail/bounces
    manage.py fetch_bounces --imap imaps://user:password@imap.example.org/INBOX [--delete]

Only reports carrying a validly signed VERP address (see relance.dsn) are
applied; forged or unsigned ones are counted and left alone. Applying twice is
harmless (events are idempotent), so a processed message is only marked seen,
or deleted with --delete.
"""

import imaplib
import logging
import mailbox
from urllib.parse import unquote, urlsplit

from django.core.management.base import BaseCommand, CommandError

from relance import tracking
from relance.dsn import parse_report
from relance.models import DeliveryEvent, Dispatch

logger = logging.getLogger(__name__)

ACTION_KINDS = {
    "failed": DeliveryEvent.Kind.BOUNCED,
    "delayed": DeliveryEvent.Kind.DEFERRED,
    "delivered": DeliveryEvent.Kind.DELIVERED,
    "relayed": DeliveryEvent.Kind.DELIVERED,
    "expanded": DeliveryEvent.Kind.DELIVERED,
}


def apply_report(raw, counts):
    """Apply one returned message; update ``counts`` with what became of it."""
    report = parse_report(raw)
    if report is None:
        counts["not_a_report"] += 1
        return
    if report.dispatch_id is None:
        counts["forged" if report.verp_found else "unsigned"] += 1
        return
    dispatch = Dispatch.objects.select_related("customer").filter(pk=report.dispatch_id).first()
    if dispatch is None:
        counts["unknown"] += 1
        return
    for status in report.recipients:
        kind = ACTION_KINDS.get(status.action)
        if kind is None:
            continue
        bounce_type = ""
        if kind == DeliveryEvent.Kind.BOUNCED:
            bounce_type = DeliveryEvent.BounceType.HARD if status.hard else DeliveryEvent.BounceType.SOFT
        created = False
        for target in tracking.message_dispatches(dispatch):  # every document of that e-mail
            _, applied = tracking.apply_event(
                target, kind=kind, occurred_at=report.arrived_at,
                event_id=f"{report.report_id}/{status.recipient}", recipient=status.recipient,
                reason=f"{status.status} {status.diagnostic}".strip(), bounce_type=bounce_type,
                provider="dsn", raw={"report_id": report.report_id, "recipient": status.recipient,
                                     "action": status.action, "status": status.status,
                                     "diagnostic": status.diagnostic},
            )
            created = created or applied
        counts["applied" if created else "duplicate"] += 1


class Command(BaseCommand):
    help = "Lit les avis de non-remise (DSN) d'une boîte IMAP ou Maildir et les applique aux envois."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--maildir", help="Chemin d'une boîte Maildir.")
        source.add_argument("--imap", help="imaps://utilisateur:motdepasse@serveur[:port]/DOSSIER")
        parser.add_argument("--delete", action="store_true",
                            help="Supprimer les messages traités au lieu de les marquer lus.")

    def handle(self, *args, **options):
        counts = {key: 0 for key in ("applied", "duplicate", "forged", "unsigned", "unknown",
                                     "not_a_report")}
        if options["maildir"]:
            self.read_maildir(options["maildir"], counts, delete=options["delete"])
        else:
            self.read_imap(options["imap"], counts, delete=options["delete"])
        self.stdout.write(
            f"Événements appliqués : {counts['applied']} ; déjà connus : {counts['duplicate']} ; "
            f"ignorés — signature invalide : {counts['forged']}, sans adresse signée : "
            f"{counts['unsigned']}, envoi inconnu : {counts['unknown']}, pas un avis de remise : "
            f"{counts['not_a_report']}."
        )

    def read_maildir(self, path, counts, *, delete):
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in list(box.keys()):
            message = box.get_message(key)
            if "S" in message.get_flags() and not delete:
                continue
            apply_report(box.get_bytes(key), counts)
            if delete:
                box.remove(key)
            else:
                message.add_flag("S")
                message.set_subdir("cur")
                box[key] = message

    def read_imap(self, url, counts, *, delete):
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise CommandError("Adresse IMAP attendue : imaps://utilisateur:motdepasse@serveur/DOSSIER")
        client_class = imaplib.IMAP4_SSL if parts.scheme == "imaps" else imaplib.IMAP4
        try:
            client = client_class(parts.hostname, parts.port or (993 if parts.scheme == "imaps" else 143))
            client.login(unquote(parts.username or ""), unquote(parts.password or ""))
        except (OSError, imaplib.IMAP4.error) as exc:
            raise CommandError(f"Connexion IMAP impossible : {exc}") from exc
        try:
            folder = unquote(parts.path.lstrip("/")) or "INBOX"
            status, _ = client.select(folder)
            if status != "OK":
                raise CommandError(f"Dossier IMAP introuvable : {folder}")
            _, data = client.uid("search", None, "ALL" if delete else "UNSEEN")
            for uid in data[0].split():
                _, fetched = client.uid("fetch", uid, "(BODY.PEEK[])")
                raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
                if raw is None:
                    continue
                apply_report(raw, counts)
                client.uid("store", uid, "+FLAGS", "(\\Deleted)" if delete else "(\\Seen)")
            if delete:
                client.expunge()
        finally:
            try:
                client.logout()
            except (OSError, imaplib.IMAP4.error):
                logger.warning("Déconnexion IMAP impossible", exc_info=True)
