"""Entry points for django-q2 workers: thin wrappers around the billing services."""

from datetime import date

from .services import generate_month, previous_month


def generate_monthly_statements(month=None):
    """Drafts of last month's statements for every contract (run on the 1st by the schedule).

    Drafts, not issued invoices: staff check them and issue them from the admin,
    because an issued invoice can only be corrected by a credit note.
    """
    month = date.fromisoformat(month) if isinstance(month, str) else (month or previous_month())
    statements, errors = generate_month(month)
    summary = f"{len(statements)} relevé(s) pour {month:%m/%Y}"
    if errors:
        summary += f", {len(errors)} erreur(s) : " + " ; ".join(errors)
    return summary
