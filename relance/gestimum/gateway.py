"""The only code that reads or writes a customer's Gestimum tables.

A run opens the customer's database with :func:`open_gateway`, reads
candidates page by page (a few queries per page, never one per échéance),
re-checks them right before sending, and writes the sends back in bulk.
Everything it returns is plain data from :mod:`relance.gestimum.types`.
"""

import logging
import zoneinfo
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, IntegerField, Q, Value
from django.db.models.functions import Coalesce, Trim
from django.utils import timezone

from . import numbering
from .connection import gestimum_alias
from .models import (
    Action,
    Contact,
    DocumentLine,
    Echeance,
    Relance,
    RelanceEcheance,
    RelanceTiers,
    Representative,
)
from .selection import (
    COLUMN_NAME_RE,
    TABLE_ANCHORS,
    SelectionError,
    base_annotations,
    column_expression,
    criterion_filter,
    date_window,
    fixed_criteria,
    unpaid_filter,
)
from .types import Candidate, ContactInfo, DocumentInfo, DocumentLineInfo, EcheanceInfo, TiersInfo

logger = logging.getLogger(__name__)

CHECKABLE_TABLES = ("TIERS", "DOCUMENTS", "ECHEANCES", "CONTACTS")
# SQL Server accepts at most 2,100 parameters per statement: IN lists stay well
# below there; other engines take larger lists (fewer statements per run).
MAX_IN_LIST = 1000
MAX_IN_LIST_OTHER = 10000


class GestimumUnavailable(Exception):
    """The customer's Gestimum database cannot be used now (message in French)."""


@dataclass(frozen=True)
class WriteBack:
    """One send (or divert) to record in Gestimum."""

    ech_numero: str
    doc_numero: str
    pcf_code: str
    piece: str
    level: int
    emailed: bool
    summary: str  # ACT_OBJET, <= 80 characters
    details: str  # ACT_DESC
    amount: Decimal
    file_name: str = ""
    act_numero: str = ""  # reserved beforehand (allocate_actions), or allocated by write_back


def _text(value):
    return (value or "").strip() if isinstance(value, str) else ("" if value is None else str(value))


def _money(value):
    return Decimal("0") if value is None else Decimal(value)


def describe_connection_error(exc):
    """A French, actionable sentence for a failure to reach Gestimum."""
    text = str(exc)
    lowered = text.lower()
    if "login failed" in lowered or "password authentication failed" in lowered or "18456" in text:
        return "Connexion refusée par SQL Server : identifiant ou mot de passe incorrect."
    if "can't open lib" in lowered or "data source name not found" in lowered or "libodbc" in lowered:
        return ("Pilote ODBC introuvable : installez « ODBC Driver 18 for SQL Server » ou utilisez "
                "le pilote mssql-python (voir README).")
    if "timeout" in lowered or "could not connect" in lowered or "unable to open" in lowered \
            or "connection refused" in lowered or "08001" in text:
        return ("Serveur Gestimum injoignable : vérifiez l'adresse, le port, le pare-feu et que le "
                "service SQL Server est démarré.")
    if "no such table" in lowered or "invalid object name" in lowered or "does not exist" in lowered:
        return f"Table Gestimum absente : {text}. Est-ce bien une base Gestimum V7 ou plus récente ?"
    return f"Base Gestimum inutilisable : {text}"


@contextmanager
def open_gateway(customer):
    """Yield a :class:`Gateway` on the customer's Gestimum; close it afterwards."""
    if not customer.gestimum_url:
        raise GestimumUnavailable(
            f"Aucune connexion Gestimum n'est configurée pour « {customer} » (fiche client)."
        )
    try:
        context = gestimum_alias(customer.gestimum_url, timezone=customer.timezone)
        alias = context.__enter__()
    except Exception as exc:  # a malformed URL or a missing driver
        raise GestimumUnavailable(describe_connection_error(exc)) from exc
    try:
        try:
            connections[alias].ensure_connection()
        except Exception as exc:
            raise GestimumUnavailable(describe_connection_error(exc)) from exc
        yield Gateway(alias, zoneinfo.ZoneInfo(customer.timezone))
    finally:
        context.__exit__(None, None, None)


def live_columns(alias, table):
    """{UPPER_NAME: (real_name, Django internal type)} of a table, from the database's introspection."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, table)
    found = {}
    for info in description:
        try:
            internal = connection.introspection.get_field_type(info.type_code, info)
        except KeyError:
            internal = "Unknown"
        found[info.name.upper()] = (info.name, internal)
    return found


def check_columns(customer, pairs, criteria=()):
    """French errors for the (TABLE, COLUMN) pairs the live database does not have, and for
    the ``criteria`` (CriterionSpec) whose operator or value does not fit their column's type."""
    errors, missing = [], set()
    with open_gateway(customer) as gateway:
        for table, column in pairs:
            if table not in CHECKABLE_TABLES:
                errors.append(f"Table « {table} » non prise en charge.")
                missing.add((table, column))
            elif gateway.column(table, column) is None:
                errors.append(f"La colonne {column} n'existe pas dans la table {table} de la base "
                              "Gestimum de ce client.")
                missing.add((table, column))
        today = timezone.localdate(timezone=gateway.tz)
        for index, spec in enumerate(criteria):
            if (spec.table, spec.column) in missing:
                continue  # already said above
            try:
                gateway.criterion(index, spec, today=today)
            except SelectionError as exc:
                errors.append(str(exc))
    return errors


class Gateway:
    def __init__(self, alias, tz):
        self.alias = alias
        self.tz = tz
        self.queries = 0  # statements sent to Gestimum, for run reports and benchmarks
        self.max_in_list = (MAX_IN_LIST if connections[alias].vendor == "microsoft"
                            else MAX_IN_LIST_OTHER)
        self._columns = {}
        self._representatives = None

    # -- introspection -------------------------------------------------------------
    def columns(self, table):
        """{UPPER_NAME: (real_name, internal_type)} of a table, read once per run."""
        if table not in self._columns:
            self._columns[table] = live_columns(self.alias, table)
            self.queries += 1
        return self._columns[table]

    def column(self, table, column):
        if not COLUMN_NAME_RE.fullmatch(column or ""):
            return None
        return self.columns(table).get(column.upper())

    def custom_columns(self, table):
        return sorted(name for name in self.columns(table) if name.startswith("XXX_"))

    # -- selection -----------------------------------------------------------------
    def _selection_queryset(self, selection, *, today):
        credit = settings.GESTIMUM["CREDIT_NOTE_STYPE"]
        annotations = base_annotations()
        q = unpaid_filter(credit_note_stype=credit) & date_window(selection, today=today, tz=self.tz)
        extra_annotations, extra_q = fixed_criteria(selection)
        annotations.update(extra_annotations)
        q &= extra_q
        for index, spec in enumerate(selection.criteria):
            crit_annotations, crit_q = self.criterion(index, spec, today=today)
            annotations.update(crit_annotations)
            q &= crit_q
        queryset = Echeance.objects.using(self.alias).select_related("document", "tiers")
        return queryset.alias(**annotations).filter(q)

    def criterion(self, index, spec, *, today):
        """Annotations and Q of one generic criterion, checked against the live column:
        SelectionError (French) for a missing column or a value that does not fit its type."""
        found = self.column(spec.table, spec.column) if spec.table in TABLE_ANCHORS else None
        if found is None:
            raise SelectionError(
                f"Critère : la colonne {spec.column} n'existe pas dans la table {spec.table}.")
        return criterion_filter(index, spec, *found, today=today, tz=self.tz)

    def _address_annotations(self, selection):
        annotations = {}
        for table, column in selection.address_columns:
            found = self.column(table, column)
            if found is None:
                raise SelectionError(f"Adresse : la colonne {column} n'existe pas dans la table {table}.")
            expression, kind = column_expression(table, *found)
            if kind != "text":
                raise SelectionError(f"Adresse : la colonne {table}.{column} n'est pas du texte.")
            annotations[f"addr_{table}_{found[0]}".lower()] = expression
        return annotations

    def candidate_pages(self, selection, *, today, page_size=None, by_debtor=False):
        """Yield lists of :class:`Candidate`, one page per query, in ECH_NUMERO order, or
        with ``by_debtor`` in (PCF_CODE, ECH_NUMERO) order, so that a debtor's échéances
        follow each other (one e-mail per debtor). Keyset paging either way."""
        page_size = page_size or settings.GESTIMUM["PAGE_SIZE"]
        queryset = self._selection_queryset(selection, today=today)
        address = self._address_annotations(selection)
        queryset = queryset.annotate(**address)
        if by_debtor:
            queryset = queryset.filter(tiers_id__isnull=False).order_by("tiers_id", "ech_numero")
        else:
            queryset = queryset.order_by("ech_numero")
        last = None
        while True:
            if last is None:
                page = queryset
            elif by_debtor:
                page = queryset.filter(Q(tiers_id__gt=last[0]) | Q(tiers_id=last[0], ech_numero__gt=last[1]))
            else:
                page = queryset.filter(ech_numero__gt=last)
            rows = list(page[:page_size])
            self.queries += 1
            if not rows:
                return
            last = (rows[-1].tiers_id, rows[-1].ech_numero) if by_debtor else rows[-1].ech_numero
            candidates = [self._candidate(row, address) for row in rows]
            if selection.needs_contacts:
                self._attach_contacts(candidates)
            self._attach_representatives(candidates)
            yield candidates
            if len(rows) < page_size:
                return

    def count_candidates(self, selection, *, today):
        self.queries += 1
        return self._selection_queryset(selection, today=today).count()

    def _local_date(self, value):
        if value is None:
            return None
        if timezone.is_aware(value):
            return timezone.localtime(value, self.tz).date()
        return value.date()

    def _candidate(self, row, address):
        tiers, doc = row.tiers, row.document
        if tiers is not None:
            tiers_info = TiersInfo(
                code=_text(tiers.pcf_code), name=_text(tiers.pcf_rs), name2=_text(tiers.pcf_rs2),
                title=_text(tiers.pcf_civile), street=_text(tiers.pcf_rue),
                complement=_text(tiers.pcf_comp), postcode=_text(tiers.pcf_cp),
                city=_text(tiers.pcf_ville), country=_text(tiers.pay_code),
                email=_text(tiers.pcf_email), family=_text(tiers.fat_code),
                subfamily=_text(tiers.sft_code), representative=_text(tiers.rep_code),
                siret=_text(tiers.pcf_siret), address_invalid=bool(tiers.pcf_npai),
            )
        else:
            tiers_info = TiersInfo(code=_text(row.tiers_id), name=_text(row.pcf_rs))
        doc_info = None
        if doc is not None:
            doc_info = DocumentInfo(
                numero=_text(doc.doc_numero), piece=_text(doc.doc_piece), stype=_text(doc.doc_stype),
                date=self._local_date(doc.doc_date), reference=_text(doc.doc_refpcf),
                payment_mode=_text(doc.reg_code), representative=_text(doc.rep_code),
                total_ht=_money(doc.doc_mt_ht), total_vat=_money(doc.doc_mt_tva),
                total_ttc=_money(doc.doc_mt_ttc), deposit=_money(doc.doc_acpte),
                billing_name=_text(doc.doc_f_rs), billing_street=_text(doc.doc_f_rue),
                billing_complement=_text(doc.doc_f_comp), billing_postcode=_text(doc.doc_f_cp),
                billing_city=_text(doc.doc_f_vill), memo=_text(doc.doc_memo),
            )
        echeance = EcheanceInfo(
            numero=_text(row.ech_numero), doc_numero=_text(row.document_id),
            piece=_text(row.ech_piece) or (doc_info.piece if doc_info else ""),
            pcf_code=tiers_info.code, label=_text(row.ech_lib),
            issued=self._local_date(row.ech_dtemis), due_date=self._local_date(row.ech_date),
            payment_mode=_text(row.reg_code), amount=_money(row.ech_arecev),
            received=_money(row.ech_recu), reminders_sent=row.ech_nbrel or 0,
        )
        columns = {}
        for name in address:
            _, table, column = name.split("_", 2)
            columns[(table.upper(), column.upper())] = getattr(row, name)
        return Candidate(echeance=echeance, tiers=tiers_info, document=doc_info, columns=columns)

    def _attach_contacts(self, candidates):
        codes = sorted({c.tiers.code for c in candidates if c.tiers.code})
        by_tiers = {}
        for start in range(0, len(codes), self.max_in_list):
            rows = (
                Contact.objects.using(self.alias)
                .alias(table_trim=Trim("cct_table"), origin_trim=Trim("cct_origin"),
                       dormant=Coalesce("cct_dort", Value(False)))
                .filter(table_trim="PCF", origin_trim__in=codes[start:start + self.max_in_list],
                        dormant=False)
                .order_by("cct_numero")
            )
            for contact in rows:
                by_tiers.setdefault(_text(contact.cct_origin), []).append(ContactInfo(
                    numero=_text(contact.cct_numero), first_name=_text(contact.cct_prenom),
                    last_name=_text(contact.cct_nom), email=_text(contact.cct_email),
                    function=_text(contact.cct_fonct),
                    qualifiers=tuple(q for q in (_text(contact.cct_qual1), _text(contact.cct_qual2)) if q),
                ))
            self.queries += 1
        for candidate in candidates:
            candidate.contacts = by_tiers.get(candidate.tiers.code, [])

    def _attach_representatives(self, candidates):
        if self._representatives is None:
            self._representatives = {
                _text(rep.rep_code): _text(rep.rep_email)
                for rep in Representative.objects.using(self.alias).all()
            }
            self.queries += 1
        for candidate in candidates:
            document_rep = candidate.document.representative if candidate.document else ""
            code = document_rep or candidate.tiers.representative
            candidate.representative_email = self._representatives.get(code, "")

    def attach_lines(self, candidates):
        """Load the lines of the candidates' documents (one query per 1,000 documents)."""
        numbers = sorted({c.document.numero for c in candidates if c.document and not c.document.lines})
        by_doc = {}
        for start in range(0, len(numbers), self.max_in_list):
            rows = (DocumentLine.objects.using(self.alias)
                    .filter(document_id__in=numbers[start:start + self.max_in_list])
                    .order_by("document_id", "lig_numero"))
            for line in rows:
                by_doc.setdefault(_text(line.document_id), []).append(DocumentLineInfo(
                    number=line.lig_numero, article=_text(line.art_code), label=_text(line.lig_lib),
                    quantity=Decimal(str(line.lig_qte or 0)), unit_price=_money(line.lig_p_net),
                    total=_money(line.lig_total), vat_rate=_money(line.nat_tvatx),
                ))
            self.queries += 1
        for candidate in candidates:
            if candidate.document and not candidate.document.lines:
                candidate.document.lines = by_doc.get(candidate.document.numero, [])

    # -- the re-check right before sending ------------------------------------------
    def still_unpaid(self, ech_numeros):
        """{ECH_NUMERO: (amount, received)} of those still open now; paid ones are absent."""
        credit = settings.GESTIMUM["CREDIT_NOTE_STYPE"]
        found = {}
        numbers = list(ech_numeros)
        for start in range(0, len(numbers), self.max_in_list):
            rows = (Echeance.objects.using(self.alias)
                    .alias(**base_annotations())
                    .filter(unpaid_filter(credit_note_stype=credit),
                            ech_numero__in=numbers[start:start + self.max_in_list])
                    .values_list("ech_numero", "ech_arecev", "ech_recu"))
            for numero, amount, received in rows:
                found[_text(numero)] = (_money(amount), _money(received))
            self.queries += 1
        return found

    # -- write-back -----------------------------------------------------------------
    def write_bounce(self, *, pcf_code, doc_numero, summary, details):
        """One ACTIONS row, still to do, saying a reminder was not delivered; return ACT_NUMERO."""
        options = settings.GESTIMUM
        now = timezone.now()
        local_now = timezone.localtime(now, self.tz)
        day = timezone.make_aware(datetime.combine(local_now.date(), datetime.min.time()), self.tz)
        with transaction.atomic(using=self.alias):
            [number] = numbering.allocate(self.alias, options["COUNTER_ACTIONS"], 1)
            Action.objects.using(self.alias).create(
                act_numero=number, act_date=day, act_heure=local_now.strftime("%H:%M"),
                pcf_code=pcf_code, doc_numero=doc_numero or None, act_objet=summary[:80],
                act_type=options["ACTION_TYPE"][:15], act_etat="A FAIRE", act_termine=False,
                act_desc=details, act_dtcre=now, act_usrcre=options["USER"],
            )
        self.queries += 2
        return number

    def allocate_actions(self, count):
        """Reserve ``count`` ACT_NUMERO identifiers, on their own (before the write-back).

        The caller records them first, so that after a crash it can ask Gestimum
        (``existing_actions``) whether that write-back was committed.
        """
        numbers = numbering.allocate(self.alias, settings.GESTIMUM["COUNTER_ACTIONS"], count)
        self.queries += 1 if count else 0
        return numbers

    def existing_actions(self, numbers):
        """The ACT_NUMEROs among ``numbers`` that ACTIONS holds."""
        numbers = list(numbers)
        found = set()
        for start in range(0, len(numbers), self.max_in_list):
            found.update(Action.objects.using(self.alias).filter(
                act_numero__in=numbers[start:start + self.max_in_list]).values_list("act_numero", flat=True))
            self.queries += 1
        return found

    def write_back(self, records, *, action=True, nbrel=True, relances=False):
        """Record sends in Gestimum in one short transaction."""
        if not records:
            return
        options = settings.GESTIMUM
        user = options["USER"]
        now = timezone.now()
        local_now = timezone.localtime(now, self.tz)
        day = timezone.make_aware(datetime.combine(local_now.date(), datetime.min.time()), self.tz)
        with transaction.atomic(using=self.alias):
            if action:
                numbers = [r.act_numero for r in records]
                if not all(numbers):
                    numbers = numbering.allocate(self.alias, options["COUNTER_ACTIONS"], len(records))
                    self.queries += 1
                Action.objects.using(self.alias).bulk_create([
                    Action(
                        act_numero=number, act_date=day, act_heure=local_now.strftime("%H:%M"),
                        pcf_code=r.pcf_code, doc_numero=r.doc_numero or None,
                        act_objet=r.summary[:80], act_type=options["ACTION_TYPE"][:15],
                        act_etat="TERMINE" if r.emailed else "A FAIRE", act_termine=r.emailed,
                        act_desc=r.details, act_file=r.file_name[:260] or None,
                        act_dtcre=now, act_usrcre=user,
                    )
                    for number, r in zip(numbers, records, strict=True)
                ])
                self.queries += 1
            emailed = [r.ech_numero for r in records if r.emailed]
            if nbrel and emailed:
                for start in range(0, len(emailed), self.max_in_list):
                    Echeance.objects.using(self.alias).filter(
                        ech_numero__in=emailed[start:start + self.max_in_list]
                    ).update(
                        ech_nbrel=Coalesce(F("ech_nbrel"), Value(0)) + 1,
                        ech_nummaj=Coalesce(F("ech_nummaj"), Value(0), output_field=IntegerField()) + 1,
                        ech_dtmaj=now, ech_usrmaj=user,
                    )
                    self.queries += 1
            sent = [r for r in records if r.emailed]
            if relances and sent:
                numbers = numbering.allocate(self.alias, options["COUNTER_RELANCES"], len(sent))
                pairs = list(zip(numbers, sent, strict=True))
                Relance.objects.using(self.alias).bulk_create([
                    Relance(rel_numero=n, rel_piece=r.piece, rel_date=day, rel_level=str(r.level),
                            rel_memo=r.details, rel_file=r.file_name[:260] or None, rel_dtmaj=now,
                            rel_usrmaj=user, rel_nummaj=1)
                    for n, r in pairs
                ])
                RelanceEcheance.objects.using(self.alias).bulk_create([
                    RelanceEcheance(rel_numero=n, ech_numero=r.ech_numero, rel_mt=r.amount,
                                    rel_mtd=r.amount, rel_mte=r.amount)
                    for n, r in pairs
                ])
                RelanceTiers.objects.using(self.alias).bulk_create([
                    RelanceTiers(rel_numero=n, pcf_code=r.pcf_code, rel_memo=r.summary)
                    for n, r in pairs
                ])
                self.queries += 4
        connection = connections[self.alias]
        if connection.vendor == "microsoft":
            # mssql-django leaves pyodbc in manual-commit mode after a transaction,
            # so the following reads would sit in an open transaction while PDFs
            # render and mail goes out. A fresh connection keeps reads short.
            connection.close()
