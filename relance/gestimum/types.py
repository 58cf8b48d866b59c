"""Plain data the gateway hands to the rest of the project.

Nothing outside ``relance.gestimum`` sees a Gestimum model instance: the
engine, the renderer and the templates work on these dataclasses.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class ContactInfo:
    numero: str
    first_name: str
    last_name: str
    email: str
    function: str
    qualifiers: tuple[str, ...]

    @property
    def full_name(self):
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True)
class TiersInfo:
    code: str
    name: str
    name2: str = ""
    title: str = ""
    street: str = ""
    complement: str = ""
    postcode: str = ""
    city: str = ""
    country: str = ""
    email: str = ""
    family: str = ""
    subfamily: str = ""
    representative: str = ""
    siret: str = ""
    address_invalid: bool = False  # PCF_NPAI

    @property
    def postal_lines(self):
        """The postal address as printed on an envelope, without empty lines."""
        city = " ".join(part for part in (self.postcode, self.city) if part)
        lines = [self.name, self.name2, self.street, self.complement, city]
        if self.country and self.country.upper() not in ("FR", "FRA"):
            lines.append(self.country)
        return [line for line in lines if line]


@dataclass(frozen=True)
class DocumentLineInfo:
    number: int
    article: str
    label: str
    quantity: Decimal
    unit_price: Decimal
    total: Decimal
    vat_rate: Decimal


@dataclass
class DocumentInfo:
    numero: str
    piece: str
    stype: str
    date: date | None
    reference: str = ""
    payment_mode: str = ""
    representative: str = ""
    total_ht: Decimal = Decimal("0")
    total_vat: Decimal = Decimal("0")
    total_ttc: Decimal = Decimal("0")
    deposit: Decimal = Decimal("0")
    billing_name: str = ""
    billing_street: str = ""
    billing_complement: str = ""
    billing_postcode: str = ""
    billing_city: str = ""
    memo: str = ""
    lines: list[DocumentLineInfo] = field(default_factory=list)

    @property
    def billing_lines(self):
        city = " ".join(part for part in (self.billing_postcode, self.billing_city) if part)
        lines = [self.billing_name, self.billing_street, self.billing_complement, city]
        return [line for line in lines if line]


@dataclass
class EcheanceInfo:
    numero: str
    doc_numero: str
    piece: str
    pcf_code: str
    label: str
    issued: date | None
    due_date: date | None
    payment_mode: str
    amount: Decimal
    received: Decimal
    reminders_sent: int

    @property
    def remaining(self):
        return self.amount - self.received


@dataclass
class Candidate:
    """One échéance to remind, with everything needed to render and address it."""

    echeance: EcheanceInfo
    tiers: TiersInfo
    document: DocumentInfo | None
    contacts: list[ContactInfo] = field(default_factory=list)
    # Values of columns named by the task's address sources, keyed (TABLE, COLUMN).
    columns: dict[tuple[str, str], object] = field(default_factory=dict)
    representative_email: str = ""

    @property
    def document_data_key(self):
        """Identifies the document's printable content (for PDF reuse)."""
        doc = self.document
        if doc is None:
            return f"ech:{self.echeance.numero}"
        lines = ";".join(
            f"{ln.number}|{ln.article}|{ln.label}|{ln.quantity}|{ln.unit_price}|{ln.total}|{ln.vat_rate}"
            for ln in doc.lines
        )
        return "|".join(str(v) for v in (
            doc.numero, doc.piece, doc.date, doc.total_ht, doc.total_vat, doc.total_ttc,
            doc.billing_lines, self.tiers.postal_lines, lines,
        ))
