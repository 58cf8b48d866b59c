"""What a task asks of Gestimum, as plain data, and how it becomes ORM filters.

The ORM compiles every filter for the customer's backend (SQL Server in
production), so values are always bound parameters; column names come only
from the model or from the live database's introspection.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    F,
    IntegerField,
    Q,
    Value,
)
from django.db.models.functions import Coalesce, Trim
from django.utils import timezone

from .columns import SiblingColumn

COLUMN_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

# Where a table's columns are reached from ECHEANCES: a declared, non-key field
# of that table, so that the ORM makes the join (see SiblingColumn).
TABLE_ANCHORS = {
    "ECHEANCES": "ech_piece",
    "DOCUMENTS": "document__doc_piece",
    "TIERS": "tiers__pcf_rs",
}

TRUE_WORDS = {"1", "oui", "o", "vrai", "true", "yes", "x"}
FALSE_WORDS = {"0", "non", "n", "faux", "false", "no", ""}


class SelectionError(ValueError):
    """A criterion that cannot be applied; the message is French and says what to fix."""


@dataclass(frozen=True)
class CriterionSpec:
    table: str
    column: str
    operator: str
    value: str = ""


@dataclass(frozen=True)
class Selection:
    trigger: str = "due_date"
    days: int = 0
    max_days: int | None = None
    doc_stypes: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    subfamilies: tuple[str, ...] = ()
    representatives: tuple[str, ...] = ()
    payment_modes: tuple[str, ...] = ()
    min_remaining: Decimal | None = None
    tiers_include: tuple[str, ...] = ()
    tiers_exclude: tuple[str, ...] = ()
    criteria: tuple[CriterionSpec, ...] = ()
    # Columns whose values the addressing needs, as (TABLE, COLUMN).
    address_columns: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # Contacts are read only when an address source or the message uses them.
    needs_contacts: bool = True


def split_codes(text, separators=",;\n"):
    """'F, A ;B' -> ('F', 'A', 'B'): staff type code lists by hand."""
    parts = re.split(f"[{re.escape(separators)}]", text or "")
    return tuple(part.strip() for part in parts if part.strip())


def start_of_day(day, tz):
    return timezone.make_aware(datetime.combine(day, time.min), tz)


def remaining_expression():
    """ECH_ARECEV - ECH_RECU, a NULL received amount counting as nothing received."""
    money = DecimalField(max_digits=20, decimal_places=4)
    return Coalesce(F("ech_arecev"), Value(Decimal("0")), output_field=money) - Coalesce(
        F("ech_recu"), Value(Decimal("0")), output_field=money
    )


def unpaid_filter(*, credit_note_stype):
    """Open échéances of sales documents that are not credit notes.

    ECH_SOLDER is a nullable bit: NULL means not settled.
    """
    not_settled = Q(settled=False)
    not_credit_note = Q(document__isnull=True) | ~Q(doc_stype_trim=credit_note_stype) | Q(
        doc_stype_trim__isnull=True
    )
    return not_settled & Q(remaining__gt=0) & not_credit_note


def base_annotations():
    return {
        "settled": Coalesce(F("ech_solder"), Value(False), output_field=BooleanField()),
        "remaining": remaining_expression(),
        "doc_stype_trim": Trim("document__doc_stype"),
    }


def date_window(selection, *, today, tz):
    """The ECH_DATE (or ECH_DTEMIS) range a task's trigger selects on ``today``."""
    if selection.trigger == "document_date":
        column = "ech_dtemis"
        latest = today - timedelta(days=selection.days)
        earliest = today - timedelta(days=selection.max_days) if selection.max_days else None
    elif selection.days >= 0:
        column = "ech_date"
        latest = today - timedelta(days=selection.days)
        earliest = today - timedelta(days=selection.max_days) if selection.max_days else None
    else:
        # Courtesy reminder: due within the next |days| days, not yet due.
        column = "ech_date"
        latest = today + timedelta(days=-selection.days)
        earliest = today
    q = Q(**{f"{column}__lt": start_of_day(latest + timedelta(days=1), tz)})
    if earliest is not None:
        q &= Q(**{f"{column}__gte": start_of_day(earliest, tz)})
    return q


def fixed_criteria(selection):
    """Annotations and filters of the task's dedicated criteria (codes compared trimmed)."""
    annotations, q = {}, Q()
    coded = [
        ("doc_stypes", "document__doc_stype"),
        ("families", "tiers__fat_code"),
        ("subfamilies", "tiers__sft_code"),
        ("payment_modes", "reg_code"),
    ]
    for attribute, path in coded:
        values = getattr(selection, attribute)
        if values:
            name = f"{attribute}_trim"
            annotations[name] = Trim(path)
            q &= Q(**{f"{name}__in": list(values)})
    if selection.representatives:
        # The document's representative, or the tiers' when the document has none.
        annotations["rep_trim"] = Trim(Coalesce("document__rep_code", "tiers__rep_code"))
        q &= Q(rep_trim__in=list(selection.representatives))
    if selection.tiers_include or selection.tiers_exclude:
        annotations["pcf_trim"] = Trim("tiers_id")
        if selection.tiers_include:
            q &= Q(pcf_trim__in=list(selection.tiers_include))
        if selection.tiers_exclude:
            q &= ~Q(pcf_trim__in=list(selection.tiers_exclude))
    if selection.min_remaining is not None:
        q &= Q(remaining__gte=selection.min_remaining)
    return annotations, q


def column_expression(table, real_name, internal_type):
    anchor = TABLE_ANCHORS[table]
    if internal_type in ("CharField", "TextField"):
        return SiblingColumn(anchor, real_name, CharField(null=True)), "text"
    if internal_type == "BooleanField":
        # Gestimum flags are nullable bits: NULL reads as false.
        column = SiblingColumn(anchor, real_name, BooleanField(null=True))
        return Coalesce(column, Value(False), output_field=BooleanField()), "bool"
    if internal_type in ("IntegerField", "SmallIntegerField", "BigIntegerField", "PositiveIntegerField"):
        return SiblingColumn(anchor, real_name, IntegerField(null=True)), "int"
    if internal_type in ("DecimalField", "FloatField"):
        return SiblingColumn(anchor, real_name, DecimalField(max_digits=20, decimal_places=4,
                                                            null=True)), "decimal"
    if internal_type == "DateTimeField":
        return SiblingColumn(anchor, real_name, DateTimeField(null=True)), "datetime"
    if internal_type == "DateField":
        return SiblingColumn(anchor, real_name, DateField(null=True)), "date"
    return None, internal_type


RELATIVE_DATE_RE = re.compile(r"(?:j|aujourd'hui|aujourdhui)\s*(?:([+-])\s*(\d{1,5}))?", re.IGNORECASE)


def parse_date_value(raw, today, label):
    """A criterion date: « 31/12/2026 », « 2026-12-31 », or relative to the run's day:
    « J » (aujourd'hui), « J-30 », « J+7 »."""
    text = raw.strip().replace("’", "'")
    relative = RELATIVE_DATE_RE.fullmatch(text)
    if relative:
        sign, days = relative.groups()
        offset = int(days or 0) * (-1 if sign == "-" else 1)
        return today + timedelta(days=offset)
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise SelectionError(f"{label} : « {raw.strip()} » n'est pas une date. Écrivez jj/mm/aaaa "
                         "(31/12/2026) ou une date relative au jour de l'exécution : J, J-30, J+7.")


def date_criterion(name, op, raw, *, kind, today, tz, label):
    """Q for a date or datetime column: whole days of the customer's calendar."""
    if op == "empty":
        return Q(**{f"{name}__isnull": True})
    if op == "not_empty":
        return Q(**{f"{name}__isnull": False})
    if op not in ("eq", "ne", "lt", "gt"):
        raise SelectionError(f"{label} : pour une date, utilisez « est égal à », « est différent de », "
                             "« est inférieur à / avant le », « est supérieur à / après le », « est vide » "
                             "ou « n'est pas vide ».")
    day = parse_date_value(raw, today, label)
    if kind == "date":
        start, end = day, day + timedelta(days=1)
    else:
        start, end = start_of_day(day, tz), start_of_day(day + timedelta(days=1), tz)
    on_day = Q(**{f"{name}__gte": start, f"{name}__lt": end})
    if op == "eq":
        return on_day
    if op == "ne":
        return ~on_day | Q(**{f"{name}__isnull": True})
    if op == "lt":
        return Q(**{f"{name}__lt": start})
    return Q(**{f"{name}__gte": end})


def convert_value(raw, kind, label):
    raw = raw.strip()
    if kind == "text":
        return raw
    if kind == "bool":
        word = raw.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise SelectionError(f"{label} : « {raw} » n'est pas une valeur oui/non (utilisez 1 ou 0).")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise SelectionError(f"{label} : « {raw} » n'est pas un nombre entier.") from None
    if kind == "decimal":
        try:
            return Decimal(raw.replace(" ", "").replace(",", "."))
        except InvalidOperation:
            raise SelectionError(f"{label} : « {raw} » n'est pas un nombre.") from None
    raise SelectionError(f"{label} : type de colonne non pris en charge.")


def criterion_filter(index, spec, real_name, internal_type, *, today=None, tz=None):
    """Annotations and Q for one generic criterion on a checked column.

    ``today`` and ``tz`` (the run's day and the customer's time zone) place date
    criteria, relative ones (« J-30 ») included."""
    label = f"Critère {spec.table}.{spec.column}"
    expression, kind = column_expression(spec.table, real_name, internal_type)
    name = f"crit_{index}"
    if expression is None:
        raise SelectionError(f"{label} : les colonnes de type {kind} ne sont pas prises en charge.")
    if kind in ("date", "datetime"):
        q = date_criterion(name, spec.operator, spec.value, kind=kind, today=today or timezone.localdate(),
                           tz=tz or timezone.get_default_timezone(), label=label)
        return {name: expression}, q
    if kind == "text":
        expression = Trim(expression)
    annotations = {name: expression}
    op = spec.operator
    if op == "empty":
        q = Q(**{f"{name}__isnull": True})
        if kind == "text":
            q |= Q(**{name: ""})
        return annotations, q
    if op == "not_empty":
        q = Q(**{f"{name}__isnull": False})
        if kind == "text":
            q &= ~Q(**{name: ""})
        return annotations, q
    if op == "contains":
        if kind != "text":
            raise SelectionError(f"{label} : « contient » ne s'applique qu'aux colonnes de texte.")
        return annotations, Q(**{f"{name}__icontains": spec.value.strip()})
    if op == "in":
        values = [convert_value(v, kind, label) for v in split_codes(spec.value, ";")]
        if not values:
            raise SelectionError(f"{label} : la liste de valeurs est vide.")
        return annotations, Q(**{f"{name}__in": values})
    value = convert_value(spec.value, kind, label)
    if op == "eq":
        return annotations, Q(**{name: value})
    if op == "ne":
        # "Different from X" includes rows where the column is empty.
        return annotations, ~Q(**{name: value}) | Q(**{f"{name}__isnull": True})
    if op in ("lt", "gt"):
        if kind not in ("int", "decimal"):
            raise SelectionError(f"{label} : « inférieur à » et « supérieur à » s'appliquent aux nombres "
                                 "et aux dates, pas aux colonnes de texte ni aux cases à cocher.")
        return annotations, Q(**{f"{name}__{op}": value})
    raise SelectionError(f"{label} : opérateur inconnu « {op} ».")


def days_between(later: date, earlier: date | None):
    if earlier is None:
        return 0
    return (later - earlier).days
