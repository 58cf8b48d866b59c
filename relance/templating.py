"""Subject and body of the reminder e-mails, written by staff in Django template syntax.

Staff type these templates in the admin, so they are compiled by a dedicated,
locked-down engine: builtin tags and filters only, no loader, no autoescape
(the output is a plain-text e-mail), and every variable must be one of the
documented ``VARIABLES``. A typo such as ``{{ montant_du }}`` would otherwise
render as an empty string in thousands of e-mails without anyone noticing.
"""

import difflib
import re
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Lexer, TokenType, Variable, VariableNode
from django.template.defaulttags import (
    CycleNode,
    FilterNode,
    FirstOfNode,
    ForNode,
    IfChangedNode,
    IfNode,
    NowNode,
    TemplateLiteral,
    WidthRatioNode,
    WithNode,
)

from .formatting import date_fr, money, percent

# Documented variables, in the order the admin help lists them.
VARIABLES = {
    "tiers_nom": "Raison sociale du tiers (le client relancé)",
    "tiers_code": "Code du tiers dans Gestimum",
    "document_numero": "Numéro de la facture (n° de pièce)",
    "document_date": "Date de la facture (jj/mm/aaaa)",
    "echeance_date": "Date d'échéance (jj/mm/aaaa)",
    "montant": "Montant de l'échéance, ex. « 1 234,56 € »",
    "montant_restant": "Reste dû sur l'échéance",
    "montant_regle": "Montant déjà réglé sur l'échéance",
    "jours_retard": "Nombre de jours de retard (entier ; négatif = jours avant l'échéance)",
    "niveau": "Niveau de relance de la tâche (entier)",
    "signature": "Signature des e-mails du client (fiche client)",
    "societe": "Raison sociale du client EasyRelance (l'expéditeur)",
    "date_du_jour": "Date du jour (jj/mm/aaaa)",
    "penalites_taux": "Taux des pénalités de retard (taux BCE + marge), ex. « 12,15 % »",
    "penalites_montant": "Intérêts de retard calculés sur le reste dû (0,00 € si pas de retard)",
    "indemnite_recouvrement": "Indemnité forfaitaire pour frais de recouvrement, ex. « 40,00 € »",
    "contact_nom": "Nom du premier contact du tiers (vide s'il n'y en a pas)",
    "mode_reglement": "Mode de règlement de l'échéance",
    "factures": "Les factures de l'e-mail, à parcourir avec {% for facture in factures %} : "
                "facture.numero, facture.date, facture.echeance, facture.montant, facture.montant_restant, "
                "facture.jours_retard (une seule hors mode « un e-mail par débiteur » ; les variables "
                "ci-dessus décrivent alors la première)",
    "nombre_factures": "Nombre de factures de l'e-mail (entier)",
    "total_restant": "Total restant dû sur les factures de l'e-mail",
}

# Names the template language itself provides.
_LANGUAGE_NAMES = {"True", "False", "None"}

ALLOWED_TAGS = {
    "if", "elif", "else", "endif",
    "for", "empty", "endfor",
    "with", "endwith",
    "comment", "endcomment",
    "now",
    "spaceless", "endspaceless",
    "firstof",
    "cycle", "resetcycle",
    "ifchanged", "endifchanged",
    "filter", "endfilter",
    "templatetag",
    "widthratio",
}
# Tags refused with a specific explanation: they reach files, URLs, request
# data or debugging output, none of which belongs in an e-mail text.
FORBIDDEN_TAGS = {
    "load": "le chargement de bibliothèques de balises n'est pas permis",
    "include": "l'inclusion d'un autre gabarit n'est pas permise",
    "extends": "l'héritage de gabarit n'est pas permis",
    "block": "les blocs d'héritage de gabarit ne sont pas permis",
    "url": "les liens vers l'application ne sont pas permis",
    "csrf_token": "cette balise de formulaire web n'a pas de sens dans un e-mail",
    "debug": "l'affichage des informations de débogage n'est pas permis",
    "ssi": "l'inclusion de fichiers du serveur n'est pas permise",
}

DEFAULT_SUBJECT = "Relance : facture {{ document_numero }} échue le {{ echeance_date }}"

DEFAULT_BODY = """\
{% if contact_nom %}Bonjour {{ contact_nom }},{% else %}Madame, Monsieur,{% endif %}

{% if jours_retard > 0 %}Sauf erreur ou omission de notre part, la facture n° {{ document_numero }} \
du {{ document_date }}, arrivée à échéance le {{ echeance_date }}, reste impayée à ce jour pour \
un montant de {{ montant_restant }}.{% else %}Nous nous permettons de vous rappeler que la facture \
n° {{ document_numero }} du {{ document_date }} arrive à échéance le {{ echeance_date }}, pour un \
montant de {{ montant_restant }}.{% endif %}

Vous trouverez ci-joint une copie de cette facture. Nous vous remercions de bien vouloir procéder \
à son règlement dans les meilleurs délais.

Si votre paiement a été effectué entre-temps, nous vous prions de ne pas tenir compte de ce message.

Pour rappel, conformément au Code de commerce (articles L441-10 et D441-5), tout retard de paiement \
peut entraîner des pénalités au taux annuel de {{ penalites_taux }}, ainsi qu'une indemnité \
forfaitaire pour frais de recouvrement de {{ indemnite_recouvrement }}.

Notre service comptable reste à votre disposition pour toute question.

Nous vous prions d'agréer nos sincères salutations.

{% if signature %}{{ signature }}{% else %}{{ societe }}{% endif %}
"""

DEFAULT_GROUP_SUBJECT = ("{% if nombre_factures > 1 %}Relance : {{ nombre_factures }} factures échues, "
                         "{{ total_restant }}{% else %}Relance : facture {{ document_numero }} échue le "
                         "{{ echeance_date }}{% endif %}")

DEFAULT_GROUP_BODY = """\
{% if contact_nom %}Bonjour {{ contact_nom }},{% else %}Madame, Monsieur,{% endif %}

Sauf erreur ou omission de notre part, {% if nombre_factures > 1 %}les factures suivantes restent \
impayées à ce jour{% else %}la facture suivante reste impayée à ce jour{% endif %} :

{% for facture in factures %}- facture n° {{ facture.numero }} du {{ facture.date }}, échue le \
{{ facture.echeance }} : {{ facture.montant_restant }} ({{ facture.jours_retard }} jours de retard)
{% endfor %}
Total restant dû : {{ total_restant }}.

Vous trouverez ci-joint une copie de {% if nombre_factures > 1 %}ces factures{% else %}cette \
facture{% endif %}. Nous vous remercions de bien vouloir procéder à leur règlement dans les meilleurs \
délais.

Si votre paiement a été effectué entre-temps, nous vous prions de ne pas tenir compte de ce message.

Pour rappel, conformément au Code de commerce (articles L441-10 et D441-5), tout retard de paiement \
peut entraîner des pénalités au taux annuel de {{ penalites_taux }}, ainsi qu'une indemnité \
forfaitaire pour frais de recouvrement de {{ indemnite_recouvrement }} par facture.

Notre service comptable reste à votre disposition pour toute question.

Nous vous prions d'agréer nos sincères salutations.

{% if signature %}{{ signature }}{% else %}{{ societe }}{% endif %}
"""

SUBJECT_MAX_LENGTH = 300

# builtins only: Engine always adds defaulttags, defaultfilters and loader_tags;
# loader_tags ({% include %}, {% extends %}) is refused by the tag check below,
# and with no dirs nor loaders it could not reach a file anyway.
_ENGINE = Engine(
    dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=False,
    string_if_invalid="", debug=True,
)
_CENTS = Decimal("0.01")


def late_payment_rate():
    """Annual late-payment interest rate in percent (ECB rate + margin)."""
    return Decimal(settings.LATE_PAYMENT_ECB_RATE) + Decimal(settings.LATE_PAYMENT_MARGIN_POINTS)


def late_interest(*, remaining, days_late, rate=None):
    """Late interest owed on ``remaining`` after ``days_late`` days, rounded half-up to cents.

    Simple interest over a 365-day year, as French late-payment penalties are
    usually computed; nothing when the invoice is not late or nothing is owed.
    """
    rate = late_payment_rate() if rate is None else Decimal(rate)
    remaining = Decimal(remaining)
    if days_late <= 0 or remaining <= 0:
        return Decimal("0.00")
    interest = remaining * rate / Decimal(100) * Decimal(days_late) / Decimal(365)
    return interest.quantize(_CENTS, rounding=ROUND_HALF_UP)


def build_context(*, customer, task, candidate, today):
    """Variables for one échéance, amounts and dates already formatted in French."""
    echeance = candidate.echeance
    document = candidate.document
    invoice = invoice_line(candidate, today)
    contact = candidate.contacts[0].full_name if candidate.contacts else ""
    payment_mode = echeance.payment_mode or (document.payment_mode if document else "")
    return {
        "tiers_nom": candidate.tiers.name,
        "tiers_code": candidate.tiers.code,
        "document_numero": invoice["numero"],
        "document_date": invoice["date"],
        "echeance_date": invoice["echeance"],
        "montant": invoice["montant"],
        "montant_restant": invoice["montant_restant"],
        "montant_regle": money(echeance.received),
        "jours_retard": invoice["jours_retard"],
        "niveau": task.level,
        "signature": customer.signature,
        "societe": customer.name,
        "date_du_jour": date_fr(today),
        "penalites_taux": percent(late_payment_rate()),
        "penalites_montant": money(late_interest(remaining=echeance.remaining,
                                                 days_late=invoice["jours_retard"])),
        "indemnite_recouvrement": money(settings.RECOVERY_INDEMNITY),
        "contact_nom": contact,
        "mode_reglement": payment_mode or "",
        "factures": [invoice],
        "nombre_factures": 1,
        "total_restant": invoice["montant_restant"],
    }


def invoice_line(candidate, today):
    """One invoice of ``factures``: what a list of overdue invoices shows."""
    echeance, document = candidate.echeance, candidate.document
    issued = (document.date if document and document.date else None) or echeance.issued
    return {
        "numero": (document.piece if document else "") or echeance.piece,
        "date": date_fr(issued),
        "echeance": date_fr(echeance.due_date),
        "montant": money(echeance.amount),
        "montant_restant": money(echeance.remaining),
        "jours_retard": (today - echeance.due_date).days if echeance.due_date else 0,
    }


def build_group_context(*, customer, task, candidates, today):
    """Variables for one e-mail carrying several échéances of one debtor: the single-invoice
    variables describe the first one, ``factures`` lists them all."""
    context = build_context(customer=customer, task=task, candidate=candidates[0], today=today)
    context["factures"] = [invoice_line(candidate, today) for candidate in candidates]
    context["nombre_factures"] = len(candidates)
    context["total_restant"] = money(sum((c.echeance.remaining for c in candidates), Decimal("0")))
    return context


def default_templates(task):
    """(subject, body) used when the task leaves them blank."""
    if task.group_by_debtor:
        return DEFAULT_GROUP_SUBJECT, DEFAULT_GROUP_BODY
    return DEFAULT_SUBJECT, DEFAULT_BODY


# --- Compilation and checks ------------------------------------------------------------------


def _check_tags(source):
    """Refuse tags outside ``ALLOWED_TAGS`` before Django compiles anything."""
    in_comment = False
    for token in Lexer(source).tokenize():
        if token.token_type != TokenType.BLOCK or not token.contents.split():
            continue
        tag = token.contents.split()[0]
        # The body of {% comment %} is never rendered: whatever it holds is harmless.
        if in_comment:
            in_comment = tag != "endcomment"
            continue
        if tag == "comment":
            in_comment = True
        if tag in FORBIDDEN_TAGS:
            raise ValidationError(
                f"Balise interdite ligne {token.lineno} : {{% {tag} %}} — {FORBIDDEN_TAGS[tag]}."
            )
        if tag not in ALLOWED_TAGS:
            close = difflib.get_close_matches(tag, ALLOWED_TAGS, n=1)
            hint = f" (vouliez-vous dire {{% {close[0]} %}} ?)" if close else ""
            raise ValidationError(
                f"Balise non autorisée ligne {token.lineno} : {{% {tag} %}}{hint}. Balises permises : "
                "if, for, with, comment, now, spaceless, firstof, cycle, ifchanged, filter."
            )


# Django's commonest compile errors, said in French; anything else keeps Django's wording.
_SYNTAX_MESSAGES = [
    (re.compile(r"Unclosed tag on line \d+: '(\w+)'. Looking for one of: (.+)\."),
     "balise {{% {0} %}} non fermée (attendu : {1})"),
    (re.compile(r"Invalid filter: '(\w+)'"), "filtre inconnu « {0} »"),
    (re.compile(r"Unexpected end of expression in if tag"), "condition {{% if %}} incomplète"),
    (re.compile(r"Empty variable tag on line \d+"), "variable vide {{{{ }}}}"),
    (re.compile(r"Variables and attributes may not begin with underscores: '(.+)'"),
     "les noms ne peuvent pas commencer par _ (« {0} »)"),
]


def _syntax_error(exc):
    text = str(exc)
    for pattern, french in _SYNTAX_MESSAGES:
        match = pattern.search(text)
        if match:
            text = french.format(*match.groups())
            break
    info = getattr(exc, "template_debug", None) or {}
    where = f" ligne {info['line']}" if info.get("line") else ""
    near = info.get("during", "").strip()
    near = f", près de « {near} »" if near else ""
    return ValidationError(f"Erreur de syntaxe dans le modèle{where}{near} : {text.rstrip('.')}.")


@lru_cache(maxsize=128)
def _compile(source):
    _check_tags(source)
    try:
        return _ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from exc


def _root_name(expression):
    """Root variable name of a FilterExpression or Variable, None for a literal."""
    var = expression.var if isinstance(expression, FilterExpression) else expression
    if isinstance(var, Variable) and var.lookups:
        return var.lookups[0]
    return None


def _expressions(filter_expression):
    """The expression itself and the variables passed as filter arguments."""
    yield filter_expression
    for _func, args in filter_expression.filters:
        for is_lookup, arg in args:
            if is_lookup:
                yield arg


def _condition_expressions(condition):
    """Every FilterExpression of an {% if %} condition tree."""
    if condition is None:
        return
    if isinstance(condition, TemplateLiteral):
        yield condition.value
        return
    yield from _condition_expressions(condition.first)
    yield from _condition_expressions(condition.second)


class _VariableCollector:
    """Walk a compiled template and note every variable it reads that nobody defined."""

    def __init__(self, assigned):
        # "as" variables ({% cycle ... as x %}, {% firstof ... as x %}) live until the end
        # of the template; treating them as known everywhere keeps the walk simple.
        self.assigned = assigned
        self.unknown = {}

    def check(self, expression, known, node):
        if not isinstance(expression, FilterExpression):
            return
        for expr in _expressions(expression):
            name = _root_name(expr)
            if name is None or name in known or name in self.assigned:
                continue
            token = getattr(node, "token", None)
            self.unknown.setdefault(name, getattr(token, "lineno", None))

    def walk(self, nodelist, known):
        for node in nodelist:
            self.visit(node, known)

    def visit(self, node, known):
        if isinstance(node, VariableNode):
            self.check(node.filter_expression, known, node)
        elif isinstance(node, IfNode):
            for condition, nodelist in node.conditions_nodelists:
                for expr in _condition_expressions(condition):
                    self.check(expr, known, node)
                self.walk(nodelist, known)
        elif isinstance(node, ForNode):
            self.check(node.sequence, known, node)
            self.walk(node.nodelist_loop, known | set(node.loopvars) | {"forloop"})
            self.walk(node.nodelist_empty, known)
        elif isinstance(node, WithNode):
            for expr in node.extra_context.values():
                self.check(expr, known, node)
            self.walk(node.nodelist, known | set(node.extra_context))
        elif isinstance(node, FilterNode):
            # {% filter upper %} applies "var|upper" to its own rendered content.
            self.check(node.filter_expr, known | {"var"}, node)
            self.walk(node.nodelist, known)
        else:
            for expr in self._node_expressions(node):
                self.check(expr, known, node)
            for attr in node.child_nodelists:
                self.walk(getattr(node, attr, None) or [], known)

    @staticmethod
    def _node_expressions(node):
        if isinstance(node, FirstOfNode):
            return list(node.vars)
        if isinstance(node, CycleNode):
            return list(node.cyclevars)
        if isinstance(node, IfChangedNode):
            return list(node._varlist)
        if isinstance(node, WidthRatioNode):
            return [node.val_expr, node.max_expr, node.max_width]
        return []


def _assigned_names(nodelist):
    names = set()
    for node_type in (CycleNode, FirstOfNode, NowNode, WidthRatioNode):
        for node in nodelist.get_nodes_by_type(node_type):
            name = getattr(node, "asvar", None) or getattr(node, "variable_name", None)
            if name:
                names.add(name)
    return names


def _unknown_variable_error(unknown):
    parts = []
    for name, line in unknown.items():
        text = f"{{{{ {name} }}}}"
        if line:
            text += f" à la ligne {line}"
        close = difflib.get_close_matches(name, VARIABLES, n=1)
        if close:
            text += f" (vouliez-vous dire {{{{ {close[0]} }}}} ?)"
        parts.append(text)
    label = "Variable inconnue" if len(parts) == 1 else "Variables inconnues"
    return ValidationError(
        f"{label} : {' ; '.join(parts)}. Variables disponibles : {', '.join(VARIABLES)}."
    )


def validate_message_template(source):
    """Raise ValidationError (in French) unless ``source`` is a safe, known-variable template."""
    template = _compile(source or "")
    nodelist = template.nodelist
    collector = _VariableCollector(_assigned_names(nodelist))
    collector.walk(nodelist, set(VARIABLES) | _LANGUAGE_NAMES)
    if collector.unknown:
        raise _unknown_variable_error(collector.unknown)


# --- Rendering ---------------------------------------------------------------------------------

_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACES = re.compile(r"[ \t]+\n")


def _render(source, context):
    return _compile(source).render(Context(context, autoescape=False))


def render_message(*, task, context):
    """Return ``(subject, body)`` for ``context`` (see ``build_context``).

    Raises ValidationError if a stored template became invalid. A blank body
    falls back to ``DEFAULT_BODY``, so a task created outside the admin never
    sends an empty e-mail.
    """
    default_subject, default_body = default_templates(task)
    subject_source = task.subject_template if (task.subject_template or "").strip() else default_subject
    subject = " ".join(_render(subject_source, context).split())[:SUBJECT_MAX_LENGTH]
    body_source = task.body_template if (task.body_template or "").strip() else default_body
    body = _render(body_source, context)
    # {% if %} lines leave trailing spaces and runs of empty lines behind: tidy them
    # so staff can lay tags out readably without it showing in the e-mail.
    body = _BLANK_LINES.sub("\n\n", _TRAILING_SPACES.sub("\n", body)).strip() + "\n"
    return subject, body


__all__ = [
    "DEFAULT_BODY", "DEFAULT_GROUP_BODY", "DEFAULT_GROUP_SUBJECT", "DEFAULT_SUBJECT", "VARIABLES",
    "build_context", "build_group_context", "default_templates", "late_interest",
    "late_payment_rate", "render_message", "validate_message_template",
]
