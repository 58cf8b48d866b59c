"""Business days: weekends and French public holidays, Alsace-Moselle included on request.

Named ``business_calendar`` so it never shadows the standard library's ``calendar``.
"""

from datetime import date, timedelta
from functools import lru_cache

import holidays

# holidays' subdivision for Moselle; Bas-Rhin and Haut-Rhin have the same two
# extra days (Good Friday, 26 December), so one code covers Alsace-Moselle.
ALSACE_MOSELLE_SUBDIV = "57"


@lru_cache(maxsize=64)
def _french_holidays(year, alsace_moselle):
    subdiv = ALSACE_MOSELLE_SUBDIV if alsace_moselle else None
    return frozenset(holidays.France(years=year, subdiv=subdiv))


def is_holiday(day: date, *, alsace_moselle=False):
    return day in _french_holidays(day.year, alsace_moselle)


def is_business_day(day: date, *, skip_weekends=True, skip_holidays=True, alsace_moselle=False):
    if skip_weekends and day.weekday() >= 5:
        return False
    if skip_holidays and is_holiday(day, alsace_moselle=alsace_moselle):
        return False
    return True


def next_business_day(day: date, **rules):
    """The first business day strictly after ``day``."""
    day += timedelta(days=1)
    # A year always has business days: the bound only guards against a bad rule set.
    for _ in range(366):
        if is_business_day(day, **rules):
            return day
        day += timedelta(days=1)
    raise ValueError("Aucun jour ouvré trouvé dans l'année qui suit.")


def task_rules(task):
    """The calendar rules of a reminder task, as keyword arguments."""
    return {"skip_weekends": task.skip_weekends, "skip_holidays": task.skip_holidays,
            "alsace_moselle": task.alsace_moselle}
