"""Bounces of plain SMTP sends: signed VERP return paths and RFC 3464 delivery reports.

Plain SMTP has no webhooks. Each message leaves with its own envelope sender
``bounce+<dispatch id>-<signature>@<BOUNCE_DOMAIN>``, so the delivery status
notification (DSN) a remote server sends back names the Dispatch. The
signature (HMAC of the id with SECRET_KEY) means nobody can forge a bounce that
suppresses an address: a report without a valid signed address is ignored.
Hex is used throughout because some MTAs lower-case local parts.
"""

import email
import re
from dataclasses import dataclass, field
from datetime import UTC
from email import policy
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "relance.dsn.verp"
SIGNATURE_LENGTH = 16
VERP_RE = re.compile(r"bounce\+([0-9a-f]{1,16})-([0-9a-f]{16})@([a-z0-9.-]+)", re.IGNORECASE)
STATUS_RE = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
# Where an MTA writes the address a report was delivered to, most reliable first.
ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To")


def _signature(dispatch_id):
    return salted_hmac(SALT, f"{dispatch_id:x}").hexdigest()[:SIGNATURE_LENGTH]


def verp_address(dispatch_id):
    """The signed envelope sender of the message of one Dispatch."""
    return f"bounce+{dispatch_id:x}-{_signature(dispatch_id)}@{settings.BOUNCE_DOMAIN}"


def verify_verp(address):
    """Dispatch id named by a signed VERP address, or None if absent, unsigned or forged."""
    match = VERP_RE.search(address or "")
    if not match:
        return None
    dispatch_id = int(match.group(1), 16)
    domain = match.group(3).lower()
    if domain != settings.BOUNCE_DOMAIN.lower():
        return None
    if not constant_time_compare(match.group(2).lower(), _signature(dispatch_id)):
        return None
    return dispatch_id


@dataclass
class RecipientStatus:
    recipient: str
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # e.g. 5.1.1
    diagnostic: str

    @property
    def hard(self):
        return self.status.startswith("5")


@dataclass
class DeliveryReport:
    """What one returned message says, and which Dispatch it belongs to."""

    dispatch_id: int | None
    verp_found: bool  # a bounce address was present, signed or not
    report_id: str
    arrived_at: object
    recipients: list = field(default_factory=list)


def _headers_text(message, names):
    for name in names:
        for value in message.get_all(name) or []:
            yield str(value)


def _find_dispatch_id(message, raw_text):
    """(dispatch id or None, whether any bounce+ address was seen)."""
    candidates = list(_headers_text(message, ENVELOPE_HEADERS))
    # Some MTAs put it only in the report (X-Postfix-Sender) or the returned headers.
    candidates.append(raw_text)
    seen = False
    for text in candidates:
        for match in VERP_RE.finditer(text):
            seen = True
            dispatch_id = verify_verp(match.group(0))
            if dispatch_id is not None:
                return dispatch_id, True
    return None, seen


def _status_blocks(message):
    """Per-recipient header blocks of the message/delivery-status part(s)."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            # The first block is per-message (Reporting-MTA...), the others per recipient.
            blocks = payload
        else:
            blocks = [email.message_from_string(chunk, policy=policy.default)
                      for chunk in re.split(r"\r?\n\r?\n", str(payload).strip()) if chunk.strip()]
        for block in blocks:
            if block.get("Final-Recipient") or block.get("Original-Recipient"):
                yield block


def _address(value):
    # "rfc822; someone@example.org" -> someone@example.org
    text = str(value or "")
    return text.split(";", 1)[1].strip() if ";" in text else text.strip()


def _unfold(value):
    return " ".join(str(value or "").split())


def parse_report(raw):
    """A DeliveryReport from the bytes of one message, or None if it is not a DSN."""
    message = email.message_from_bytes(raw, policy=policy.default)
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    recipients = []
    for block in _status_blocks(message):
        recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        action = str(block.get("Action") or "").strip().lower()
        diagnostic = _unfold(block.get("Diagnostic-Code"))
        if diagnostic.lower().startswith("smtp;"):
            diagnostic = diagnostic[5:].strip()
        status = str(block.get("Status") or "").strip()
        if not STATUS_RE.fullmatch(status):
            found = STATUS_RE.search(diagnostic)
            status = found.group(0) if found else ("5.0.0" if action == "failed" else "4.0.0")
        recipients.append(RecipientStatus(recipient=recipient, action=action, status=status,
                                          diagnostic=diagnostic))
    if not recipients:
        return None
    dispatch_id, seen = _find_dispatch_id(message, raw.decode("utf-8", errors="replace"))
    try:
        arrived_at = parsedate_to_datetime(str(message["Date"]))
        if timezone.is_naive(arrived_at):
            arrived_at = arrived_at.replace(tzinfo=UTC)
    except (TypeError, ValueError):
        arrived_at = timezone.now()
    return DeliveryReport(dispatch_id=dispatch_id, verp_found=seen,
                          report_id=str(message.get("Message-ID") or "").strip(),
                          arrived_at=arrived_at, recipients=recipients)
