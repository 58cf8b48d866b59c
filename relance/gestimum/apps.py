from django.apps import AppConfig


class GestimumConfig(AppConfig):
    name = "relance.gestimum"
    label = "gestimum"
    verbose_name = "Gestimum (base du client, jamais migrée)"
