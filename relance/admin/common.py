"""What the admin pages share: status badges, durations, short texts."""

from django.utils.html import format_html

from ..models import Dispatch, TaskRun

# Badge colours: a failed or partial run must stand out in a long list.
STATUS_COLOURS = {
    TaskRun.Status.SUCCEEDED: "#2e7d32", TaskRun.Status.PARTIAL: "#ef6c00",
    TaskRun.Status.FAILED: "#c62828", TaskRun.Status.RUNNING: "#1565c0",
    Dispatch.Status.SENT: "#2e7d32", Dispatch.Status.DELIVERED: "#2e7d32",
    Dispatch.Status.DIVERTED: "#6a1b9a", Dispatch.Status.NEEDS_REVIEW: "#ef6c00",
    Dispatch.Status.BOUNCED: "#c62828", Dispatch.Status.REJECTED: "#c62828",
    Dispatch.Status.FAILED: "#c62828", Dispatch.Status.COMPLAINED: "#c62828",
}
def badge(value, label):
    if not value:
        return "—"
    colour = STATUS_COLOURS.get(value, "#616161")
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
        'white-space:nowrap">{}</span>', colour, label,
    )


def format_duration(delta):
    if delta is None:
        return "—"
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def truncate(text, length=120):
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[: length - 1] + "…"
