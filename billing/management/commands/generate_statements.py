from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing.selectors import BillingError
from billing.services import (
    SCHEDULE_CRON,
    SCHEDULE_FUNC,
    ensure_monthly_schedule,
    generate_month,
    generate_statement,
    issue_statement,
    previous_month,
)
from relance.formatting import money
from relance.models import Customer


def _month(value):
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError:
        raise CommandError(f"Mois invalide : « {value} » (format AAAA-MM, ex. 2026-03).") from None


class Command(BaseCommand):
    help = "Génère les relevés mensuels (brouillons) du mois dernier, ou du mois donné."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="mois facturé, AAAA-MM (défaut : le mois dernier)")
        parser.add_argument("--customer", help="identifiant (slug) d'un seul client")
        parser.add_argument("--issue", action="store_true",
                            help="émettre aussi les brouillons (numérotation définitive et PDF)")
        parser.add_argument("--install-schedule", action="store_true",
                            help=f"créer ou mettre à jour la planification django-q2 ({SCHEDULE_CRON}) "
                            "puis s'arrêter")

    def handle(self, *args, month=None, customer=None, issue=False, install_schedule=False, **options):
        if install_schedule:
            schedule = ensure_monthly_schedule()
            self.stdout.write(f"Planification « {schedule.name} » : {SCHEDULE_FUNC}, cron {schedule.cron}.")
            return
        month = _month(month) if month else previous_month()
        if customer:
            try:
                found = Customer.objects.get(slug=customer)
            except Customer.DoesNotExist:
                raise CommandError(f"Aucun client « {customer} ».") from None
            try:
                statement = generate_statement(found, month)
                if statement is not None and issue and not statement.is_final:
                    statement = issue_statement(statement)
            except BillingError as exc:
                raise CommandError(str(exc)) from None
            statements, errors = ([statement] if statement else []), []
        else:
            statements, errors = generate_month(month, issue=issue)
        for statement in statements:
            self.stdout.write(
                f"{statement} : {statement.get_status_display()}, {statement.billed_units} document(s), "
                f"{money(statement.total_ht)} HT, {money(statement.total_ttc)} TTC")
        if not statements:
            self.stdout.write(f"Aucun relevé pour {month:%m/%Y}.")
        if errors:
            raise CommandError("\n".join(errors))
