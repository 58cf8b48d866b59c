from django.apps import AppConfig


class RelanceConfig(AppConfig):
    name = "relance"
    verbose_name = "Relances"

    def ready(self):
        # Connect the schedule receivers and the receiver of anymail's tracking signal.
        from . import signals, tracking  # noqa: F401
