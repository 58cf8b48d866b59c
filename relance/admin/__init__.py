"""The EasyRelance back-office (registered on import by Django's admin autodiscovery)."""

from . import pauses, sends, tasks  # noqa: F401
