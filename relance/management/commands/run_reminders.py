from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from relance.engine import TaskError, TaskRunner, group_key, run_task, summarize
from relance.formatting import money
from relance.gestimum.gateway import GestimumUnavailable
from relance.gestimum.selection import SelectionError
from relance.models import Customer, ReminderTask, TaskRun
from relance.scheduling import TaskAlreadyRunning


class Command(BaseCommand):
    help = "Exécute maintenant une tâche de relance, ou toutes les tâches actives d'un client."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--task", type=int, help="identifiant de la tâche")
        target.add_argument("--customer", help="identifiant (slug) du client : toutes ses tâches actives")
        parser.add_argument("--dry-run", action="store_true",
                            help="montrer ce qui serait envoyé, sans rien envoyer ni enregistrer")

    def handle(self, *args, task=None, customer=None, dry_run=False, **options):
        if task is not None:
            tasks = list(ReminderTask.objects.select_related("customer").filter(pk=task))
            if not tasks:
                raise CommandError(f"Aucune tâche n° {task}.")
        else:
            try:
                found = Customer.objects.get(slug=customer)
            except Customer.DoesNotExist:
                raise CommandError(f"Aucun client « {customer} ».") from None
            tasks = list(found.tasks.select_related("customer").filter(active=True).order_by("level", "pk"))
            if not tasks:
                raise CommandError(f"Le client « {customer} » n'a aucune tâche active.")
        failed = False
        for reminder_task in tasks:
            if dry_run:
                self.dry_run(reminder_task)
                continue
            try:
                run = run_task(reminder_task.pk, origin=TaskRun.Origin.COMMAND)
            except TaskAlreadyRunning as exc:
                self.stdout.write(str(exc) + "\n")
                continue
            self.stdout.write(summarize(run) + "\n")
            failed |= run.status == TaskRun.Status.FAILED
        if failed:
            raise CommandError("Au moins une tâche a échoué : voir les erreurs ci-dessus.")

    def dry_run(self, task):
        runner = TaskRunner(task)
        actions = Counter()
        emails = set()  # one e-mail per debtor and recipients when the task groups
        self.stdout.write(f"Simulation — tâche « {task.name} » (niveau {task.level}), rien n'est envoyé :")
        try:
            for item in runner.plan_all():
                actions[item.action] += 1
                if item.action == "email" and task.group_by_debtor:
                    emails.add(group_key(item))
                echeance = item.candidate.echeance
                target = ", ".join(item.to) if item.action == "email" else item.reason
                self.stdout.write(
                    f"  {item.action:6} {echeance.piece:12} {item.candidate.tiers.name[:30]:30} "
                    f"{money(echeance.remaining):>14}  {target}"
                )
        except (GestimumUnavailable, SelectionError, TaskError) as exc:
            raise CommandError(str(exc)) from exc
        count = len(emails) if task.group_by_debtor else actions["email"]
        grouped = f" ({actions['email']} documents)" if count != actions["email"] else ""
        self.stdout.write(
            f"  => {count} e-mail(s){grouped}, {actions['divert']} réacheminement(s), "
            f"{actions['skip']} ignorée(s)\n"
        )
