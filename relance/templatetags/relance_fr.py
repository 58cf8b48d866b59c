"""French formatting filters for invoice and message templates.

Loaded automatically in invoice print models (``relance.rendering`` adds it
to the engine's builtins); elsewhere use ``{% load relance_fr %}``.

    {{ document.total_ttc|money }}      1 234,56 €
    {{ line.quantity|quantity }}        1,5
    {{ line.unit_price|unit_price }}    12,3456
    {{ line.vat_rate|percent }}         5,5 %
    {{ value|number }} / {{ value|number:3 }}
    {{ echeance.due_date|date_fr }}     03/12/2026
    {{ today|date_long_fr }}            3 décembre 2026

Like Django's own filters, they never break a page: a value that cannot be
formatted is shown as it is, so a mistake in a print model shows up in the
preview instead of failing the nightly run.
"""

import functools

from django import template

from relance import formatting

register = template.Library()


def _forgiving(func):
    # functools.wraps matters: Django reads the wrapped signature to check filter arguments.
    @functools.wraps(func)
    def wrapper(value, *args):
        try:
            return func(value, *args)
        except (ValueError, TypeError, ArithmeticError):
            return value

    return wrapper


@register.filter(is_safe=True)
@_forgiving
def money(value):
    return formatting.money(value)


@register.filter(is_safe=True)
@_forgiving
def number(value, places=2):
    return formatting.number(value, places)


@register.filter(is_safe=True)
@_forgiving
def quantity(value):
    return formatting.quantity(value)


@register.filter(is_safe=True)
@_forgiving
def unit_price(value):
    return formatting.unit_price(value)


@register.filter(is_safe=True)
@_forgiving
def percent(value):
    return formatting.percent(value)


@register.filter(is_safe=True)
@_forgiving
def date_fr(value):
    return formatting.date_fr(value)


@register.filter(is_safe=True)
@_forgiving
def date_long_fr(value):
    return formatting.date_long_fr(value)
