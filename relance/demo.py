"""Fill an empty Gestimum demo database with realistic French data.

Used by ``manage.py seed_demo`` and by the tests. Everything derives from
``seed`` and ``today``: two fills with the same arguments are identical, and
due dates are placed relative to ``today`` so that every overdue bucket is
represented whatever the day the demo is built.

The demo really sends e-mails, so every address uses a domain reserved for
examples (RFC 2606: ``example.com``, ``example.net``, ``example.org``).
"""

import random
import re
import unicodedata
from collections import namedtuple
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db import connections, transaction
from django.utils import timezone
from faker import Faker

from .gestimum import models as gm
from .gestimum.numbering import format_number
from .gestimum.schema import GestimumSchemaRefused

PARIS = ZoneInfo("Europe/Paris")
CENT = Decimal("0.01")
USER = "DEMO"

SIZES = {
    "small": {"tiers": 10, "prospects": 1, "invoices": 30, "credit_notes": 3, "orders": 2},
    "normal": {"tiers": 40, "prospects": 2, "invoices": 150, "credit_notes": 12, "orders": 6},
}

# (code, label, weight among customers, payment modes the family uses)
FAMILIES = [
    ("GROS", "Grossistes", 15, ["VIR", "LCR"]),
    ("DETAIL", "Détaillants", 25, ["CHQ", "PRELEV", "VIR"]),
    ("BTP", "Bâtiment et travaux publics", 25, ["LCR", "VIR45"]),
    ("PUBLIC", "Collectivités et établissements publics", 10, ["MANDAT"]),
    ("INDUS", "Industrie", 15, ["VIR", "VIR45", "LCR"]),
    ("SERV", "Services aux entreprises", 10, ["VIR", "PRELEV"]),
]
# (code, label, type, days until due). No "fin de mois" mode: due dates are
# placed backwards from the wanted overdue bucket, which end-of-month rounding
# would blur.
PAYMENT_MODES = [
    ("VIR", "Virement à 30 jours", "VIR", 30),
    ("VIR45", "Virement à 45 jours", "VIR", 45),
    ("CHQ", "Chèque à réception", "CHQ", 0),
    ("LCR", "LCR à 60 jours", "LCR", 60),
    ("PRELEV", "Prélèvement à 10 jours", "PRE", 10),
    ("MANDAT", "Mandat administratif à 30 jours", "VIR", 30),
]
REPRESENTATIVES = [
    ("JDU", "Dupuis", "Julie", "julie.dupuis@societe-demo.example.com"),
    ("MLF", "Lefèvre", "Marc", "marc.lefevre@societe-demo.example.com"),
    ("SBO", "Bonnet", "Sophie", "sophie.bonnet@societe-demo.example.com"),
]
# (ART_CODE, label, unit price range in euros, VAT rate, quantity kind)
PRODUCTS = [
    ("PAL-EUR", "Palette Europe 1200 x 800", (9, 14), "20", "unit"),
    ("CIM-35", "Ciment CEM II sac de 35 kg", (7, 11), "20", "unit"),
    ("PLQ-BA13", "Plaque de plâtre BA13 2,50 m", (6, 10), "20", "unit"),
    ("CAB-RJ45", "Câble réseau cat. 6 touret 305 m", (90, 160), "20", "unit"),
    ("ECR-24", "Écran 24 pouces Full HD", (120, 190), "20", "unit"),
    ("INST", "Installation et mise en service", (350, 900), "20", "flat"),
    ("MO-H", "Main-d'œuvre technicien (heure)", (45, 65), "20", "hours"),
    ("MAINT-AN", "Contrat de maintenance annuel", (480, 1800), "20", "flat"),
    ("FORM-J", "Journée de formation sur site", (650, 1100), "20", "flat"),
    ("TRANSP", "Frais de transport et de livraison", (25, 90), "20", "flat"),
    ("RENO-M2", "Travaux de rénovation de logement (m²)", (35, 70), "10", "area"),
    ("REPAS", "Plateau-repas séminaire", (14, 24), "10", "unit"),
    ("CAFE-1K", "Café en grains pur arabica 1 kg", (14, 22), "5.5", "unit"),
    ("ISOL-M2", "Travaux d'isolation thermique (m²)", (25, 60), "5.5", "area"),
]
PRODUCT_WEIGHTS = [10, 8, 8, 5, 5, 6, 9, 4, 4, 8, 4, 3, 3, 3]

# Overdue days of an invoice's first échéance on ``today``; negative = not yet due.
BUCKETS = {"not_due": (-40, 0), "1-4": (1, 4), "5-14": (5, 14), "15-60": (15, 60), "60+": (61, 110)}
BUCKET_WEIGHTS = {"not_due": 25, "1-4": 10, "5-14": 16, "15-60": 30, "60+": 19}
# Older échéances are more often paid, as in real ledgers: (unpaid, partial, paid).
STATUS_WEIGHTS = {
    "not_due": (80, 5, 15), "1-4": (65, 10, 25), "5-14": (60, 15, 25),
    "15-60": (50, 15, 35), "60+": (40, 15, 45),
}
# How a tiers can be reached; "contact_only" and "none" have no PCF_EMAIL.
EMAIL_PROFILES = {"ok": 62, "dedicated": 15, "contact_only": 8, "none": 8, "invalid": 7}
INVALID_EMAILS = ["compta@", "pas-d-email", "contact@@example.com", "facturation example.com"]
PIECE_PREFIX = {"F": "FA", "A": "AV", "C": "BC"}
LEGAL_SUFFIX = re.compile(r"\s+(S\.A\.R\.L\.|S\.A\.S\.|S\.A\.|SARL|SAS|SA|et Fils)$")


def fill_demo_database(alias, *, today=None, seed=2026, size="normal"):
    """Fill the empty Gestimum tables on ``alias``; return the row count per table.

    Custom ``XXX_*`` columns are filled only where the table has them, so a
    database created without demo custom columns can still be filled.
    """
    if size not in SIZES:
        raise ValueError(f"Taille de démonstration inconnue : {size!r} (small ou normal).")
    if connections[alias].vendor == "microsoft":
        raise GestimumSchemaRefused("Refusé : jamais de données de démonstration dans un SQL Server.")
    if today is None:
        today = timezone.localdate()
    elif isinstance(today, datetime):
        today = today.date()
    rng = random.Random(seed)
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    sizes = SIZES[size]

    tiers, contacts, custom = _tiers_and_contacts(rng, fake, today, sizes)
    documents, lines, echeances = _documents(rng, today, sizes, [t for t in tiers if t.pcf_type == "C"])
    custom["DOCUMENTS"] = _document_custom_values(rng, documents, echeances, today)

    families = [gm.TiersFamily(fat_code=code, fat_lib=label) for code, label, _, _ in FAMILIES]
    reps = [gm.Representative(rep_code=code, rep_nom=last, rep_prenom=first, rep_email=email)
            for code, last, first, email in REPRESENTATIVES]
    modes = [gm.PaymentMode(reg_code=code, reg_lib=label, reg_type=kind, reg_nbj=days, reg_fdm=False)
             for code, label, kind, days in PAYMENT_MODES]
    last = {"N_DOC": int(documents[-1].doc_numero), "N_ECH": int(echeances[-1].ech_numero)}
    # EasyRelance's own numbers must never collide with any identifier already used.
    above_all = (max([*last.values(), int(contacts[-1].cct_numero)]) // 1000 + 1) * 1000
    counters = [gm.Counter(name=name, value=value) for name, value in last.items()]
    counters += [gm.Counter(name="N_ACT", value=above_all), gm.Counter(name="N_REL", value=above_all)]

    summary = {}
    with transaction.atomic(using=alias):
        for model, rows in [
            (gm.TiersFamily, families), (gm.Representative, reps), (gm.PaymentMode, modes), (gm.Tiers, tiers),
            (gm.Contact, contacts), (gm.Document, documents), (gm.DocumentLine, lines),
            (gm.Echeance, echeances), (gm.Counter, counters),
        ]:
            model.objects.using(alias).bulk_create(rows, batch_size=200)
            summary[model._meta.db_table] = len(rows)
        for table, (key_column, rows) in custom.items():
            _write_custom_columns(alias, table, key_column, rows)
    return summary


def _aware(day):
    return timezone.make_aware(datetime.combine(day, time.min), PARIS)


def _money(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _deck(rng, n, weights):
    """``n`` keys in shuffled order, in proportion to ``weights``.

    Unlike independent draws, every key shows up (when ``n`` allows), so even
    the small demo has each overdue bucket, partial payments and so on.
    """
    total = sum(weights.values())
    share = {key: n * weight / total for key, weight in weights.items()}
    counts = {key: max(1, int(s)) if n >= len(weights) else int(s) for key, s in share.items()}
    while sum(counts.values()) < n:
        counts[max(share, key=lambda k: share[k] - counts[k])] += 1
    while sum(counts.values()) > n:
        counts[max(counts, key=counts.get)] -= 1
    deck = [key for key, count in counts.items() for _ in range(count)]
    rng.shuffle(deck)
    return deck


def _slug(text, width=24):
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = "".join(c if c.isalnum() else " " for c in ascii_text).split()
    return "-".join(words)[:width].strip("-") or "client"


def _phone(rng, prefixes="123459"):
    return f"0{rng.choice(prefixes)} " + " ".join(f"{rng.randint(0, 99):02d}" for _ in range(4))


def _company(rng, fake, family):
    """Company name, legal form, and the name part its (reserved) mail domain is built from."""
    if family == "PUBLIC":
        city = fake.city()
        name, short = rng.choice([("Mairie de {}", "mairie"), ("Communauté de communes de {}", "cc"),
                                  ("Syndicat des eaux de {}", "eaux")])
        return name.format(city)[:60], "Collectivité", f"{short} {city}"
    name = fake.company()[:60]
    return name, rng.choice(["SARL", "SAS", "SA", "EURL", "Société"]), LEGAL_SUFFIX.sub("", name)


def _tiers_and_contacts(rng, fake, today, sizes):
    count = sizes["tiers"] + sizes["prospects"]
    codes = sorted(rng.sample(range(1, 400), count))
    family_deck = _deck(rng, count, {code: weight for code, _, weight, _ in FAMILIES})
    profiles = _deck(rng, sizes["tiers"], EMAIL_PROFILES) + ["ok"] * sizes["prospects"]
    modes_of = {code: modes for code, _, _, modes in FAMILIES}
    tiers, contacts, tiers_custom, contact_custom = [], [], [], []
    invalid = iter(INVALID_EMAILS * count)
    quirky = {"trailing_space": False, "two_addresses": False}
    for index, (number, family, profile) in enumerate(zip(codes, family_deck, profiles, strict=True)):
        code = f"CL{number:05d}"
        name, civility, domain_name = _company(rng, fake, family)
        domain = f"{_slug(domain_name)}.{rng.choice(['example.com', 'example.net', 'example.org'])}"
        email = f"{rng.choice(['compta', 'comptabilite', 'facturation', 'contact'])}@{domain}"
        if profile in ("contact_only", "none"):
            email = rng.choice([None, ""])
        elif profile == "invalid":
            email = next(invalid)
        elif not quirky["trailing_space"]:
            # Hand-typed ERP data: a trailing space, and two addresses in one field.
            email, quirky["trailing_space"] = email + " ", True
        elif not quirky["two_addresses"] and len(email) + len(domain) < 48:
            email, quirky["two_addresses"] = f"{email}; direction@{domain}", True
        siren = f"{rng.randint(300_000_000, 999_999_999)}"
        created = today - timedelta(days=rng.randint(200, 3000))
        tiers.append(gm.Tiers(
            pcf_code=code, pcf_type="P" if index >= sizes["tiers"] else "C", pcf_rs=name,
            pcf_civile=civility, pcf_dort=False, pcf_bloque=rng.random() < 0.03,
            # Real Gestimum codes often carry trailing spaces: compare them trimmed.
            fat_code=family + (" " if rng.random() < 0.25 else ""),
            pcf_rue=fake.street_address()[:60], pcf_comp=rng.choice([None, None, None, "Bâtiment B"]),
            pcf_cp=fake.postcode(), pcf_ville=fake.city(), pay_code="FR",
            pcf_tel1=_phone(rng), pcf_email=email, pcf_npai=False,
            pcf_siret=f"{siren}{rng.randint(1, 999):05d}", pcf_siren=siren,
            rep_code=rng.choice(REPRESENTATIVES)[0], reg_code=rng.choice(modes_of[family]),
            pcf_dtcree=_aware(created), pcf_dtmaj=_aware(created), pcf_usrmaj=USER, pcf_nummaj=1,
        ))
        dedicated = f"{rng.choice(['relances', 'recouvrement'])}@{domain}" if profile == "dedicated" else None
        tiers_custom.append((code, {
            "XXX_TOUR": rng.choice(["NORD", "SUD", "EST", "OUEST", "IDF", None]),
            "XXX_CLTWEB": rng.choice([True, False, False, None]),
            "XXX_EMAILRELANCE": dedicated,
            "XXX_PLAFOND": rng.choice([None, Decimal("5000"), Decimal("10000"), Decimal("25000")]),
        }))
        for position in range(rng.choices([1, 2, 3], weights=[40, 40, 20])[0]):
            contact, relance = _contact(rng, fake, code, domain, profile, position)
            contact.cct_numero = format_number(301 + len(contacts))
            contacts.append(contact)
            contact_custom.append((contact.cct_numero, {"XXX_RELANCE": relance}))
    custom = {"TIERS": ("PCF_CODE", tiers_custom), "CONTACTS": ("CCT_NUMERO", contact_custom)}
    return tiers, contacts, custom


def _contact(rng, fake, tiers_code, domain, profile, position):
    female = rng.random() < 0.5
    first = (fake.first_name_female() if female else fake.first_name_male())[:20]
    last = fake.last_name()[:30]
    if position == 0:
        # A tiers reachable only through a contact needs a flagged accounting contact.
        function = "COMPTA" if profile == "contact_only" or rng.random() < 0.6 else "DIRECTION"
    else:
        function = rng.choice(["DIRECTION", "ACHAT", "COMMERCIAL", "TECHNIQUE", "COMPTA"])
    flagged = function == "COMPTA" and (profile == "contact_only" or rng.random() < 0.5)
    if profile == "none" or (profile != "contact_only" and rng.random() < 0.15):
        email = rng.choice([None, ""])
    else:
        email = f"{_slug(first, 8)}.{_slug(last, 12)}@{domain}"
    contact = gm.Contact(
        cct_code=_slug(last, 15).upper().replace("-", ""), cct_table="PCF", cct_origin=tiers_code,
        cct_civile="Mme" if female else "M.", cct_prenom=first, cct_nom=last,
        cct_telb=_phone(rng), cct_telm=_phone(rng, "67"),
        cct_email=email, cct_fonct=function, cct_qual1="RELANCE" if flagged else None,
        # Someone who left the company but was never removed from the ERP.
        cct_dort=not flagged and rng.random() < 0.05,
    )
    return contact, True if flagged else rng.choice([False, None])


# quantity is a float (LIG_QTE is a float column); prices and total are Decimal.
Line = namedtuple("Line", "art_code label quantity gross net total vat_rate")
QUANTITIES = {
    "unit": lambda rng: float(rng.randint(1, 40)),
    "flat": lambda rng: float(rng.choice([1, 1, 1, 2])),
    "hours": lambda rng: rng.choice([1.0, 1.5, 2.0, 3.5, 4.0, 7.0, 8.0, 12.0]),
    "area": lambda rng: float(rng.randint(8, 120)),
}


def _document_lines(rng):
    lines = []
    for _ in range(rng.choices(range(1, 7), weights=[30, 25, 20, 12, 8, 5])[0]):
        art_code, label, (low, high), vat, kind = rng.choices(PRODUCTS, weights=PRODUCT_WEIGHTS)[0]
        quantity = QUANTITIES[kind](rng)
        gross = _money(Decimal(rng.randint(low * 100, high * 100)) / 100)
        net = _money(gross * (100 - rng.choice([0, 0, 0, 0, 5, 10])) / 100)  # some lines discounted
        total = _money(Decimal(str(quantity)) * net)
        lines.append(Line(art_code, label, quantity, gross, net, total, Decimal(vat)))
    return lines


def _documents(rng, today, sizes, customers):
    """Invoices, credit notes and orders with their lines and échéances, in date order."""
    # Every customer gets an invoice; the rest go mostly to a few big accounts.
    invoice_tiers = list(customers) + rng.choices(
        customers, weights=[rng.choice([1, 1, 2, 3, 6]) for _ in customers],
        k=sizes["invoices"] - len(customers),
    )
    buckets = _deck(rng, sizes["invoices"], BUCKET_WEIGHTS)
    statuses = {}
    for bucket in BUCKETS:
        positions = [i for i, b in enumerate(buckets) if b == bucket]
        weights = dict(zip(("unpaid", "partial", "paid"), STATUS_WEIGHTS[bucket], strict=True))
        statuses.update(zip(positions, _deck(rng, len(positions), weights), strict=True))
    term_of = {code: days for code, _, _, days in PAYMENT_MODES}

    plans = []  # (doc date, kind, tiers, schedule: [(due date, share)], status)
    for i, tiers in enumerate(invoice_tiers):
        split = rng.random() < 0.12  # 50 % at 30 days, 50 % at 60 days
        term = 30 if split else term_of[tiers.reg_code]
        low, high = BUCKETS[buckets[i]]
        # Keep invoices within the last ~135 days whatever the payment term.
        if low > 0:
            overdue = rng.randint(low, max(low, min(high, 135 - term)))
        else:  # due at most ``term`` days ahead, or the invoice would be dated in the future
            overdue = -rng.randint(0, min(-low, term))
        doc_date = today - timedelta(days=overdue + term)
        schedule = [(doc_date + timedelta(days=30), "half"), (doc_date + timedelta(days=60), "rest")] \
            if split else [(doc_date + timedelta(days=term), "all")]
        plans.append((doc_date, "F", tiers, schedule, statuses[i]))
    for tiers in rng.sample(invoice_tiers, sizes["credit_notes"]):
        doc_date = today - timedelta(days=rng.randint(3, 100))
        plans.append((doc_date, "A", tiers, [(doc_date, "all")], rng.choice(["unpaid", "paid", "unpaid"])))
    for tiers in rng.sample(customers, sizes["orders"]):
        plans.append((today - timedelta(days=rng.randint(0, 20)), "C", tiers, [], None))
    plans.sort(key=lambda plan: plan[0])

    documents, lines, echeances = [], [], []
    pieces = {"F": 101, "A": 11, "C": 41}
    for doc_date, kind, tiers, schedule, status in plans:
        doc_lines = _document_lines(rng)
        ht = sum(line.total for line in doc_lines)
        # VAT is computed per rate on the summed bases, as on a French invoice footer.
        vat = sum(_money(sum(line.total for line in doc_lines if line.vat_rate == rate) * rate / 100)
                  for rate in {line.vat_rate for line in doc_lines})
        ttc = ht + vat
        piece = f"{PIECE_PREFIX[kind]}{pieces[kind]:06d}"
        pieces[kind] += 1
        document = gm.Document(
            doc_numero=format_number(1001 + len(documents)), doc_piece=piece, doc_type="V",
            # Some sub-types carry Gestimum's trailing space ('F ').
            doc_stype=kind + (" " if rng.random() < 0.1 else ""), doc_etat="E",
            doc_date=_aware(doc_date), tiers=tiers, reg_code=tiers.reg_code, rep_code=tiers.rep_code,
            dev_code="EUR", doc_refpcf=rng.choice([None, f"CDE-{rng.randint(1000, 9999)}"]),
            doc_brut=sum(_money(Decimal(str(line.quantity)) * line.gross) for line in doc_lines),
            doc_mt_ht=ht, doc_mt_tva=vat, doc_mt_ttc=ttc, doc_mt_net=ttc, doc_acpte=Decimal("0"),
            doc_f_rs=tiers.pcf_rs, doc_f_rue=tiers.pcf_rue, doc_f_comp=tiers.pcf_comp,
            doc_f_cp=tiers.pcf_cp, doc_f_vill=tiers.pcf_ville,
            doc_dtmaj=_aware(doc_date), doc_usrmaj=USER, doc_nummaj=1,
        )
        documents.append(document)
        for number, line in enumerate(doc_lines, start=1):
            lines.append(gm.DocumentLine(
                document=document, lig_numero=number, art_code=line.art_code, lig_lib=line.label,
                lig_qte=line.quantity, lig_p_brut=line.gross, lig_p_net=line.net, lig_total=line.total,
                nat_tvatx=line.vat_rate,
            ))
        half = _money(ttc / 2)
        for order, (due, share) in enumerate(schedule):
            amount = {"all": ttc, "half": half, "rest": ttc - half}[share]
            # The second half of a split invoice is paid only if the first was and it is due.
            paid_status = status if order == 0 else ("paid" if status == "paid" and due < today else "unpaid")
            echeances.append(_echeance(rng, today, document, kind, doc_date, due, amount, paid_status,
                                       format_number(2001 + len(echeances)), len(schedule), order))
    return documents, lines, echeances


def _echeance(rng, today, document, kind, doc_date, due, amount, status, numero, parts, order):
    received = {"paid": amount, "unpaid": Decimal("0"),
                "partial": _money(amount * rng.choice([20, 30, 40, 50, 60]) / 100)}[status]
    if status == "unpaid" and rng.random() < 0.1:
        received = None  # nullable column: read it as ISNULL(ECH_RECU, 0)
    touched = max(doc_date, min(today, due + timedelta(days=rng.randint(-10, 15))))
    label = ("Facture " if kind == "F" else "Avoir ") + document.doc_piece
    credit = kind == "A"
    return gm.Echeance(
        ech_numero=numero, document=document, ech_piece=document.doc_piece, tiers=document.tiers,
        pcf_rs=document.tiers.pcf_rs, ech_lib=label + (f" {order + 1}/{parts}" if parts > 1 else ""),
        ech_dtemis=_aware(doc_date), ech_date=_aware(due), reg_code=document.reg_code,
        ech_arecev=Decimal("0") if credit else amount, ech_recu=Decimal("0") if credit else received,
        ech_apayer=amount if credit else Decimal("0"),
        ech_payer=(received or Decimal("0")) if credit else Decimal("0"),
        # A nullable bit: unsettled rows hold NULL as often as 0.
        ech_solder=True if status == "paid" else rng.choice([False, None]),
        ech_nbrel=0, ech_dtmaj=_aware(touched if status != "unpaid" else doc_date),
        ech_usrmaj=USER, ech_nummaj=1,
    )


def _document_custom_values(rng, documents, echeances, today):
    # Disputes concern unpaid, overdue invoices: that is where a criterion on
    # XXX_LITIGE changes what a reminder task selects.
    disputable = sorted({e.document.doc_numero for e in echeances
                         if e.ech_solder is not True and e.ech_arecev and e.ech_date.date() < today})
    disputed = set(rng.sample(disputable, min(len(disputable), max(1, round(len(documents) * 0.04)))))
    rows = []
    for document in documents:
        affaire = f"AFF-{document.doc_date.year}-{rng.randint(1, 120):03d}" if rng.random() < 0.3 else None
        litige = True if document.doc_numero in disputed else rng.choice([False, False, None])
        rows.append((document.doc_numero, {"XXX_LITIGE": litige, "XXX_AFFAIRE": affaire}))
    return ("DOC_NUMERO", rows)


def _write_custom_columns(alias, table, key_column, rows):
    """Set ``XXX_*`` values with a raw UPDATE: the models do not declare them."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        present = {c.name.upper() for c in connection.introspection.get_table_description(cursor, table)}
        columns = [name for name in rows[0][1] if name.upper() in present] if rows else []
        if not columns:
            return
        assignments = ", ".join(f"{quote(name)} = %s" for name in columns)
        cursor.executemany(
            f"UPDATE {quote(table)} SET {assignments} WHERE {quote(key_column)} = %s",
            [[values[name] for name in columns] + [key] for key, values in rows],
        )


__all__ = ["SIZES", "fill_demo_database"]
