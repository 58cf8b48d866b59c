from django.core.management.base import BaseCommand, CommandError

from relance.gestimum.checks import ERROR, OK, check_gestimum
from relance.models import Customer

MARKS = {OK: "OK     ", ERROR: "ERREUR "}


class Command(BaseCommand):
    help = ("Vérifie la base Gestimum d'un client : connexion, version du serveur, tables et colonnes, "
            "champs personnalisés, échéances ouvertes et droits d'écriture (essayés puis annulés).")

    def add_arguments(self, parser):
        parser.add_argument("customer", help="identifiant (slug) du client")

    def handle(self, *args, customer, **options):
        try:
            found = Customer.objects.get(slug=customer)
        except Customer.DoesNotExist:
            raise CommandError(f"Aucun client « {customer} » (identifiant inconnu).") from None
        self.stdout.write(f"Vérification de la base Gestimum de « {found.name} » :")
        report = check_gestimum(found.gestimum_url, timezone=found.timezone)
        for result in report.results:
            mark = MARKS.get(result.status, "ATTENTION ")
            self.stdout.write(f"  {mark}[{result.step}] {result.message}")
        if not report.ok:
            errors = sum(1 for r in report.results if r.status == ERROR)
            raise CommandError(f"{errors} problème(s) à corriger avant la mise en service (voir ci-dessus).")
        self.stdout.write("La base Gestimum est prête pour EasyRelance.")
