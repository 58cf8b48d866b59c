from django.core.management.base import BaseCommand

from relance.scheduling import sync_all_schedules


class Command(BaseCommand):
    help = ("Recrée, met à jour ou supprime la planification django-q2 de chaque tâche de relance "
            "(à lancer après une restauration de base ou un import).")

    def handle(self, *args, **options):
        kept, removed = sync_all_schedules()
        self.stdout.write(f"{kept} planification(s) à jour, {removed} planification(s) orpheline(s) "
                          "supprimée(s).\n")
