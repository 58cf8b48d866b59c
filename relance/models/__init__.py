"""Customer companies, their reminder tasks, and the record of every send."""

from .pauses import PauseIndex, ReminderPause
from .sends import DeliveryEvent, Dispatch, SuppressedAddress
from .tasks import (
    AddressSource,
    Criterion,
    Customer,
    FixedAttachment,
    InvoiceTemplate,
    ReminderTask,
    TaskRun,
    attachment_upload_to,
    validate_cron,
    validate_timezone,
)

__all__ = [
    "AddressSource", "Criterion", "Customer", "DeliveryEvent", "Dispatch", "FixedAttachment",
    "InvoiceTemplate", "PauseIndex", "ReminderPause", "ReminderTask", "SuppressedAddress", "TaskRun",
    "attachment_upload_to", "validate_cron", "validate_timezone",
]
